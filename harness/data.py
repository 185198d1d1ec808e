"""Read a job's data once across failures: the shards of ``data:`` as a ``tf.data.Dataset``.

In ``input_fn`` (TRAIN mode, in a task of ``harness run`` / ``harness.fit``)::

    import harness.data

    def input_fn(params):
        shards = harness.data.shards()          # descriptors: the supervisor's next shard
        return shards.map(load_batch)           # one whole shard per step (docs/data.md)

Each element is a dict of scalars: ``index`` (int64, the shard's position in the epoch),
``epoch`` (int64), ``path`` (string; "" for index ranges), ``start``/``stop`` (int64; 0 for
files). Each pass over the dataset is one epoch: ``shards().repeat(3)`` reads three. The
generator asks the supervisor for the next shard (``harness.data_client``) and ends when
the epoch's queue is empty. ``ranges`` and ``files`` build descriptor lists as the job's
``data:`` section does (``harness.data_spec``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from harness import data_client
from harness.data_spec import files, ranges

__all__ = ["files", "ranges", "shards"]


def _descriptors(epochs: Iterator[int]) -> Iterator[dict[str, Any]]:
    client = data_client.current()
    if client is None:
        raise RuntimeError(
            "harness.data.shards() gets its shards from the supervisor: run the job with "
            "`harness run` or harness.fit, with a data: section in the job"
        )
    epoch = next(epochs)
    while (shard := client.next_shard(epoch)) is not None:
        yield {k: shard[k] for k in ("index", "epoch", "path", "start", "stop")}


def shards() -> Any:
    """A ``tf.data.Dataset`` of this task's shard descriptors (module docstring)."""
    import tensorflow as tf

    epochs = itertools.count()
    signature = {
        "index": tf.TensorSpec((), tf.int64),
        "epoch": tf.TensorSpec((), tf.int64),
        "path": tf.TensorSpec((), tf.string),
        "start": tf.TensorSpec((), tf.int64),
        "stop": tf.TensorSpec((), tf.int64),
    }
    dataset = tf.data.Dataset.from_generator(
        lambda: _descriptors(epochs), output_signature=signature
    )
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False  # no shard read ahead of a step
    return dataset.with_options(options)
