"""``tf.estimator.export``: export outputs, serving input receivers and their builders.

The output classes (``ExportOutput``, ``PredictOutput``, ``ClassificationOutput``,
``RegressionOutput``) are TensorFlow's own, from `harness.export_output`.

The receivers follow tensorflow_estimator's ``export/export.py``:

- ``features`` and ``receiver_tensors`` may each be a Tensor/SparseTensor/RaggedTensor or a dict
  of them; a single value is wrapped as ``{'feature': t}`` (features) or ``{'input': t}``
  (receiver tensors and each alternative). None -> ``ValueError('features must be defined.')``
  (``'receiver_tensors must be defined.'``, ...). Keys must be strings (``ValueError('feature
  keys must be strings: 1.')``; feature keys may also be ints); values that are not tensors ->
  ``ValueError('feature x must be a Tensor, SparseTensor, or RaggedTensor.')``.
- ``receiver_tensors_alternatives``: None or a dict (``ValueError('receiver_tensors_alternatives
  must be a dict: ...')``) whose values are checked like receiver tensors (the caller's dict is
  updated in place, as in TF).
- `TensorServingInputReceiver` keeps ``features`` as the single tensor given.

`build_parsing_serving_input_receiver_fn` feeds serialized ``tf.Example`` strings through a
placeholder named ``input_example_tensor`` (receiver key ``examples``) into
``tf.compat.v1.io.parse_example``; `build_raw_serving_input_receiver_fn` makes one placeholder
per feature (batch dimension ``default_batch_size``, the rest of the feature's shape, the
feature op's name) and uses them as both features and receiver tensors.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from harness.export_output import (
    ClassificationOutput,
    ExportOutput,
    PredictOutput,
    RegressionOutput,
)

SINGLE_FEATURE_DEFAULT_NAME = "feature"
SINGLE_RECEIVER_DEFAULT_NAME = "input"
SINGLE_LABEL_DEFAULT_NAME = "label"

_DEFAULT_NAMES = {
    "feature": SINGLE_FEATURE_DEFAULT_NAME,
    "label": SINGLE_LABEL_DEFAULT_NAME,
    "receiver_tensor": SINGLE_RECEIVER_DEFAULT_NAME,
    "receiver_tensors_alternative": SINGLE_RECEIVER_DEFAULT_NAME,
}


def _check_tensor(tensor: Any, name: Any, error_label: str = "feature") -> None:
    if isinstance(tensor, (tf.Tensor, tf.SparseTensor, tf.RaggedTensor)):
        return
    shown = f" {name}" if name else ""
    error = ValueError(f"{error_label}{shown} must be a Tensor, SparseTensor, or RaggedTensor.")
    if hasattr(tensor, "tensor"):  # TF's carve-out for objects wrapping a tensor
        try:
            tf.convert_to_tensor(tensor)
        except TypeError:
            raise error from None
        return
    raise error


def _check_key(name: Any, error_label: str, allow_ints: bool) -> None:
    if isinstance(name, str):
        return
    if not allow_ints:
        raise ValueError(f"{error_label} keys must be strings: {name}.")
    if not isinstance(name, int):
        raise ValueError(f"{error_label} keys must be strings or ints: {name}.")


def wrap_and_check_input_tensors(
    tensors: Any, field_name: str, allow_int_keys: bool = False
) -> dict[Any, Any]:
    """``tensors`` as a dict of name -> tensor, checked (rules in the module docstring)."""
    if tensors is None:
        raise ValueError(f"{field_name}s must be defined.")
    if not isinstance(tensors, dict):
        tensors = {_DEFAULT_NAMES[field_name]: tensors}
    for name, tensor in tensors.items():
        _check_key(name, field_name, allow_int_keys)
        _check_tensor(tensor, name, field_name)
    return tensors


_RECEIVER_FIELDS = ["features", "receiver_tensors", "receiver_tensors_alternatives"]


class ServingInputReceiver(collections.namedtuple("ServingInputReceiver", _RECEIVER_FIELDS)):
    """What a serving input function returns: the model's features and the fed tensors."""

    def __new__(
        cls,
        features: Any,
        receiver_tensors: Any,
        receiver_tensors_alternatives: dict[str, Any] | None = None,
    ) -> ServingInputReceiver:
        features = wrap_and_check_input_tensors(features, "feature", allow_int_keys=True)
        receiver_tensors = wrap_and_check_input_tensors(receiver_tensors, "receiver_tensor")
        if receiver_tensors_alternatives is not None:
            if not isinstance(receiver_tensors_alternatives, dict):
                raise ValueError(
                    f"receiver_tensors_alternatives must be a dict: {receiver_tensors_alternatives}."
                )
            for key, alternative in list(receiver_tensors_alternatives.items()):
                receiver_tensors_alternatives[key] = wrap_and_check_input_tensors(
                    alternative, "receiver_tensors_alternative"
                )
        return super().__new__(cls, features, receiver_tensors, receiver_tensors_alternatives)


class TensorServingInputReceiver(
    collections.namedtuple("TensorServingInputReceiver", _RECEIVER_FIELDS)
):
    """A `ServingInputReceiver` whose ``features`` is one Tensor, passed to model_fn as is."""

    def __new__(
        cls,
        features: Any,
        receiver_tensors: Any,
        receiver_tensors_alternatives: dict[str, Any] | None = None,
    ) -> TensorServingInputReceiver:
        if features is None:
            raise ValueError("features must be defined.")
        _check_tensor(features, None)
        receiver = ServingInputReceiver(features, receiver_tensors, receiver_tensors_alternatives)
        return super().__new__(
            cls,
            receiver.features[SINGLE_FEATURE_DEFAULT_NAME],
            receiver.receiver_tensors,
            receiver.receiver_tensors_alternatives,
        )


def build_parsing_serving_input_receiver_fn(
    feature_spec: dict[str, Any], default_batch_size: int | None = None
) -> Callable[[], ServingInputReceiver]:
    """A serving input function parsing fed serialized ``tf.Example`` protos.

    Args:
        feature_spec: ``{name: tf.io.FixedLenFeature | tf.io.VarLenFeature | ...}``.
        default_batch_size: the placeholder's batch dimension (None: any).

    Returns:
        A function building a ``string[default_batch_size]`` placeholder named
        ``input_example_tensor`` and returning ``ServingInputReceiver(parsed features,
        {'examples': placeholder})``.
    """

    def serving_input_receiver_fn() -> ServingInputReceiver:
        examples = tf.compat.v1.placeholder(
            dtype=tf.string, shape=[default_batch_size], name="input_example_tensor"
        )
        features = tf.compat.v1.io.parse_example(examples, feature_spec)
        return ServingInputReceiver(features, {"examples": examples})

    return serving_input_receiver_fn


def _placeholder_like(tensor: Any, default_batch_size: int | None) -> tf.Tensor:
    shape = tf.TensorShape([default_batch_size]).concatenate(tensor.get_shape()[1:])
    try:
        name = tensor.op.name
    except AttributeError:  # eager tensors have no op
        name = None
    return tf.compat.v1.placeholder(dtype=tensor.dtype, shape=shape, name=name)


def build_raw_serving_input_receiver_fn(
    features: dict[str, Any], default_batch_size: int | None = None
) -> Callable[[], ServingInputReceiver]:
    """A serving input function whose features are fed directly.

    Args:
        features: ``{name: Tensor}``; each gives a placeholder's dtype and non-batch shape.
        default_batch_size: the placeholders' batch dimension (None: any).

    Returns:
        A function returning ``ServingInputReceiver(placeholders, placeholders)``.
    """

    def serving_input_receiver_fn() -> ServingInputReceiver:
        placeholders = {
            name: _placeholder_like(tensor, default_batch_size) for name, tensor in features.items()
        }
        return ServingInputReceiver(placeholders, placeholders)

    return serving_input_receiver_fn


__all__ = [
    "ClassificationOutput",
    "ExportOutput",
    "PredictOutput",
    "RegressionOutput",
    "ServingInputReceiver",
    "TensorServingInputReceiver",
    "build_parsing_serving_input_receiver_fn",
    "build_raw_serving_input_receiver_fn",
]

from harness.compat.removed import namespace_getattr  # noqa: E402

__getattr__ = namespace_getattr("estimator.export", {})
