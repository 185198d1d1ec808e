"""``tf.contrib.slim``: tf_slim, repaired for TF 2.21, with this package's ``optimize_loss``.

Every public name of ``tf_slim`` (layers, variables, arg scopes, and the submodules ``losses``,
``metrics``, ``learning``, ``evaluation``, ``summaries``, ``queues``, ``data``, ...) is
re-exported; ``optimize_loss``, ``OPTIMIZER_CLS_NAMES``, ``OPTIMIZER_SUMMARIES`` and
``adaptive_clipping_fn`` are `harness.compat.optimizers`' and ``embed_sequence`` is
`harness.compat.contrib.layers`'. ``import tensorflow.contrib.slim.nets`` (and any
``tensorflow.contrib.slim.<module>`` or TF 1.x's ``tensorflow.contrib.slim.python.slim.<module>``)
resolves to the same ``tf_slim.<module>`` object, through `harness.compat.removed.SlimAliasFinder`.
"""

from __future__ import annotations

import types

import tf_slim

from harness.compat import optimizers as _optimizers
from harness.compat import slim_repairs
from harness.compat.contrib import layers as _layers
from harness.compat.removed import namespace_getattr

slim_repairs.repair()

#: Submodule imports below this module are answered by RemovedFinder (aliases of tf_slim's).
__path__: list[str] = []

_SKIPPED = {"absolute_import", "division", "print_function", "six"}

for _name in dir(tf_slim):
    _value = getattr(tf_slim, _name)
    if _name.startswith("_") or _name in _SKIPPED:
        continue
    if isinstance(_value, types.ModuleType) and not _value.__name__.startswith("tf_slim"):
        continue  # TensorFlow modules tf_slim imported for itself (array_ops, ...)
    globals()[_name] = _value  # the names set below this loop win

optimize_loss = _optimizers.optimize_loss
adaptive_clipping_fn = _optimizers.adaptive_clipping_fn
OPTIMIZER_CLS_NAMES = _optimizers.OPTIMIZER_CLS_NAMES
OPTIMIZER_SUMMARIES = _optimizers.OPTIMIZER_SUMMARIES
embed_sequence = _layers.embed_sequence

__getattr__ = namespace_getattr("contrib.slim", {})
