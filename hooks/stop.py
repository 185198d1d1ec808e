"""StopSignalHook: stops a trainer's loop when the supervisor says so.

Runs on every trainer. ``after_run`` requests a stop once ``stop_event`` is set (the task sets
it when the ``stop`` command arrives), so the loop ends after the current step and the
normal end-of-training path runs (hook ``end`` calls, the chief's final checkpoint).
"""

from __future__ import annotations

import threading
from typing import Any

import tensorflow as tf


class StopSignalHook(tf.compat.v1.train.SessionRunHook):
    def __init__(self, stop_event: threading.Event) -> None:
        self._stop_event = stop_event

    def after_create_session(self, session: Any, coord: Any) -> None:
        del session, coord

    def after_run(self, run_context: Any, run_values: Any) -> None:
        if self._stop_event.is_set():
            run_context.request_stop()
