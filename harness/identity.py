"""Who a task is: ``TaskId`` (role, index), ``TaskSpec`` (id, job, node IP, cluster) and the one
function that builds a ``TF_CONFIG``.

The identity flows one way and explicitly: the plan's ``TaskPlan.task_id`` becomes the task
command's ``--role/--index``; ``harness.task``'s ``main`` turns them, the job and the node IP
into a ``TaskSpec``, adds the cluster once the supervisor sends it (``with_cluster``), and hands
the spec to the trainer or the evaluator, which build their ``RunConfig`` from it
(``harness.runtime.run_config.run_config``). ``TF_CONFIG`` is set in the task's environment once,
for the user's code and for TensorFlow; the harness never reads it back to learn who it is.

``tf_config`` is TF's usual shape, ``{"cluster": {...}, "task": {"type": ..., "index": ...}}``;
as in TF, the evaluator is not part of the cluster (its own ``task`` still names it). The plan's
dry-run, ``harness validate`` and the task all build their ``TF_CONFIG`` with it.

Pure data: no TensorFlow, no environment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.job import JobSpec

ROLES = ("chief", "worker", "ps", "evaluator")
#: The node IP a task reports when its launcher names none (local processes).
DEFAULT_NODE_IP = "127.0.0.1"
#: The role outside TF's cluster: no server, no address in ``TF_CONFIG["cluster"]``.
EVALUATOR = "evaluator"

Cluster = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class TaskId:
    """One task of a job: ``chief:0``, ``worker:1``, ``ps:0``, ``evaluator:0``."""

    role: str
    index: int = 0

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"task role {self.role!r} is not one of {', '.join(ROLES)}")
        if self.index < 0:
            raise ValueError(f"task index must be >= 0, got {self.index}")

    @property
    def key(self) -> str:
        return f"{self.role}:{self.index}"

    def __str__(self) -> str:
        return self.key


def tf_config(task: TaskId, cluster: Cluster) -> dict[str, Any]:
    """The ``TF_CONFIG`` of ``task`` in ``cluster`` (role -> addresses), in TF's shape.

    The evaluator is left out of the cluster, as TF expects; its ``task`` still names it.
    """
    return {
        "cluster": {role: list(addrs) for role, addrs in cluster.items() if role != EVALUATOR},
        "task": {"type": task.role, "index": task.index},
    }


@dataclass(frozen=True)
class TaskSpec:
    """What a task knows about itself: its id, its job, its node's IP and, once the supervisor
    sent it, the cluster (role -> ``host:port`` list; None before)."""

    task: TaskId
    job: JobSpec = field(repr=False)
    node_ip: str = DEFAULT_NODE_IP
    cluster: Cluster | None = field(default=None, hash=False)

    @property
    def role(self) -> str:
        return self.task.role

    @property
    def index(self) -> int:
        return self.task.index

    def with_cluster(self, cluster: Cluster) -> TaskSpec:
        """This spec once the cluster is known."""
        return dataclasses.replace(self, cluster={r: list(a) for r, a in cluster.items()})

    def tf_config(self) -> dict[str, Any]:
        """This task's ``TF_CONFIG`` (``tf_config``); ValueError before the cluster is known."""
        if self.cluster is None:
            raise ValueError(f"{self.task}: the cluster is not known yet")
        return tf_config(self.task, self.cluster)

    @property
    def address(self) -> str:
        """This task's ``host:port`` in the cluster (ValueError for the evaluator, which has
        none, or before the cluster is known)."""
        if self.cluster is None or self.role not in self.cluster or self.role == EVALUATOR:
            raise ValueError(f"{self.task} has no address in the cluster")
        return self.cluster[self.role][self.index]
