"""The driver side of one task in a Ray actor: the ``TaskHandle`` the supervisor holds.

It starts the task in its actor (``cluster.ray_actor.TaskActor.start``), long-polls its
output into the supervisor's inbox from a thread, sends commands in order from another, and
reports an actor that died (killed, node lost, out of memory) as an exit with ``ACTOR_DIED``.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from cluster.handles import Inbox
from cluster.plan import TaskPlan

ACTOR_DIED = -9  # exit code reported when the actor itself is gone (like a SIGKILLed process)
POLL_TIMEOUT_SECS = 0.5
CALL_TIMEOUT_SECS = 30.0


class RayTaskHandle:
    """A task running in a Ray actor, as the supervisor sees it (``TaskHandle``)."""

    def __init__(self, plan: TaskPlan, actor: Any, inbox: Inbox) -> None:
        import ray

        self.plan = plan
        self.actor = actor
        self.info: dict[str, Any] = {}
        self._ray = ray
        self._killed = False
        self._commands: queue.Queue[str | None] = queue.Queue()
        self._started = actor.start.remote()
        self._poller = threading.Thread(
            target=self._poll, args=(inbox,), daemon=True, name=f"ray-poll-{plan.key}"
        )
        self._sender = threading.Thread(target=self._send_loop, daemon=True)
        self._poller.start()
        self._sender.start()

    def _poll(self, inbox: Inbox) -> None:
        ray = self._ray
        code: int | None = ACTOR_DIED
        try:
            self.info = ray.get(self._started)
            inbox.console.info(
                f"{self.plan.key}: Ray actor on node {self.info['node_ip']} "
                f"({self.info['node_id'][:8]}), pid {self.info['pid']}, "
                f"CUDA_VISIBLE_DEVICES={self.info['cuda_visible_devices']!r}"
            )
            while True:
                try:
                    lines, code = ray.get(
                        self.actor.read.remote(timeout=POLL_TIMEOUT_SECS),
                        timeout=CALL_TIMEOUT_SECS,
                    )
                except (ray.exceptions.GetTimeoutError, ray.exceptions.ActorUnavailableError):
                    time.sleep(0.2)  # a slow or briefly unreachable actor; death ends the loop
                    continue
                for line in lines:
                    inbox.line(self, line)
                if code is not None:
                    break
        except ray.exceptions.RayActorError as exc:
            if not self._killed:
                inbox.console.info(f"{self.plan.key}: its Ray actor died: {first_line(exc)}")
            code = ACTOR_DIED
        except Exception as exc:  # noqa: BLE001 - e.g. the task command could not start
            inbox.line(self, f"the Ray actor failed to start the task: {exc}")
            code = ACTOR_DIED
        self._commands.put(None)
        inbox.exited(self, code)

    def _send_loop(self) -> None:
        # One command at a time, in order (a threaded actor does not keep call order).
        while (command := self._commands.get()) is not None:
            try:
                self._ray.get(self.actor.send.remote(command), timeout=CALL_TIMEOUT_SECS)
            except Exception:  # noqa: BLE001 - the task is gone; its exit is on the way
                pass

    def send(self, command: str) -> None:
        if not self._killed:
            self._commands.put(command)

    def kill(self) -> None:
        """Kill the task process, then its actor (idempotent, never raises)."""
        ray = self._ray
        if not self._killed:
            self._killed = True
            self._commands.put(None)
            # The task is running: SIGKILL its process tree first. A task whose exit the
            # poller has already seen (the normal end of a job) has nothing left to kill, so
            # teardown skips that blocking round trip to each actor in turn.
            if self.info and self._poller.is_alive():
                try:
                    ray.get(self.actor.kill.remote(), timeout=5.0)
                except Exception:  # noqa: BLE001 - the actor is already gone or unreachable
                    pass
        # Without its actor the task sees EOF on stdin and exits (harness.protocol).
        try:
            ray.kill(self.actor, no_restart=True)
        except Exception:  # noqa: BLE001
            pass

    def wait_gone(self, timeout: float) -> bool:
        """True once the actor is dead (its process, and so the task's, is gone)."""
        deadline = time.monotonic() + timeout
        ray = self._ray
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                ray.get(self.actor.pid.remote(), timeout=min(remaining, 2.0))
            except (ray.exceptions.GetTimeoutError, ray.exceptions.ActorUnavailableError):
                pass  # not known to be dead yet
            except ray.exceptions.RayActorError:
                self._poller.join(timeout=max(0.0, deadline - time.monotonic()))
                return True
            time.sleep(0.1)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
