"""A model for tests/integration/test_data_shards.py: examples carry ids, each step records
the ids it trained on.

``input_fn`` reads ``harness.data.shards()`` (the job's ``data: {examples, shard_size}``);
each shard is one step's batch, its examples' ids ``start .. stop-1``. ``model_fn``'s
train_op appends ``{"task", "ids", "t", "started"}`` to ``params["record"]`` after the update
was applied, in the step itself (a task killed between steps has recorded exactly its applied
steps); ``t`` is when the update had been applied, ``started`` when the task's process
started. The chief also records ``{"task", "begin"}`` when its session is about to be
created (before it restores a checkpoint) and ``{"task", "restored", "step"}`` once it was.
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

v1 = tf.compat.v1
STARTED = time.time()


def _append(path: str, line: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


class RestoreRecorder(v1.train.SessionRunHook):
    """The chief's hook: when its session begins to be built, and the step it restored."""

    def __init__(self, record: str) -> None:
        self._record = record

    def begin(self) -> None:
        self._step = v1.train.get_global_step()
        _append(self._record, {"task": _task(), "begin": time.time()})

    def after_create_session(self, session, coord) -> None:
        step = int(session.run(self._step))
        _append(self._record, {"task": _task(), "restored": time.time(), "step": step})


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
        applied = time.time()
        time.sleep(params.get("slow_secs", 0.0))
        line = {"task": _task(), "ids": [int(i) for i in ids], "t": applied, "started": STARTED}
        _append(params["record"], line)
        return 0

    with tf.control_dependencies([apply]):
        train_op = tf.numpy_function(record, [features["id"]], tf.int64)
    hooks = [RestoreRecorder(params["record"])]
    return ModelFnOps(mode=mode, loss=loss, train_op=train_op, training_chief_hooks=hooks)
