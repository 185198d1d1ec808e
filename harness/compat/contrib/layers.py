"""``tf.contrib.layers``: tf_slim's layers (repaired for TF 2.21) plus what tf_slim lacks.

From tf_slim (``tf_slim.layers``; every name is exercised in a graph by
tests/unit/test_compat_layers.py): the layer functions (``fully_connected``, ``conv2d``,
``max_pool2d``, ``flatten``, ``stack``, ``repeat``, ``batch_norm``, ``layer_norm``,
``group_norm``, ``instance_norm``, ``dropout``, ...), initializers (``xavier_initializer``,
``variance_scaling_initializer``), regularizers (``l1_regularizer``, ``l2_regularizer``,
``l1_l2_regularizer``, ``sum_regularizer``, ``apply_regularization``), ``summarize_*``,
``bucketize``, ``rev_block``/``RevBlock``/``recompute_grad``.

Written here: ``optimize_loss``, ``adaptive_clipping_fn``, ``OPTIMIZER_CLS_NAMES``,
``OPTIMIZER_SUMMARIES`` (`harness.compat.optimizers`; tf_slim's fails on TF 2.21) and
``embed_sequence`` (not in tf_slim). ``safe_embedding_lookup_sparse`` is
``tf.compat.v1.nn.safe_embedding_lookup_sparse``.

Not provided (raise `harness.compat.RemovedAPIError` naming the core replacement): contrib's own
feature columns (``real_valued_column``, ``sparse_column_with_*``, ``embedding_column``,
``input_from_feature_columns``, ...) and anything else.
"""

from __future__ import annotations

import sys
from typing import Any

import tensorflow as tf
from tf_slim.ops.variables import model_variable

from harness.compat import slim_repairs
from harness.compat.optimizers import OPTIMIZER_CLS_NAMES as OPTIMIZER_CLS_NAMES
from harness.compat.optimizers import OPTIMIZER_SUMMARIES as OPTIMIZER_SUMMARIES
from harness.compat.optimizers import adaptive_clipping_fn as adaptive_clipping_fn
from harness.compat.optimizers import optimize_loss as optimize_loss
from harness.compat.removed import namespace_getattr

slim_repairs.repair()  # also imports tf_slim, whose modules are read below

#: tf_slim modules whose ``__all__`` is re-exported here.
_SLIM_MODULES = (
    "tf_slim.layers.layers",
    "tf_slim.layers.initializers",
    "tf_slim.layers.regularizers",
    "tf_slim.layers.summaries",
    "tf_slim.layers.normalization",
    "tf_slim.layers.rev_block_lib",
)

SLIM_NAMES: list[str] = []
for _module_name in _SLIM_MODULES:
    _module = sys.modules[_module_name]
    for _name in _module.__all__:
        globals()[_name] = getattr(_module, _name)
        SLIM_NAMES.append(_name)
bucketize = sys.modules["tf_slim.layers.bucketization_op"].bucketize
SLIM_NAMES.append("bucketize")

safe_embedding_lookup_sparse = tf.compat.v1.nn.safe_embedding_lookup_sparse


def _embedding_lookup_unique(params: Any, ids: Any) -> tf.Tensor:
    """Looks each distinct id up once, then scatters the rows back to ``ids``' shape."""
    ids = tf.convert_to_tensor(ids)
    flat = tf.reshape(ids, [-1])
    unique_ids, positions = tf.unique(flat)
    rows = tf.gather(tf.compat.v1.nn.embedding_lookup(params, unique_ids), positions)
    shape = tf.concat([tf.shape(ids), tf.shape(rows)[1:]], 0)
    return tf.reshape(rows, shape)


def embed_sequence(
    ids: Any,
    vocab_size: int | None = None,
    embed_dim: int | None = None,
    unique: bool = False,
    initializer: Any = None,
    regularizer: Any = None,
    trainable: bool = True,
    scope: Any = None,
    reuse: Any = None,
) -> tf.Tensor:
    """Maps ``[batch, length]`` ids to ``[batch, length, embed_dim]`` embeddings.

    The table is a model variable ``<scope or 'EmbedSequence'>/embeddings`` of shape
    ``[vocab_size, embed_dim]``. Both sizes are required unless ``reuse`` (``ValueError('Must
    specify vocab size and embedding dimension when not reusing. Got vocab_size=... and
    embed_dim=...')``). ``unique=True`` looks each distinct id up once.
    """
    if not (reuse or (vocab_size and embed_dim)):
        raise ValueError(
            "Must specify vocab size and embedding dimension when not reusing. "
            f"Got vocab_size={vocab_size} and embed_dim={embed_dim}"
        )
    with tf.compat.v1.variable_scope(scope, "EmbedSequence", [ids], reuse=reuse):
        shape = [vocab_size, embed_dim]
        if reuse and (vocab_size is None or embed_dim is None):
            shape = None
        embeddings = model_variable(
            "embeddings",
            shape=shape,
            initializer=initializer,
            regularizer=regularizer,
            trainable=trainable,
        )
        if unique:
            return _embedding_lookup_unique(embeddings, ids)
        return tf.compat.v1.nn.embedding_lookup(embeddings, ids)


OWN_NAMES = [
    "OPTIMIZER_CLS_NAMES",
    "OPTIMIZER_SUMMARIES",
    "adaptive_clipping_fn",
    "optimize_loss",
    "embed_sequence",
    "safe_embedding_lookup_sparse",
]

__getattr__ = namespace_getattr("contrib.layers", {})

__all__ = sorted(set(SLIM_NAMES + OWN_NAMES))
