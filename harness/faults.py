"""Faults a task injects into itself, for tests: the ``HARNESS_FAULT_INJECT`` variable.

``harness.task``'s ``main`` reads the variable once (``parse_fault``) and passes the fault
down; nothing else reads it. Each fault names its task (``role:index``) and a marker file,
and happens only while the marker does not exist: the task creates the marker just before
the fault, so the instance the supervisor starts again runs normally.

- ``bind:<role>:<index>:<marker>``: that task's TF server fails to bind its port once
  (``harness.runtime.server`` occupies the port itself); the supervisor re-runs the
  rendezvous with fresh ports.
- ``kill:<role>:<index>:step=<N>:<marker>``: that task SIGKILLs itself once the global step
  reaches N. A trainer (chief, worker) goes by its own progress reports (the global step it
  read at a step, reported about twice a second), so it dies at the first report at or past
  N; a task without a training loop (ps, evaluator) goes by the latest checkpoint in
  model_dir, checked every ``CHECKPOINT_POLL_SECS``. What the supervisor sees is an exit by
  SIGKILL, as for a task the OOM killer or a lost node ended. Just before, the task writes
  its marker: one JSON object (``KillRecord``: target, planned step, the step it died at,
  its pid, the wall-clock time), which is how a campaign (``bench.campaign``) learns when
  and where each kill happened.

Several kill faults are separated by ``;`` (``kill:worker:0:step=50:/m/a;kill:ps:0:step=90:/m/b``),
each with its own marker; every task arms those that name it. A bind fault stands alone.

``harness.testing.kill_task_at_step`` and ``kill_tasks_at_steps`` build the variable's value.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FAULT_INJECT_ENV = "HARNESS_FAULT_INJECT"
FAULT_SEPARATOR = ";"
CHECKPOINT_POLL_SECS = 0.2
_CHECKPOINT_STEP = re.compile(r'^model_checkpoint_path: ".*-(\d+)"', re.MULTILINE)

Report = Callable[..., None]


@dataclass(frozen=True)
class BindFault:
    """Make ``target``'s (``role:index``) server bind fail once, unless ``marker`` exists."""

    target: str
    marker: str

    @classmethod
    def parse(cls, value: str | None) -> BindFault | None:
        """The fault that ``value`` (``HARNESS_FAULT_INJECT``'s value) asks for, or None."""
        kind, _, rest = (value or "").partition(":")
        target, _, marker = rest.rpartition(":")
        return cls(target, marker) if kind == "bind" else None


@dataclass(frozen=True)
class KillRecord:
    """What a killed task wrote to its marker just before its SIGKILL (the marker's JSON)."""

    target: str
    planned_step: int
    step: int  # the global step it died at (a ps: the latest checkpoint's step)
    pid: int
    t: float  # wall clock, time.time()

    @classmethod
    def read(cls, marker: str | os.PathLike[str]) -> KillRecord | None:
        """The record in ``marker``; None when the marker does not exist (the kill did not
        happen). Raises ValueError for a marker that is not a kill record."""
        try:
            with open(marker) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{os.fspath(marker)}: not a kill record ({exc}): {text!r}") from exc


@dataclass(frozen=True)
class KillFault:
    """SIGKILL ``target`` (``role:index``) once the global step reaches ``step``, unless
    ``marker`` exists (see the module docstring for how each role learns the step).
    ``also``: further kill faults of the same variable, armed with this one."""

    target: str
    step: int
    marker: str
    also: tuple[KillFault, ...] = ()

    @classmethod
    def parse(cls, value: str | None) -> KillFault | None:
        """``kill:<role>:<index>:step=<N>:<marker>`` as a KillFault; None for any other kind.

        Raises ValueError for a kill fault that is not written that way. (Several faults:
        ``parse_fault``.)
        """
        kind, _, rest = (value or "").partition(":")
        if kind != "kill":
            return None
        parts = rest.split(":", 3)
        if len(parts) != 4 or not parts[2].startswith("step=") or not parts[3]:
            raise ValueError(
                f"{FAULT_INJECT_ENV}={value!r}: write kill:<role>:<index>:step=<N>:<marker>"
            )
        role, index, step, marker = parts
        return cls(f"{role}:{int(index)}", int(step.removeprefix("step=")), marker)

    def all(self) -> tuple[KillFault, ...]:
        """This fault (without ``also``) and every fault in ``also``, in the variable's order."""
        return (KillFault(self.target, self.step, self.marker), *self.also)

    def due(self, task_key: str, global_step: int) -> bool:
        """Whether ``task_key`` at ``global_step`` must die now (its marker is not there)."""
        return (
            task_key == self.target and global_step >= self.step and not os.path.exists(self.marker)
        )

    def arm(self, task_key: str, role: str, model_dir: str, report: Report) -> Report:
        """Arm the fault in the task ``task_key``; returns the task's ``report`` to use.

        A trainer's reports go through the returned function, which kills the task before
        forwarding a report at or past the step; any other role gets a daemon thread that
        watches model_dir's checkpoints, and ``report`` back unchanged. The faults in
        ``also`` are armed the same way.
        """
        for fault in self.also:
            report = fault.arm(task_key, role, model_dir, report)
        if task_key != self.target:
            return report
        if role not in ("chief", "worker"):
            threading.Thread(
                target=self._watch_checkpoints,
                args=(task_key, model_dir),
                name="harness-fault",
                daemon=True,
            ).start()
            return report

        def reporting(event: str, **fields: Any) -> None:
            step = int(fields["global_step"]) if event in ("progress", "done") else -1
            if step >= 0 and self.due(task_key, step):
                self._kill(step)
            report(event, **fields)

        return reporting

    def _watch_checkpoints(self, task_key: str, model_dir: str) -> None:
        stop = threading.Event()
        while not stop.wait(CHECKPOINT_POLL_SECS):
            step = checkpoint_step(model_dir)
            if self.due(task_key, step):
                self._kill(step)

    def _kill(self, step: int) -> None:
        record = KillRecord(self.target, self.step, step, os.getpid(), time.time())
        with open(self.marker, "w") as f:
            f.write(json.dumps(record.__dict__) + "\n")
        os.kill(os.getpid(), signal.SIGKILL)


def parse_faults(value: str | None) -> list[BindFault | KillFault]:
    """Every fault in ``HARNESS_FAULT_INJECT``'s value (``;``-separated), in order; faults of
    an unknown kind are skipped. Raises ValueError for a malformed kill fault."""
    faults = []
    for part in (value or "").split(FAULT_SEPARATOR):
        fault = BindFault.parse(part.strip()) or KillFault.parse(part.strip())
        if fault is not None:
            faults.append(fault)
    return faults


def parse_fault(value: str | None) -> BindFault | KillFault | None:
    """The fault ``HARNESS_FAULT_INJECT``'s value asks for (None: unset, empty, unknown kind).

    Several kill faults come back as the first, with the others in its ``also`` (arming it
    arms them all). Raises ValueError for a malformed kill fault, and for a bind fault
    together with others (a bind fault stands alone).
    """
    faults = parse_faults(value)
    if len(faults) > 1 and any(isinstance(f, BindFault) for f in faults):
        raise ValueError(
            f"{FAULT_INJECT_ENV}={value!r}: a bind fault stands alone; only kill faults can "
            f"be combined with {FAULT_SEPARATOR!r}"
        )
    if not faults:
        return None
    first = faults[0]
    if isinstance(first, KillFault) and len(faults) > 1:
        return KillFault(first.target, first.step, first.marker, also=tuple(faults[1:]))
    return first


def checkpoint_step(model_dir: str) -> int:
    """The global step of the latest checkpoint that model_dir's ``checkpoint`` file names
    (read without TensorFlow); -1 when there is none."""
    try:
        with open(os.path.join(model_dir, "checkpoint")) as f:
            match = _CHECKPOINT_STEP.search(f.read())
    except OSError:
        return -1
    return int(match.group(1)) if match else -1
