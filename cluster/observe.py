"""Run observers: what the supervisor tells the world outside it while a job runs.

The Python API's progress, Ray Tune's reports, the metrics endpoints and ``harness status``
all learn about a run the same way: the supervisor calls every ``RunObserver`` it was given,
on its own thread, at these points of the job's life:

- ``task_started(key)``: a task instance was started (again, after a restart).
- ``task_address(key, address)``: the instance reported the ``host:port`` of its TF server
  (the host is its node's IP).
- ``progress(snapshot)``: a trainer reported progress; ``snapshot`` is the job's, not the
  task's (the highest global step seen, the latest loss, the recent global steps/s).
- ``evaluation(global_step, metrics)``: the evaluator finished an evaluation.
- ``task_exited(key, exit_code, decision)``: a task instance ended; ``decision`` is what the
  failure policy decided (``cluster.policy.Decision`` name: ``NOTHING`` for a task that
  finished, ``RESTART_TASK``, ``FAIL``, ...).
- ``task_line(key, line)``: a line of a task's output (also in its log file). Unlike the
  others, this one is called from the launcher's reader threads, possibly several at once:
  it must be thread-safe.
- ``finished(summary)``: the job ended; ``summary`` is run.json's content. Always called
  last, once, whatever the outcome.

An observer must be quick (the supervisor's loop waits for it) and should not raise: an
exception from an observer is reported on the console once per observer and method, and the
job goes on (``Observers`` does that). The base class's methods do nothing, so an observer
overrides only what it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Snapshot:
    """The job's progress at one moment (what ``RunObserver.progress`` receives)."""

    global_step: int
    max_steps: int
    loss: float | None
    steps_per_sec: float | None
    elapsed_secs: float
    reporter: str  # the task whose report this is, e.g. "worker:1"


class RunObserver:
    """Base observer: every method does nothing. See the module docstring for when each runs."""

    def task_started(self, key: str) -> None:
        pass

    def task_address(self, key: str, address: str) -> None:
        pass

    def progress(self, snapshot: Snapshot) -> None:
        pass

    def evaluation(self, global_step: int | None, metrics: dict[str, float]) -> None:
        pass

    def task_exited(self, key: str, exit_code: int | None, decision: str) -> None:
        pass

    def task_line(self, key: str, line: str) -> None:
        pass

    def finished(self, summary: dict[str, Any]) -> None:
        pass


class Observers:
    """Calls each observer in turn; an observer that raises is reported, not propagated.

    ``report(message)`` prints the problem (the console's ``info``); each observer method that
    fails is reported once, later failures of it are silent.
    """

    def __init__(self, observers: Iterable[RunObserver], report: Any) -> None:
        self._observers = list(observers)
        self._report = report
        self._reported: set[tuple[int, str]] = set()

    def __bool__(self) -> bool:
        return bool(self._observers)

    def line_callback(self) -> Callable[[str, str], None] | None:
        """``task_line`` of every observer, for the inbox (None when there is no observer)."""
        if not self._observers:
            return None
        return lambda key, line: self.call("task_line", key, line)

    def call(self, method: str, *args: Any) -> None:
        for observer in self._observers:
            try:
                getattr(observer, method)(*args)
            except Exception as exc:  # an observer must never end the job
                key = (id(observer), method)
                if key not in self._reported:
                    self._reported.add(key)
                    self._report(
                        f"observer {type(observer).__name__}.{method} raised "
                        f"{type(exc).__name__}: {exc} (further errors of it are not shown)"
                    )
