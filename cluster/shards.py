"""The supervisor's shard queues (``data:`` in the job; ``harness.data`` in the tasks).

``ShardQueue`` is pure bookkeeping. Each epoch has its own queue of the job's shards (by
position in ``DataConfig.descriptors()``), created when a task first asks for that epoch. A
shard is, at any moment, in exactly one of three places:

- *to do*: not handed out, or handed to a task instance that exited before it was done;
- *held* by one task instance (``request`` handed it out);
- *done*: the holder acknowledged it (``ack``: the training step that read it finished).

``request(key, epoch)`` answers a shard, ``wait`` (nothing to do, but other tasks hold shards
that may come back; the requester holds none, so no two tasks can wait on each other) or
``end`` (the epoch is over for this requester). ``release(key)`` puts what an exited instance
held back at the front of its epoch's queue, in order.

Checkpoints (``ShardService``): when the chief is about to save (``checkpoint_saving``), the
done sets are snapshotted before the chief may save; when it has saved (``checkpoint_saved``),
the snapshot is written to ``<model_dir>/shards-<step>.json``. When the variables roll back to
a checkpoint (the first start on a model_dir with checkpoints, a whole-cluster restart, a
chief restart that restores: ``rolls_back``), the queue is restored from the file of the
checkpoint the chief will restore (the latest one): done is what was done at that snapshot,
everything else is to do again. docs/data.md states the guarantee.
"""

from __future__ import annotations

import json
import os
from collections import deque
from typing import Any

from harness import protocol
from harness.data_spec import DataConfig
from harness.faults import checkpoint_step
from harness.job import JobSpec

EVENTS = ("shard_request", "shards_done", "checkpoint_saving", "checkpoint_saved")

Shard = tuple[int, int]  # (epoch, index)


class ShardQueue:
    """Pure: per-epoch queues of ``count`` shards; who holds what; what is done."""

    def __init__(self, count: int, done: dict[int, set[int]] | None = None) -> None:
        self.count = count
        self.done: dict[int, set[int]] = {e: set(d) for e, d in (done or {}).items()}
        self.held: dict[str, list[Shard]] = {}
        self._todo: dict[int, deque[int]] = {}

    def _queue(self, epoch: int) -> deque[int]:
        if epoch not in self._todo:
            done, held = self.done.get(epoch, set()), {i for e, i in self._held() if e == epoch}
            self._todo[epoch] = deque(i for i in range(self.count) if i not in done | held)
        return self._todo[epoch]

    def _held(self) -> list[Shard]:
        return [shard for shards in self.held.values() for shard in shards]

    def request(self, key: str, epoch: int) -> int | str:
        """The next shard's index for ``key`` in ``epoch``, else ``"wait"`` or ``"end"``."""
        queue = self._queue(epoch)
        if queue:
            index = queue.popleft()
            self.held.setdefault(key, []).append((epoch, index))
            return index
        others = any(e == epoch for k, s in self.held.items() if k != key for e, _ in s)
        return "wait" if others and not self.held.get(key) else "end"

    def ack(self, key: str, shards: list[Shard]) -> None:
        """``key`` finished ``shards``: they are done (shards it does not hold are ignored)."""
        held = self.held.get(key, [])
        for shard in shards:
            if shard in held:
                held.remove(shard)
                self.done.setdefault(shard[0], set()).add(shard[1])

    def release(self, key: str) -> list[Shard]:
        """``key``'s instance is gone: what it held is to do again (first in its epoch)."""
        shards = self.held.pop(key, [])
        for epoch, index in reversed(shards):
            self._queue(epoch).appendleft(index)
        return shards

    def snapshot(self) -> dict[int, list[int]]:
        """The done sets, as sorted lists (what ``shards-<step>.json`` holds)."""
        return {e: sorted(d) for e, d in sorted(self.done.items())}


def shards_path(model_dir: str, step: int) -> str:
    return os.path.join(model_dir, f"shards-{step}.json")


def write_snapshot(model_dir: str, step: int, done: dict[int, list[int]]) -> None:
    """Write ``shards-<step>.json`` atomically (a crash leaves the old file or the new one)."""
    path = shards_path(model_dir, step)
    with open(path + ".tmp", "w") as f:
        json.dump({"step": step, "done": {str(e): d for e, d in done.items()}}, f)
    os.replace(path + ".tmp", path)


def read_snapshot(model_dir: str, step: int) -> dict[int, set[int]] | None:
    """The done sets saved with checkpoint ``step``; None when there is no such file."""
    try:
        with open(shards_path(model_dir, step)) as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    return {int(e): set(d) for e, d in data["done"].items()}


def rolls_back(job: JobSpec, key: str) -> bool:
    """Whether a restart of task ``key`` alone puts the variables back to the latest
    checkpoint: a chief that does not join the live variables (the rule of
    ``harness.runtime.chief_session.tries_to_join``: ``chief_restart: live`` with ps joins).
    A start of the whole cluster always does (``ShardService.rollback``)."""
    joins = job.failure.chief_restart == "live" and job.cluster.ps > 0
    return key == "chief:0" and not joins


class ShardService:
    """The supervisor's side of ``harness.data``: answers the tasks, keeps the snapshots.

    ``info`` prints a line on the console. Without a ``data:`` section every method does
    nothing, so the supervisor calls them unconditionally.
    """

    def __init__(self, job: JobSpec, info: Any) -> None:
        self.job, self.info = job, info
        self.data: DataConfig | None = job.data
        self.shards = self.data.descriptors() if self.data is not None else []
        self.queue = ShardQueue(len(self.shards))
        self._pending: dict[int, dict[int, list[int]]] = {}  # step -> snapshot before saving

    def rollback(self) -> None:
        """Restore the queue as of the latest checkpoint of model_dir (none: start afresh)."""
        if self.data is None:
            return
        step = checkpoint_step(self.job.model_dir)
        done = read_snapshot(self.job.model_dir, step) if step >= 0 else None
        if step >= 0 and done is None:
            self.info(f"no shards-{step}.json beside checkpoint {step}: every shard is to do")
        self.queue = ShardQueue(len(self.shards), done)
        self._pending.clear()
        if done is not None:
            count = sum(len(d) for d in done.values())
            self.info(f"data: restored the shard queue of checkpoint {step} ({count} done)")

    def task_restarting(self, key: str) -> None:
        """Task ``key`` alone is about to start again (its previous instance is gone)."""
        if self.data is None:
            return
        if rolls_back(self.job, key):
            self.rollback()
        else:
            self.queue.release(key)

    def exited(self, key: str) -> None:
        """The instance of ``key`` exited: its unfinished shards are to do again."""
        if self.data is not None:
            self.queue.release(key)

    def on_event(self, key: str, handle: Any, event: dict[str, Any]) -> None:
        """One of ``EVENTS`` from the live instance of ``key`` (``handle``)."""
        if self.data is None:
            return
        name = event["event"]
        if name == "shard_request":
            epoch = int(event.get("epoch", 0))
            answer = self.queue.request(key, epoch)
            shard = {**self.shards[answer], "epoch": epoch} if isinstance(answer, int) else None
            status = "shard" if shard is not None else answer
            handle.send(protocol.encode_command("shard", status=status, shard=shard))
        elif name == "shards_done":
            self.queue.ack(key, [(int(e), int(i)) for e, i in event["shards"]])
        elif name == "checkpoint_saving":
            self._pending[int(event["step"])] = self.queue.snapshot()
            handle.send(protocol.encode_command("checkpoint_go"))
        elif name == "checkpoint_saved":
            step = int(event["step"])
            done = self._pending.pop(step, None)
            if done is not None:
                write_snapshot(self.job.model_dir, step, done)
