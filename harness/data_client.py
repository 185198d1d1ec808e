"""The task's side of the shard queue (``harness.data``; the supervisor's side is
``cluster.shards``), over the task's wire (``harness.protocol``). No TensorFlow here.

``harness.task`` connects one ``ShardClient`` per process (``connect``) and delivers the
supervisor's ``shard`` and ``checkpoint_go`` commands to it from its commands thread.

- ``next_shard(epoch)``: sends ``shard_request``, blocks for the answer: a descriptor, or None
  at the end of the epoch; "wait" answers are asked again after ``WAIT_SECS``.
- ``step_finished()``: after every training step (``hooks.shards.ShardAckHook``), every shard
  handed out so far is done: one ``shards_done`` event. This is exact when each step reads
  whole shards (docs/data.md).
- ``checkpoint_saving(step)`` / ``checkpoint_saved(step)``: the chief's saver listener; the
  first blocks until the supervisor has taken its snapshot (``checkpoint_go``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

COMMANDS = ("shard", "checkpoint_go")
WAIT_SECS = 0.2
CHECKPOINT_GO_TIMEOUT_SECS = 60.0

Report = Callable[..., None]


class ShardClient:
    """One task's requests and acknowledgements (module docstring). Thread-safe."""

    def __init__(self, report: Report) -> None:
        self._report = report
        self._answers: dict[str, queue.Queue[dict[str, Any]]] = {c: queue.Queue() for c in COMMANDS}
        self._request_lock = threading.Lock()  # one request on the wire at a time
        self._handed: list[tuple[int, int]] = []
        self._handed_lock = threading.Lock()

    def deliver(self, command: dict[str, Any]) -> None:
        """A ``shard`` or ``checkpoint_go`` command from the supervisor."""
        self._answers[command["cmd"]].put(command)

    def next_shard(self, epoch: int) -> dict[str, Any] | None:
        """The next shard of ``epoch`` for this task, or None when the epoch is over."""
        while True:
            with self._request_lock:
                self._report("shard_request", epoch=epoch)
                answer = self._answers["shard"].get()
            if answer["status"] == "shard":
                shard = answer["shard"]
                with self._handed_lock:
                    self._handed.append((int(shard["epoch"]), int(shard["index"])))
                return shard
            if answer["status"] == "end":
                return None
            time.sleep(WAIT_SECS)

    def step_finished(self) -> None:
        """A training step finished: the shards handed out so far are done."""
        with self._handed_lock:
            done, self._handed = self._handed, []
        if done:
            self._report("shards_done", shards=done)

    def checkpoint_saving(self, step: int) -> None:
        """The chief is about to save at ``step``: its own finished step is acknowledged
        first, then it waits until the supervisor has snapshotted the done shards."""
        self.step_finished()
        self._report("checkpoint_saving", step=step)
        try:
            self._answers["checkpoint_go"].get(timeout=CHECKPOINT_GO_TIMEOUT_SECS)
        except queue.Empty:
            print(f"no checkpoint_go from the supervisor for step {step}; saving", flush=True)

    def checkpoint_saved(self, step: int) -> None:
        self._report("checkpoint_saved", step=step)


_client: ShardClient | None = None


def connect(report: Report) -> ShardClient:
    """Make the process's client (``harness.task`` does, once it has its ``report``)."""
    global _client
    _client = ShardClient(report)
    return _client


def current() -> ShardClient | None:
    """The process's client; None outside a cluster task."""
    return _client


def deliver(command: dict[str, Any]) -> None:
    """Hand a supervisor command to the client (ignored when there is none)."""
    if _client is not None:
        _client.deliver(command)
