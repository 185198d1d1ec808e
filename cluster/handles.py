"""What passes between launchers and the supervisor.

- ``TaskHandle`` / ``Launcher``: what every launcher implements (local processes, Ray actors).
- ``Inbox``: where a launcher delivers each task's output lines (events are decoded, other
  lines are printed with the task's prefix and logged) and its exit.
- ``JobFailed``: the job failed; the message names the task and the cause. ``Unplaced``:
  a launcher cannot place a task again (the policy decides).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cluster.console import Console
from cluster.plan import TaskPlan
from harness import protocol
from harness.errors import HarnessError


class JobFailed(HarnessError, RuntimeError):
    """The job failed; the message names the task and the cause.

    ``user_error`` is True when the cause is the user's code or data (``cluster.policy``),
    which ``harness run`` reports with exit status 2. ``role``/``index`` name the task whose
    failure ended the job, when one did (``HarnessError``); ``traceback`` holds that task's
    last traceback lines (or its last output lines when it reported no error).
    """

    def __init__(
        self,
        message: str,
        user_error: bool = False,
        *,
        role: str | None = None,
        index: int | None = None,
        traceback: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, role=role, index=index)
        self.user_error = user_error
        self.traceback = traceback


class Unplaced(JobFailed):
    """A task could not be started because its resources cannot be placed again (its Ray
    bundle's node is gone and no node takes it within ``placement.timeout_secs``). The
    message says what the task needs and what the cluster has; the supervisor asks the
    policy (``cluster.policy.decide_unplaced``) whether the job goes on without the task."""


class TaskHandle(Protocol):
    """A started task, as the supervisor sees it (implemented by each launcher)."""

    plan: TaskPlan

    def send(self, command: str) -> None: ...  # one line from protocol.encode_command
    def kill(self) -> None: ...  # idempotent; returns once the task is gone or being killed
    def wait_gone(self, timeout: float) -> bool: ...  # True once nothing of the task remains


class Launcher(Protocol):
    name: str

    def start(self, task: TaskPlan, inbox: Inbox) -> TaskHandle: ...
    def close(self) -> None: ...


@dataclass
class Message:
    handle: Any
    kind: str  # "event" | "exit"
    data: Any


class Inbox:
    """Where launchers deliver task events, exits and output lines.

    ``stop``: once it is set (from any thread), ``get`` raises ``KeyboardInterrupt("stop
    requested")``, so the supervisor, which waits on its inbox in every state, ends the run as
    it does on Ctrl-C (``harness.fit(stop=...)``, a Ray Tune trial stopped by its scheduler).
    """

    def __init__(
        self,
        console: Console,
        on_line: Callable[[str, str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.console = console
        self._on_line = on_line  # observers' task_line (called on the launchers' threads)
        self._stop = stop
        self._queue: queue.Queue[Message] = queue.Queue()
        self.tails: dict[str, deque[str]] = {}

    def line(self, handle: Any, line: str) -> None:
        """Route one output line of a task: an event, or text to print and log."""
        text, event = protocol.split_event(line)
        if text.strip():
            self.tails.setdefault(handle.plan.key, deque(maxlen=40)).append(text)
            self.console.task_line(handle.plan.key, text)
            if self._on_line is not None:
                self._on_line(handle.plan.key, text)
        if event is not None:
            self._queue.put(Message(handle, "event", event))

    def exited(self, handle: Any, code: int | None) -> None:
        self._queue.put(Message(handle, "exit", code))

    def pending(self) -> bool:
        """Whether messages are queued (the supervisor takes them all in before it judges
        time: a backlog on a loaded machine is not a stall)."""
        return not self._queue.empty()

    def get(self, timeout: float) -> Message | None:
        if self._stop is not None and self._stop.is_set():
            raise KeyboardInterrupt("stop requested")
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
