"""The failure policy: what the supervisor does when a task ends unexpectedly.

Per role, as TF's between-graph replication needs it:

- worker dies      -> restart that worker; it rejoins (waits for the chief's variables);
- chief dies       -> restart the chief; it restores the latest checkpoint from model_dir;
- ps dies          -> restart the whole cluster; the chief restores the latest checkpoint
                      (the variables held by the lost ps are gone for every task);
- a user error     -> fail at once, never retried: a restart would fail the same way. The
                      task reports it (exit code 2, ``user_error``): model_fn/input_fn
                      raised, invalid ModelFnOps, NaN loss, a user hook raised (begin,
                      after_create_session, before_run, after_run, end), an op created in
                      the user's code failed at the first step (InvalidArgumentError), the
                      checkpoint in model_dir does not fit the graph; ``harness run`` then
                      exits 2, as for invalid input;
- after the chief has finished its training loop (the job has succeeded), a task ending
  badly no longer matters;
- the evaluator never fails the training: it is restarted (up to ``max_failures`` times,
  not counted against the trainers' budget), whether it crashed or its model code failed on
  one checkpoint (a fresh process may well evaluate the next one); after that budget, the
  job goes on without it;
- every other restart counts against ``failure.max_failures``; one more failure than that
  fails the job.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Decision(enum.Enum):
    RESTART_TASK = "restart the task"
    RESTART_CLUSTER = "restart the whole cluster"
    FAIL = "fail the job"
    IGNORE = "ignore (training already finished)"


@dataclass(frozen=True)
class TaskFailure:
    """A task that ended unexpectedly; ``user_error``: it reported an error of the user's."""

    role: str
    index: int
    exit_code: int | None
    user_error: bool = False

    @property
    def key(self) -> str:
        return f"{self.role}:{self.index}"


def decide(
    failure: TaskFailure, failures_so_far: int, max_failures: int, chief_done: bool
) -> Decision:
    """The decision for one failure. ``failures_so_far`` excludes this one and counts the
    failures of the same budget: the trainers' and ps' together, or the evaluator's own."""
    if chief_done:
        return Decision.IGNORE
    if failure.role == "evaluator":
        if failures_so_far >= max_failures:
            return Decision.IGNORE
        return Decision.RESTART_TASK
    if failure.user_error:
        return Decision.FAIL
    if failures_so_far >= max_failures:
        return Decision.FAIL
    if failure.role == "ps":
        return Decision.RESTART_CLUSTER
    return Decision.RESTART_TASK
