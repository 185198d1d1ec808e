"""The RunConfig a task's model_fn and input_fn get.

``run_config``: the task's (from its ``TaskSpec``: id and cluster) plus the job's checkpoint
settings; ``local_run_config``: the same settings for a graph outside the cluster (validate's
EVAL graph, evaluate, export, the Estimator facade): no cluster, no task. Neither reads the
environment.
"""

from __future__ import annotations

from typing import Any

from harness.config import RunConfig
from harness.identity import TaskSpec
from harness.job import JobSpec


def _job_settings(job: JobSpec) -> dict[str, Any]:
    return {
        "model_dir": job.model_dir,
        "save_checkpoints_steps": job.train.save_checkpoints_steps,
        "save_checkpoints_secs": job.train.checkpoint_secs,
        "keep_checkpoint_max": job.train.keep_checkpoint_max,
        "keep_checkpoint_every_n_hours": job.train.keep_checkpoint_every_n_hours,
        "save_summary_steps": job.train.save_summary_steps,
        "log_step_count_steps": job.train.log_step_count_steps,
        "tf_random_seed": job.train.tf_random_seed,
        "gpu_memory_growth": job.resources.gpu_memory_growth,
    }


def run_config(task: TaskSpec) -> RunConfig:
    """The RunConfig of ``task`` (which must know its cluster) with its job's settings."""
    return RunConfig.for_task(task, **_job_settings(task.job))


def local_run_config(job: JobSpec) -> RunConfig:
    """The job's RunConfig for a local graph: checkpoint settings, no cluster, no task."""
    return RunConfig.from_tf_config({}, **_job_settings(job))
