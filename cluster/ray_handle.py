"""The driver side of one task in a Ray actor: the ``TaskHandle`` the supervisor holds.

It starts the task in its actor (``cluster.ray_actor.TaskActor.start``, or ``restart`` in
the same actor), long-polls its output into the supervisor's inbox from a thread, sends
commands in order from another, and reports an actor that died (killed, node lost, out of
memory) as an exit with ``ACTOR_DIED``.
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
    """A task running in a Ray actor, as the supervisor sees it (``TaskHandle``).

    ``restarted``: the facts of a restart inside the same actor (``TaskActor.restart``), whose
    ``generation`` this handle reads and writes; else the actor is new and is started here.
    ``kill`` ends the task process (the actor stays, for a restart in it); ``close`` the
    actor (its spare with it).
    """

    def __init__(
        self, plan: TaskPlan, actor: Any, inbox: Inbox, restarted: dict[str, Any] | None = None
    ) -> None:
        import ray

        self.plan = plan
        self.actor = actor
        self.info: dict[str, Any] = {}
        self.warm = bool(restarted and restarted.get("warm"))
        self.generation = restarted["generation"] if restarted else 1
        self._ray = ray
        self._killed = False
        self._commands: queue.Queue[str | None] = queue.Queue()
        self._started = ray.put(restarted) if restarted else actor.start.remote()
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
                + (" (a warm spare)" if self.warm else "")
            )
            while True:
                try:
                    lines, code = ray.get(
                        self.actor.read.remote(
                            timeout=POLL_TIMEOUT_SECS, generation=self.generation
                        ),
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
                call = self.actor.send.remote(command, generation=self.generation)
                self._ray.get(call, timeout=CALL_TIMEOUT_SECS)
            except Exception:  # noqa: BLE001 - the task is gone; its exit is on the way
                pass

    def send(self, command: str) -> None:
        if not self._killed:
            self._commands.put(command)

    def kill(self) -> None:
        """Kill the task process; its actor stays for a restart in it (idempotent, never
        raises). An actor that does not answer is killed with it."""
        if self._killed:
            return
        self._killed = True
        self._commands.put(None)
        try:
            self._ray.get(self.actor.kill.remote(), timeout=CALL_TIMEOUT_SECS)
        except Exception:  # noqa: BLE001 - gone or unreachable: make sure of it
            self.close()

    def restart(self) -> dict[str, Any] | None:
        """Start the task again inside this handle's actor (``TaskActor.restart``); None when
        the actor is gone (a new actor is needed, on a node that has the bundle)."""
        try:
            return self._ray.get(self.actor.restart.remote(), timeout=CALL_TIMEOUT_SECS)
        except Exception:  # noqa: BLE001 - dead, or not answering
            self.close()
            return None

    def close(self) -> None:
        """Kill the task, its spare and the actor (idempotent, never raises)."""
        self._killed = True
        self._commands.put(None)
        try:
            self._ray.get(self.actor.shutdown.remote(), timeout=5.0)
        except Exception:  # noqa: BLE001 - the actor is already gone or unreachable
            pass
        # Without its actor the task sees EOF on stdin and exits (harness.protocol).
        try:
            self._ray.kill(self.actor, no_restart=True)
        except Exception:  # noqa: BLE001
            pass

    def wait_gone(self, timeout: float) -> bool:
        """True once the task process is gone (its exit, or its actor's death, was read)."""
        self._poller.join(timeout=timeout)
        return not self._poller.is_alive()

    def wait_actor_gone(self, timeout: float) -> bool:
        """True once the actor is dead (its processes, and so the task's, are gone)."""
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
