"""The benchmark workload as the harness runs it: a TF1-style ``model_fn`` / ``input_fn``.

The graph is ``bench.workload.build_model``; ``RecorderHook`` goes in ``training_hooks`` (so
it runs on every trainer, as does SyncReplicasOptimizer's hook with ``params["sync_replicas"]``,
with ``is_chief`` set per trainer) and the Scaffold's ``init_fn`` records the chief's
initialization.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from bench import workload
from harness import ModelFnOps


def input_fn(params: dict[str, Any]) -> tf.data.Dataset:
    return workload.input_fn(params)


def model_fn(features: Any, labels: Any, mode: str, params: dict[str, Any], config: Any) -> Any:
    model = workload.build_model(features, labels, params)
    task = f"{config.task_type}:{config.task_id}"
    return ModelFnOps(
        mode,
        predictions={"y": model.predictions},
        loss=model.loss,
        train_op=model.train_op,
        training_hooks=[
            *model.sync_hooks(config.is_chief),
            workload.RecorderHook(model, task, config.is_chief, params),
        ],
        scaffold=tf.compat.v1.train.Scaffold(
            init_fn=workload.mark_init(params["record_dir"], task)
        ),
    )
