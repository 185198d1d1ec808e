"""``tf.contrib.tpu``: what TPU-era model_fns use when they run on CPU/GPU.

``TPUEstimatorSpec`` (converted to an EstimatorSpec as TF's CPU path did) and
``CrossShardOptimizer`` (returns the wrapped optimizer) from `harness.compat.tpu`.
``TPUEstimator``, ``RunConfig``, ``TPUConfig`` and everything else raise
`harness.compat.RemovedAPIError` naming the replacement.
"""

from __future__ import annotations

from harness.compat.removed import namespace_getattr
from harness.compat.tpu import CrossShardOptimizer, TPUEstimatorSpec

__getattr__ = namespace_getattr("contrib.tpu", {})

__all__ = ["CrossShardOptimizer", "TPUEstimatorSpec"]
