"""``tf.estimator.inputs``: `numpy_input_fn` and `pandas_input_fn` built on tf.data.

Both return an ``input_fn`` that returns a ``tf.data.Dataset`` of ``(features, labels)`` batches
(or of ``features`` alone when ``y`` is None), which the harness and `harness.Estimator` accept.
TF's versions fed a queue from Python; here a ``Dataset.from_generator`` does the same, so the
arrays are not embedded in the graph (nor in every checkpoint's meta graph).

Rules kept from TF:

- ``shuffle`` must be a bool: ``ValueError('shuffle must be provided and explicitly set as
  boolean (it is recommended to set it as True for training); got None')``.
- ``num_epochs=None`` repeats forever; otherwise the data is read ``num_epochs`` times and the
  last batch may be smaller than ``batch_size``. With ``shuffle=True`` each epoch is a new
  permutation (seeded per input_fn call, so two calls give the same order).
- ``x`` is a dict of arrays (features dict) or one array (features is that tensor); ``y`` is
  None, an array (labels tensor) or a dict of arrays. Every array must have the same length
  (``ValueError('Length of tensors in x and y is mismatched. ...')``); a key in both dicts ->
  ``ValueError('2 duplicate keys are found in both x and y: ...')``.
- pandas: ``x`` a DataFrame (features = its columns), ``y`` a Series or DataFrame with the same
  index (``ValueError('Index for x and y are mismatched. ...')``); ``target_column`` must not be
  a column of ``x`` when ``y`` is given.

``queue_capacity`` is the shuffle buffer's role here and ``num_threads`` is ignored (one
generator feeds the pipeline).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

_SEED = 1234


def _check_shuffle(shuffle: Any) -> None:
    if not isinstance(shuffle, bool):
        raise ValueError(
            "shuffle must be provided and explicitly set as boolean "
            f"(it is recommended to set it as True for training); got {shuffle}"
        )


def _as_arrays(value: Any) -> dict[str, np.ndarray] | np.ndarray:
    if isinstance(value, dict):
        return {key: np.asarray(array) for key, array in value.items()}
    return np.asarray(value)


def _lengths(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [len(array) for array in value.values()]
    return [len(value)]


def _shapes(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: array.shape for key, array in value.items()}
    return value.shape


def _signature(value: Any) -> Any:
    def spec(array: np.ndarray) -> tf.TensorSpec:
        return tf.TensorSpec(shape=(None, *array.shape[1:]), dtype=tf.as_dtype(array.dtype))

    if isinstance(value, dict):
        return {key: spec(array) for key, array in value.items()}
    return spec(value)


def _take(value: Any, indices: np.ndarray) -> Any:
    if isinstance(value, dict):
        return {key: array[indices] for key, array in value.items()}
    return value[indices]


def numpy_input_fn(
    x: Any,
    y: Any = None,
    batch_size: int = 128,
    num_epochs: int | None = 1,
    shuffle: bool | None = None,
    queue_capacity: int = 1000,
    num_threads: int = 1,
) -> Callable[[], tf.data.Dataset]:
    """An input_fn over numpy arrays (rules in the module docstring).

    Returns:
        A function of no arguments returning a ``tf.data.Dataset`` of ``(features, labels)``
        batches, or of ``features`` when ``y`` is None.
    """
    _check_shuffle(shuffle)
    features = _as_arrays(x)
    labels = None if y is None else _as_arrays(y)
    if isinstance(features, dict) and isinstance(labels, dict):
        duplicates = set(features) & set(labels)
        if duplicates:
            raise ValueError(
                f"{len(duplicates)} duplicate keys are found in both x and y: {duplicates}"
            )
    lengths = set(_lengths(features) + ([] if labels is None else _lengths(labels)))
    if len(lengths) != 1:
        raise ValueError(
            "Length of tensors in x and y is mismatched. All elements in x and y must have the "
            f"same length.\nShapes in x: {_shapes(features)}\n"
            f"Shapes in y: {None if labels is None else _shapes(labels)}\n"
        )
    (count,) = lengths
    del queue_capacity, num_threads  # a generator feeds the dataset; see the module docstring

    def batches() -> Any:
        random = np.random.RandomState(_SEED)
        epoch = 0
        while num_epochs is None or epoch < num_epochs:
            order = random.permutation(count) if shuffle else np.arange(count)
            for start in range(0, count, batch_size):
                indices = order[start : start + batch_size]
                if labels is None:
                    yield _take(features, indices)
                else:
                    yield _take(features, indices), _take(labels, indices)
            epoch += 1

    signature: Any = _signature(features)
    if labels is not None:
        signature = (signature, _signature(labels))

    def input_fn() -> tf.data.Dataset:
        return tf.data.Dataset.from_generator(batches, output_signature=signature)

    return input_fn


def pandas_input_fn(
    x: Any,
    y: Any = None,
    batch_size: int = 128,
    num_epochs: int | None = 1,
    shuffle: bool | None = None,
    queue_capacity: int = 1000,
    num_threads: int = 1,
    target_column: str = "target",
) -> Callable[[], tf.data.Dataset]:
    """An input_fn over a pandas DataFrame ``x`` (features: its columns) and ``y``.

    ``y`` is None, a Series (the labels tensor) or a DataFrame (a labels dict). pandas itself is
    only used through the objects passed in.
    """
    _check_shuffle(shuffle)
    if y is not None:
        if target_column in x:
            raise ValueError(
                f"Cannot use name {target_column} for target column: DataFrame already has a "
                f"column with that name: {x.columns}"
            )
        if not np.array_equal(np.asarray(x.index), np.asarray(y.index)):
            raise ValueError(
                f"Index for x and y are mismatched.\nIndex for x: {x.index}\n"
                f"Index for y: {y.index}\n"
            )
    features = {str(column): np.asarray(x[column].values) for column in x.columns}
    labels: Any = None
    if y is not None:
        if hasattr(y, "columns"):
            labels = {str(column): np.asarray(y[column].values) for column in y.columns}
        else:
            labels = np.asarray(y.values)
    return numpy_input_fn(
        features, labels, batch_size, num_epochs, shuffle, queue_capacity, num_threads
    )


__all__ = ["numpy_input_fn", "pandas_input_fn"]
