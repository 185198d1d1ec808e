"""model_fns used by the integration tests (imported by real task processes).

Every model is a small linear regression; ``params`` choose the extras:

- ``record``: path of a JSON-lines file; adds LifecycleRecorderHooks (chief-only and
  training), records ``init_fn`` calls, the value and global step each trainer sees after
  session creation, and the global step of each step (``step``) and at the end (``end_step``).
- ``sync``: train with SyncReplicasOptimizer over all trainers, its hook in training_hooks.
- ``slow_secs``: every trainer sleeps that long before each step.
- ``slow_chief_secs``: the chief sleeps that long before each step.
- ``token_trap``: the chief waits for tokens that workers produce (see _token_trap).
- ``keep``: a custom Scaffold saver with that max_to_keep.
- ``failing_chief_hook``: a chief hook that raises in that method ("begin", "after_run", ...).
- ``stall_at_step``: every trainer blocks for an hour once the global step reaches it.
- ``learning_rate``: the optimizer's (default 0.05).
- ``fail_once_at_step`` + ``fail_once_marker``: a chief hook raises once the global step
  reaches it, unless the marker file exists (it creates it): the first run fails, a rerun not.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import tensorflow as tf

from harness import ModelFnOps
from tests.support.recorder import LifecycleRecorderHook, current_task

v1 = tf.compat.v1


def input_fn(params):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(256, 1)).astype(np.float32)
    y = (2.0 * x + 1.0).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).repeat().batch(16)


def _append(path, **record):
    with open(path, "a") as f:
        f.write(json.dumps({"task": current_task(), "pid": os.getpid(), **record}) + "\n")


class SeenMarkerHook(v1.train.SessionRunHook):
    """Records the marker variable's value right after the session exists (every trainer)."""

    def __init__(self, marker, path):
        self._marker, self._path = marker, path

    def after_create_session(self, session, coord):
        value, step = session.run([self._marker, v1.train.get_global_step()])
        _append(self._path, call="seen_marker", value=float(value), global_step=int(step))


class GlobalStepRecorderHook(v1.train.SessionRunHook):
    """Records the global step read at each step, and the one at the end."""

    def __init__(self, path):
        self._path = path

    def before_run(self, run_context):
        return v1.train.SessionRunArgs(v1.train.get_global_step())

    def after_run(self, run_context, run_values):
        _append(self._path, call="step", global_step=int(run_values.results))

    def end(self, session):
        _append(
            self._path, call="end_step", global_step=int(session.run(v1.train.get_global_step()))
        )


class SlowStepHook(v1.train.SessionRunHook):
    """Sleeps before every step: a slow replica (with sync training, the one left waiting)."""

    def __init__(self, secs):
        self._secs = secs

    def before_run(self, run_context):
        time.sleep(self._secs)


class FailingHook(v1.train.SessionRunHook):
    """Raises RuntimeError in the method named ``method``."""

    def __init__(self, method):
        self._method = method

    def _fail(self, method):
        if method == self._method:
            raise RuntimeError(f"the user's hook fails in {method}")

    def begin(self):
        self._fail("begin")

    def after_run(self, run_context, run_values):
        self._fail("after_run")


class FailOnceAtStepHook(v1.train.SessionRunHook):
    """Raises RuntimeError after the step that took the global step to ``step``, once."""

    def __init__(self, step, marker):
        self._step, self._marker = step, marker

    def after_run(self, run_context, run_values):
        reached = run_context.session.run(v1.train.get_global_step()) >= self._step
        if reached and not os.path.exists(self._marker):
            open(self._marker, "w").close()
            raise RuntimeError(f"the chief fails once at step {self._step}")


class StallAtStepHook(v1.train.SessionRunHook):
    """Blocks for an hour after the step that took the global step to ``step``."""

    def __init__(self, step):
        self._step = step

    def after_run(self, run_context, run_values):
        if run_context.session.run(v1.train.get_global_step()) >= self._step:
            time.sleep(3600)


def model_fn(features, labels, mode, params, config):
    w = v1.get_variable("w", [1, 1], initializer=v1.zeros_initializer())
    b = v1.get_variable("b", [1], initializer=v1.zeros_initializer())
    marker = v1.get_variable("marker", [], initializer=v1.zeros_initializer())
    predictions = tf.matmul(features["x"], w) + b
    fail_once = params.get("fail_eval_once_marker")
    if mode == "eval" and fail_once and not os.path.exists(fail_once):
        open(fail_once, "w").close()
        raise RuntimeError("the first evaluation fails (fail_eval_once_marker)")
    if mode == "infer":
        return ModelFnOps(mode, predictions={"y": predictions})
    loss = tf.reduce_mean(tf.square(predictions - labels))
    optimizer = v1.train.GradientDescentOptimizer(params.get("learning_rate", 0.05))
    training_hooks, chief_hooks = [], []
    if params.get("sync"):
        optimizer = v1.train.SyncReplicasOptimizer(
            optimizer,
            replicas_to_aggregate=config.num_worker_replicas,
            total_num_replicas=config.num_worker_replicas,
        )
        training_hooks.append(optimizer.make_session_run_hook(config.is_chief))
    if params.get("slow_secs"):
        training_hooks.append(SlowStepHook(params["slow_secs"]))
    if params.get("slow_chief_secs") and config.is_chief:
        training_hooks.append(SlowStepHook(params["slow_chief_secs"]))
    if params.get("failing_chief_hook"):
        chief_hooks.append(FailingHook(params["failing_chief_hook"]))
    if params.get("fail_once_at_step"):
        chief_hooks.append(
            FailOnceAtStepHook(params["fail_once_at_step"], params["fail_once_marker"])
        )
    if params.get("stall_at_step"):
        training_hooks.append(StallAtStepHook(params["stall_at_step"]))
    train_op = optimizer.minimize(loss, global_step=v1.train.get_global_step())
    if params.get("token_trap"):
        train_op = _token_trap(train_op, config)

    scaffold_args = {}
    record = params.get("record")
    if record:
        set_marker = marker.assign(42.0)

        def init_fn(scaffold, session):
            _append(record, call="init_fn")
            session.run(set_marker)

        scaffold_args["init_fn"] = init_fn
        chief_hooks.append(LifecycleRecorderHook("chief_hook", record))
        training_hooks.append(LifecycleRecorderHook("training_hook", record))
        training_hooks.append(SeenMarkerHook(marker, record))
        training_hooks.append(GlobalStepRecorderHook(record))
    if params.get("keep"):
        scaffold_args["saver"] = v1.train.Saver(sharded=True, max_to_keep=params["keep"])
    return ModelFnOps(
        mode,
        predictions={"y": predictions},
        loss=loss,
        train_op=train_op,
        training_hooks=training_hooks,
        training_chief_hooks=chief_hooks,
        scaffold=v1.train.Scaffold(**scaffold_args),
    )


def _token_trap(train_op, config):
    """The chief needs 1,000 tokens for a step; the workers produce one per step.

    The chief blocks in its first dequeue, whatever the load, while the workers train to
    max_steps (< 1,000) and stop: the shape of SyncReplicasOptimizer's end-of-training hang,
    made deterministic.
    """
    with tf.device("/job:ps/task:0"):
        tokens = v1.FIFOQueue(
            100000, [tf.int32], shapes=[[]], shared_name="test_tokens", name="tokens"
        )
    if config.is_chief:
        with tf.control_dependencies([train_op]):
            return tokens.dequeue_many(1000).op  # more tokens than the workers ever make
    return tf.group(train_op, tokens.enqueue(1))


def model_fn_without_train_op(features, labels, mode):
    w = v1.get_variable("w", [1, 1])
    loss = tf.reduce_mean(tf.square(tf.matmul(features["x"], w) - labels))
    return ModelFnOps(mode, predictions={"y": loss}, loss=loss)


def model_fn_with_bad_hook(features, labels, mode):
    w = v1.get_variable("w", [1, 1])
    loss = tf.reduce_mean(tf.square(tf.matmul(features["x"], w) - labels))
    train_op = v1.train.GradientDescentOptimizer(0.1).minimize(loss, v1.train.get_global_step())
    return ModelFnOps(mode, loss=loss, train_op=train_op, training_hooks=["not a hook"])


def model_fn_with_a_wrong_shape(features, labels, mode):
    """Builds (the batch's shape is unknown), fails at the first step: 16 values into rows of 7."""
    w = v1.get_variable("w", [1, 1])
    rows = tf.reshape(features["x"], [7, -1])  # the op of the user's that fails
    loss = tf.reduce_mean(tf.square(tf.matmul(features["x"], w) - labels)) + tf.reduce_sum(rows)
    train_op = v1.train.GradientDescentOptimizer(0.1).minimize(loss, v1.train.get_global_step())
    return ModelFnOps(mode, loss=loss, train_op=train_op)


def model_fn_that_raises(features, labels, mode):
    raise RuntimeError("boom: the user's model_fn is broken")


def keras3_model_fn(features, labels, mode, params):
    """Keras layers (a Dropout holds a seed generator under Keras 3) inside a model_fn."""
    dense = tf.keras.layers.Dense(1, kernel_initializer="zeros", name="dense")
    hidden = tf.keras.layers.Dropout(0.1)(features["x"], training=mode == "train")
    predictions = dense(hidden)
    if mode == "infer":
        return ModelFnOps(mode, predictions={"y": predictions})
    loss = tf.reduce_mean(tf.square(predictions - labels))
    train_op = v1.train.GradientDescentOptimizer(0.05).minimize(
        loss, global_step=v1.train.get_global_step()
    )
    hooks = [SlowStepHook(params["slow_secs"])] if params.get("slow_secs") else []
    return ModelFnOps(
        mode, predictions={"y": predictions}, loss=loss, train_op=train_op, training_hooks=hooks
    )
