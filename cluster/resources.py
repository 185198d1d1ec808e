"""What each task gets: the one rule for CPUs, GPUs and memory, and what backends derive from it.

``task_resources(job, role)`` is the only place in ``cluster/`` that applies "only trainers
get GPUs" (``harness.job.gpus_for``). Everything else reads its result:

- the plan's ``TaskPlan.cpu/gpu/memory_mb`` (``cluster.plan.make_plan``);
- the local backend's ``CUDA_VISIBLE_DEVICES`` slices (``local_gpu_slices``);
- the Ray backend's placement-group bundles (``ray_bundle``);
- the Kubernetes worker groups (``cluster.k8s_sizing.worker_groups``, via ``gpu_roles``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.job import JobSpec, JobSpecError, gpus_for

#: Every role a job may have, in TF_CONFIG order (``JobSpec.task_counts`` leaves out empty ones).
ROLES: tuple[str, ...] = ("chief", "worker", "ps", "evaluator")


@dataclass(frozen=True)
class TaskResources:
    """What one task gets: logical CPUs, GPUs (0 for ps and evaluator) and memory in MiB."""

    cpu: float
    gpu: float
    memory_mb: int | None = None


def task_resources(job: JobSpec, role: str) -> TaskResources:
    """The CPUs, GPUs and memory each task of ``role`` gets: the one rule every backend uses.

    Only trainers (chief and workers) get GPUs; a ps or an evaluator gets none on any backend.
    """
    res = job.resources.for_role(role)
    return TaskResources(cpu=res.cpu, gpu=gpus_for(role, res), memory_mb=res.memory_mb)


def gpu_roles(job: JobSpec, roles: Sequence[str] = ROLES) -> tuple[str, ...]:
    """The roles among ``roles`` whose tasks get GPUs, in that order."""
    return tuple(r for r in roles if task_resources(job, r).gpu > 0)


# ---- local: whole GPUs of this machine, one slice per task ------------------------------------


def local_gpu_slices(job: JobSpec, visible_gpus: Sequence[str]) -> dict[str, str]:
    """``CUDA_VISIBLE_DEVICES`` of each task (``role:index``) for the local backend.

    Tasks take disjoint slices of ``visible_gpus`` in plan order, ``task_resources(...).gpu``
    whole GPUs each; tasks without GPUs get ``""``, so TensorFlow on them never touches a GPU.
    Raises JobSpecError for a fractional GPU amount or too few GPUs.
    """
    _check_local_gpus(job, len(visible_gpus))
    ids = list(visible_gpus)
    slices = {}
    for role, count in job.task_counts().items():
        take = int(task_resources(job, role).gpu)
        for index in range(count):
            slices[f"{role}:{index}"] = ",".join(ids[:take])
            ids = ids[take:]
    return slices


def _check_local_gpus(job: JobSpec, available: int) -> None:
    needed = 0
    for role in gpu_roles(job):
        gpu = task_resources(job, role).gpu
        if not float(gpu).is_integer():
            raise JobSpecError(
                f"resources.{role}.gpu: the local backend gives whole GPUs to each task, got "
                f"{gpu:g}; use a whole number, or --backend ray for fractional GPUs"
            )
        needed += math.ceil(gpu) * job.task_counts().get(role, 0)
    if needed > available:
        raise JobSpecError(
            f"resources: the job needs {needed} GPU(s) for its chief and workers "
            f"(resources.chief.gpu={job.resources.chief.gpu:g} x 1, resources.worker.gpu="
            f"{job.resources.worker.gpu:g} x {job.cluster.workers}), but this machine shows "
            f"{available}. Set gpu: 0 to train on CPU, or run on a GPU machine or Ray cluster."
        )


# ---- Ray: one placement-group bundle per task ----------------------------------------------


def ray_bundle(resources: TaskResources) -> dict[str, float]:
    """The placement-group bundle of one task: ``{"CPU": cpu, "GPU": gpu, "memory": bytes}``,
    with GPU and memory only when there are any."""
    bundle: dict[str, float] = {"CPU": resources.cpu}
    if resources.gpu:
        bundle["GPU"] = resources.gpu
    if resources.memory_mb:
        bundle["memory"] = float(resources.memory_mb * 1024 * 1024)
    return bundle
