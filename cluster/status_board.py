"""What ``harness status`` and ``harness logs`` read about a run: plain Python, no Ray.

Two sides, kept apart so each can be tested without a cluster:

- ``RunState`` (the driver's side, fed by ``cluster.status.StatusObserver``): the run's task
  states, progress, latest evaluation and outcome, as one JSON-able ``snapshot()`` with a
  ``version`` that grows with every change. ``PendingLines`` numbers each task's output lines
  (1, 2, 3, ... per task, across restarts) and holds those not sent yet, at most ``capacity``
  per task (older ones are dropped; their numbers are skipped, so a reader sees the gap).
- ``StatusBoard`` (the named actor's side, ``ray.remote`` in ``cluster.status``): keeps the
  newest snapshot (a batch with an older ``version`` changes nothing, so batches may arrive in
  any order) and per task a ``LineRing`` of the last ``capacity`` numbered lines. ``lines``
  is a long poll for ``harness logs --follow``; ``wait_followers`` lets the run's end wait,
  briefly, until every follower has read the last lines.

Task states: ``starting`` (started, no address yet), ``running`` (it reported its address),
``restarting`` (it exited and the failure policy restarts it), ``exited`` (with its
``exit_code``; ``decision`` is the policy's). ``restarts`` counts how many times a task was
started again, by its own restart or the whole cluster's.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

DEFAULT_CAPACITY = 1000  # lines kept per task
RESTARTS = ("RESTART_TASK", "RESTART_CLUSTER", "RERUN_RENDEZVOUS")
FOLLOWER_IDLE_SECS = 3.0  # a follower that has not polled for this long is not waited for

Line = tuple[int, str]  # (sequence number, text)


class RunState:
    """The driver's model of a run; every method is called from the supervisor's thread."""

    def __init__(self, job: str, keys: Sequence[str], max_steps: int) -> None:
        self.version = 0
        self._job, self._max_steps = job, max_steps
        self._tasks: dict[str, dict[str, Any]] = {k: _task_row() for k in keys}
        self._progress: dict[str, Any] | None = None
        self._evaluation: dict[str, Any] | None = None
        self._outcome: dict[str, Any] | None = None

    def started(self, key: str) -> None:
        row = self._tasks.setdefault(key, _task_row())
        row["restarts"] += 1 if row["instances"] else 0
        row["instances"] += 1
        row.update(state="starting", exit_code=None, decision=None, address=None)
        self.version += 1

    def address(self, key: str, address: str) -> None:
        host = address.rsplit(":", 1)[0]
        self._tasks.setdefault(key, _task_row()).update(state="running", address=address, node=host)
        self.version += 1

    def exited(self, key: str, exit_code: int | None, decision: str) -> None:
        state = "restarting" if decision in RESTARTS else "exited"
        row = self._tasks.setdefault(key, _task_row())
        row.update(state=state, exit_code=exit_code, decision=decision)
        self.version += 1

    def progress(self, snapshot: Any) -> None:
        """``snapshot``: a ``cluster.observe.Snapshot`` (or a dict of its fields)."""
        self._progress = snapshot if isinstance(snapshot, dict) else asdict(snapshot)
        self.version += 1

    def evaluation(self, global_step: int | None, metrics: dict[str, float]) -> None:
        self._evaluation = {"global_step": global_step, "metrics": dict(metrics)}
        self.version += 1

    def finished(self, status: str, error: str | None) -> None:
        self._outcome = {"status": status, "error": error}
        self.version += 1

    def snapshot(self) -> dict[str, Any]:
        """The run now, JSON-able: what ``StatusBoard.status`` returns (plus its clock)."""
        return {
            "version": self.version,
            "job": self._job,
            "max_steps": self._max_steps,
            "state": self._outcome["status"] if self._outcome else "running",
            "error": self._outcome["error"] if self._outcome else None,
            "tasks": {key: dict(row) for key, row in self._tasks.items()},
            "progress": dict(self._progress) if self._progress else None,
            "evaluation": self._evaluation,
        }


def _task_row() -> dict[str, Any]:
    return {
        "state": "starting",
        "exit_code": None,
        "decision": None,
        "node": None,
        "address": None,
        "restarts": 0,
        "instances": 0,
    }


class PendingLines:
    """Numbers each task's lines and holds the unsent ones (thread-safe: reader threads add)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}
        self._pending: dict[str, deque[Line]] = {}

    def add(self, key: str, line: str) -> None:
        with self._lock:
            seq = self._next.get(key, 1)
            self._next[key] = seq + 1
            queue = self._pending.setdefault(key, deque(maxlen=self._capacity))
            queue.append((seq, line))

    def take(self) -> dict[str, list[Line]]:
        """Every unsent line, by task, oldest first; they are no longer pending."""
        with self._lock:
            taken = {key: list(queue) for key, queue in self._pending.items() if queue}
            self._pending = {}
        return taken


class LineRing:
    """The last ``capacity`` numbered lines of one task."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._lines: deque[Line] = deque(maxlen=capacity)

    @property
    def last_seq(self) -> int:
        return self._lines[-1][0] if self._lines else 0

    def extend(self, lines: Iterable[Line]) -> None:
        """Append lines numbered after the last one kept; older or repeated ones are ignored."""
        for seq, text in lines:
            if seq > self.last_seq:
                self._lines.append((seq, text))

    def since(self, after: int, limit: int | None = None) -> list[Line]:
        """The kept lines numbered above ``after``, oldest first, at most ``limit`` of them."""
        found = [line for line in self._lines if line[0] > after]
        return found[:limit] if limit is not None else found


class StatusBoard:
    """The named actor of one run (module docstring). Thread-safe: the actor is threaded."""

    def __init__(self, job: str, keys: Sequence[str], max_steps: int, capacity: int) -> None:
        self._created = time.monotonic()
        self._capacity = capacity
        self._state = RunState(job, keys, max_steps).snapshot()
        self._rings: dict[str, LineRing] = {k: LineRing(capacity) for k in keys}
        self._changed = threading.Condition()
        self._followers: dict[str, tuple[float, bool]] = {}  # id -> (last poll, saw the end)

    def update(self, snapshot: dict[str, Any], lines: dict[str, list[Line]]) -> None:
        """Take in one batch: the newest ``RunState.snapshot()`` and new lines by task."""
        with self._changed:
            if snapshot["version"] >= self._state["version"]:
                self._state = snapshot
            for key, batch in lines.items():
                self._rings.setdefault(key, LineRing(self._capacity)).extend(batch)
            self._changed.notify_all()

    def status(self) -> dict[str, Any]:
        """``RunState.snapshot()`` plus ``elapsed_secs`` (since this board was created)."""
        with self._changed:
            return {**self._state, "elapsed_secs": round(time.monotonic() - self._created, 1)}

    def lines(
        self,
        key: str,
        after: int = 0,
        limit: int = DEFAULT_CAPACITY,
        wait_secs: float = 0.0,
        follower: str | None = None,
    ) -> dict[str, Any]:
        """Task ``key``'s lines numbered above ``after``; waits up to ``wait_secs`` for one.

        Returns ``{"lines": [[seq, text], ...], "first": the oldest kept number (0: none),
        "finished": the run ended and these are its last lines}``. A ``follower`` id marks a
        ``--follow`` reader that ``wait_followers`` waits for.
        """
        deadline = time.monotonic() + wait_secs
        with self._changed:
            while True:
                ring = self._rings.get(key) or LineRing(1)
                found = ring.since(after, limit)
                ended = self._state["state"] != "running"
                remaining = deadline - time.monotonic()
                if found or ended or remaining <= 0:
                    break
                self._changed.wait(remaining)
            last = found[-1][0] if found else after
            finished = ended and last >= ring.last_seq
            if follower is not None:
                self._followers[follower] = (time.monotonic(), finished)
                self._changed.notify_all()
            first = ring.since(0, 1)
            return {
                "lines": [list(line) for line in found],
                "first": first[0][0] if first else 0,
                "finished": finished,
            }

    def wait_followers(self, timeout: float) -> bool:
        """Wait until every recently active follower has seen the end; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                waiting = [
                    f
                    for f, (polled, saw_end) in self._followers.items()
                    if not saw_end and now - polled < FOLLOWER_IDLE_SECS
                ]
                if not waiting:
                    return True
                if now >= deadline:
                    return False
                self._changed.wait(min(0.2, deadline - now))
