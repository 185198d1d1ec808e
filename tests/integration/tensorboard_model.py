"""The model of tests/integration/test_tensorboard_live.py (imported by real task processes).

A linear regression whose chief, from global step ``params["hold_from_step"]`` on, waits
before each step until the file ``params["release"]`` exists (at most ``HOLD_SECS``), so a
test can look at TensorBoard while the run is certainly still going, whatever the load. The
chief flushes its summary writer after every step: TensorFlow's writer flushes every 120 s
by itself, and the test should not wait for that.
"""

from __future__ import annotations

import os
import time

import numpy as np
import tensorflow as tf

from harness import ModelFnOps

v1 = tf.compat.v1
HOLD_SECS = 300.0


def input_fn(params):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(256, 1)).astype(np.float32)
    y = (2.0 * x + 1.0).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).repeat().batch(16)


class FlushAndHoldHook(v1.train.SessionRunHook):
    """After each step: flush the summaries of ``model_dir``; hold once the step is reached."""

    def __init__(self, model_dir, release, hold_from_step):
        self._model_dir = model_dir
        self._release = release
        self._hold_from_step = hold_from_step

    def begin(self):
        self._global_step = v1.train.get_global_step()

    def after_run(self, run_context, run_values):
        v1.summary.FileWriterCache.get(self._model_dir).flush()
        if self._release is None:
            return
        step = run_context.session.run(self._global_step)
        deadline = time.monotonic() + HOLD_SECS
        while step >= self._hold_from_step and not os.path.exists(self._release):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)


def model_fn(features, labels, mode, params, config):
    w = v1.get_variable("w", [1, 1], initializer=v1.zeros_initializer())
    b = v1.get_variable("b", [1], initializer=v1.zeros_initializer())
    predictions = tf.matmul(features["x"], w) + b
    loss = tf.reduce_mean(tf.square(predictions - labels))
    train_op = v1.train.GradientDescentOptimizer(0.05).minimize(
        loss, global_step=v1.train.get_global_step()
    )
    hook = FlushAndHoldHook(config.model_dir, params.get("release"), params.get("hold_from_step"))
    return ModelFnOps(
        mode,
        predictions={"y": predictions},
        loss=loss,
        train_op=train_op,
        training_chief_hooks=[hook],
    )
