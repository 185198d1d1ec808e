"""Signatures: the INFER result as an EstimatorSpec, one SignatureDef per export output.

``infer_estimator_spec`` converts a ``ModelFnOps`` with
``estimator_spec(default_serving_output_alternative_key=default_output)`` (an
``EstimatorSpec`` is used as it is), with clear errors instead of TF's bare KeyError;
``export_outputs`` adds ``serving_default`` (a ``PredictOutput`` of the predictions) when there
are none. ``build_signature_defs`` raises ``ExportError`` naming a signature that cannot be
built or served (TensorFlow's ``build_all_signature_defs`` drops it and only logs it).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from harness.errors import UserCodeError
from harness.estimator_spec import EstimatorSpec
from harness.export.serving_inputs import ExportError, ServingInputs, walk_upstream
from harness.export_output import (
    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    ClassificationOutput,
    ExportOutput,
    PredictOutput,
    RegressionOutput,
)
from harness.model_fn import ModeKeys, ModelFnOps, ProblemType

v1 = tf.compat.v1

_PROBLEM_TYPES = {
    ProblemType.UNSPECIFIED: "UNSPECIFIED: a predict signature",
    ProblemType.CLASSIFICATION: "CLASSIFICATION: a classify signature",
    ProblemType.LINEAR_REGRESSION: "LINEAR_REGRESSION: a regress signature",
    ProblemType.LOGISTIC_REGRESSION: "LOGISTIC_REGRESSION: a classify signature",
}


def infer_estimator_spec(ops: Any, default_output: str | None) -> EstimatorSpec:
    """The INFER result as an EstimatorSpec, with clear errors instead of TF's bare KeyError."""
    if ops.mode != ModeKeys.INFER:
        raise UserCodeError(f"model_fn returned mode={ops.mode!r} when called with mode='infer'")
    if isinstance(ops, EstimatorSpec):
        _check_default_output(default_output, list(ops.export_outputs or {}), "export_outputs")
        return ops
    assert isinstance(ops, ModelFnOps)
    alternatives = ops.output_alternatives or {}
    if not isinstance(alternatives, dict):
        raise ExportError(f"output_alternatives must be a dict, got {type(alternatives).__name__}")
    for key, value in alternatives.items():
        _check_alternative(key, value)
    keys = list(alternatives)
    if len(keys) > 1 and DEFAULT_SERVING_SIGNATURE_DEF_KEY not in keys and default_output is None:
        raise ExportError(
            f"model_fn returned {len(keys)} output_alternatives ({', '.join(keys)}) and none is "
            f"named '{DEFAULT_SERVING_SIGNATURE_DEF_KEY}': choose the one served by default with "
            f"--default-output KEY (one of: {', '.join(keys)}), or name one of them "
            f"'{DEFAULT_SERVING_SIGNATURE_DEF_KEY}' in model_fn"
        )
    _check_default_output(default_output, keys, "output_alternatives")
    try:
        return ops.estimator_spec(default_serving_output_alternative_key=default_output)
    except (ValueError, TypeError) as exc:
        raise ExportError(f"output_alternatives cannot be exported: {exc}") from exc


def _check_alternative(key: str, value: Any) -> None:
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[1], dict)):
        raise ExportError(
            f"output_alternatives[{key!r}] must be (problem_type, {{name: Tensor}}), got {value!r}"
        )
    if not isinstance(value[0], int) or value[0] not in _PROBLEM_TYPES:
        known = "; ".join(f"{n} ({what})" for n, what in _PROBLEM_TYPES.items())
        raise ExportError(
            f"output_alternatives[{key!r}] has unknown problem type {value[0]!r}; use one of "
            f"harness.ProblemType: {known}"
        )


def _check_default_output(default_output: str | None, keys: list[str], field: str) -> None:
    if default_output is not None and default_output not in keys:
        listed = ", ".join(keys) if keys else "none"
        raise ExportError(
            f"--default-output {default_output!r} is not one of model_fn's {field} (keys: {listed})"
        )


def export_outputs(spec: EstimatorSpec) -> dict[str, ExportOutput]:
    if spec.export_outputs:
        return dict(spec.export_outputs)
    return {DEFAULT_SERVING_SIGNATURE_DEF_KEY: PredictOutput(spec.predictions)}


def build_signature_defs(
    export_outputs: dict[str, ExportOutput], inputs: ServingInputs
) -> dict[str, Any]:
    """One SignatureDef per export output; raises ExportError instead of dropping one."""
    signatures = {}
    for key, output in export_outputs.items():
        supervised = isinstance(output, (ClassificationOutput, RegressionOutput))
        receiver = inputs.example_receiver if supervised else inputs.predict_receiver
        kind = type(output).__name__
        try:
            signature = output.as_signature_def(receiver)
        except ValueError as exc:
            raise ExportError(f"signature {key!r} ({kind}) cannot be built: {exc}") from exc
        _check_servable(key, receiver, signature)
        if not v1.saved_model.signature_def_utils.is_valid_signature(signature):
            raise ExportError(
                f"signature {key!r} ({kind}) is not a valid {signature.method_name} signature "
                f"for TF Serving: inputs {sorted(signature.inputs)}, outputs "
                f"{sorted(signature.outputs)}"
            )
        signatures[key] = signature
    return signatures


def _check_servable(key: str, receiver: dict[str, tf.Tensor], signature: Any) -> None:
    """Raises ExportError when an output needs a placeholder that the signature does not feed."""
    graph = v1.get_default_graph()
    fed = {tensor.ref() for tensor in receiver.values()}
    outputs = [graph.get_tensor_by_name(info.name) for info in signature.outputs.values()]
    for op in walk_upstream(outputs, follow=lambda tensor: tensor.ref() not in fed):
        if op.type == "Placeholder":
            raise ExportError(
                f"signature {key!r} cannot be served: its outputs need the placeholder "
                f"{op.name!r}, which is not among its inputs {sorted(receiver)}"
            )


def describe_signatures(signatures: dict[str, Any]) -> list[str]:
    """One line per signature: key, method, inputs and outputs with dtype and shape."""
    return [
        f"{key}: {sig.method_name}  inputs: {_describe_tensors(sig.inputs)}  "
        f"outputs: {_describe_tensors(sig.outputs)}"
        for key, sig in sorted(signatures.items())
    ]


def _describe_tensors(infos: Any) -> str:
    described = []
    for name, info in sorted(infos.items()):
        shape = "?" if info.tensor_shape.unknown_rank else tf.TensorShape(info.tensor_shape)
        described.append(f"{name} ({tf.dtypes.as_dtype(info.dtype).name}, {shape})")
    return ", ".join(described)
