"""Linear regression written as TF1-style model_fn code (raw tf.compat.v1 ops).

The data follow y = 3 x + 2 + noise; training should drive ``weight`` to about 3 and ``bias``
to about 2. The model_fn shows off what the harness runs per role:

- ``training_hooks`` (every trainer): ``ThroughputHook`` logs this task's examples/s;
- ``training_chief_hooks`` (the chief only): ``WeightReportHook`` logs the learned weight and
  bias every ``report_every_steps`` steps and at the end;
- a custom ``Scaffold``: ``init_fn`` sets the bias to ``params['initial_bias']`` when the
  chief initializes (never on workers, never after a restore), and its ``saver`` keeps
  ``params['keep_checkpoints']`` checkpoints.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import tensorflow as tf

from harness import ModeKeys, ModelFnOps

v1 = tf.compat.v1
log = logging.getLogger("examples.linear")


def input_fn(mode, params):
    """Endless batches of (features={'x': [B, 1]}, labels=[B, 1])."""
    del mode
    rng = np.random.default_rng(params.get("seed", 0))
    x = rng.uniform(-1.0, 1.0, size=(4096, 1)).astype(np.float32)
    y = (3.0 * x + 2.0 + rng.normal(0.0, 0.05, size=x.shape)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(({"x": x}, y))
    return (
        dataset.shuffle(4096, seed=params.get("seed", 0))
        .repeat()
        .batch(params.get("batch_size", 32))
    )


def model_fn(features, labels, mode, params, config):
    weight = v1.get_variable("weight", shape=[1, 1], initializer=v1.zeros_initializer())
    bias = v1.get_variable("bias", shape=[1], initializer=v1.zeros_initializer())
    predictions = tf.matmul(features["x"], weight) + bias
    if mode == ModeKeys.INFER:
        return ModelFnOps(mode, predictions={"y": predictions})

    loss = tf.reduce_mean(tf.square(predictions - labels))
    optimizer = v1.train.GradientDescentOptimizer(params.get("learning_rate", 0.1))
    train_op = optimizer.minimize(loss, global_step=v1.train.get_global_step())

    set_initial_bias = bias.assign([params.get("initial_bias", 0.0)])
    scaffold = v1.train.Scaffold(
        init_fn=lambda scaffold, session: session.run(set_initial_bias),
        saver=v1.train.Saver(sharded=True, max_to_keep=params.get("keep_checkpoints", 3)),
    )
    batch_size = tf.shape(features["x"])[0]
    return ModelFnOps(
        mode,
        predictions={"y": predictions},
        loss=loss,
        train_op=train_op,
        eval_metric_ops={"mse": v1.metrics.mean_squared_error(labels, predictions)},
        training_hooks=[ThroughputHook(batch_size, task=f"{config.task_type}:{config.task_id}")],
        training_chief_hooks=[
            WeightReportHook(weight, bias, params.get("report_every_steps", 100))
        ],
        scaffold=scaffold,
    )


class ThroughputHook(v1.train.SessionRunHook):
    """Every trainer: logs this task's examples per second every 5 seconds."""

    def __init__(self, batch_size: tf.Tensor, task: str, every_secs: float = 5.0) -> None:
        self._batch_size = batch_size
        self._task = task
        self._every_secs = every_secs

    def begin(self) -> None:
        self._examples = 0
        self._since = time.monotonic()

    def before_run(self, run_context):
        return v1.train.SessionRunArgs(self._batch_size)

    def after_run(self, run_context, run_values) -> None:
        self._examples += int(run_values.results)
        elapsed = time.monotonic() - self._since
        if elapsed >= self._every_secs:
            print(f"{self._task}: {self._examples / elapsed:.0f} examples/s", flush=True)
            self._examples, self._since = 0, time.monotonic()


class WeightReportHook(v1.train.SessionRunHook):
    """Chief only: prints the learned weight and bias every N global steps and at the end."""

    def __init__(self, weight: tf.Variable, bias: tf.Variable, every_steps: int) -> None:
        self._weight = weight
        self._bias = bias
        self._every_steps = every_steps

    def begin(self) -> None:
        self._global_step = v1.train.get_global_step()
        self._next = 0

    def before_run(self, run_context):
        return v1.train.SessionRunArgs(self._global_step)

    def after_run(self, run_context, run_values) -> None:
        if run_values.results >= self._next:
            self._print(run_context.session, run_values.results)
            self._next = run_values.results + self._every_steps

    def end(self, session) -> None:
        self._print(session, session.run(self._global_step))

    def _print(self, session, step) -> None:
        weight, bias = session.run([self._weight, self._bias])
        print(f"step {step}: weight={weight[0][0]:.3f} bias={bias[0]:.3f}", flush=True)
