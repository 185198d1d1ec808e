"""TensorBoard on Ray: the actor that owns its process, and the driver's side of that actor.

``cluster.ray_launcher.RayLauncher.start_tensorboard`` creates the ``TensorBoardActor`` (0
CPUs, no GPU, in the chief's bundle) and returns a ``RayTensorBoard``, which
``cluster.tensorboard.serving`` waits on and stops like a local ``TensorBoardProcess``.
"""

from __future__ import annotations

import threading
from typing import Any

from cluster.tensorboard import (
    STARTUP_SECS,
    TensorBoardFailed,
    TensorBoardProcess,
    TensorBoardRequest,
)


class TensorBoardActor:
    """Owns one TensorBoard process on its Ray node (``cluster.ray_launcher`` wraps it with
    ``ray.remote``, CPU only, in the chief's bundle). Needs a concurrency of 2: ``stop`` must
    get through while ``start`` waits. When the actor dies, TensorBoard's stdin closes and it
    exits."""

    def __init__(self, request: TensorBoardRequest) -> None:
        self._request = request
        self._process: TensorBoardProcess | None = None

    def __repr__(self) -> str:  # Ray prefixes the actor's own log lines with this
        return "tensorboard"

    def start(self) -> dict[str, str]:
        """Start TensorBoard; ``{"url": ...}`` once it serves, else ``{"error": why}``."""
        import ray

        host = self._request.host or ray.util.get_node_ip_address()
        self._process = TensorBoardProcess(self._request, host).start()
        try:
            return {"url": self._process.wait_url(STARTUP_SECS)}
        except TensorBoardFailed as exc:
            self._process.stop()
            return {"error": str(exc)}

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()


class RayTensorBoard:
    """The driver's side of a ``TensorBoardActor``: ``wait_url`` and ``stop``, as a process."""

    def __init__(self, ray: Any, actor: Any) -> None:
        self._ray = ray
        self._actor = actor
        self._started = actor.start.remote()
        self._stopped = threading.Event()

    def wait_url(self, timeout: float = STARTUP_SECS) -> str:
        """The URL once the actor's TensorBoard serves (the actor applies ``STARTUP_SECS``
        from its own start; the wait for placement before it is the job's)."""
        ray = self._ray
        while not self._stopped.is_set():
            ready, _ = ray.wait([self._started], timeout=0.5)
            if not ready:
                continue
            try:
                result = ray.get(self._started)
            except Exception as exc:  # noqa: BLE001 - the actor died or could not start
                raise TensorBoardFailed(str(exc).strip().splitlines()[0][:300]) from None
            if "url" in result:
                return result["url"]
            raise TensorBoardFailed(result["error"])
        raise TensorBoardFailed("stopped before it served")

    def stop(self) -> None:
        """Kill TensorBoard's process tree, then the actor (idempotent)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        ray = self._ray
        if not ray.is_initialized():
            return
        try:
            ready, _ = ray.wait([self._started], timeout=0)
            if ready:  # the actor runs: let it kill its process tree first
                ray.get(self._actor.stop.remote(), timeout=10.0)
        except Exception:  # noqa: BLE001 - gone already; the kill below is what counts
            pass
        try:
            ray.kill(self._actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already dead
            pass
