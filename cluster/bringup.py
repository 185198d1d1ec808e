"""The bring-up breakdown: where the time from launch to every trainer stepping went.

Milestones are wall-clock times (``time.time()``), since they come from several processes:

- the driver's: ``driver_start`` (the driver process started; ``harness run`` only),
  ``launch`` (``run_supervised`` starts the launch), and the Ray launcher's
  ``ray_connected`` and ``placed`` (its ``bring_up`` dict);
- per task (the first instance of each; a restart adds nothing): ``launched`` (the
  supervisor asked the launcher for it), ``actor_started`` (Ray: the actor's ``start``
  began), ``process_start`` and ``address`` (``address`` event), ``cluster_sent``,
  ``tf_imported`` (``cluster_sent`` + the task's ``tf_import_secs``), ``server_started``,
  ``session_ready`` (the task's own clock), and ``first_step`` (when the supervisor got
  the trainer's first step).

``phases`` turns them into consecutive seconds on the critical path: each phase ends when
the last task of the TF cluster (chief, workers, ps; not the evaluator) reached its
milestone, and starts where the previous phase ended, so the phases add up to
``launch_to_all_stepping`` (a phase without its milestones, say Ray's on the local backend,
is left out). Per-task milestones are kept as seconds since ``launch``. Nothing here runs
per training step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: (phase, the milestone that ends it, where that milestone is taken: "driver", "cluster"
#: (the last task of the TF cluster), "chief", "workers" or "trainers" (the last of them)).
PHASES: tuple[tuple[str, str, str], ...] = (
    ("driver_imports", "launch", "driver"),
    ("ray_connect", "ray_connected", "driver"),
    ("placement_group", "placed", "driver"),
    ("actor_start", "actor_started", "cluster"),
    ("task_process_start", "address", "cluster"),
    ("rendezvous", "cluster_sent", "cluster"),
    ("tensorflow_import", "tf_imported", "cluster"),
    ("server_start", "server_started", "cluster"),
    ("chief_session", "session_ready", "chief"),
    ("worker_sessions", "session_ready", "workers"),
    ("first_step", "first_step", "trainers"),
)


class BringUp:
    """Collects the milestones (module docstring); ``phases`` and ``tasks`` are run.json's."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        self.driver: dict[str, float] = {}
        self.task_marks: dict[str, dict[str, float]] = {}

    def mark(self, name: str, at: float | None = None) -> None:
        """A driver milestone (the first time only)."""
        self.driver.setdefault(name, self.wall() if at is None else at)

    def marks(self, marks: Mapping[str, float]) -> None:
        """Driver milestones another part recorded (the Ray launcher's ``bring_up``)."""
        for name, at in marks.items():
            self.driver.setdefault(name, at)

    def task_mark(self, key: str, name: str, at: float | None = None) -> None:
        """A task's milestone (the first time only: a restarted instance adds nothing)."""
        marks = self.task_marks.setdefault(key, {})
        if name not in marks:
            marks[name] = self.wall() if at is None else float(at)

    def on_event(self, key: str, event: dict[str, Any], handle: Any = None) -> None:
        """Take the milestones an event of ``key`` carries (``harness.protocol``)."""
        name = event.get("event")
        if name == "address":
            started = (getattr(handle, "info", None) or {}).get("started_at")
            for mark, at in (("actor_started", started), *_fields(event, "process_start")):
                if at is not None:
                    self.task_mark(key, mark, at)
            self.task_mark(key, "address", event.get("t"))
        elif name == "server_started":
            sent = self.task_marks.get(key, {}).get("cluster_sent")
            if sent is not None and event.get("tf_import_secs") is not None:
                self.task_mark(key, "tf_imported", sent + float(event["tf_import_secs"]))
            self.task_mark(key, "server_started", event.get("t"))
        elif name == "session_ready":
            self.task_mark(key, "session_ready", event.get("t"))
        elif name in ("progress", "done") and int(event.get("local_steps") or 0) > 0:
            self.task_mark(key, "first_step")

    def phases(self, keys: Iterable[str]) -> dict[str, float]:
        """Seconds per phase on the critical path (module docstring), and their total."""
        keys = list(keys)
        groups = {
            "cluster": [k for k in keys if not k.startswith("evaluator")],
            "chief": [k for k in keys if k.startswith("chief")],
            "workers": [k for k in keys if k.startswith("worker")],
            "trainers": [k for k in keys if k.startswith(("chief", "worker"))],
        }
        launch = self._launch()
        previous = self.driver.get("driver_start")
        out: dict[str, float] = {}
        for phase, milestone, where in PHASES:
            if where == "driver":
                at = launch if milestone == "launch" else self.driver.get(milestone)
            else:
                at = self._last(groups[where], milestone)
            if at is None:
                continue
            if previous is not None:
                out[phase] = round(max(0.0, at - previous), 3)
            previous = max(at, previous) if previous is not None else at
        stepping = self._last(groups["trainers"], "first_step")
        if launch is not None and stepping is not None:
            out["launch_to_all_stepping"] = round(stepping - launch, 3)
        return out

    def tasks(self) -> dict[str, dict[str, float]]:
        """Each task's milestones, in seconds since ``launch``."""
        origin = self._launch() or 0.0
        return {
            key: {name: round(at - origin, 3) for name, at in sorted(marks.items(), key=_by_time)}
            for key, marks in self.task_marks.items()
        }

    def summary(self, keys: Iterable[str]) -> dict[str, Any]:
        """run.json's ``timings.bring_up`` (phase -> seconds) and ``bring_up_tasks``."""
        return {"bring_up": self.phases(keys), "bring_up_tasks": self.tasks()}

    def _launch(self) -> float | None:
        """The ``launch`` milestone; without one (no ``run_supervised``), the first task's
        ``launched``."""
        launched = [m["launched"] for m in self.task_marks.values() if "launched" in m]
        return self.driver.get("launch", min(launched, default=None))

    def _last(self, keys: list[str], milestone: str) -> float | None:
        """When the last of ``keys`` reached ``milestone``; None unless every one did."""
        found = [self.task_marks.get(k, {}).get(milestone) for k in keys]
        if not found or any(t is None for t in found):
            return None
        return max(t for t in found if t is not None)


def _fields(event: dict[str, Any], *names: str) -> list[tuple[str, Any]]:
    return [(name, event.get(name)) for name in names]


def _by_time(item: tuple[str, float]) -> float:
    return item[1]
