"""The RunConfig a task's model_fn and input_fn get.

``run_config``: this task's (from TF_CONFIG) plus the job's checkpoint settings;
``local_run_config``: the same settings for a graph outside the cluster (validate, evaluate,
export, the Estimator facade): no cluster, no task.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from harness.config import RunConfig
from harness.job import JobSpec


def run_config(job: JobSpec) -> RunConfig:
    """The RunConfig of this task: TF_CONFIG plus the job's checkpoint settings."""
    return RunConfig.from_tf_config(
        model_dir=job.model_dir,
        save_checkpoints_steps=job.train.save_checkpoints_steps,
        save_checkpoints_secs=job.train.checkpoint_secs,
        keep_checkpoint_max=job.train.keep_checkpoint_max,
        keep_checkpoint_every_n_hours=job.train.keep_checkpoint_every_n_hours,
        save_summary_steps=job.train.save_summary_steps,
        log_step_count_steps=job.train.log_step_count_steps,
        tf_random_seed=job.train.tf_random_seed,
        gpu_memory_growth=job.resources.gpu_memory_growth,
    )


def local_run_config(job: JobSpec) -> RunConfig:
    """The job's RunConfig for a local graph: checkpoint settings, no cluster, no task."""
    return dataclasses.replace(
        run_config(job), task_type=None, task_id=0, cluster_spec=tf.train.ClusterSpec({})
    )
