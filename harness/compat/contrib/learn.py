"""``tf.contrib.learn``: the ModelFnOps contract, resolved at access time.

``ModelFnOps``, ``ModeKeys``, ``ProblemType``, ``PredictionKey``, ``MetricKey`` come from
`harness.model_fn`, ``RunConfig`` from `harness.config` and ``Estimator`` from
`harness.estimator`. Anything else (canned estimators, ``Experiment``, ``learn_runner``, heads,
``io``, ``datasets``) raises `harness.compat.RemovedAPIError` naming the replacement.
"""

from __future__ import annotations

from harness.compat.removed import namespace_getattr

_LAZY: dict[str, tuple[str, str]] = {
    **{
        name: ("harness.model_fn", name)
        for name in ("ModelFnOps", "ModeKeys", "ProblemType", "PredictionKey", "MetricKey")
    },
    "RunConfig": ("harness.config", "RunConfig"),
    "Estimator": ("harness.estimator", "Estimator"),
}

__getattr__ = namespace_getattr("contrib.learn", _LAZY)

__all__ = list(_LAZY)
