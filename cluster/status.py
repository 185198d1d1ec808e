"""The status board of a run on Ray: a named actor that ``harness status`` and ``logs`` read.

``register_status(job, keys, max_steps, report)`` is called by ``harness run`` once the Ray
launcher is connected, before the supervisor starts. It creates the run's
``cluster.status_board.StatusBoard`` as an actor named ``harness-status-<job>`` in the
namespace ``harness`` (``NAMESPACE``), with 0 CPUs, on the driver's node when it can, and
not detached: Ray removes it when the driver process ends, however it ends. It returns the
``StatusObserver`` that feeds it, or None (and ``report`` says why) when another run of a
job of that name already has the name on this cluster: that run stays the one
``harness status`` shows, and this one runs on unseen.

``StatusObserver`` (a ``cluster.observe.RunObserver``) never calls Ray from the supervisor's
thread or a reader thread: they only update a ``RunState`` and ``PendingLines``. A thread
of its own sends what changed every ``FLUSH_SECS``, in one call (the newest snapshot and the
new lines of every task), with at most one call in flight, so a chatty task costs no more
remote calls than a quiet one. ``finished`` sends the outcome and the last lines, waits up
to ``FOLLOWERS_LINGER_SECS`` for ``harness logs --follow`` readers to get them, and kills
the actor; ``close`` (for ``harness run``'s ``finally``) kills it if ``finished`` did not.
An error of the board (its node lost) is reported once; the job goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from cluster.observe import RunObserver, Snapshot
from cluster.status_board import DEFAULT_CAPACITY, PendingLines, RunState, StatusBoard

NAMESPACE = "harness"
BOARD_PREFIX = "harness-status-"
FLUSH_SECS = 0.5
CALL_TIMEOUT_SECS = 10.0  # the final flush and the followers' wait
FOLLOWERS_LINGER_SECS = 2.0
BOARD_CONCURRENCY = 16  # followers' long polls, status calls and the observer's updates


def board_name(job: str) -> str:
    """The actor name of job ``job``'s status board."""
    return f"{BOARD_PREFIX}{job}"


def register_status(
    job: str,
    keys: Sequence[str],
    max_steps: int,
    report: Callable[[str], None],
    capacity: int = DEFAULT_CAPACITY,
) -> StatusObserver | None:
    """Create the run's status board on the connected Ray (module docstring)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    try:
        board = (
            ray.remote(StatusBoard)
            .options(
                name=board_name(job),
                namespace=NAMESPACE,
                num_cpus=0,
                max_restarts=0,
                max_concurrency=BOARD_CONCURRENCY,
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True),
            )
            .remote(job, list(keys), max_steps, capacity)
        )
    except ValueError:  # ray.exceptions.ActorAlreadyExistsError
        report(
            f"another run of a job named {job} is already on this Ray cluster: `harness status "
            f"{job}` and `harness logs {job}` show that run, not this one (give this job "
            "another name to see it)"
        )
        return None
    except Exception as exc:  # noqa: BLE001 - the job runs without its status board
        report(f"harness status: could not create this run's status board: {exc}")
        return None
    return StatusObserver(board, RunState(job, keys, max_steps), PendingLines(capacity), report)


class StatusObserver(RunObserver):
    """Feeds one run's status board (module docstring); built by ``register_status``."""

    def __init__(
        self,
        board: Any,
        state: RunState,
        pending: PendingLines,
        report: Callable[[str], None],
        ray_api: Any = None,
    ) -> None:
        """``ray_api``: the ``ray`` module (a test passes a stand-in: remote, get, wait, kill)."""
        if ray_api is None:
            import ray as ray_api

        self._ray = ray_api
        self._board = board
        self._state = state
        self._pending = pending
        self._report = report
        self._lock = threading.Lock()  # around self._state
        self._sent_version = -1
        self._inflight: Any = None  # the update call the flush thread left unfinished
        self._stop = threading.Event()
        self._broken = False
        self._closed = False
        self._thread = threading.Thread(target=self._flush_loop, daemon=True, name="status")
        self._thread.start()

    # ---- RunObserver: the supervisor's thread (task_line: reader threads) ------------------

    def task_started(self, key: str) -> None:
        with self._lock:
            self._state.started(key)

    def task_address(self, key: str, address: str) -> None:
        with self._lock:
            self._state.address(key, address)

    def progress(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._state.progress(snapshot)

    def evaluation(self, global_step: int | None, metrics: dict[str, float]) -> None:
        with self._lock:
            self._state.evaluation(global_step, metrics)

    def task_exited(self, key: str, exit_code: int | None, decision: str) -> None:
        with self._lock:
            self._state.exited(key, exit_code, decision)

    def task_line(self, key: str, line: str) -> None:
        self._pending.add(key, line)

    def finished(self, summary: dict[str, Any]) -> None:
        """Send the outcome and the last lines, let followers read them, remove the board."""
        with self._lock:
            self._state.finished(summary.get("status", "failed"), summary.get("error"))
        self._stop.set()
        self._thread.join(timeout=CALL_TIMEOUT_SECS)
        if not self._thread.is_alive() and self._settle() and self._flush(CALL_TIMEOUT_SECS):
            try:
                linger = self._board.wait_followers.remote(FOLLOWERS_LINGER_SECS)
                self._ray.get(linger, timeout=FOLLOWERS_LINGER_SECS + CALL_TIMEOUT_SECS)
            except Exception:  # noqa: BLE001 - the board is gone already: nothing to wait for
                pass
        self.close()

    # ---- the flush thread ------------------------------------------------------------------

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_SECS):
            if not self._flush(None):
                return

    def _flush(self, timeout: float | None) -> bool:
        """Send what changed; wait for it (``timeout`` None: until done or stopped).

        Returns False once the board is unusable (reported once).
        """
        if self._broken:
            return False
        with self._lock:
            version = self._state.version
            snapshot = self._state.snapshot() if version != self._sent_version else None
        lines = self._pending.take()
        if snapshot is None and not lines:
            return True
        snapshot = snapshot or {"version": -1}  # lines only: the board keeps its state
        try:
            ref = self._board.update.remote(snapshot, lines)
            if timeout is not None:
                self._ray.get(ref, timeout=timeout)
            else:  # one call in flight; a stop leaves it to finished() (``_settle``)
                while not self._ray.wait([ref], timeout=FLUSH_SECS)[0]:
                    if self._stop.is_set():
                        self._inflight = ref
                        return True
                self._ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a status board must never end the job
            self._broken = True
            self._report(
                f"harness status: the status board of this run failed ({type(exc).__name__}: "
                f"{str(exc).strip()[:200]}); `harness status` will not see this run"
            )
            return False
        self._sent_version = max(self._sent_version, version)
        return True

    def _settle(self) -> bool:
        """Wait for the update left in flight, so that the final one is applied after it."""
        ref, self._inflight = self._inflight, None
        if ref is None or self._broken:
            return not self._broken
        try:
            self._ray.get(ref, timeout=CALL_TIMEOUT_SECS)
        except Exception:  # noqa: BLE001 - reported by the next flush if the board is gone
            pass
        return True

    def close(self) -> None:
        """Remove the board actor (idempotent, never raises)."""
        self._stop.set()
        if self._closed:
            return
        self._closed = True
        try:
            self._ray.kill(self._board, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone, or Ray is shut down
            pass
