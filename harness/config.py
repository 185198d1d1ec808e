"""RunConfig: what a task tells model_fn and input_fn about itself (Estimator's RunConfig).

Built from a task's ``TaskSpec`` (``RunConfig.for_task``; the task runner's way) or from a
TF_CONFIG dict (``RunConfig.from_tf_config``), the way ``tf.estimator.RunConfig`` did; both give
the same config for the same task:

- ``task_type`` / ``task_id`` come from ``TF_CONFIG['task']``;
- ``is_chief`` is True for the chief (and for a job with no cluster at all);
- ``num_ps_replicas`` counts ps tasks, ``num_worker_replicas`` counts chief + workers;
- ``master`` is ``grpc://<own address>`` for a task of a cluster, ``''`` otherwise;
- ``session_config`` carries Estimator's per-role ``device_filters`` so that a task's session
  only involves the ps tasks and itself (never waits on other workers).

It is also ``tf.estimator.RunConfig`` for user code (``harness.compat``): the constructor takes
TF's arguments, by keyword or in TF's positional order (``model_dir, tf_random_seed,
save_summary_steps, save_checkpoints_steps, save_checkpoints_secs, session_config, ...``), and
then, as TF did:

- reads ``TF_CONFIG`` from the environment when none of ``task_type``, ``task_id``,
  ``cluster_spec`` is given (a ``model_dir`` there must equal the argument, if both are set);
- applies one checkpoint trigger: neither given -> every 600 s; only ``save_checkpoints_steps``
  given -> ``save_checkpoints_secs=None`` (both None disables checkpoints); both set ->
  ``ValueError('`save_checkpoints_steps` and `save_checkpoints_secs` cannot be both set.')``;
- keeps a ``session_config`` given to it (returned as is by ``session_config``, instead of the
  device-filtered default).

``replace(**kwargs)`` returns a copy with TF's replaceable properties (and this class's fields)
changed, with the same checkpoint-trigger rule; another name -> ``ValueError('x is not supported
by RunConfig.replace. Allowed properties: [...]')``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import tensorflow as tf

if TYPE_CHECKING:
    from harness.identity import TaskSpec


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
    # TF's other RunConfig settings, kept for model code that reads or replaces them. A
    # `session_config=` given to the constructor is stored as `custom_session_config`.
    custom_session_config: Any = None
    train_distribute: Any = None
    eval_distribute: Any = None
    experimental_distribute: Any = None
    device_fn: Any = None
    protocol: str | None = None
    experimental_max_worker_delay_secs: int | None = None
    session_creation_timeout_secs: int = 7200
    checkpoint_save_graph_def: bool = True

    @classmethod
    def from_tf_config(
        cls, tf_config: dict[str, Any] | str | None = None, **settings: Any
    ) -> RunConfig:
        """Build from a TF_CONFIG dict or JSON string (default: the TF_CONFIG environment, for
        user code; the harness always passes the dict)."""
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

    @classmethod
    def for_task(cls, task: TaskSpec, **settings: Any) -> RunConfig:
        """The RunConfig of ``task`` (its id and cluster; never the environment): exactly
        ``from_tf_config(task.tf_config(), **settings)``."""
        return cls.from_tf_config(task.tf_config(), **settings)

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
    def evaluation_master(self) -> str:
        return ""

    def replace(self, **kwargs: Any) -> RunConfig:
        """A copy with TF's replaceable properties changed (rules in the module docstring)."""
        allowed = sorted(set(_TF_ARGUMENTS) | {f.name for f in dataclasses.fields(self)})
        for name in kwargs:
            if name not in allowed:
                raise ValueError(
                    f"{name} is not supported by RunConfig.replace. Allowed properties: {allowed}"
                )
        changes = _tf_arguments_to_fields(dict(kwargs))
        return dataclasses.replace(self, **changes)

    @property
    def session_config(self) -> tf.compat.v1.ConfigProto:
        if self.custom_session_config is not None:
            return self.custom_session_config
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


#: tf.estimator.RunConfig's arguments, in its positional order.
_TF_ARGUMENTS = (
    "model_dir",
    "tf_random_seed",
    "save_summary_steps",
    "save_checkpoints_steps",
    "save_checkpoints_secs",
    "session_config",
    "keep_checkpoint_max",
    "keep_checkpoint_every_n_hours",
    "log_step_count_steps",
    "train_distribute",
    "device_fn",
    "protocol",
    "eval_distribute",
    "experimental_distribute",
    "experimental_max_worker_delay_secs",
    "session_creation_timeout_secs",
    "checkpoint_save_graph_def",
)
_TASK_FIELDS = ("task_type", "task_id", "cluster_spec")
_SAVE_CKPT_ERR = "`save_checkpoints_steps` and `save_checkpoints_secs` cannot be both set."


def _tf_arguments_to_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    """TF's argument names and checkpoint-trigger rule applied to constructor/replace kwargs."""
    if "session_config" in kwargs:
        kwargs["custom_session_config"] = kwargs.pop("session_config")
    steps, secs = kwargs.get("save_checkpoints_steps"), kwargs.get("save_checkpoints_secs")
    if steps is not None and secs is not None:
        raise ValueError(_SAVE_CKPT_ERR)
    if "save_checkpoints_steps" in kwargs and "save_checkpoints_secs" not in kwargs:
        kwargs["save_checkpoints_secs"] = None
    elif "save_checkpoints_secs" in kwargs and "save_checkpoints_steps" not in kwargs:
        kwargs["save_checkpoints_steps"] = None
    return kwargs


def _task_from_environment(kwargs: dict[str, Any]) -> None:
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {})
    kwargs["task_type"] = task.get("type")
    kwargs["task_id"] = int(task.get("index", 0))
    kwargs["cluster_spec"] = tf.train.ClusterSpec(tf_config.get("cluster", {}))
    env_dir = tf_config.get("model_dir")
    if env_dir:
        given = kwargs.get("model_dir")
        if given and os.fspath(given) != env_dir:
            raise ValueError(
                "`model_dir` provided in RunConfig construct, if set, must have the same value "
                f"as the model_dir in TF_CONFIG. model_dir: {given}\n"
                f'TF_CONFIG["model_dir"]: {env_dir}.\n'
            )
        kwargs["model_dir"] = env_dir


_fields_init = RunConfig.__init__


def _tf_style_init(self: RunConfig, *args: Any, **kwargs: Any) -> None:
    """The dataclass constructor, also taking tf.estimator.RunConfig's arguments."""
    if len(args) > len(_TF_ARGUMENTS):
        raise TypeError(f"RunConfig takes at most {len(_TF_ARGUMENTS)} positional arguments")
    for name, value in zip(_TF_ARGUMENTS, args, strict=False):
        if name in kwargs:
            raise TypeError(f"RunConfig got multiple values for argument '{name}'")
        kwargs[name] = value
    kwargs = _tf_arguments_to_fields(kwargs)
    if not any(name in kwargs for name in _TASK_FIELDS):
        _task_from_environment(kwargs)
    if kwargs.get("model_dir") is not None:
        kwargs["model_dir"] = os.fspath(kwargs["model_dir"])
    _fields_init(self, **kwargs)


RunConfig.__init__ = _tf_style_init  # type: ignore[method-assign]
