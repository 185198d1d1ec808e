"""ProgressHook: reports a trainer's global step, local step count and loss to the supervisor.

Runs on every trainer (chief and workers). Lifecycle:

- ``begin``: finds the global step (required) and resets the counters.
- ``after_create_session``: reports ``session_ready`` with the global step (read through
  StopAtStepHook's read tensor, which a waiting worker has already run) and the wall clock
  ``t`` (after every (re)creation of the session).
- ``before_run``: asks for the global step and the loss on every step, the very tensors
  ``StopAtStepHook`` and the training loop fetch anyway (the global step's read tensor, not
  the variable: another read of the variable would be one more transfer from the ps per
  step), and one set of fetches spares TensorFlow a new partitioned graph whenever a report
  is due.
- ``after_run``: counts the local step and keeps the step's global step and loss; when a
  report is due (at most every ``every_secs``), calls ``report('progress', ...)``.
- ``end``: one last report, so the supervisor sees the final step even between timers.

``report_latest`` reports the latest step at once, from any thread: the task calls it when
the supervisor asks for stacks (a stall), so the stall message names the global step the
trainer really reached, not the one of the last timed report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from tensorflow.python.training import training_util

Report = Callable[..., None]


def global_step_read() -> tf.Tensor:
    """The global step's read tensor that StopAtStepHook (and TF's other hooks) fetch every
    step: the default hooks fetch this one too, so that the global step crosses from the ps
    once per step, not once per different read of the variable. Fetching it is safe before
    the variables are initialized (a waiting worker runs it: ``harness.runtime.session``)."""
    return training_util._get_or_create_global_step_read()


class ProgressHook(tf.compat.v1.train.SessionRunHook):
    def __init__(self, report: Report, loss: tf.Tensor, every_secs: float = 0.5) -> None:
        self._report = report
        self._loss = loss
        self._every_secs = every_secs
        self.local_steps = 0
        self.last_global_step: int | None = None
        self.last_loss: float | None = None
        self.ended = False
        self._lock = threading.Lock()

    def begin(self) -> None:
        self._global_step = tf.compat.v1.train.get_global_step()
        if self._global_step is None:
            raise RuntimeError("Global step should be created to use ProgressHook.")
        self._global_step_read = global_step_read()
        self.local_steps = 0
        self.ended = False
        self._next_report = 0.0

    def after_create_session(self, session: Any, coord: Any) -> None:
        step = int(session.run(self._global_step_read))
        self._report("session_ready", global_step=step, t=time.time())

    def before_run(self, run_context: Any) -> Any:
        return tf.compat.v1.train.SessionRunArgs([self._global_step_read, self._loss])

    def after_run(self, run_context: Any, run_values: Any) -> None:
        global_step, loss = run_values.results
        with self._lock:
            self.local_steps += 1
            self.last_global_step, self.last_loss = int(global_step), float(loss)
        if time.monotonic() >= self._next_report:
            self._next_report = time.monotonic() + self._every_secs
            self._send("progress")

    def report_latest(self) -> None:
        """Report the latest finished step now (thread-safe; a no-op before the first step)."""
        if self.last_global_step is not None:
            self._send("progress")

    def end(self, session: Any) -> None:
        self.ended = True
        self.last_global_step = int(session.run(self._global_step))
        self._send("progress")

    def _send(self, event: str) -> None:
        with self._lock:
            fields = {
                "global_step": int(self.last_global_step or 0),
                "local_steps": self.local_steps,
                "loss": self.last_loss,
            }
        self._report(event, **fields)
