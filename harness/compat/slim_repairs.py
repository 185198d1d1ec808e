"""Make tf_slim 1.1.0 work on TF 2.21 by pointing its module globals at what TF moved.

tf_slim refers to three things TF 2.21 no longer has where it looks for them:

- ``tensorflow.python.framework.ops.Tensor`` / ``.IndexedSlices`` (now ``tf.Tensor`` /
  ``tf.IndexedSlices``): used by ``layers.utils.constant_value`` (so ``batch_norm`` on 2-D
  inputs, ``dropout``/``batch_norm`` with a tensor ``is_training``), ``rev_block``,
  ``recompute_grad``, the gradient helpers of ``learning`` and ``training``, and tf_slim's own
  ``optimize_loss``;
- ``variable_scope.variable`` (now ``tf.compat.v1.Variable``): ``local_variable`` and
  ``global_variable``;
- ``tensorflow.python.layers.normalization.BatchNormalization``, which TF 2.21 loads from a
  ``tf_keras`` path that tf_keras 2.21 does not have: ``batch_norm``.

`repair()` replaces those globals, in tf_slim's modules only, by proxies of the original modules
that add the missing names; TensorFlow's own modules are not touched. It is idempotent.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import tensorflow as tf


class _ModuleProxy(types.ModuleType):
    """A module that forwards to ``wrapped`` except for the names given as ``extra``."""

    def __init__(self, wrapped: types.ModuleType, **extra: Any) -> None:
        super().__init__(wrapped.__name__)
        self.__dict__.update(extra)
        self.__dict__["_harness_wrapped"] = wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_harness_wrapped"], name)


def _proxy(module: types.ModuleType, global_name: str, **extra: Any) -> None:
    current = getattr(module, global_name, None)
    if current is None or isinstance(current, _ModuleProxy):
        return
    setattr(module, global_name, _ModuleProxy(current, **extra))


def repair() -> None:
    """Patches the module globals listed in the module docstring (idempotent)."""
    import tf_slim  # noqa: F401  (imports every module patched below)
    import tf_slim.training.training  # noqa: F401

    tensors = {"Tensor": tf.Tensor, "IndexedSlices": tf.IndexedSlices}
    for name, global_name in (
        ("tf_slim.layers.utils", "ops"),
        ("tf_slim.layers.optimizers", "ops"),
        ("tf_slim.layers.rev_block_lib", "framework_ops"),
        ("tf_slim.learning", "ops"),
        ("tf_slim.training.training", "ops"),
    ):
        _proxy(sys.modules[name], global_name, **tensors)
    _proxy(sys.modules["tf_slim.ops.variables"], "variable_scope", variable=tf.compat.v1.Variable)
    layers_module = sys.modules["tf_slim.layers.layers"]
    if not isinstance(layers_module.normalization_layers, _NormalizationLayers):
        layers_module.normalization_layers = _NormalizationLayers()


class _NormalizationLayers:
    """``BatchNormalization`` looked up when ``batch_norm`` runs, not when tf_slim is repaired:
    under Keras 3 (``keras: keras3``) ``tf.compat.v1.layers`` raises, and only code that
    really calls ``batch_norm`` should see that."""

    @property
    def BatchNormalization(self) -> Any:  # noqa: N802 - the module attribute's name
        return tf.compat.v1.layers.BatchNormalization
