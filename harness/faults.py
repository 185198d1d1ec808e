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
  SIGKILL, as for a task the OOM killer or a lost node ended.

``harness.testing.kill_task_at_step`` builds the variable's value for a test.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FAULT_INJECT_ENV = "HARNESS_FAULT_INJECT"
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
class KillFault:
    """SIGKILL ``target`` (``role:index``) once the global step reaches ``step``, unless
    ``marker`` exists (see the module docstring for how each role learns the step)."""

    target: str
    step: int
    marker: str

    @classmethod
    def parse(cls, value: str | None) -> KillFault | None:
        """``kill:<role>:<index>:step=<N>:<marker>`` as a KillFault; None for any other kind.

        Raises ValueError for a kill fault that is not written that way.
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

    def due(self, task_key: str, global_step: int) -> bool:
        """Whether ``task_key`` at ``global_step`` must die now (its marker is not there)."""
        return (
            task_key == self.target and global_step >= self.step and not os.path.exists(self.marker)
        )

    def arm(self, task_key: str, role: str, model_dir: str, report: Report) -> Report:
        """Arm the fault in the task ``task_key``; returns the task's ``report`` to use.

        A trainer's reports go through the returned function, which kills the task before
        forwarding a report at or past the step; any other role gets a daemon thread that
        watches model_dir's checkpoints, and ``report`` back unchanged.
        """
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
            if event in ("progress", "done") and self.due(task_key, int(fields["global_step"])):
                self._kill()
            report(event, **fields)

        return reporting

    def _watch_checkpoints(self, task_key: str, model_dir: str) -> None:
        stop = threading.Event()
        while not stop.wait(CHECKPOINT_POLL_SECS):
            if self.due(task_key, checkpoint_step(model_dir)):
                self._kill()

    def _kill(self) -> None:
        with open(self.marker, "w") as f:
            f.write(f"{self.target} killed itself at step >= {self.step}\n")
        os.kill(os.getpid(), signal.SIGKILL)


def parse_fault(value: str | None) -> BindFault | KillFault | None:
    """The fault ``HARNESS_FAULT_INJECT``'s value asks for (None: unset, empty, unknown kind)."""
    return BindFault.parse(value) or KillFault.parse(value)


def checkpoint_step(model_dir: str) -> int:
    """The global step of the latest checkpoint that model_dir's ``checkpoint`` file names
    (read without TensorFlow); -1 when there is none."""
    try:
        with open(os.path.join(model_dir, "checkpoint")) as f:
            match = _CHECKPOINT_STEP.search(f.read())
    except OSError:
        return -1
    return int(match.group(1)) if match else -1
