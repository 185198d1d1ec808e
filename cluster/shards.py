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

Checkpoints (``ShardService``): when the chief is about to save (``checkpoint_saving``), no
other task gets a new shard ("wait") until the save is over (``checkpoint_saved``, or the
chief's exit), and the chief is told to save (``checkpoint_go``) once every other task that
held shards at that moment has acknowledged its step (or exited): no step runs while the
chief saves, so the done sets snapshotted then are exactly the steps in the checkpoint. A
task that does not finish its step within ``BARRIER_SECS`` is not waited for (its step may
then be in the checkpoint without being in the snapshot: read again after a rollback). Once
saved, the snapshot is written to ``<model_dir>/shards-<step>.json``.

When the variables roll back to a checkpoint (the first start on a model_dir with
checkpoints, a whole-cluster restart, a chief restart that restores: ``rolls_back``), the
queue is restored from the file of the checkpoint the chief will restore (the latest one
that model_dir's ``checkpoint`` file names; when the supervisor has not written its file yet,
the snapshot it took before that save): done is what was done at that snapshot, everything
else is to do again. After a chief restart that restores, the other tasks get no shard
until the new chief asks for its own (it has restored by then): a step they took meanwhile
would be overwritten by the restore. docs/data.md states the guarantee.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness import protocol
from harness.data_spec import DataConfig
from harness.faults import checkpoint_step
from harness.job import JobSpec

EVENTS = ("shard_request", "shards_done", "checkpoint_saving", "checkpoint_saved")
CHIEF = "chief:0"
#: How long the chief's save waits for the other tasks' steps in flight (docstring).
BARRIER_SECS = 20.0

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


@dataclass
class _Save:
    """A save of the chief in progress: the tasks whose step in flight it waits for."""

    step: int
    handle: Any
    deadline: float
    waiting: set[str] = field(default_factory=set)
    go_sent: bool = False


class ShardService:
    """The supervisor's side of ``harness.data``: answers the tasks, keeps the snapshots.

    ``info`` prints a line on the console; ``clock`` is the barrier's time (monotonic).
    Without a ``data:`` section every method does nothing, so the supervisor calls them
    unconditionally.
    """

    def __init__(
        self, job: JobSpec, info: Any, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.job, self.info, self.clock = job, info, clock
        self.data: DataConfig | None = job.data
        self.shards = self.data.descriptors() if self.data is not None else []
        self.queue = ShardQueue(len(self.shards))
        self._pending: dict[int, dict[int, list[int]]] = {}  # step -> snapshot before saving
        self._save: _Save | None = None  # the chief is saving: the others wait
        self._restoring = False  # a restarted chief restores: the others wait

    def rollback(self) -> None:
        """Restore the queue as of the latest checkpoint of model_dir (none: start afresh)."""
        if self.data is None:
            return
        step = checkpoint_step(self.job.model_dir)
        done = read_snapshot(self.job.model_dir, step) if step >= 0 else None
        if done is None and step in self._pending:  # saved, but its file not written yet
            write_snapshot(self.job.model_dir, step, self._pending[step])
            done = read_snapshot(self.job.model_dir, step)
        if step >= 0 and done is None:
            self.info(f"no shards-{step}.json beside checkpoint {step}: every shard is to do")
        self.queue = ShardQueue(len(self.shards), done)
        self._pending.clear()
        self._save, self._restoring = None, False
        if done is not None:
            count = sum(len(d) for d in done.values())
            self.info(f"data: restored the shard queue of checkpoint {step} ({count} done)")

    def task_restarting(self, key: str) -> None:
        """Task ``key`` alone is about to start again (its previous instance is gone)."""
        if self.data is None:
            return
        if rolls_back(self.job, key):
            self.rollback()
            self._restoring = True
        else:
            self.queue.release(key)

    def exited(self, key: str) -> None:
        """The instance of ``key`` exited: its unfinished shards are to do again."""
        if self.data is None:
            return
        self.queue.release(key)
        if self._save is not None:
            if key == CHIEF:
                self._save = None  # that save will not finish
            else:
                self._save.waiting.discard(key)
                self._go_when_ready()

    def on_event(self, key: str, handle: Any, event: dict[str, Any]) -> None:
        """One of ``EVENTS`` from the live instance of ``key`` (``handle``)."""
        if self.data is None:
            return
        name = event["event"]
        if key == CHIEF:
            self._restoring = False  # a chief that reads shards has its variables
        if name == "shard_request":
            self._answer(key, handle, int(event.get("epoch", 0)))
        elif name == "shards_done":
            self.queue.ack(key, [(int(e), int(i)) for e, i in event["shards"]])
            if self._save is not None:
                self._save.waiting.discard(key)
        elif name == "checkpoint_saving":
            self._begin_save(int(event["step"]), handle)
        elif name == "checkpoint_saved":
            step = int(event["step"])
            self._save = None
            done = self._pending.pop(step, None)
            if done is not None:
                write_snapshot(self.job.model_dir, step, done)
        self._go_when_ready()

    def _answer(self, key: str, handle: Any, epoch: int) -> None:
        if key != CHIEF and (self._save is not None or self._restoring):
            answer: int | str = "wait"
        else:
            answer = self.queue.request(key, epoch)
        shard = {**self.shards[answer], "epoch": epoch} if isinstance(answer, int) else None
        status = "shard" if shard is not None else answer
        handle.send(protocol.encode_command("shard", status=status, shard=shard))

    def _begin_save(self, step: int, handle: Any) -> None:
        """The chief will save at ``step``: snapshot now (kept if the barrier times out) and
        wait for the steps in flight (``_go_when_ready``)."""
        self._pending[step] = self.queue.snapshot()
        waiting = {k for k, shards in self.queue.held.items() if shards and k != CHIEF}
        self._save = _Save(step, handle, self.clock() + BARRIER_SECS, waiting)

    def _go_when_ready(self) -> None:
        """Let the chief save once no other task's step is in flight (or the barrier's time
        is up); the snapshot is retaken then, with those steps done."""
        save = self._save
        if save is None or save.go_sent:
            return
        if save.waiting and self.clock() < save.deadline:
            return
        if save.waiting:
            self.info(
                f"data: checkpoint {save.step} saved without waiting for the steps of "
                f"{', '.join(sorted(save.waiting))} (over {BARRIER_SECS:.0f} s)"
            )
        else:
            self._pending[save.step] = self.queue.snapshot()
        save.go_sent = True
        save.handle.send(protocol.encode_command("checkpoint_go"))
