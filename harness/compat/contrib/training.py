"""``tf.contrib.training``: only ``HParams`` (`harness.compat.hparams.HParams`).

Everything else (input queues, ``bucket_by_sequence_length``, ``SequenceQueueingStateSaver``,
``train``/``create_train_op``, ...) raises `harness.compat.RemovedAPIError`.
"""

from __future__ import annotations

from harness.compat.hparams import HParams, parse_values
from harness.compat.removed import namespace_getattr

__getattr__ = namespace_getattr("contrib.training", {})

__all__ = ["HParams", "parse_values"]
