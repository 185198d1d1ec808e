"""Baseline: the benchmark's model under Ray Train's ``TensorflowTrainer``, written as a user would.

Ray Train is worker-only and TF2-style: each of its 3 workers gets ``TF_CONFIG`` and runs a
``MultiWorkerMirroredStrategy`` training loop: synchronous data-parallel training, where a
step all-reduces the gradients of every worker's batch (a different algorithm from the
harness's asynchronous between-graph training with a ps). The model and data are the
benchmark's (``bench.workload``: the same layers, initializers, SGD learning rate and input
pipeline), with a custom loop (no Keras); every worker reads its own batches of the same size
as a harness trainer's.

Each worker records when its first step finished (bring-up: ``trainer.fit()``, on a Ray that
is already up, to the first worker's first step and to the last's). Throughput: after the
first step, the workers warm up (at least ``warmup_secs`` and ``warmup_steps``), then train
for ``window_secs``; rank 0 decides when each phase ends and the workers agree on it with an
all-reduce every ``CHECK_EVERY`` steps (they must all run the same number of steps). A step
here processes ``NUM_WORKERS`` batches, so examples/s = steps/s x batch x ``NUM_WORKERS``.

``run_ray_train`` expects ``ray.init`` to have been called (the benchmark shares one Ray
instance between this baseline and the harness's Ray backend).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

NUM_WORKERS = 3
CHECK_EVERY = 10  # steps between the workers' all-reduce of rank 0's "phase over" flag


@dataclass
class RayTrainRun:
    first_step_secs: float  # fit() -> the first worker's first step
    all_stepping_secs: float  # fit() -> the last worker's first step
    fit_secs: float  # fit() -> fit() returned
    steps_per_sec: float | None = None  # synchronous steps/s in the window (rank 0's clock)
    examples_per_sec: float | None = None  # steps/s x batch x NUM_WORKERS


def _build(params: dict[str, Any], strategy: Any) -> tuple[Any, Any]:
    """The workload's model as TF2 variables and an SGD step under ``strategy``."""
    import tensorflow as tf

    from bench import workload

    _, width_in, hidden, layers = workload.SIZES[params["size"]]

    def glorot(shape: list[int]) -> Any:  # as the workload's glorot_uniform_initializer
        limit = (6.0 / sum(shape)) ** 0.5
        return tf.random.stateless_uniform(shape, seed=[0, 0], minval=-limit, maxval=limit)

    with strategy.scope():
        variables = []
        width = width_in
        for i in range(layers):
            variables.append(tf.Variable(glorot([width, hidden]), name=f"hidden{i}/w"))
            variables.append(tf.Variable(tf.zeros([hidden]), name=f"hidden{i}/b"))
            width = hidden
        variables.append(tf.Variable(tf.zeros([width, 1]), name="weight"))
        variables.append(tf.Variable(tf.zeros([1]), name="bias"))
    learning_rate = params.get("learning_rate", 0.1 if layers == 0 else 0.01)

    def forward(x: Any) -> Any:
        for i in range(layers):
            x = tf.nn.relu(tf.matmul(x, variables[2 * i]) + variables[2 * i + 1])
        return tf.matmul(x, variables[-2]) + variables[-1]

    def replica_step(features: Any, labels: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(forward(features["x"]) - labels))
        grads = tape.gradient(loss, variables)
        grads = tf.distribute.get_replica_context().all_reduce("mean", grads)
        for var, grad in zip(variables, grads, strict=True):
            var.assign_sub(learning_rate * grad)
        return loss

    dataset = strategy.distribute_datasets_from_function(lambda ctx: workload.input_fn(params))
    iterator = iter(dataset)

    @tf.function
    def step() -> Any:
        return strategy.run(replica_step, args=next(iterator))

    return step, variables


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One worker: the workload under MultiWorkerMirroredStrategy (see the module docstring)."""
    import ray.train
    import tensorflow as tf

    rank = ray.train.get_context().get_world_rank()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    step, _ = _build(config, strategy)

    @tf.function
    def agree(flag: Any) -> Any:
        def replica_fn(flag: Any) -> Any:  # the value must come from the replica's device
            return tf.distribute.get_replica_context().all_reduce("sum", tf.identity(flag))

        return strategy.run(replica_fn, args=(flag,))

    step()
    _record(config["record_dir"], f"worker-{rank}.t", repr(time.monotonic()))
    steps, phase_start = 1, time.monotonic()
    marks: list[tuple[float, int]] = []
    phases = ((config["warmup_secs"], config["warmup_steps"]), (config["window_secs"], 0))
    for secs, min_steps in phases:
        while True:
            for _ in range(CHECK_EVERY):
                loss = step()
            steps += CHECK_EVERY
            elapsed = time.monotonic() - phase_start
            over = rank == 0 and elapsed >= secs and steps >= min_steps
            if float(agree(tf.constant(1.0 if over else 0.0))) > 0:
                break
        phase_start = time.monotonic()
        marks.append((phase_start, steps))
    if rank == 0:
        (t0, s0), (t1, s1) = marks
        _record(config["record_dir"], "rate.json", json.dumps({"steps": s1 - s0, "secs": t1 - t0}))
    ray.train.report({"loss": float(strategy.reduce("mean", loss, axis=None))})


def _record(record_dir: str, name: str, text: str) -> None:
    with open(os.path.join(record_dir, name), "w") as f:
        f.write(text)


def run_ray_train(
    run_dir: str, params: dict[str, Any] | None = None, cpu_per_worker: float = 0.5
) -> RayTrainRun:
    """One ``TensorflowTrainer.fit()`` with 3 workers; returns its figures.

    ``params``: ``size`` (default small), ``window_secs``, ``warmup_secs``, ``warmup_steps``.
    """
    from ray.train import RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    from bench.workload import DEFAULT_WARMUP_STEPS, SIZES

    record_dir = os.path.join(run_dir, "records")
    os.makedirs(record_dir, exist_ok=True)
    config = {"size": "small", "window_secs": 2.0, "warmup_secs": 1.0}
    config = {**config, "warmup_steps": DEFAULT_WARMUP_STEPS, **(params or {})}
    trainer = TensorflowTrainer(
        train_loop_per_worker,
        train_loop_config={**config, "record_dir": record_dir},
        scaling_config=ScalingConfig(
            num_workers=NUM_WORKERS, resources_per_worker={"CPU": cpu_per_worker}
        ),
        run_config=RunConfig(storage_path=os.path.join(run_dir, "storage"), name="bench"),
    )
    handler = signal.getsignal(signal.SIGINT)
    t_launch = time.monotonic()
    try:
        trainer.fit()
    finally:
        signal.signal(signal.SIGINT, handler)  # fit() leaves Ctrl-C ignored otherwise
    t_done = time.monotonic()
    firsts = []
    for rank in range(NUM_WORKERS):
        with open(os.path.join(record_dir, f"worker-{rank}.t")) as f:
            firsts.append(float(f.read()))
    with open(os.path.join(record_dir, "rate.json")) as f:
        window = json.load(f)
    rate = window["steps"] / window["secs"]
    return RayTrainRun(
        first_step_secs=min(firsts) - t_launch,
        all_stepping_secs=max(firsts) - t_launch,
        fit_secs=t_done - t_launch,
        steps_per_sec=rate,
        examples_per_sec=rate * SIZES[config["size"]][0] * NUM_WORKERS,
    )
