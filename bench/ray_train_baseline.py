"""Baseline: bring-up of Ray Train's ``TensorflowTrainer`` with 3 workers, written as a user would.

Ray Train is worker-only and TF2-style: each worker gets ``TF_CONFIG`` and runs a
``MultiWorkerMirroredStrategy`` training loop. The model is the benchmark's small one, a
linear regression on [32, 1] batches, trained with a custom loop (no Keras). Each worker
records the moment its first training step has finished; the figure is launch (the call to
``trainer.fit()``, on a Ray instance that is already up) to the first worker's first step,
and to the last worker's first step.

``run_ray_train`` expects ``ray.init`` to have been called (the benchmark shares one Ray
instance between this baseline and the harness's Ray backend).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Any

NUM_WORKERS = 3


@dataclass
class RayTrainRun:
    first_step_secs: float  # fit() -> the first worker's first step
    all_stepping_secs: float  # fit() -> the last worker's first step
    fit_secs: float  # fit() -> fit() returned


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One worker: a linear regression under MultiWorkerMirroredStrategy, a few steps."""
    import numpy as np
    import ray.train
    import tensorflow as tf

    rank = ray.train.get_context().get_world_rank()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        weight = tf.Variable(tf.zeros([1, 1]), name="weight")
        bias = tf.Variable(tf.zeros([1]), name="bias")
    rng = np.random.default_rng(rank)
    x = rng.uniform(-1.0, 1.0, size=(32, 1)).astype(np.float32)
    y = (3.0 * x + 2.0).astype(np.float32)

    @tf.function
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        def replica_step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(tf.matmul(x, weight) + bias - y))
            grads = tape.gradient(loss, [weight, bias])
            grads = tf.distribute.get_replica_context().all_reduce("mean", grads)
            weight.assign_sub(0.1 * grads[0])
            bias.assign_sub(0.1 * grads[1])
            return loss

        return strategy.run(replica_step, args=(x, y))

    step(tf.constant(x), tf.constant(y)).numpy()
    _record(config["record_dir"], rank)
    for _ in range(int(config.get("steps", 20)) - 1):
        loss = step(tf.constant(x), tf.constant(y))
    ray.train.report({"loss": float(loss)})


def _record(record_dir: str, rank: int) -> None:
    with open(os.path.join(record_dir, f"worker-{rank}.t"), "w") as f:
        f.write(repr(time.monotonic()))


def run_ray_train(run_dir: str, cpu_per_worker: float = 0.3) -> RayTrainRun:
    """One ``TensorflowTrainer.fit()`` with 3 workers; returns its bring-up figures."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    record_dir = os.path.join(run_dir, "records")
    os.makedirs(record_dir, exist_ok=True)
    trainer = TensorflowTrainer(
        train_loop_per_worker,
        train_loop_config={"record_dir": record_dir},
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
    return RayTrainRun(
        first_step_secs=min(firsts) - t_launch,
        all_stepping_secs=max(firsts) - t_launch,
        fit_secs=t_done - t_launch,
    )
