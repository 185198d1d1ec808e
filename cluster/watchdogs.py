"""The supervisor's watchdogs, as pure functions of the task states and the time.

The supervisor (TRAINING, STOPPING) asks these on each turn of its loop and carries out what
they say; they read ``cluster.lifecycle.TaskState`` and change nothing.

- ``lingering_chief``: synchronous training's end. The last replica waits for a token that
  no other replica will produce, so a chief that makes no step for
  ``timeouts.stop_grace_secs`` after every worker finished is told to stop (the stop signal
  ends the blocked step, hooks.stop; the chief finishes normally, final checkpoint
  included). A chief that still makes steps, has no session yet (restarted), or is
  finishing (its loop ended; the final checkpoint and the session's close take seconds
  under load) is left alone. Dropped workers (``cluster.min_workers``) are not waited for.
- ``stop_grace_secs``: how long a task told to stop may take before it is killed.
- ``stalled_trainers``: the trainers whose steps stopped for ``failure.stall_timeout_secs``.
"""

from __future__ import annotations

from cluster.lifecycle import TaskState
from cluster.plan import Plan
from harness.job import JobSpec


def lingering_chief(
    tasks: dict[str, TaskState],
    chief_done: bool,
    workers_done_at: float | None,
    now: float,
    grace: float,
) -> tuple[float | None, str | None]:
    """``(workers_done_at, message)``: since when every worker has finished (None: they have
    not, or there are none), and why the chief must be told to stop (None: it must not)."""
    workers = [s for k, s in tasks.items() if k.startswith("worker:") and not s.dropped]
    chief = tasks["chief:0"]
    finished = bool(workers) and all(s.exited and s.done for s in workers)
    if chief_done or not chief.has_session or chief.finishing or not finished:
        return None, None
    workers_done_at = workers_done_at or now
    idle, since = now - chief.last_advance, now - workers_done_at
    if idle > grace and since > grace:
        return workers_done_at, (
            f"chief:0 has made no step for {idle:.0f} s, and every worker finished "
            f"{since:.0f} s ago; telling it to stop"
        )
    return workers_done_at, None


def stop_grace_secs(key: str, job: JobSpec) -> float:
    """How long ``key`` may take to exit after ``stop``: the evaluator evaluates the final
    checkpoint first (``eval.final_timeout_secs``), the others ``timeouts.stop_grace_secs``."""
    if key.startswith("evaluator"):
        return job.eval.final_timeout_secs
    return job.timeouts.stop_grace_secs


def stalled_trainers(
    tasks: dict[str, TaskState], plan: Plan, now: float, timeout: float
) -> list[str]:
    """The running trainers that have made no step for ``timeout`` seconds."""
    return [
        key
        for key, state in tasks.items()
        if plan.task(key).is_trainer and not state.exited and now - state.last_advance >= timeout
    ]
