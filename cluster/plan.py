"""The plan: which tasks run, with what resources, commands, environment and TF_CONFIG.

Pure data, built by ``make_plan`` without touching the machine (the caller passes the GPUs
it found), so ``harness run --dry-run`` prints exactly what a launcher would start. Ports are
chosen by the tasks themselves at start (see harness.task), so the dry-run shows
``<role:index address>`` where the real run shows ``host:port``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from cluster.processes import join_paths, spares_text
from cluster.resources import TaskResources, local_gpu_slices, task_resources
from harness import legacy_keras
from harness.identity import TaskId, tf_config
from harness.job import TRAINER_ROLES, JobSpec


@dataclass(frozen=True)
class TaskPlan:
    role: str
    index: int
    cpu: float
    gpu: float
    memory_mb: int | None
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.task_id.key

    @property
    def task_id(self) -> TaskId:
        return TaskId(self.role, self.index)

    @property
    def is_trainer(self) -> bool:
        return self.role in TRAINER_ROLES

    @property
    def resources(self) -> TaskResources:
        """What the task gets (``cluster.resources.task_resources``), which backends derive from."""
        return TaskResources(cpu=self.cpu, gpu=self.gpu, memory_mb=self.memory_mb)


@dataclass(frozen=True)
class Plan:
    job: JobSpec
    tasks: tuple[TaskPlan, ...]
    backend: str

    def task(self, key: str) -> TaskPlan:
        return next(t for t in self.tasks if t.key == key)

    @property
    def variable_hosts(self) -> tuple[str, ...]:
        """Tasks that hold variables: the ps tasks, or the chief when there are none."""
        hosts = tuple(t.key for t in self.tasks if t.role == "ps")
        return hosts or ("chief:0",)

    def tf_config(self, task: TaskPlan, cluster: dict[str, list[str]] | None = None) -> dict:
        """``task``'s TF_CONFIG (``harness.identity.tf_config``), with placeholder addresses
        unless ``cluster`` is given."""
        return tf_config(task.task_id, cluster or placeholder_cluster(self.job))

    def describe(self) -> str:
        """Human-readable dry-run of the local backend: processes, commands, TF_CONFIG."""
        lines = [
            f"job {self.job.name}: {len(self.tasks)} tasks, backend {self.backend}, "
            f"model_dir {self.job.model_dir}",
        ]
        for task in self.tasks:
            env = {k: v for k, v in task.env.items() if k != "HARNESS_JOB"}
            lines += [
                f"  [{task.key}] cpu={task.cpu:g} gpu={task.gpu:g}"
                + (f" memory_mb={task.memory_mb}" if task.memory_mb else ""),
                f"    command:   {' '.join(task.command)}",
                f"    env:       {json.dumps(env, sort_keys=True)}",
                f"    TF_CONFIG: {json.dumps(self.tf_config(task))}",
            ]
        return "\n".join([*lines, spares_text(self.job)])


def placeholder_cluster(job: JobSpec) -> dict[str, list[str]]:
    return {
        role: [f"<{role}:{i} address>" for i in range(n)] for role, n in job.task_counts().items()
    }


def task_command(role: str, index: int, python: str = sys.executable) -> tuple[str, ...]:
    return (python, "-m", "harness.task", "--role", role, "--index", str(index))


def make_plan(
    job: JobSpec,
    backend: str = "local",
    visible_gpus: Sequence[str] | None = None,
    python: str = sys.executable,
) -> Plan:
    """Turn a JobSpec into tasks. ``visible_gpus`` (local backend): GPU ids to hand out.

    Each task's CPUs, GPUs and memory are ``cluster.resources.task_resources`` (only trainers
    get GPUs). Locally, each trainer gets its own ``CUDA_VISIBLE_DEVICES`` slice of
    ``visible_gpus`` and ps tasks get none, so TensorFlow on a ps never touches a GPU
    (``cluster.resources.local_gpu_slices``). On Ray the actor's assigned GPUs are used
    instead (``visible_gpus=None``).
    """
    slices = None if visible_gpus is None else local_gpu_slices(job, visible_gpus)
    job_json = job.to_json()
    tasks = []
    for role, count in job.task_counts().items():
        res = task_resources(job, role)
        for index in range(count):
            env = {
                "HARNESS_JOB": job_json,
                "PYTHONPATH": join_paths(*job.source_dirs),
                legacy_keras.ENV: legacy_keras.env_value(job.keras),
            }
            if slices is not None:
                env["CUDA_VISIBLE_DEVICES"] = slices[f"{role}:{index}"]
            tasks.append(
                TaskPlan(
                    role=role,
                    index=index,
                    cpu=res.cpu,
                    gpu=res.gpu,
                    memory_mb=res.memory_mb,
                    command=task_command(role, index, python),
                    env=env,
                )
            )
    return Plan(job=job, tasks=tuple(tasks), backend=backend)
