"""RunConfig: what a task tells model_fn and input_fn about itself (Estimator's RunConfig).

Built from TF_CONFIG, the way ``tf.estimator.RunConfig`` did:

- ``task_type`` / ``task_id`` come from ``TF_CONFIG['task']``;
- ``is_chief`` is True for the chief (and for a job with no cluster at all);
- ``num_ps_replicas`` counts ps tasks, ``num_worker_replicas`` counts chief + workers;
- ``master`` is ``grpc://<own address>`` for a task of a cluster, ``''`` otherwise;
- ``session_config`` carries Estimator's per-role ``device_filters`` so that a task's session
  only involves the ps tasks and itself (never waits on other workers).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf

TRAINER_ROLES = ("chief", "worker")


def device_filters(task_type: str | None, task_id: int, has_ps: bool = True) -> list[str]:
    """Estimator's default device filters for a task (empty for evaluator / no cluster).

    Without ps tasks the variables live on the chief, so a worker sees ``/job:chief`` where
    it would have seen ``/job:ps``.
    """
    variable_job = "/job:ps" if has_ps else "/job:chief"
    if task_type == "chief":
        return ["/job:ps", "/job:chief"] if has_ps else ["/job:chief"]
    if task_type == "worker":
        return [variable_job, f"/job:worker/task:{task_id}"]
    if task_type == "ps":
        return ["/job:ps", "/job:worker", "/job:chief"]
    return []


@dataclass(frozen=True)
class RunConfig:
    """Read-only facts about the current task and the job's checkpoint/summary settings."""

    task_type: str | None = None
    task_id: int = 0
    cluster_spec: tf.train.ClusterSpec = field(default_factory=lambda: tf.train.ClusterSpec({}))
    model_dir: str | None = None
    save_checkpoints_steps: int | None = None
    save_checkpoints_secs: float | None = 600.0
    keep_checkpoint_max: int = 5
    keep_checkpoint_every_n_hours: float = 10000.0
    save_summary_steps: int = 100
    log_step_count_steps: int = 100
    tf_random_seed: int | None = None
    gpu_memory_growth: bool = False

    @classmethod
    def from_tf_config(
        cls, tf_config: dict[str, Any] | str | None = None, **settings: Any
    ) -> RunConfig:
        """Build from a TF_CONFIG dict or JSON string (default: the TF_CONFIG environment)."""
        if tf_config is None:
            tf_config = os.environ.get("TF_CONFIG", "{}")
        if isinstance(tf_config, str):
            tf_config = json.loads(tf_config or "{}")
        task = tf_config.get("task", {})
        cluster = tf_config.get("cluster", {})
        return cls(
            task_type=task.get("type"),
            task_id=int(task.get("index", 0)),
            cluster_spec=tf.train.ClusterSpec(cluster),
            **settings,
        )

    @property
    def is_chief(self) -> bool:
        return self.task_type in (None, "chief", "master")

    @property
    def num_ps_replicas(self) -> int:
        return _num_tasks(self.cluster_spec, "ps")

    @property
    def num_worker_replicas(self) -> int:
        return sum(_num_tasks(self.cluster_spec, job) for job in ("chief", "master", "worker"))

    @property
    def global_id_in_cluster(self) -> int:
        """chief is 0, then workers 1..N, then ps, as in Estimator's RunConfig."""
        order = ["chief", "master", "worker", "ps", "evaluator"]
        offset = 0
        for job in order:
            if job == self.task_type:
                return offset + self.task_id
            offset += _num_tasks(self.cluster_spec, job)
        return 0

    @property
    def master(self) -> str:
        if not self.task_type or self.task_type not in self.cluster_spec.jobs:
            return ""
        return "grpc://" + self.cluster_spec.task_address(self.task_type, self.task_id)

    @property
    def session_config(self) -> tf.compat.v1.ConfigProto:
        config = tf.compat.v1.ConfigProto(
            allow_soft_placement=True,
            device_filters=device_filters(self.task_type, self.task_id, self.num_ps_replicas > 0),
        )
        config.gpu_options.allow_growth = self.gpu_memory_growth
        return config

    @property
    def worker_device(self) -> str:
        """Where a trainer's compute ops go: ``/job:<type>/task:<id>``."""
        if not self.task_type:
            return "/job:localhost/replica:0/task:0"
        return f"/job:{self.task_type}/task:{self.task_id}"


def _num_tasks(cluster_spec: tf.train.ClusterSpec, job: str) -> int:
    return cluster_spec.num_tasks(job) if job in cluster_spec.jobs else 0
