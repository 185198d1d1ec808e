"""The TF namespaces TensorFlow 2.21 removed, for users' unchanged model modules.

``import harness.compat`` calls `install()`, which makes these resolve on TF 2.21:

- attributes ``tf.estimator``, ``tf.contrib`` (on ``tensorflow``), ``tf.compat.v1.estimator``,
  ``tf.compat.v1.contrib`` (on the ``tensorflow.compat.v1`` module wrapper) and
  ``tf.compat.v2.estimator``;
- imports ``tensorflow.estimator[.export|.inputs]``, ``tensorflow.contrib[.learn|.framework|
  .layers|.slim|.training|.tpu]``, the same below ``tensorflow.compat.v1`` (and
  ``tensorflow.compat.v2.estimator...``), as ``sys.modules`` entries;
- ``tensorflow.contrib.slim.<module>`` imports (``nets``, ``learning``, ...) as tf_slim's
  modules, and a `RemovedModuleError` for any other import below ``tensorflow.contrib`` or
  ``tensorflow.estimator``, through one finder appended to ``sys.meta_path``.

What each namespace provides is listed in docs/tf1-code.md and in the docstrings of
`harness.compat.estimator` and `harness.compat.contrib`. Unknown names raise
`RemovedAPIError` (an AttributeError) with ``tf.<name> was removed in TensorFlow 2; use <...>``.

`install()` is idempotent, changes nothing TensorFlow itself defines (an ``estimator``
attribute TensorFlow already has is left alone), and needs legacy Keras
(``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported) for the layers that build on
``tf.compat.v1.layers`` (``batch_norm``).

`to_estimator_spec(result)` converts a ``tf.contrib.tpu.TPUEstimatorSpec`` returned by a
model_fn into an EstimatorSpec and returns anything else unchanged.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from harness.compat.removed import RemovedAPIError, RemovedModuleError, install_finder
from harness.compat.tpu import to_estimator_spec

_installed = False


def _set_if_absent(module: Any, name: str, value: ModuleType) -> None:
    try:
        current = getattr(module, name, None)
    except Exception:  # a lazy TF attribute that cannot load counts as absent
        current = None
    if current is None or getattr(current, "__name__", "").startswith("harness.compat"):
        setattr(module, name, value)


def _register(prefix: str, name: str, module: ModuleType) -> None:
    full = f"{prefix}.{name}"
    if sys.modules.get(full) is None:
        sys.modules[full] = module


def install() -> None:
    """Makes ``tf.estimator`` and ``tf.contrib`` resolve (see the module docstring).

    Idempotent; safe to call before or after user modules imported TensorFlow.
    """
    global _installed
    if _installed:
        return
    import tensorflow as tf

    from harness.compat import contrib, estimator

    _set_if_absent(tf, "estimator", estimator)
    _set_if_absent(tf, "contrib", contrib)
    _set_if_absent(tf.compat.v1, "estimator", estimator)
    _set_if_absent(tf.compat.v1, "contrib", contrib)
    _set_if_absent(tf.compat.v2, "estimator", estimator)

    estimator_modules = {
        "estimator": estimator,
        "estimator.export": estimator.export,
        "estimator.inputs": estimator.inputs,
    }
    contrib_modules = {
        "contrib": contrib,
        **{f"contrib.{name}": getattr(contrib, name) for name in contrib.__all__},
    }
    for prefix in ("tensorflow", "tensorflow.compat.v1"):
        for name, module in {**estimator_modules, **contrib_modules}.items():
            _register(prefix, name, module)
    for name, module in estimator_modules.items():
        _register("tensorflow.compat.v2", name, module)
    install_finder()
    _installed = True


install()

__all__ = ["RemovedAPIError", "RemovedModuleError", "install", "to_estimator_spec"]
