"""How big the Kubernetes pods of a job are: worker groups that hold every Ray bundle.

A task's CPUs, GPUs and memory are ``cluster.resources.task_resources`` (only trainers get
GPUs), the same amounts as its Ray placement-group bundle (``cluster.resources.ray_bundle``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from cluster.resources import gpu_roles, task_resources
from harness.job import JobSpec, JobSpecError

# Sizes in MiB. A task without resources.<role>.memory_mb is given the default of its kind.
DEFAULT_TASK_MEMORY_MIB = {"cpu": 2048, "gpu": 4096}
RAY_OVERHEAD_MIB = 1024  # raylet, agents and the task's actor process, per pod
OBJECT_STORE_MIB = 512  # the job moves no data through Ray's object store
HEAD_CPU = 1
HEAD_MEMORY_MIB = 4096  # GCS, dashboard and the driver (`harness run`, which imports TF)


@dataclass(frozen=True)
class Slot:
    """What the largest task of a group needs; every pod has room for whole slots."""

    cpu: float
    gpu: float
    memory_mib: int


@dataclass(frozen=True)
class WorkerGroup:
    """One KubeRay worker group: identical pods, each with room for ``tasks_per_pod`` slots."""

    name: str
    roles: tuple[str, ...]
    tasks: int
    tasks_per_pod: int
    slot: Slot

    @property
    def replicas(self) -> int:
        return math.ceil(self.tasks / self.tasks_per_pod)

    @property
    def num_cpus(self) -> int:
        """Ray's ``num-cpus`` (whole numbers only) and the pod's Kubernetes CPUs."""
        return max(1, math.ceil(round(self.tasks_per_pod * self.slot.cpu, 6)))

    @property
    def num_gpus(self) -> int:
        """Ray's ``num-gpus`` and the pod's ``nvidia.com/gpu``: whole GPUs."""
        return math.ceil(round(self.tasks_per_pod * self.slot.gpu, 6))

    @property
    def ray_memory_mib(self) -> int:
        return self.tasks_per_pod * self.slot.memory_mib

    @property
    def container_memory_mib(self) -> int:
        return self.ray_memory_mib + OBJECT_STORE_MIB + RAY_OVERHEAD_MIB


def worker_groups(job: JobSpec) -> tuple[WorkerGroup, ...]:
    """Worker groups whose pods hold every placement-group bundle of ``job``, whatever the strategy.

    Bundles are ``{"CPU": cpu, "GPU": gpu, "memory": memory_mb}`` per task (see
    ``cluster.resources.ray_bundle``). The head advertises no CPU, so no bundle lands there.

    - ``gpu-trainers``: chief/workers with ``gpu > 0``, sized for the larger of the two.
      A whole number of GPUs: one task per pod with that many GPUs (Kubernetes, not Ray,
      packs such pods onto multi-GPU nodes). A fraction below 1: ``floor(1 / gpu)`` tasks
      share one GPU in one pod under PACK and SPREAD; under STRICT_SPREAD every task needs a
      node of its own, so each pod holds one task and one GPU. Other amounts (1.5) raise
      JobSpecError: a pod gets whole GPUs and Ray gives a task either a fraction of one GPU
      or whole GPUs, so no pod could hold such a task.
    - ``cpu-trainers`` (chief/workers with no GPU) and ``ps``: one task per pod. Both groups
      use one slot, the largest CPU-only task: Ray may put any CPU-only bundle on any pod
      with room, so these pods must be interchangeable for every placement to fit.

    Why it always fits: a pod holding fewer bundles than its slots has a whole slot free, so
    it takes any bundle of its kind, and each group has slots for all its bundles. Ray's
    placement-group scheduler places bundles that ask for GPUs before CPU-only ones (it
    sorts them so), so CPU-only bundles only ever fill what GPU bundles left over.
    """
    counts = job.task_counts()
    gpus = gpu_roles(job, tuple(counts))  # chief/workers with GPUs: no other role gets any
    # chief/workers without GPUs, then the evaluator (CPU-only, like ps)
    cpu_roles = tuple(r for r in counts if r not in gpus and r != "ps")
    ps_roles = ("ps",) if "ps" in counts else ()
    groups = []
    if gpus:
        groups.append(_gpu_group(job, gpus))
    cpu_slot = _slot(job, cpu_roles + ps_roles, DEFAULT_TASK_MEMORY_MIB["cpu"])
    for name, roles in (("cpu-trainers", cpu_roles), ("ps", ps_roles)):
        if roles:
            tasks = sum(counts[r] for r in roles)
            groups.append(WorkerGroup(name, roles, tasks, 1, cpu_slot))
    return tuple(groups)


def _slot(job: JobSpec, roles: Iterable[str], default_memory_mib: int) -> Slot:
    resources = [task_resources(job, r) for r in roles]
    return Slot(
        cpu=max((r.cpu for r in resources), default=0.0),
        gpu=max((r.gpu for r in resources), default=0.0),
        memory_mib=max((r.memory_mb or default_memory_mib for r in resources), default=0),
    )


def _gpu_group(job: JobSpec, roles: tuple[str, ...]) -> WorkerGroup:
    for role in roles:
        gpu = task_resources(job, role).gpu
        if gpu > 1 and not float(gpu).is_integer():
            raise JobSpecError(
                f"resources.{role}.gpu: {gpu:g} GPUs per task cannot be expressed on "
                f"Kubernetes (got {gpu:g}). Pods get whole GPUs (nvidia.com/gpu) and a Ray "
                "task takes either a fraction of one GPU or whole GPUs; use a fraction below "
                "1 to share a GPU between tasks, or a whole number."
            )
    slot = _slot(job, roles, DEFAULT_TASK_MEMORY_MIB["gpu"])
    tasks = sum(job.task_counts()[r] for r in roles)
    per_pod = 1
    if slot.gpu < 1 and job.placement.strategy != "STRICT_SPREAD":
        per_pod = min(tasks, math.floor(1 / slot.gpu + 1e-9))
    return WorkerGroup("gpu-trainers", roles, tasks, per_pod, slot)
