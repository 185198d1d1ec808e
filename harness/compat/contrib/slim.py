"""``tf.contrib.slim``: tf_slim, repaired for TF 2.21, with this package's ``optimize_loss``.

Every public name of ``tf_slim`` (layers, variables, arg scopes, and the submodules ``losses``,
``metrics``, ``learning``, ``evaluation``, ``summaries``, ``queues``, ``data``, ...) is
re-exported, then every name of `harness.compat.contrib.layers` (so ``optimize_loss`` is
`harness.compat.optimizers`' and ``embed_sequence``/``safe_embedding_lookup_sparse`` exist). ``import tensorflow.contrib.slim.nets`` (and any
``tensorflow.contrib.slim.<module>`` or TF 1.x's ``tensorflow.contrib.slim.python.slim.<module>``)
resolves to the same ``tf_slim.<module>`` object, through `harness.compat.removed.SlimAliasFinder`.
"""

from __future__ import annotations

import importlib
import importlib.util
import types
from typing import Any

import tf_slim

from harness.compat import slim_repairs
from harness.compat.contrib import layers as _layers
from harness.compat.removed import namespace_getattr

slim_repairs.repair()

#: Submodule imports below this module are answered by SlimAliasFinder (tf_slim's modules).
__path__: list[str] = []

_SKIPPED = {"absolute_import", "division", "print_function", "six"}

for _name in dir(tf_slim):
    _value = getattr(tf_slim, _name)
    if _name.startswith("_") or _name in _SKIPPED:
        continue
    if isinstance(_value, types.ModuleType) and not _value.__name__.startswith("tf_slim"):
        continue  # TensorFlow modules tf_slim imported for itself (array_ops, ...)
    globals()[_name] = _value  # the names set below this loop win

for _name in _layers.__all__:  # contrib.layers' repaired and rewritten names win
    globals()[_name] = getattr(_layers, _name)

_removed_getattr = namespace_getattr("contrib.slim", {})


def __getattr__(name: str) -> Any:
    """A tf_slim submodule not imported yet (``slim.nets``), else `RemovedAPIError`."""
    if not name.startswith("_") and importlib.util.find_spec(f"tf_slim.{name}") is not None:
        return importlib.import_module(f"tf_slim.{name}")
    return _removed_getattr(name)
