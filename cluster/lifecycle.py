"""The supervisor's bookkeeping: its states, each task's state, the rendezvous, the messages.

``State`` is the supervisor's state machine (``cluster.supervisor``); ``TaskState`` is what it
knows of one task; ``Rendezvous`` is one gathering of addresses and TF servers (all tasks with
fresh ports, or restarted tasks rejoining the running cluster); the ``*_message`` functions
word the job's failures. Nothing here decides anything: ``cluster.policy`` does.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cluster.handles import JobFailed, Unplaced

if TYPE_CHECKING:
    from cluster.plan import Plan
    from harness.job import ClusterSpecConfig


class State(enum.Enum):
    """The supervisor's states; ``Supervisor.run`` dispatches on the current one."""

    STARTING = "starting"  # start every task of the cluster (a fresh gang)
    RENDEZVOUS = "rendezvous"  # gather addresses, send the cluster, wait for the TF servers
    TRAINING = "training"  # progress, restarts, the stall watchdog, the lingering chief
    STOPPING = "stopping"  # the chief is done: stop workers, evaluator, then variable hosts
    RESTARTING = "restarting"  # carry out a restart: one task, or the whole cluster
    DONE = "done"  # every task has exited (or the job failed or was interrupted)


@dataclass
class TaskState:
    handle: Any = None
    address: str | None = None
    server_started: bool = False
    done: bool = False
    exited: bool = False
    exit_code: int | None = None
    global_step: int = 0
    local_steps: int = 0
    steps_before_restart: int = 0
    restarts: int = 0
    last_advance: float = field(default_factory=time.monotonic)
    has_session: bool = False  # this instance reported its session (or a step)
    finishing: bool = False  # its training loop ended (final checkpoint and close to come)
    error: dict[str, Any] | None = None
    dropped: bool = False  # cannot be placed again: the job goes on without it

    def started(self, handle: Any, now: float) -> None:
        """A new instance of the task: what the previous one reported no longer holds."""
        self.handle, self.address, self.server_started = handle, None, False
        self.done, self.exited, self.exit_code, self.error = False, False, None, None
        self.has_session = self.finishing = False
        self.steps_before_restart += self.local_steps
        self.local_steps, self.last_advance = 0, now


@dataclass
class Rendezvous:
    """Tasks that must report their address, get the cluster and start their TF server.

    ``fresh``: every task, with fresh ports; the cluster is built once all have reported.
    Otherwise the tasks rejoin the running cluster (``cluster`` already set): each gets it as
    soon as it reports, and binds its old address. A dropped task is not waited for.
    """

    keys: list[str]
    fresh: bool
    deadline: float
    cluster_built: bool = False
    sent: set[str] = field(default_factory=set)

    def rejoining(self, key: str) -> bool:
        return not self.fresh and key in self.keys

    def live(self, tasks: dict[str, TaskState]) -> list[str]:
        """The keys waited for: those not dropped (``TaskState.dropped``)."""
        return [k for k in self.keys if not tasks[k].dropped]

    def all_reported(self, tasks: dict[str, TaskState]) -> bool:
        return all(tasks[k].address for k in self.live(tasks))

    def due(self, tasks: dict[str, TaskState]) -> list[str]:
        """The tasks to send the cluster to now: reported, not sent it yet, cluster built."""
        if not self.cluster_built:
            return []
        keys = [k for k in self.live(tasks) if k not in self.sent and tasks[k].address]
        self.sent.update(keys)
        return keys

    def complete(self, tasks: dict[str, TaskState]) -> bool:
        return all(tasks[k].server_started for k in self.live(tasks))

    def add(self, key: str, deadline: float) -> None:
        """``key`` was (re)started: it reports again and needs the cluster again."""
        if key not in self.keys:
            self.keys.append(key)
        self.sent.discard(key)
        self.deadline = max(self.deadline, deadline)

    def drop(self, key: str) -> None:
        """``key`` is gone for good (its exit needs nothing more): no longer waited for."""
        if key in self.keys:
            self.keys.remove(key)
        self.sent.discard(key)

    def missing(self, tasks: dict[str, TaskState]) -> tuple[list[str], str]:
        """The tasks not there yet, and what they did not do (for the deadline's message)."""
        no_address = [k for k in self.live(tasks) if not tasks[k].address]
        if no_address:
            return no_address, "report its address"
        return [k for k in self.live(tasks) if not tasks[k].server_started], "start its TF server"


def build_cluster(plan: Plan, tasks: dict[str, TaskState]) -> dict[str, list[str]]:
    """The TF cluster from every task's reported address."""
    cluster: dict[str, list[str]] = {}
    for task in plan.tasks:
        if task.role != "evaluator":  # as in TF, the evaluator is not in the cluster
            cluster.setdefault(task.role, []).append(tasks[task.key].address or "")
    return cluster


# ---- the job's failure messages ----------------------------------------------------------


def task_failure_message(
    key: str,
    state: TaskState,
    exit_code: int | None,
    user_error: bool,
    failures: int,
    max_failures: int,
    tail: Iterable[str],
    log_path: str,
) -> str:
    """A task failed the job: role, index, the error's one-line message, its last lines."""
    if user_error:
        head = f"{key} failed with an error in the user's code (not retried)"
    elif failures >= max_failures:
        head = (
            f"{key} exited with code {exit_code} after {failures} restart(s); "
            f"failure.max_failures={max_failures} is used up"
        )
    else:
        head = f"{key} exited with code {exit_code}"
    message = (state.error or {}).get("message")
    head = f"{head}: {message}" if message else f"{head}:"
    body = "".join("\n    " + line for line in failure_lines(state, tail))
    return f"{head}{body}\n  full log: {log_path}"


def failure_lines(state: TaskState, tail: Iterable[str]) -> tuple[str, ...]:
    """A failed task's last 12 traceback lines (its output's when it reported no error)."""
    detail = (state.error.get("traceback") or "") if state.error else "\n".join(tail)
    return tuple(line for line in detail.strip().splitlines() if line.strip())[-12:]


def stop_grace_message(key: str, stop_grace_secs: float, log_path: str) -> str:
    return (
        f"{key} did not finish its last step within timeouts.stop_grace_secs="
        f"{stop_grace_secs:g} after the stop signal; see {log_path}"
    )


def bind_exhausted_message(attempts: int) -> str:
    return (
        f"TF servers failed to bind their ports {attempts} times in a row; "
        "is something on this host grabbing ports in 10000-32767?"
    )


def startup_message(missing: list[str], what: str, startup_secs: float, log_dir: str) -> str:
    return (
        f"{', '.join(missing)} did not {what} within {startup_secs:g} s "
        f"(timeouts.startup_secs). Check {log_dir}/ for its output."
    )


def unplaced_failure(exc: Unplaced, key: str, shape: ClusterSpecConfig) -> JobFailed:
    """A task that cannot be placed again fails the job (``policy.decide_unplaced``)."""
    need = ""
    if key.startswith("worker:"):
        need = f"cluster.min_workers={shape.workers_needed} of {shape.workers} workers: "
    message = f"{exc}\n  {need}the job cannot go on without {key}"
    return JobFailed(message, role=exc.role, index=exc.index)


def drop(key: str, tasks: dict[str, TaskState], shape: ClusterSpecConfig) -> str:
    """Mark ``key`` dropped (no rendezvous, no end of the job waits for it); says so."""
    tasks[key].dropped = True
    left = sum(k.startswith("worker:") and not s.dropped for k, s in tasks.items())
    return (
        f"{key} cannot be placed again; the job goes on without it ({left} of {shape.workers} "
        f"worker(s) left, cluster.min_workers={shape.workers_needed})"
    )


def stall_message(timeout: float, reached: int, stalled: list[str], log_dir: str) -> str:
    return (
        f"the global step has not advanced for {timeout:g} s (failure.stall_timeout_secs); "
        f"stuck at step {reached}. Stalled tasks: {', '.join(stalled) or 'none reported'}. "
        f"Each task's Python stacks are printed above and in {log_dir}/."
    )
