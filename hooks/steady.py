"""LoggingTensorHook: Estimator's LoggingTensorHook, with one set of fetches every step.

TF's ``LoggingTensorHook`` asks for its tensors only on the steps it logs. Each distinct set
of fetches makes TensorFlow build (and cache) another partitioned graph for ``session.run``
(0.5-1.5 s each on a cluster), and the combinations with the other hooks' cadences keep
producing new sets. This hook asks for the same tensors on every step (the loss and the
global step, which the training loop fetches anyway) and logs them at the same cadence and
in the same format as TF's: only the fetching differs.

Lifecycle (every trainer): ``begin`` resolves the tensors (TF's); ``before_run`` decides
whether this step logs and asks for the tensors on every step; ``after_run`` logs on the
steps that were due (TF's); ``end`` logs once more when ``at_end`` (TF's).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


class LoggingTensorHook(tf.compat.v1.train.LoggingTensorHook):
    def before_run(self, run_context: Any) -> Any:
        self._should_trigger = self._timer.should_trigger_for_step(self._iter_count)
        return tf.compat.v1.train.SessionRunArgs(self._current_tensors)
