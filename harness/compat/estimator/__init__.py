"""``tf.estimator`` / ``tf.compat.v1.estimator`` for model code written for tf.estimator.

What resolves here (every name is looked up at access time, nothing is copied):

- ``EstimatorSpec`` -> `harness.estimator_spec.EstimatorSpec`;
- ``ModeKeys`` -> the core keys ``TRAIN='train'``, ``EVAL='eval'``, ``PREDICT='infer'``;
- ``RunConfig`` -> `harness.config.RunConfig` (TF's keyword constructor, reads TF_CONFIG);
- ``Estimator``, ``TrainSpec``, ``EvalSpec``, ``train_and_evaluate``, ``Exporter``,
  ``LatestExporter``, ``FinalExporter``, ``BestExporter`` -> the same names in
  `harness.estimator` (an access before that module provides one raises `RemovedAPIError`
  saying so);
- ``WarmStartSettings`` -> `harness.estimator.specs.WarmStartSettings`; ``VocabInfo`` ->
  ``tf.compat.v1.train.VocabInfo``;
- the session-run hooks TF exported here, from ``tf.compat.v1.train``;
- the submodules ``export`` and ``inputs``.

Any other public name raises `harness.compat.RemovedAPIError` naming its replacement.
"""

from __future__ import annotations

from harness.compat.estimator import export, inputs
from harness.compat.removed import namespace_getattr

#: Hooks and helpers TF exported as ``tf.estimator.<name>`` (all from tf.compat.v1.train).
HOOK_NAMES = (
    "SessionRunHook",
    "SessionRunArgs",
    "SessionRunContext",
    "SessionRunValues",
    "LoggingTensorHook",
    "StopAtStepHook",
    "CheckpointSaverHook",
    "CheckpointSaverListener",
    "SummarySaverHook",
    "NanTensorHook",
    "NanLossDuringTrainingError",
    "StepCounterHook",
    "GlobalStepWaiterHook",
    "FinalOpsHook",
    "FeedFnHook",
    "ProfilerHook",
    "SecondOrStepTimer",
)

#: Names provided by `harness.estimator` (written elsewhere; resolved lazily).
ESTIMATOR_NAMES = (
    "Estimator",
    "TrainSpec",
    "EvalSpec",
    "train_and_evaluate",
    "Exporter",
    "LatestExporter",
    "FinalExporter",
    "BestExporter",
)


class ModeKeys:
    """Core ``tf.estimator.ModeKeys`` (``PREDICT`` is contrib's ``'infer'``)."""

    TRAIN = "train"
    EVAL = "eval"
    PREDICT = "infer"


_LAZY: dict[str, tuple[str, str]] = {
    "EstimatorSpec": ("harness.estimator_spec", "EstimatorSpec"),
    "RunConfig": ("harness.config", "RunConfig"),
    **{name: ("tensorflow.compat.v1.train", name) for name in HOOK_NAMES},
    **{name: ("harness.estimator", name) for name in ESTIMATOR_NAMES},
    "WarmStartSettings": ("harness.estimator.specs", "WarmStartSettings"),
    "VocabInfo": ("tensorflow.compat.v1.train", "VocabInfo"),
}

__getattr__ = namespace_getattr("estimator", _LAZY)

__all__ = ["ModeKeys", "export", "inputs", *_LAZY]
