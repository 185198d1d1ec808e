"""``tf.contrib`` for model code written for TF 1.x.

Provided submodules: ``learn``, ``framework``, ``layers``, ``slim``, ``training`` (HParams) and
``tpu`` (TPUEstimatorSpec, CrossShardOptimizer); see each module's docstring and
docs/tf1-code.md. Any other ``tf.contrib.<name>`` raises `harness.compat.RemovedAPIError` when
used as an attribute and `harness.compat.RemovedModuleError` when imported
(``from tensorflow.contrib import rnn``), both naming the replacement.
"""

from __future__ import annotations

from harness.compat.contrib import framework, layers, learn, slim, tpu, training
from harness.compat.removed import namespace_getattr

__getattr__ = namespace_getattr("contrib", {})

__all__ = ["framework", "layers", "learn", "slim", "tpu", "training"]
