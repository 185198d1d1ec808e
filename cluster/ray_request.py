"""What the Ray backend will start, as pure data: ``render(plan) -> RayRequest`` (no Ray).

A ``RayRequest`` is the job's placement group (one bundle per task, in plan order, with the
job's ``placement.strategy`` and ``placement.timeout_secs``) and one actor per task (its
name, its bundle, the command and environment of its task), plus where to find Ray: the
``address`` given (else ``RAY_ADDRESS``, resolved when launching) or an embedded local Ray
with ``embedded_cpus`` logical CPUs. ``describe()`` is ``harness run --dry-run``'s text;
``cluster.ray_launcher.launch`` performs the request.

With ``existing_group`` (a placement group someone else created and owns, such as a Ray
Tune trial's: ``harness.tune``), no group is created: the actors go into that group's
bundles ``first_bundle``, ``first_bundle + 1``, ..., which must be the request's ``bundles``.
The group is only carried, as an opaque handle: rendering still touches no Ray.

Bundles are ``cluster.resources.ray_bundle`` of each task's resources: only trainers hold GPUs.

When the job asks for TensorBoard (``cluster.tensorboard``), ``tensorboard`` is its request:
one more actor, ``<job>-tensorboard``, with 0 CPUs in the chief's bundle, so that it runs on
the chief's node under every placement strategy and adds no bundle (STRICT_SPREAD would need
a node of its own for one) and no CPU to what the job asks for.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cluster.plan import Plan, TaskPlan
from cluster.resources import ray_bundle
from cluster.tensorboard import TensorBoardRequest, tensorboard_request
from harness.job import JobSpec


def actor_name(job_name: str, task: TaskPlan) -> str:
    return f"{job_name}-{task.role}-{task.index}"


def bundle_for(task: TaskPlan) -> dict[str, float]:
    """The placement group bundle of one task: its CPUs, GPUs (chief and workers only) and
    memory; ps and evaluator bundles never hold a GPU (``cluster.resources``)."""
    return ray_bundle(task.resources)


def _requested_cpus(job: JobSpec) -> int:
    total = sum(job.resources.for_role(role).cpu * n for role, n in job.task_counts().items())
    return math.ceil(total - 1e-9)


def embedded_num_cpus(job: JobSpec) -> int:
    """Logical CPUs an embedded Ray declares: the machine's cores, or what the job asks for."""
    return max(os.cpu_count() or 1, _requested_cpus(job))


def oversubscription_warning(job: JobSpec, machine_cpus: int | None = None) -> str | None:
    """One line when an embedded Ray for ``job`` declares more CPUs than the machine has.

    ``machine_cpus`` defaults to ``os.cpu_count()``. None when the job's resources fit.
    """
    machine = machine_cpus or os.cpu_count() or 1
    declared = max(machine, _requested_cpus(job))
    if declared <= machine:
        return None
    return (
        f"harness: warning: the job's resources ask for {declared} CPUs in all and this machine "
        f"has {machine}; the embedded Ray declares {declared} logical CPUs, so the tasks share "
        f"{machine} cores (lower resources.<role>.cpu, or pass --address of a larger cluster)"
    )


@dataclass(frozen=True)
class ActorRequest:
    """One task's actor: its name, its bundle (index and resources), its command and env."""

    task: TaskPlan
    name: str
    bundle_index: int
    bundle: Mapping[str, float]
    command: tuple[str, ...]
    env: Mapping[str, str]

    @property
    def num_gpus(self) -> float:
        return self.bundle.get("GPU", 0)


@dataclass(frozen=True)
class RayRequest:
    """The actors and the placement group of one job on Ray (see the module docstring)."""

    plan: Plan
    actors: tuple[ActorRequest, ...]
    address: str | None = None
    embedded_cpus: int = 1
    extra_env: Mapping[str, str] = field(default_factory=dict)
    tensorboard: TensorBoardRequest | None = None
    existing_group: Any = None  # a ray PlacementGroup owned by the caller, or None
    first_bundle: int = 0  # the existing group's bundle of the first actor

    @property
    def owns_group(self) -> bool:
        """Whether the launcher creates (and removes) the placement group itself."""
        return self.existing_group is None

    @property
    def job(self) -> JobSpec:
        return self.plan.job

    @property
    def tensorboard_name(self) -> str:
        return f"{self.job.name}-tensorboard"

    @property
    def tensorboard_bundle(self) -> int:
        """The bundle TensorBoard's actor runs in: the chief's, with 0 CPUs of its own."""
        return self.actor("chief:0").bundle_index

    @property
    def bundles(self) -> list[dict[str, float]]:
        """The job's bundles, in plan order (actor ``i``'s is the group's ``first_bundle + i``)."""
        return [dict(a.bundle) for a in self.actors]

    def actor(self, key: str) -> ActorRequest:
        return next(a for a in self.actors if a.task.key == key)

    def describe(self) -> str:
        """The dry-run of the Ray backend: actors, placement group, bundles, commands."""
        job = self.job
        placement = job.placement
        group = (
            f"one placement group (strategy {placement.strategy}, placed within "
            f"{placement.timeout_secs:g} s or the job fails)"
            if self.owns_group
            else f"an existing placement group from its bundle {self.first_bundle} on"
        )
        lines = [
            f"job {job.name}: {len(self.actors)} Ray actors in {group}, model_dir " + job.model_dir,
            "  Ray cluster: --address / RAY_ADDRESS (or the job's cluster under `ray job "
            f"submit`), else an embedded local Ray with {self.embedded_cpus} logical CPUs",
        ]
        for actor in self.actors:
            bundle = format_resources(actor.bundle)[1:-1]
            gpus = "Ray-assigned GPU ids" if "GPU" in actor.bundle else '"" (no GPU)'
            lines += [
                f"  [{actor.task.key}] actor {actor.name}, bundle {actor.bundle_index} "
                f"{{{bundle}}}",
                f"    command: {' '.join(actor.command)}",
                f"    CUDA_VISIBLE_DEVICES: {gpus}; HARNESS_NODE_IP: the actor's node IP",
            ]
        if self.tensorboard is not None:
            lines += self.tensorboard.describe(
                f"actor {self.tensorboard_name}, in the chief's bundle {self.tensorboard_bundle} "
                "with 0 CPUs (the chief's node), no GPU"
            )
        return "\n".join(lines)


def render(
    plan: Plan,
    address: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    existing_group: Any = None,
    first_bundle: int = 0,
) -> RayRequest:
    """Pure: the placement group and actors that ``cluster.ray_launcher.launch`` would create
    (or, with ``existing_group``, the actors it would start in that group's bundles)."""
    extra = dict(extra_env or {})
    actors = tuple(
        ActorRequest(
            task=task,
            name=actor_name(plan.job.name, task),
            bundle_index=first_bundle + index,
            bundle=bundle_for(task),
            command=task.command,
            env={**extra, **task.env},
        )
        for index, task in enumerate(plan.tasks)
    )
    tensorboard = tensorboard_request(plan.job, host=None)
    cpus = embedded_num_cpus(plan.job)
    return RayRequest(plan, actors, address, cpus, extra, tensorboard, existing_group, first_bundle)


def describe_ray_plan(plan: Plan) -> str:
    """The dry-run of the Ray backend for ``plan`` (``render(plan).describe()``)."""
    return render(plan).describe()


def format_resources(resources: Mapping[str, float], show: tuple[str, ...] = ()) -> str:
    """``{CPU: 2, GPU: 1, memory: 4 GiB}``: Ray's CPU, GPU and memory (``show``: even at 0)."""
    keys = [k for k in ("CPU", "GPU", "memory") if k in resources or k in show]
    parts = []
    for key in keys:
        value = resources.get(key, 0.0)
        if key == "memory":
            parts.append(f"memory: {value / 2**30:.3g} GiB")
        else:
            parts.append(f"{key}: {value:g}")
    return "{" + ", ".join(parts) + "}"
