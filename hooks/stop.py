"""StopSignalHook: stops a trainer's loop when the supervisor says so, even mid-step.

Runs on every trainer. Lifecycle:

- ``begin``: builds one ``close(cancel_pending_enqueues=True)`` op per queue in the graph
  (the graph is still mutable here);
- ``after_create_session``: remembers the raw session and starts a watcher thread;
- ``after_run``: requests a stop once ``stop_event`` is set, so the loop ends after the
  current step and the normal end-of-training path runs (hook ``end`` calls, the chief's
  final checkpoint).

The watcher covers the case where no step ever finishes: a replica blocked in ``session.run``
on a queue that nobody will feed again, as the last replica of SyncReplicasOptimizer training
is when the others have stopped at ``last_step`` (it waits for a token that never comes).
When the stop signal has been set for ``unblock_after_secs`` and a step is still running, the
watcher closes the graph's queues; the blocked dequeue then fails with OutOfRangeError, which
MonitoredSession treats as the end of training: ``end`` runs and the chief saves its final
checkpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import tensorflow as tf

log = logging.getLogger(__name__)

_QUEUE_OPS = {"FIFOQueueV2", "PaddingFIFOQueueV2", "RandomShuffleQueueV2", "PriorityQueueV2"}


class StopSignalHook(tf.compat.v1.train.SessionRunHook):
    def __init__(self, stop_event: threading.Event, unblock_after_secs: float = 2.0) -> None:
        self._stop_event = stop_event
        self._unblock_after = unblock_after_secs

    def begin(self) -> None:
        graph = tf.compat.v1.get_default_graph()
        self._close_ops = []
        for op in graph.get_operations():
            if op.type in _QUEUE_OPS:
                with tf.compat.v1.colocate_with(op):
                    self._close_ops.append(
                        tf.raw_ops.QueueCloseV2(handle=op.outputs[0], cancel_pending_enqueues=True)
                    )
        self._in_run = False

    def after_create_session(self, session: Any, coord: Any) -> None:
        self._session = session
        if not getattr(self, "_watcher", None):
            self._watcher = threading.Thread(target=self._watch, name="harness-stop", daemon=True)
            self._watcher.start()

    def before_run(self, run_context: Any) -> None:
        self._in_run = True

    def after_run(self, run_context: Any, run_values: Any) -> None:
        self._in_run = False
        if self._stop_event.is_set():
            run_context.request_stop()

    def _watch(self) -> None:
        self._stop_event.wait()
        time.sleep(self._unblock_after)
        if not self._in_run or not self._close_ops:
            return
        log.warning(
            "a training step has been blocked for %.0f s after the stop signal; closing the "
            "graph's %d queue(s) to end it",
            self._unblock_after,
            len(self._close_ops),
        )
        try:
            self._session.run(self._close_ops)
        except Exception as exc:  # noqa: BLE001 - the supervisor kills the task if this fails
            log.warning("closing the queues failed: %s", exc)
