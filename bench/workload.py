"""The benchmark workload: plain TF1 graph code shared by every variant, no project imports.

Both the harness's ``model_fn`` (``bench.harness_model``) and the bare-TF baseline
(``bench.bare_tf``) build their graph with ``build_model`` and read their data through
``input_fn``, so the variants differ only in how the cluster is launched and driven.

Two model sizes:

- ``small``: the linear regression of ``examples/linear`` (a [32, 1] x [1, 1] matmul); a step
  is almost all per-step overhead (Python, session.run, gRPC round trips to the ps);
- ``large``: a 3-layer MLP on [256, 512] batches with 512-wide hidden layers (about 0.8
  GFLOP per step); a step is dominated by the matmuls.

``RecorderHook`` runs on every trainer and writes what the benchmark measures (timestamps on
``time.monotonic()``, which is one system-wide clock on Linux) to ``<record_dir>/<task>.jsonl``.
It also ends the run after a fixed time window, so that every variant trains for the same
wall-clock window however late its workers joined:

- every trainer adds 1 to the shared ``bench/joined`` variable once its session is ready;
- once the chief sees that all ``num_trainers`` joined, it warms up: at least
  ``warmup_secs`` and at least ``warmup_steps`` more steps of its own (default 250: past two
  cadences of the 100-step hooks, so that every set of fetches the hooks ask for has run once
  and TensorFlow has built its partitioned graph before the window), and the global step at
  least ``warmup_steps`` further. It then records ``window`` (the start of the measurement
  window), trains ``window_secs`` more seconds, writes its global step into ``bench/stop_at``
  and stops;
- every trainer stops after the first step where ``global_step >= stop_at > 0``.

With ``params["sync_replicas"]`` the optimizer is TF1's ``SyncReplicasOptimizer`` over every
trainer (``replicas_to_aggregate = num_trainers``), and ``Model.sync_hook(is_chief)`` is its
session hook, which TF1 runs on every trainer with ``is_chief`` set accordingly (in
``training_hooks``, not ``training_chief_hooks``: the workers need it too). A global step is
then one aggregated update of ``num_trainers`` batches.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1

SIZES = {
    # name: (batch, features, hidden width, hidden layers)
    "small": (32, 1, 0, 0),
    "large": (256, 512, 512, 2),
}


def batch_size(params: dict[str, Any]) -> int:
    return SIZES[params.get("size", "small")][0]


def input_fn(params: dict[str, Any]) -> tf.data.Dataset:
    """Endless batches of ``({"x": [B, F]}, y [B, 1])``, y = 3 * sum(x) / F + 2 + noise."""
    batch, features, _, _ = SIZES[params.get("size", "small")]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, size=(4096, features)).astype(np.float32)
    y = (3.0 * x.mean(axis=1, keepdims=True) + 2.0).astype(np.float32)
    y += rng.normal(0.0, 0.05, size=y.shape).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(({"x": x}, y))
    return dataset.shuffle(4096, seed=0).repeat().batch(batch, drop_remainder=True)


@dataclass
class Model:
    """What ``build_model`` returns: the TF1 training tensors and the recorder's variables."""

    predictions: tf.Tensor
    loss: tf.Tensor
    train_op: tf.Operation
    joined: tf.Variable
    stop_at: tf.Variable
    sync_optimizer: Any = None  # the SyncReplicasOptimizer, with params["sync_replicas"]

    def sync_hooks(self, is_chief: bool) -> list[Any]:
        """SyncReplicasOptimizer's session hook for this trainer ([] when training async)."""
        if self.sync_optimizer is None:
            return []
        return [self.sync_optimizer.make_session_run_hook(is_chief)]


DEFAULT_WARMUP_STEPS = 250
LOG_EVERY_N_ITER = 100  # Estimator's default LoggingTensorHook cadence (log_step_count_steps)


def estimator_hooks(model: Model) -> list[Any]:
    """tf.estimator's default training hooks, stock TF1: ``NanTensorHook`` on the loss and
    ``LoggingTensorHook`` on the loss and global step every 100 steps (it fetches them only on
    the steps it logs, so it adds sets of fetches)."""
    tensors = {"loss": model.loss, "step": v1.train.get_global_step()}
    return [
        v1.train.NanTensorHook(model.loss),
        v1.train.LoggingTensorHook(tensors, every_n_iter=LOG_EVERY_N_ITER),
    ]


def build_model(features: dict[str, tf.Tensor], labels: tf.Tensor, params: dict[str, Any]) -> Model:
    """The model graph: a linear regression (small) or an MLP (large), trained with SGD.

    Must be called inside the graph's device scope with a global step already created.
    """
    _, width_in, hidden, layers = SIZES[params.get("size", "small")]
    net = features["x"]
    for i in range(layers):
        weight = v1.get_variable(
            f"hidden{i}/w", [width_in if i == 0 else hidden, hidden], initializer=_glorot()
        )
        bias = v1.get_variable(f"hidden{i}/b", [hidden], initializer=v1.zeros_initializer())
        net = tf.nn.relu(tf.matmul(net, weight) + bias)
    weight = v1.get_variable("weight", [net.shape[1], 1], initializer=v1.zeros_initializer())
    bias = v1.get_variable("bias", [1], initializer=v1.zeros_initializer())
    predictions = tf.matmul(net, weight) + bias
    loss = tf.reduce_mean(tf.square(predictions - labels))
    learning_rate = params.get("learning_rate", 0.1 if layers == 0 else 0.01)
    optimizer = v1.train.GradientDescentOptimizer(learning_rate)
    sync = None
    if params.get("sync_replicas"):
        trainers = int(params["num_trainers"])
        optimizer = sync = v1.train.SyncReplicasOptimizer(
            optimizer, replicas_to_aggregate=trainers, total_num_replicas=trainers
        )
    train_op = optimizer.minimize(loss, global_step=v1.train.get_global_step())
    with tf.name_scope("bench"):
        joined = _counter("joined")
        stop_at = _counter("stop_at")
    return Model(predictions, loss, train_op, joined, stop_at, sync)


def _glorot() -> Any:
    return v1.glorot_uniform_initializer(seed=0)


def _counter(name: str) -> tf.Variable:
    """An int64 scalar shared by every trainer (it lives on the ps like the weights)."""
    return v1.get_variable(
        f"bench_{name}",
        [],
        dtype=tf.int64,
        initializer=v1.zeros_initializer(),
        trainable=False,
        collections=[v1.GraphKeys.GLOBAL_VARIABLES],
    )


def mark_init(record_dir: str, task: str) -> Any:
    """A ``Scaffold.init_fn`` that records when the chief initialized the model."""

    def init_fn(scaffold: Any, session: Any) -> None:
        del scaffold, session
        append_record(record_dir, task, "init")

    return init_fn


def append_record(record_dir: str, task: str, event: str, **fields: Any) -> None:
    """Append one ``{"event", "t", "pid", "ppid", ...}`` line to ``<record_dir>/<task>.jsonl``."""
    line = {"event": event, "t": time.monotonic(), "pid": os.getpid(), "ppid": os.getppid()}
    path = os.path.join(record_dir, task.replace(":", "-") + ".jsonl")
    with open(path, "a") as f:
        f.write(json.dumps({**line, **fields}) + "\n")


class RecorderHook(v1.train.SessionRunHook):
    """Records session readiness, the first step, the chief's (time, global step) samples and
    the end of the loop; ends the run after the time window (see the module docstring)."""

    def __init__(
        self,
        model: Model,
        task: str,
        is_chief: bool,
        params: dict[str, Any],
    ) -> None:
        self._model = model
        self._task = task
        self._is_chief = is_chief
        self._dir = params["record_dir"]
        self._num_trainers = int(params["num_trainers"])
        self._warmup_secs = float(params.get("warmup_secs", 1.0))
        self._warmup_steps = int(params.get("warmup_steps", DEFAULT_WARMUP_STEPS))
        self._window_secs = float(params["window_secs"])

    def begin(self) -> None:
        append_record(self._dir, self._task, "begin")  # the session is about to be created
        self._global_step = v1.train.get_global_step()
        self._join = self._model.joined.assign_add(1)
        self._set_stop = self._model.stop_at.assign(self._global_step.read_value())
        self._steps = 0
        self._armed_at: float | None = None
        self._armed_step = (0, 0)  # (local steps, global step) when every trainer had joined
        self._window_at: float | None = None
        self._stopped = False
        self._samples: list[tuple[float, int]] = []

    def after_create_session(self, session: Any, coord: Any) -> None:
        append_record(self._dir, self._task, "session")
        session.run(self._join)

    def before_run(self, run_context: Any) -> Any:
        # The same fetches on every step: a new set of fetches makes TensorFlow build and
        # register a new graph partition (about a second on a loaded machine).
        return v1.train.SessionRunArgs([self._global_step, self._model.stop_at, self._model.joined])

    def after_run(self, run_context: Any, run_values: Any) -> None:
        now = time.monotonic()
        self._steps += 1
        step, stop_at = int(run_values.results[0]), int(run_values.results[1])
        if self._steps == 1:
            append_record(self._dir, self._task, "first_step", global_step=step)
        if 0 < stop_at <= step:
            run_context.request_stop()
        if not self._is_chief:
            return
        self._samples.append((now, step))
        if self._armed_at is None and int(run_values.results[2]) >= self._num_trainers:
            self._armed_at, self._armed_step = now, (self._steps, step)
            append_record(self._dir, self._task, "all_joined", global_step=step)
        if self._armed_at is not None and self._window_at is None and self._warm(now, step):
            self._window_at = now
            append_record(self._dir, self._task, "window", global_step=step)
        window_over = self._window_at is not None and now - self._window_at >= self._window_secs
        if window_over and not self._stopped:
            self._stopped = True
            run_context.session.run(self._set_stop)
            run_context.request_stop()
            append_record(self._dir, self._task, "stop", global_step=step)

    def _warm(self, now: float, step: int) -> bool:
        """The warm-up after every trainer joined is over (see the module docstring)."""
        assert self._armed_at is not None
        local0, global0 = self._armed_step
        return (
            now - self._armed_at >= self._warmup_secs
            and self._steps - local0 >= self._warmup_steps
            and step - global0 >= self._warmup_steps
        )

    def end(self, session: Any) -> None:
        fields: dict[str, Any] = {"local_steps": self._steps}
        if self._is_chief:
            fields["samples"] = self._samples
        append_record(self._dir, self._task, "end", **fields)
