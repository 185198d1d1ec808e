"""Serving inputs of an export: what model_fn gets, and what each signature is fed with.

Serving inputs, default (TF Serving's conventions):

- Classification and regression signatures take one string tensor of serialized
  ``tf.Example``s, input key ``inputs`` (the ``input_example_tensor`` placeholder). It is parsed
  with ``tf.io.parse_example`` and a feature spec read from input_fn's features: input_fn is
  called (INFER mode, or TRAIN if that fails) in a throwaway graph, and each dense feature of
  shape ``[batch, d1, ...]`` becomes ``FixedLenFeature([d1, ...], dtype)``. tf.Example holds
  float32, int64 and bytes only, so other float/int/bool features are parsed as float32/int64
  and cast back. A single-Tensor features value is the feature ``feature``, as TF named it.
- Predict signatures take one tensor per feature, named after the feature key.

One graph serves both: model_fn is called ONCE, on features that are
``tf.compat.v1.placeholder_with_default(parsed_feature, [None, d1, ...], name=key)``. A
classify or regress request feeds ``inputs``: nothing feeds the per-feature tensors, so they
pass the parsed values on. A predict request feeds the per-feature tensors directly, and the
session prunes everything upstream of a fed tensor, so the example parser never runs. (Both
TF 1.x sessions (TF Serving, ``loader.load``) and TF 2's ``tf.saved_model.load`` work this
way.) Calling model_fn twice, once per receiver, was rejected: the variables of the second call
would only be shared if model_fn used ``tf.compat.v1.get_variable`` under a reusing scope. With
``tf.Variable`` or Keras layers they would be duplicated under other names, and the checkpoint
would no longer restore.

``serving_input_fn: module:function`` in the job YAML replaces all of this. It is called in
the export graph, with whichever of ``params`` and ``config`` it declares. It returns
``(features, receiver_tensors)``, or an object with those two attributes, like TF's
``ServingInputReceiver``. A single Tensor is named ``feature`` or ``input``. Every signature
then takes ``receiver_tensors``, so a classification or regression signature needs exactly one
string receiver tensor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf

from harness.calling import call_input_fn, declared_kwargs, fn_args
from harness.config import RunConfig
from harness.errors import HarnessError, user_location
from harness.export_output import (
    ClassificationOutput,
    ExportOutput,
    PredictOutput,
    RegressionOutput,
)
from harness.job import JobSpec
from harness.model_fn import ModeKeys
from harness.runtime.graph import UserCodeError

v1 = tf.compat.v1

SINGLE_FEATURE_NAME = "feature"
SINGLE_RECEIVER_NAME = "input"


class ExportError(HarnessError, ValueError):
    """The export cannot be done as asked; the message says why and how to fix it."""


def walk_upstream(
    tensors: Iterable[tf.Tensor], follow: Callable[[tf.Tensor], bool] = lambda tensor: True
) -> Iterator[tf.Operation]:
    """Every op the ``tensors`` depend on, through data and control inputs, each once.

    A tensor for which ``follow(tensor)`` is False is not entered (a fed input, say).
    """
    pending = [tensor.op for tensor in tensors if follow(tensor)]
    seen: set[str] = set()
    while pending:
        op = pending.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        yield op
        pending.extend(tensor.op for tensor in op.inputs if follow(tensor))
        pending.extend(op.control_inputs)


@dataclass
class ServingInputs:
    """What model_fn gets, and what each kind of signature is fed with."""

    features: Any
    example_receiver: dict[str, tf.Tensor]  # classification and regression signatures
    predict_receiver: dict[str, tf.Tensor]  # predict (and any other) signatures
    # A ServingInputReceiver's receiver_tensors_alternatives: {name: {key: Tensor}}.
    alternatives: dict[str, dict[str, tf.Tensor]] = field(default_factory=dict)


def used_features(features: dict[str, tf.Tensor], outputs: Any) -> set[str]:
    """The keys of ``features`` whose tensors the ``outputs`` (ExportOutputs) depend on."""
    by_op = {tensor.op.name: key for key, tensor in features.items()}
    tensors = [tensor for output in outputs for tensor in _output_tensors(output)]
    return {by_op[op.name] for op in walk_upstream(tensors) if op.name in by_op}


def _output_tensors(output: ExportOutput) -> list[tf.Tensor]:
    if isinstance(output, PredictOutput):
        return list(output.outputs.values())
    if isinstance(output, ClassificationOutput):
        return [t for t in (output.scores, output.classes) if t is not None]
    if isinstance(output, RegressionOutput):
        return [output.value]
    return [t for t in tf.nest.flatten(getattr(output, "outputs", {})) if tf.is_tensor(t)]


def feature_spec_from_input_fn(
    job: JobSpec, config: RunConfig, input_fn: Any
) -> dict[str, tuple[tf.DType, tf.TensorShape]] | tuple[tf.DType, tf.TensorShape]:
    """``{key: (dtype, shape)}`` of input_fn's features (or one pair for a single Tensor).

    input_fn runs in a throwaway graph, in INFER mode, or in TRAIN mode if INFER fails.
    """
    failures = []
    for mode in (ModeKeys.INFER, ModeKeys.TRAIN):
        with tf.Graph().as_default():
            try:
                features, _ = call_input_fn(input_fn, mode, job.params, config)
            except Exception as exc:
                failures.append(f"mode={mode!r}: {type(exc).__name__}: {exc}")
                continue
        if isinstance(features, dict):
            return {key: _dense_spec(key, value) for key, value in features.items()}
        return _dense_spec(SINGLE_FEATURE_NAME, features)
    raise UserCodeError(
        "input_fn failed, so the serving feature spec cannot be read from its features ("
        + "; ".join(failures)
        + "). Fix input_fn, or set serving_input_fn in the job file."
    )


def _dense_spec(key: str, value: Any) -> tuple[tf.DType, tf.TensorShape]:
    hint = "write a serving_input_fn for it (see docs/evaluation-and-export.md)"
    if not isinstance(value, tf.Tensor):
        raise ExportError(
            f"feature {key!r} is a {type(value).__name__}; the default serving inputs handle "
            f"dense Tensors only: {hint}"
        )
    shape = value.shape
    if shape.rank is None or shape.rank < 1 or not shape[1:].is_fully_defined():
        raise ExportError(
            f"feature {key!r} has shape {shape}; the default serving inputs need a batch "
            f"dimension and fixed other dimensions (tf.io.FixedLenFeature): {hint}"
        )
    if _parse_dtype(value.dtype) is None:
        raise ExportError(
            f"feature {key!r} has dtype {value.dtype.name}, which tf.Example cannot hold: {hint}"
        )
    return value.dtype, shape[1:]


def default_serving_inputs(spec: Any) -> ServingInputs:
    """Serialized tf.Examples for classify/regress, per-feature tensors for predict (see above)."""
    single = not isinstance(spec, dict)
    specs = {SINGLE_FEATURE_NAME: spec} if single else spec
    examples = v1.placeholder(tf.string, [None], name="input_example_tensor")
    parse_spec = {
        key: tf.io.FixedLenFeature(shape, _parse_dtype(dtype))
        for key, (dtype, shape) in specs.items()
    }
    parsed = tf.io.parse_example(examples, parse_spec)
    features = {}
    for key, (dtype, shape) in specs.items():
        value = parsed[key] if parsed[key].dtype == dtype else tf.cast(parsed[key], dtype)
        features[key] = v1.placeholder_with_default(value, [None, *shape], name=_op_name(key))
    return ServingInputs(
        features=features[SINGLE_FEATURE_NAME] if single else features,
        example_receiver={"inputs": examples},
        predict_receiver=features,
    )


def _parse_dtype(dtype: tf.DType) -> tf.DType | None:
    """tf.Example holds float32, int64 and bytes: other floats, ints and bools are cast."""
    if dtype == tf.string:
        return tf.string
    if dtype.is_floating:
        return tf.float32
    if dtype.is_integer or dtype == tf.bool:
        return tf.int64
    return None


def _op_name(key: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.\-/]", "_", key)
    return name if re.match(r"[A-Za-z0-9.]", name) else f"feature_{name}"


def custom_serving_inputs(job: JobSpec, config: RunConfig, fn: Any = None) -> ServingInputs:
    try:
        fn = fn or job.resolve("serving_input_fn")
        result = fn(**declared_kwargs(fn_args(fn), params=job.params or {}, config=config))
    except Exception as exc:
        where = user_location(exc)
        raise UserCodeError(
            f"serving_input_fn failed{f' at {where}' if where else ''}: {type(exc).__name__}: {exc}"
        ) from exc
    if hasattr(result, "features") and hasattr(result, "receiver_tensors"):
        features, receivers = result.features, result.receiver_tensors
    elif isinstance(result, (tuple, list)) and len(result) == 2:
        features, receivers = result
    else:
        raise UserCodeError(
            f"serving_input_fn returned {type(result).__name__}; it must return "
            "(features, receiver_tensors), like tf.estimator.export.ServingInputReceiver"
        )
    if not isinstance(receivers, dict):
        receivers = {SINGLE_RECEIVER_NAME: receivers}
    for key, tensor in receivers.items():
        if not isinstance(tensor, tf.Tensor):
            raise UserCodeError(f"serving_input_fn: receiver_tensors[{key!r}] is not a Tensor")
    alternatives = {
        name: value if isinstance(value, dict) else {SINGLE_RECEIVER_NAME: value}
        for name, value in (getattr(result, "receiver_tensors_alternatives", None) or {}).items()
    }
    return ServingInputs(features, receivers, receivers, alternatives)
