"""The ``JobFailed`` of a task whose failure ends the job, worded by the kind of failure.

Pure: from what the supervisor knows (the classified failure, the task's state, the budget
used before it, the task's last output lines and its log file) to the error the job ends
with (``cluster.lifecycle`` words each kind; ``JobFailed`` carries role, index, traceback).
"""

from __future__ import annotations

from collections.abc import Iterable

from cluster import lifecycle, policy
from cluster.handles import JobFailed
from cluster.lifecycle import TaskState
from harness.job import JobSpec


def job_failed(
    failure: policy.TaskFailure,
    state: TaskState,
    used: policy.Budget,
    job: JobSpec,
    log_path: str,
    tail: Iterable[str],
) -> JobFailed:
    """The error for ``failure`` (the policy decided FAIL); ``used``: the budget before it."""
    tail = tuple(tail)
    key = failure.key
    if failure.kind is policy.ExitKind.STOP_GRACE:
        message = lifecycle.stop_grace_message(key, job.timeouts.stop_grace_secs, log_path)
    elif failure.kind is policy.ExitKind.BIND_FAILED:
        message = lifecycle.bind_exhausted_message(used.rendezvous_attempt)
    else:
        counts = used.failures, job.failure.max_failures
        code, user = failure.exit_code, failure.user_error
        message = lifecycle.task_failure_message(key, state, code, user, *counts, tail, log_path)
    lines = lifecycle.failure_lines(state, tail)
    return JobFailed(
        message, failure.user_error, role=failure.role, index=failure.index, traceback=lines
    )
