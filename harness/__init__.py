"""Run TF1-style model_fn code as a chief/worker/ps cluster on Ray, Kubernetes or local processes.

Public names (imported lazily, so that ``harness --help`` does not load TensorFlow)::

    from harness import (ModelFnOps, EstimatorSpec, ModeKeys, ProblemType, PredictionKey,
                         MetricKey, RunConfig, JobSpec)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelFnOps": "harness.model_fn",
    "ModeKeys": "harness.model_fn",
    "ProblemType": "harness.model_fn",
    "PredictionKey": "harness.model_fn",
    "MetricKey": "harness.model_fn",
    "EstimatorSpec": "harness.estimator_spec",
    "RunConfig": "harness.config",
    "JobSpec": "harness.job",
    "call_model_fn": "harness.calling",
    "call_input_fn": "harness.calling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
