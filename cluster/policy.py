"""The failure policy: what the supervisor does when a task ends, or a deadline passes.

Every such decision is made here, purely; the supervisor only carries it out. An exit is
first classified (``classify_exit``: what the supervisor knew when the task ended), then
decided (``decide_exit``, from the classification and the budgets used so far):

- a clean exit after ``stop`` or after the task reported ``done``, or any exit after
  ``stop`` (killed after the grace period)                   -> nothing to do;
- the chief ended after ``stop`` (the lingering-chief stop) without finishing its training
  loop                                                       -> fail (timeouts.stop_grace_secs);
- a TF server could not bind its port during a rendezvous (exit code ``EXIT_BIND_FAILED``)
                                                             -> re-run the rendezvous with
  fresh ports, up to ``MAX_RENDEZVOUS_ATTEMPTS`` times in a row, then fail (not counted
  against ``failure.max_failures``);
- a restarted task could not rejoin on its old address (its bind failed, or it missed the
  startup deadline)                                          -> restart the whole cluster;
- any other exit is a failure, decided per role by ``RESTART_TABLE``, as TF's
  between-graph replication needs it:

  - worker dies      -> restart that worker; it rejoins (waits for the chief's variables);
  - chief dies       -> restart the chief; with ps it joins the variables they kept
                        (``failure.chief_restart: live``, decided by the chief from the
                        variables' state: ``harness.runtime.chief_session``), or restores the
                        latest checkpoint from model_dir (``checkpoint``, or without ps);
  - ps dies          -> restart the whole cluster; the chief restores the latest checkpoint
                        (the variables held by the lost ps are gone for every task);
  - evaluator dies   -> restart it, from its own budget (up to ``max_failures`` times, not
                        counted against the trainers'), whether it crashed or its model code
                        failed on one checkpoint (a fresh process may well evaluate the next
                        one); after that budget, the job goes on without it: the evaluator
                        never fails the training;

- a user error     -> fail at once, never retried (but the evaluator's): a restart would fail
                      the same way. The task reports it (exit code 2, ``user_error``):
                      model_fn/input_fn raised, invalid ModelFnOps, NaN loss, a user hook
                      raised (begin, after_create_session, before_run, after_run, end), an op
                      created in the user's code failed at the first step
                      (InvalidArgumentError), the checkpoint in model_dir does not fit the
                      graph; ``harness run`` then exits 2, as for invalid input;
- every other restart counts against ``failure.max_failures``; one more failure than that
  fails the job;
- after the chief has finished its training loop (the job has succeeded), a task ending
  badly, or failing to rejoin, no longer matters.

Deadlines (``decide_deadline``): tasks missing at ``timeouts.startup_secs`` fail the job
when the whole cluster was starting, and restart the cluster when they were rejoining it.

Node loss (Ray): a task restarted after its node died waits for its bundle to be placed
again (``placement.timeout_secs``, the launcher). When it cannot be (``decide_unplaced``): a
worker is dropped while at least ``cluster.min_workers`` workers remain (the job goes on
without it), the evaluator is dropped (training never depends on it), anything else fails
the job. A restarted task that reports another host than its address in the running
cluster (``moved_host``) restarts the whole cluster: TF's gRPC runtime has the receiver
of a tensor pull it (``RecvTensor``), so the ps dial every trainer that sends them gradients,
at the address in the cluster spec they got at boot, which cannot change while they run.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from cluster.lifecycle import State, TaskState
from harness import protocol
from harness.job import ClusterSpecConfig

MAX_RENDEZVOUS_ATTEMPTS = 5


class Decision(enum.Enum):
    RESTART_TASK = "restart the task"
    RESTART_CLUSTER = "restart the whole cluster"
    RERUN_RENDEZVOUS = "re-run the rendezvous with fresh ports"
    FAIL = "fail the job"
    IGNORE = "ignore (training already finished)"
    DROP_TASK = "go on without the task (it cannot be placed again)"
    NOTHING = "nothing to do (an expected exit)"


class ExitKind(enum.Enum):
    EXPECTED = "ended after its stop or its done"
    STOP_GRACE = "the chief ended after its stop without finishing its training loop"
    BIND_FAILED = "its TF server could not bind the port of this rendezvous"
    REJOIN_FAILED = "a restarted task could not rejoin the cluster on its old address"
    FAILURE = "ended unexpectedly (a crash, an error; user_error says whose)"


@dataclass(frozen=True)
class ExitEvent:
    """What the supervisor knows when a task ends.

    ``stop_sent``: the supervisor had told the task to stop; ``reported_done``: the task had
    reported ``done``; ``chief_done``: the chief had; ``state``: the supervisor's state;
    ``rejoining``: the task had been restarted alone and had not yet rejoined the cluster.
    """

    role: str
    index: int
    exit_code: int | None
    stop_sent: bool = False
    reported_done: bool = False
    chief_done: bool = False
    state: State = State.TRAINING
    rejoining: bool = False


@dataclass(frozen=True)
class TaskFailure:
    """A task that ended; ``user_error``: it reported an error of the user's."""

    role: str
    index: int
    exit_code: int | None
    user_error: bool = False
    kind: ExitKind = ExitKind.FAILURE
    chief_done: bool = False

    @property
    def key(self) -> str:
        return f"{self.role}:{self.index}"

    @property
    def is_failure(self) -> bool:
        """A failure in the policy's sense: logged in run.json's ``failures``."""
        return self.kind is ExitKind.FAILURE


@dataclass(frozen=True)
class RestartRule:
    """How a role's failures are handled.

    ``restart``: the decision while the budget lasts; ``budget``: which budget it draws on
    (``"shared"``: the trainers' and ps' together); ``exhausted``: the decision once it is
    used up; ``retry_user_errors``: whether a user error is retried like any failure.
    """

    restart: Decision
    budget: str = "shared"
    exhausted: Decision = Decision.FAIL
    retry_user_errors: bool = False


RESTART_TABLE: dict[str, RestartRule] = {
    "worker": RestartRule(Decision.RESTART_TASK),
    "chief": RestartRule(Decision.RESTART_TASK),
    "ps": RestartRule(Decision.RESTART_CLUSTER),
    "evaluator": RestartRule(
        Decision.RESTART_TASK,
        budget="evaluator",
        exhausted=Decision.IGNORE,
        retry_user_errors=True,
    ),
}


@dataclass(frozen=True)
class Budget:
    """What the job has used so far: restarts per budget, the rendezvous attempt."""

    max_failures: int
    failures: int = 0  # the shared budget: restarts of trainers and ps
    evaluator_failures: int = 0
    rendezvous_attempt: int = 1  # of the current cluster start, 1-based

    def used(self, role: str) -> int:
        return (
            self.evaluator_failures
            if RESTART_TABLE[role].budget == "evaluator"
            else (self.failures)
        )


def classify_exit(event: ExitEvent) -> TaskFailure:
    """What kind of exit ``event`` is (pure)."""
    code = event.exit_code
    kind = ExitKind.FAILURE
    if code == protocol.EXIT_BIND_FAILED and event.rejoining:
        kind = ExitKind.REJOIN_FAILED
    elif code == protocol.EXIT_BIND_FAILED and event.state is State.RENDEZVOUS:
        kind = ExitKind.BIND_FAILED
    elif code == protocol.EXIT_OK and (event.stop_sent or event.reported_done):
        kind = ExitKind.EXPECTED
    elif event.stop_sent:
        unfinished_chief = event.role == "chief" and not event.chief_done
        kind = ExitKind.STOP_GRACE if unfinished_chief else ExitKind.EXPECTED
    return TaskFailure(
        event.role,
        event.index,
        code,
        user_error=kind is ExitKind.FAILURE and code == protocol.EXIT_USER_ERROR,
        kind=kind,
        chief_done=event.chief_done,
    )


def rejoin_timed_out(key: str, chief_done: bool) -> TaskFailure:
    """A restarted task missed its startup deadline while rejoining the cluster."""
    role, index = key.split(":")
    return TaskFailure(role, int(index), None, kind=ExitKind.REJOIN_FAILED, chief_done=chief_done)


def decide_exit(failure: TaskFailure, budget: Budget) -> Decision:
    """The decision for one classified exit (pure)."""
    if failure.kind is ExitKind.EXPECTED:
        return Decision.NOTHING
    if failure.kind is ExitKind.STOP_GRACE:
        return Decision.FAIL
    if failure.kind is ExitKind.BIND_FAILED:
        if budget.rendezvous_attempt < MAX_RENDEZVOUS_ATTEMPTS:
            return Decision.RERUN_RENDEZVOUS
        return Decision.FAIL
    if failure.kind is ExitKind.REJOIN_FAILED:
        return Decision.IGNORE if failure.chief_done else Decision.RESTART_CLUSTER
    return decide(failure, budget.used(failure.role), budget.max_failures, failure.chief_done)


def decide(
    failure: TaskFailure, failures_so_far: int, max_failures: int, chief_done: bool
) -> Decision:
    """The decision for one failure, by ``RESTART_TABLE``. ``failures_so_far`` excludes this
    one and counts the failures of the same budget: the trainers' and ps' together, or the
    evaluator's own."""
    if chief_done:
        return Decision.IGNORE
    rule = RESTART_TABLE[failure.role]
    if failure.user_error and not rule.retry_user_errors:
        return Decision.FAIL
    if failures_so_far >= max_failures:
        return rule.exhausted
    return rule.restart


def decide_deadline(fresh: bool, chief_done: bool) -> Decision:
    """Tasks missed ``timeouts.startup_secs``: the whole cluster's start (``fresh``) fails
    the job; a rejoin restarts the cluster (nothing, once the chief is done)."""
    if fresh:
        return Decision.FAIL
    return Decision.IGNORE if chief_done else Decision.RESTART_CLUSTER


def charge(budget: Budget, failure: TaskFailure, decision: Decision) -> Budget:
    """The budget once ``decision`` for ``failure`` is carried out."""
    if decision is Decision.RERUN_RENDEZVOUS:
        return replace(budget, rendezvous_attempt=budget.rendezvous_attempt + 1)
    if decision not in (Decision.RESTART_TASK, Decision.RESTART_CLUSTER):
        return budget
    if decision is Decision.RESTART_CLUSTER:
        budget = replace(budget, rendezvous_attempt=1)
    if not failure.is_failure:
        return budget
    if RESTART_TABLE[failure.role].budget == "evaluator":
        return replace(budget, evaluator_failures=budget.evaluator_failures + 1)
    return replace(budget, failures=budget.failures + 1)


def decide_unplaced(key: str, tasks: dict[str, TaskState], shape: ClusterSpecConfig) -> Decision:
    """``key``'s bundle could not be placed again: drop it or fail (pure). ``tasks``: which
    were dropped before; ``shape``: the job's ``cluster`` (``min_workers``)."""
    role = key.split(":")[0]
    if role == "evaluator":
        return Decision.DROP_TASK
    if role == "worker" and live_workers(tasks) - 1 >= shape.workers_needed:
        return Decision.DROP_TASK
    return Decision.FAIL


def live_workers(tasks: dict[str, TaskState]) -> int:
    """The workers not dropped."""
    return sum(k.startswith("worker:") and not s.dropped for k, s in tasks.items())


def moved_host(cluster: dict[str, list[str]], key: str, address: str | None) -> bool:
    """Whether ``key``, restarted, reports another host than its address in the running
    ``cluster`` (pure; the evaluator is not in the cluster: never). It then cannot rejoin on
    its old address, and the running ps cannot reach a new one (``decide_moved``)."""
    role, index = key.split(":")
    host = (address or "").rsplit(":", 1)[0]
    return role in cluster and host != cluster[role][int(index)].rsplit(":", 1)[0]


def decide_moved(key: str, chief_done: bool, budget: Budget) -> tuple[TaskFailure, Decision]:
    """A restarted task came back on another host, where the running cluster cannot reach it:
    decided as a failed rejoin (the whole cluster restarts; nothing once the chief is done)."""
    role, index = key.split(":")
    failure = TaskFailure(
        role, int(index), None, kind=ExitKind.REJOIN_FAILED, chief_done=chief_done
    )
    return failure, decide_exit(failure, budget)
