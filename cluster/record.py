"""What the supervisor records of a run: steps, loss, timings, evaluations, failures.

``RunRecord.summary`` is run.json's content; ``write_run_json`` writes it atomically. Its
``timings`` are seconds on the supervisor's clock since the supervisor started
(``cluster_ready_secs``, ``first_step_secs``, ``session_ready_secs.<task>``,
``join_delay_secs.<worker>``: from the chief's ``variables_ready`` (else its
``session_ready``) to the worker's ``session_ready``, as the supervisor received them; the
first of each), plus the bring-up breakdown
(``cluster.bringup``: ``bring_up``, ``bring_up_tasks``).
``RunningRecord`` keeps run.json current while the job runs (``"status": "running"``), so a
driver that was killed (``kill -9``, a lost machine) leaves a run.json saying how far the job
got; the supervisor's final summary replaces it at the end.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from cluster.bringup import BringUp
from cluster.console import Console
from cluster.lifecycle import TaskState
from cluster.observe import RunObserver, Snapshot
from cluster.plan import Plan


class RunRecord:
    def __init__(self, console: Console, clock: Callable[[], float], max_steps: int = 0) -> None:
        self.console = console
        self.max_steps = max_steps
        self.clock = clock
        self.t0 = clock()
        self.global_step = 0
        self.last_global_advance = self.t0
        self.last_loss: float | None = None
        self.timings: dict[str, Any] = {}
        self.bring_up = BringUp()
        self._chief_ready_at: float | None = None
        self._workers_ready: dict[str, float] = {}
        self.latest_eval: dict[str, Any] | None = None
        self.failure_log: list[dict[str, Any]] = []
        self.final_global_step = 0
        self._rate = StepRate(clock)
        self.steps_per_sec: float | None = None  # global steps/s over the last ~10 s
        self._first_step: tuple[float, int] | None = None  # (time, global step) of the first

    def elapsed(self) -> float:
        return round(self.clock() - self.t0, 3)

    def mark(self, name: str) -> None:
        """Record the time since the start under ``name``, the first time only."""
        self.timings.setdefault(name, self.elapsed())

    def variables_ready(self, key: str) -> None:
        """The chief reported ``variables_ready``: the workers' join delays count from here."""
        if key == "chief:0":
            self._chief_ready(self.clock())

    def _chief_ready(self, now: float) -> None:
        if self._chief_ready_at is None:
            self._chief_ready_at = now
            for worker, at in self._workers_ready.items():
                self.timings.setdefault(f"join_delay_secs.{worker}", round(at - now, 3))

    def session_ready(self, key: str) -> None:
        """``key`` reported ``session_ready``: its time, and the workers' join delays (the
        first of each): from the chief's ``variables_ready`` (or its ``session_ready`` when
        it sent none) to the worker's ``session_ready``; negative for a worker that had its
        session before the chief reported."""
        self.mark(f"session_ready_secs.{key}")
        now = self.clock()
        if key == "chief:0":
            self._chief_ready(now)
        elif key.startswith("worker"):
            self._workers_ready.setdefault(key, now)
            if self._chief_ready_at is not None:
                delay = round(now - self._chief_ready_at, 3)
                self.timings.setdefault(f"join_delay_secs.{key}", delay)

    def progress(self, state: TaskState, event: dict[str, Any]) -> None:
        """A trainer's ``session_ready``, ``progress`` or ``done``."""
        now = self.clock()
        if event.get("event") == "session_ready":  # its steps are due from now on: the
            state.last_advance = now  # stall watchdog counts from here, for it and the job
            self.last_global_advance = max(self.last_global_advance, now)
        state.has_session = True
        state.finishing = state.finishing or bool(event.get("finishing"))
        steps = int(event.get("local_steps", state.local_steps))
        if steps > state.local_steps:
            if state.local_steps == 0:
                # A trainer's first step (a step's global step is read before the step, so
                # this report may not raise the global step): graph building, restoring
                # and the first step may take long on a loaded machine; the stall watchdog
                # counts from here.
                self.last_global_advance = max(self.last_global_advance, now)
            state.last_advance = now
            self.mark("first_step_secs")
            self._first_step = self._first_step or (now, int(event.get("global_step", 0)))
        state.local_steps = steps
        step = int(event.get("global_step", 0))
        state.global_step = step
        if event.get("loss") is not None:
            self.last_loss = float(event["loss"])
        if step > self.global_step:
            self.global_step = step
            self.last_global_advance = now
        self.steps_per_sec = self._rate.update(self.global_step)
        self.console.progress(self.global_step, self.last_loss, self.steps_per_sec)

    def training_rate(self) -> float | None:
        """Global steps per second from the first step to the last advance of the global step
        (restores included: the steps made before this run are not counted)."""
        if self._first_step is None:
            return None
        t0, step0 = self._first_step
        secs = self.last_global_advance - t0
        return round((self.global_step - step0) / secs, 3) if secs > 0 else None

    def snapshot(self, reporter: str) -> Snapshot:
        """The job's progress now, for the observers; ``reporter`` sent the latest report."""
        return Snapshot(
            global_step=self.global_step,
            max_steps=self.max_steps,
            loss=self.last_loss,
            steps_per_sec=self.steps_per_sec,
            elapsed_secs=self.elapsed(),
            reporter=reporter,
        )

    def evaluation(self, event: dict[str, Any]) -> tuple[int | None, dict[str, float]]:
        """The evaluator's ``eval`` event; returns its global step and metrics."""
        metrics = event.get("metrics", {})
        self.latest_eval = {"global_step": event.get("global_step"), "metrics": metrics}
        text = ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))
        self.console.info(f"eval at global step {event.get('global_step')}: {text}")
        return event.get("global_step"), metrics

    def failure(self, key: str, exit_code: int | None, decision: str) -> None:
        self.failure_log.append(
            {"task": key, "exit_code": exit_code, "decision": decision, "at_secs": self.elapsed()}
        )

    def restarted(self, key: str, warm: bool) -> None:
        """``key`` was started again: its latest failure record says whether a warm spare
        became it (``warm``)."""
        entry = next((f for f in reversed(self.failure_log) if f["task"] == key), None)
        if entry is not None and "warm" not in entry:
            entry["warm"] = warm

    def summary(
        self,
        plan: Plan,
        tasks: dict[str, TaskState],
        restarts: int,
        chief_done: bool,
        status: str,
        error: str | None,
        user_error: bool,
    ) -> dict[str, Any]:
        """run.json's content. ``user_error``: the job failed because of the user's code."""
        return {
            "job": plan.job.name,
            "status": status,
            "error": error,
            "user_error": user_error,
            "backend": plan.backend,
            "final_global_step": self.final_global_step if chief_done else self.global_step,
            "max_steps": plan.job.train.max_steps,
            "last_loss": self.last_loss,
            "steps_per_sec": self.training_rate(),
            "restarts": restarts,
            "failures": self.failure_log,
            "dropped": [key for key, s in tasks.items() if s.dropped],
            "tasks": {
                key: {
                    "local_steps": s.steps_before_restart + s.local_steps,
                    "restarts": s.restarts,
                    "exit_code": s.exit_code,
                }
                for key, s in tasks.items()
            },
            "timings": {**self.timings, **self.bring_up.summary(t.key for t in plan.tasks)},
            "eval": self.latest_eval,
        }


class StepRate:
    """Global steps per second over a sliding window of about 10 s."""

    def __init__(self, clock: Callable[[], float], window_secs: float = 10.0) -> None:
        self._clock = clock
        self._window = window_secs
        self._points: deque[tuple[float, int]] = deque()

    def update(self, step: int) -> float | None:
        """Take in the global step now; O(1) amortized (a report arrives from every trainer
        about twice a second, so the window holds thousands of points at 1,000 tasks)."""
        now = self._clock()
        self._points.append((now, step))
        while len(self._points) > 2 and now - self._points[0][0] > self._window:
            self._points.popleft()
        (t0, s0), (t1, s1) = self._points[0], self._points[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else None


def write_run_json(model_dir: str, summary: dict[str, Any], indent: int | None = 2) -> None:
    """Write ``<model_dir>/run.json`` atomically (a temporary file, then a rename).

    ``indent=None`` writes one compact line with the C encoder, several times faster than
    the indented form (which ``json`` encodes in Python): ``RunningRecord``'s choice.
    """
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, "run.json")
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(summary, indent=indent))
    os.replace(path + ".tmp", path)


MAX_WRITE_SHARE = 0.02  # of the supervisor's time that RunningRecord's writes may take


class RunningRecord(RunObserver):
    """An observer that writes run.json with ``"status": "running"`` while the job runs.

    ``summary()`` is the run's summary so far (the supervisor's ``summary("running", None)``:
    the same keys as the final run.json). It is written at once on the job's first task
    start and on an exit the failure policy acted on (a restart, a drop, a failure: any
    decision but ``NOTHING``); on the other starts and exits, and on progress when the global
    step moved, once ``every_secs`` have passed since the last write, or 50 times what the
    last write took if that is longer (``MAX_WRITE_SHARE``: at most 2% of the supervisor's
    thread, however large the job). One compact atomic write
    (``write_run_json``) at a time, on the supervisor's thread, so the final summary, written
    after the job ended, is last. The throttle keeps the cost per job, not per task: the
    summary is O(tasks), and writing it on each of 1,000 starts made bring-up and teardown
    quadratic (BENCHMARKS.md, "Cost with the number of tasks").
    """

    def __init__(
        self,
        model_dir: str,
        summary: Callable[[], dict[str, Any]],
        every_secs: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._model_dir = model_dir
        self._summary = summary
        self._every_secs = every_secs
        self._clock = clock
        self._written_at: float | None = None
        self._written_step = -1
        self._interval = every_secs

    def task_started(self, key: str) -> None:
        if self._due():
            self._write()

    def task_exited(self, key: str, exit_code: int | None, decision: str) -> None:
        if decision != "NOTHING" or self._due():
            self._write()

    def progress(self, snapshot: Snapshot) -> None:
        if self._due() and snapshot.global_step != self._written_step:
            self._write(snapshot.global_step)

    def _due(self) -> bool:
        return self._written_at is None or self._clock() - self._written_at >= self._interval

    def _write(self, global_step: int | None = None) -> None:
        start = self._clock()
        summary = self._summary()
        write_run_json(self._model_dir, summary, indent=None)
        self._written_at = self._clock()
        took = self._written_at - start
        self._interval = max(self._every_secs, took / MAX_WRITE_SHARE)
        self._written_step = (
            summary.get("final_global_step", 0) if global_step is None else global_step
        )
