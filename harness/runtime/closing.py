"""Leaving a trainer's MonitoredSession without waiting on a TF session close that hangs.

A MonitoredSession that ends normally calls every hook's ``end()`` (the chief's final
checkpoint, the summary writers' flush, the user's hooks), then closes the TF session. That
close sometimes hangs for seconds in ``GrpcSession::Close`` (the master session's ``Close``)
after everything has been saved; the task would then report ``done`` late, and the job's
teardown would wait on it.

``EndMarker`` is the last hook of the session: its ``end()`` runs after every other hook's.
``BoundedClose`` wraps the session's ``with``:

- on an exception from the loop, it closes the session as TF does (no hook's ``end()``);
- on a normal end, it runs the session's exit on a thread (inside the trainer's graph, since
  TF's default graph is per thread) and waits for it. When the hooks have all ended and the
  close still runs ``AFTER_END_SECS`` later, it goes on without it: the task reports
  ``done`` and exits, which ends the close with the process. An error of the exit (a hook's
  ``end()``, the close) is raised in the caller's thread, as the plain ``with`` would.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

import tensorflow as tf

log = logging.getLogger(__name__)

#: How long a session close may still run once every hook's end() has run.
AFTER_END_SECS = 0.25


class EndMarker(tf.compat.v1.train.SessionRunHook):
    """The session's last hook; ``ended`` is set when its ``end()`` runs (every other hook's
    ``end()`` has returned by then). Any role that trains runs it; it fetches nothing."""

    def __init__(self) -> None:
        self.ended = threading.Event()

    def end(self, session: Any) -> None:
        self.ended.set()


class BoundedClose:
    """``with BoundedClose(session, marker, graph) as sess:``; see the module docstring."""

    def __init__(
        self,
        session: Any,
        marker: EndMarker,
        graph: tf.Graph,
        after_end_secs: float = AFTER_END_SECS,
    ) -> None:
        self._session = session
        self._marker = marker
        self._graph = graph
        self._after_end_secs = after_end_secs
        self.abandoned = False  # the close was still running when the caller went on

    def __enter__(self) -> Any:
        return self._session.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc_type is not None:
            return bool(self._session.__exit__(exc_type, exc, tb))
        outcome: dict[str, BaseException] = {}

        def close() -> None:
            try:
                with self._graph.as_default():
                    self._session.__exit__(None, None, None)
            except BaseException as error:  # noqa: BLE001 - raised in the caller's thread
                outcome["error"] = error

        thread = threading.Thread(target=close, name="harness-session-close", daemon=True)
        thread.start()
        while thread.is_alive() and not self._marker.ended.is_set():
            thread.join(0.05)
        thread.join(self._after_end_secs)
        if thread.is_alive():
            self.abandoned = True
            log.info(
                "the session close was still running %.2f s after every hook ended; going on "
                "without it (the final checkpoint and summaries are written)",
                self._after_end_secs,
            )
            return False
        if "error" in outcome:
            raise outcome["error"]
        return False
