"""A model for tests/integration/test_data_shards.py: examples carry ids, each step records
the ids it trained on.

``input_fn`` reads ``harness.data.shards()`` (the job's ``data: {examples, shard_size}``);
each shard is one step's batch, its examples' ids ``start .. stop-1``. ``model_fn``'s
train_op appends ``{"task", "ids"}`` to ``params["record"]`` after the update was applied,
in the step itself (a task killed between steps has recorded exactly its applied steps).
With ``params["examples"]``, the same step adds 1 to ``seen[id]`` for each of its examples, a
variable saved in the checkpoints: a checkpoint's ``seen`` says how many times the model's
history (what the checkpoint holds) trained on each example. The chief records
``{"task", "begin", "checkpoint"}`` when it begins a session: the latest checkpoint of
``params["model_dir"]`` then, the one it restores (-1: none).
``params["die_reading"]`` = ``[task, shards, marker]``: that task SIGKILLs itself while its
pipeline reads its ``shards``-th shard (holding it, before the step), unless the marker exists.
"""

from __future__ import annotations

import json
import os
import signal
import time

import tensorflow as tf

import harness.data
from harness import ModelFnOps
from harness.faults import checkpoint_step

v1 = tf.compat.v1


class RestoreRecorder(v1.train.SessionRunHook):
    """The chief's: which checkpoint its session restores (before the session is built)."""

    def __init__(self, record: str, model_dir: str) -> None:
        self._record, self._model_dir = record, model_dir

    def begin(self) -> None:
        line = {"task": _task(), "begin": time.time(), "checkpoint": self._checkpoint()}
        with open(self._record, "a") as f:
            f.write(json.dumps(line) + "\n")

    def _checkpoint(self) -> int:
        return checkpoint_step(self._model_dir) if self._model_dir else -1


def _task() -> str:
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return f"{task.get('type')}:{task.get('index')}"


def input_fn(params):
    read = [0]

    def maybe_die(index):
        read[0] += 1
        who, count, marker = params.get("die_reading") or (None, 0, "")
        if who == _task() and read[0] >= count and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return index

    def load(shard):
        index = tf.numpy_function(maybe_die, [shard["index"]], tf.int64)
        with tf.control_dependencies([index]):
            ids = tf.range(shard["start"], shard["stop"])
        x = tf.cast(ids, tf.float32)[:, None] / 100.0
        return {"x": x, "id": ids}, 2.0 * x + 1.0

    return harness.data.shards().map(load)


def model_fn(features, labels, mode, params):
    w = v1.get_variable("w", [1, 1])
    b = v1.get_variable("b", [1])
    predictions = tf.matmul(features["x"], w) + b
    loss = tf.reduce_mean(tf.square(predictions - labels))
    apply = v1.train.GradientDescentOptimizer(0.05).minimize(
        loss, global_step=v1.train.get_global_step()
    )

    def record(ids):
        time.sleep(params.get("slow_secs", 0.0))
        with open(params["record"], "a") as f:
            f.write(json.dumps({"task": _task(), "ids": [int(i) for i in ids]}) + "\n")
        return 0

    if params.get("examples"):
        seen = v1.get_variable(
            "seen", [params["examples"]], initializer=v1.zeros_initializer(), trainable=False
        )
        ones = tf.ones_like(features["id"], dtype=tf.float32)
        apply = tf.group(apply, v1.scatter_add(seen, features["id"], ones, use_locking=True))
    with tf.control_dependencies([apply]):
        train_op = tf.numpy_function(record, [features["id"]], tf.int64)
    hooks = [RestoreRecorder(params["record"], params.get("model_dir", ""))]
    return ModelFnOps(mode=mode, loss=loss, train_op=train_op, training_chief_hooks=hooks)
