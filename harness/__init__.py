"""Run TF1-style model_fn code as a chief/worker/ps cluster on Ray, Kubernetes or local processes.

Public names (imported lazily, so that ``harness --help`` does not load TensorFlow)::

    from harness import Job, fit, Result, Checkpoint, HarnessError, JobSpecError  # the API
    from harness import (ModelFnOps, EstimatorSpec, ModeKeys, ProblemType, PredictionKey,
                         MetricKey, RunConfig, JobSpec, PredictOutput, ClassificationOutput,
                         RegressionOutput)

Importing harness sets ``TF_USE_LEGACY_KERAS=1`` unless it is already set (see
``harness.legacy_keras``).
"""

from __future__ import annotations

from harness import legacy_keras
from harness.lazy import lazy_getattr

# TF 1.x-era layers (tf.compat.v1.layers) need legacy Keras; see harness/legacy_keras.py.
legacy_keras.set_default()

_EXPORTS = {
    "PredictOutput": "harness.export_output",
    "ClassificationOutput": "harness.export_output",
    "RegressionOutput": "harness.export_output",
    "ExportOutput": "harness.export_output",
    "ModelFnOps": "harness.model_fn",
    "ModeKeys": "harness.model_fn",
    "ProblemType": "harness.model_fn",
    "PredictionKey": "harness.model_fn",
    "MetricKey": "harness.model_fn",
    "EstimatorSpec": "harness.estimator_spec",
    "RunConfig": "harness.config",
    "JobSpec": "harness.job",
    "Job": "harness.api",
    "JobSpecError": "harness.job",
    "HarnessError": "harness.errors",
    "fit": "harness.api",
    "Result": "harness.api",
    "Checkpoint": "harness.api",
    "call_model_fn": "harness.calling",
    "call_input_fn": "harness.calling",
    "call_logit_fn": "harness.calling",
    "Estimator": "harness.estimator",
    "TrainSpec": "harness.estimator",
    "EvalSpec": "harness.estimator",
    "train_and_evaluate": "harness.estimator",
    "LatestExporter": "harness.estimator",
    "FinalExporter": "harness.estimator",
    "BestExporter": "harness.estimator",
    "Exporter": "harness.estimator",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
