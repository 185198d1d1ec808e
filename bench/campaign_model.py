"""The fault campaign's model (``bench.campaign``): a small linear regression whose trainers
record every step they make, with their own clock.

``params``:

- ``steps_dir``: a folder; every trainer process appends one JSON line per step to
  ``<steps_dir>/<role>-<index>-<pid>.jsonl``: ``{"t": wall clock after the step, "g": the
  global step the step read}``. One file per process, so the lines of a killed task and of
  its replacement never mix (``bench.campaign_measure`` reads them).
- ``slow_secs``: every trainer sleeps that long before each step (default 0.05), so that a
  run lasts long enough to be killed at chosen steps on a loaded machine.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np
import tensorflow as tf

from harness import ModelFnOps

v1 = tf.compat.v1


def input_fn(params: dict[str, Any]) -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(512, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype=np.float32) + 1.0).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).repeat().batch(32)


def task_key() -> str:
    """This process's ``role:index``, from TF_CONFIG."""
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    return f"{task.get('type', 'local')}:{task.get('index', 0)}"


class StepRecorderHook(v1.train.SessionRunHook):
    """Sleeps ``slow_secs`` before each step; appends ``{"t", "g"}`` after it (see above)."""

    def __init__(self, steps_dir: str, slow_secs: float) -> None:
        role, index = task_key().split(":")
        self._path = os.path.join(steps_dir, f"{role}-{index}-{os.getpid()}.jsonl")
        self._slow_secs = slow_secs
        self._file: Any = None

    def begin(self) -> None:
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        self._file = open(self._path, "a", buffering=1)  # noqa: SIM115 - one line per step

    def before_run(self, run_context: Any) -> Any:
        time.sleep(self._slow_secs)
        return v1.train.SessionRunArgs(v1.train.get_global_step())

    def after_run(self, run_context: Any, run_values: Any) -> None:
        self._file.write(json.dumps({"t": round(time.time(), 4), "g": int(run_values.results)}))
        self._file.write("\n")

    def end(self, session: Any) -> None:
        self._file.close()


def model_fn(features, labels, mode, params):  # noqa: ANN001, ANN201 - the harness' signature
    w = v1.get_variable("w", [4, 1], initializer=v1.zeros_initializer())
    b = v1.get_variable("b", [1], initializer=v1.zeros_initializer())
    predictions = tf.matmul(features["x"], w) + b
    if mode == "infer":
        return ModelFnOps(mode, predictions={"y": predictions})
    loss = tf.reduce_mean(tf.square(predictions - labels))
    train_op = v1.train.GradientDescentOptimizer(0.05).minimize(
        loss, global_step=v1.train.get_global_step()
    )
    hooks = [StepRecorderHook(params["steps_dir"], params.get("slow_secs", 0.05))]
    return ModelFnOps(
        mode, predictions={"y": predictions}, loss=loss, train_op=train_op, training_hooks=hooks
    )
