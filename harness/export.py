"""SavedModel export: the INFER graph, one signature per output alternative, TF Serving inputs.

``export_saved_model`` is TF 1.x ``Estimator.export_savedmodel`` on the harness's JobSpec:

1. In a new graph: the global step, the serving inputs (below), then ``model_fn`` in INFER mode.
   A ``ModelFnOps`` is converted with ``estimator_spec(default_serving_output_alternative_key=
   default_output)``; an ``EstimatorSpec`` is used as it is. When there are no export outputs,
   ``serving_default`` is a ``PredictOutput`` of the predictions.
2. Every export output becomes a SignatureDef under its own key, ``serving_default`` included.
   A signature that cannot be built or served raises ``ExportError`` naming it. (TensorFlow's
   ``build_all_signature_defs`` drops such signatures, and only logs it.)
3. The checkpoint (default: the latest in ``model_dir``) is restored with the Scaffold's saver
   (else ``Saver(sharded=True)``). The SavedModel (tag ``serve``, main op = the local and table
   initializers, devices cleared) is written to ``<base>/temp-<timestamp>``, then renamed to
   ``<base>/<timestamp>``, so TF Serving never picks up a half-written version.

The serving inputs (what model_fn gets, what each signature is fed) are built by
``harness.serving_inputs``; with the default ones, only the features the export outputs
depend on are kept (``_serving_feature_spec``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from harness.calling import call_model_fn
from harness.config import RunConfig
from harness.estimator_spec import EstimatorSpec
from harness.evaluation import CheckpointNotFoundError, checkpoint_exists, local_run_config
from harness.export_output import (
    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    ClassificationOutput,
    ExportOutput,
    PredictOutput,
    RegressionOutput,
)
from harness.graph import UserCodeError, resolve_user_fn, user_code
from harness.job import JobSpec
from harness.legacy_keras import reset_keras_state
from harness.model_fn import ModeKeys, ModelFnOps, ProblemType
from harness.serving_inputs import (
    ExportError,
    ServingInputs,
    custom_serving_inputs,
    default_serving_inputs,
    feature_spec_from_input_fn,
    used_features,
    walk_upstream,
)

v1 = tf.compat.v1

EXPORT_DIR_NAME = "export"
_PROBLEM_TYPES = {
    ProblemType.UNSPECIFIED: "UNSPECIFIED: a predict signature",
    ProblemType.CLASSIFICATION: "CLASSIFICATION: a classify signature",
    ProblemType.LINEAR_REGRESSION: "LINEAR_REGRESSION: a regress signature",
    ProblemType.LOGISTIC_REGRESSION: "LOGISTIC_REGRESSION: a classify signature",
}


def export_saved_model(
    job: JobSpec,
    export_dir_base: str,
    checkpoint_path: str | None = None,
    default_output: str | None = None,
    **options: Any,
) -> str:
    """Exports a versioned SavedModel under ``export_dir_base``; returns its directory.

    ``options`` (all optional) replace what the job gives: ``model_fn`` and
    ``serving_input_fn`` (function objects; the latter is called like a job's
    ``serving_input_fn``), ``config`` (the RunConfig model_fn gets, with ``serving_input_fn``
    only); and add
    ``assets_extra`` (``{path in assets.extra: source file}``, copied as TF's Estimator did)
    and ``as_text`` (write ``saved_model.pbtxt``).

    Raises:
        ExportError: an unknown problem type, several output alternatives and no usable default
            key, a feature the default serving inputs cannot parse, a signature that cannot be
            built or served, or a checkpoint that does not fit the INFER graph.
        CheckpointNotFoundError: no checkpoint in model_dir, or none at ``checkpoint_path``.
        UserCodeError: model_fn, input_fn or serving_input_fn fail.
    """
    return _export(job, export_dir_base, checkpoint_path, default_output, **options)[0]


def export_on_finish(job: JobSpec) -> str:
    """Exports the latest checkpoint to ``<model_dir>/export/<timestamp>`` (``export_on_finish``)."""
    return export_saved_model(
        job,
        os.path.join(job.model_dir, EXPORT_DIR_NAME),
        default_output=job.train.export_default_output,
    )


def _export(
    job: JobSpec,
    export_dir_base: str,
    checkpoint_path: str | None,
    default_output: str | None,
    *,
    model_fn: Any = None,
    serving_input_fn: Any = None,
    config: RunConfig | None = None,
    assets_extra: dict[str, str] | None = None,
    as_text: bool = False,
) -> tuple[str, dict[str, Any]]:
    checkpoint_path = _checkpoint(job, checkpoint_path)
    if serving_input_fn is not None:
        export_graph = build_receiver_export_graph(
            job, config or local_run_config(job), model_fn, serving_input_fn, default_output
        )
    else:
        export_graph = build_export_graph(job, default_output, model_fn)
    with export_graph.graph.as_default():
        export_dir = _timestamped_dir(export_dir_base)
        _write(
            export_graph.spec.scaffold,
            checkpoint_path,
            export_graph.signatures,
            export_dir,
            assets_extra=assets_extra,
            as_text=as_text,
        )
    return export_dir, export_graph.signatures


@dataclass
class ExportGraph:
    """The INFER graph of an export, its EstimatorSpec and one SignatureDef per output."""

    graph: tf.Graph
    spec: EstimatorSpec
    signatures: dict[str, Any]


def build_export_graph(
    job: JobSpec, default_output: str | None = None, model_fn: Any = None
) -> ExportGraph:
    """Builds the INFER graph and its signatures, with no checkpoint (``harness validate``
    calls it too). ``model_fn`` defaults to the job's.

    With the default serving inputs, the features are those of input_fn that the export
    outputs depend on (or the job's ``serving_features``): model_fn is first called in a
    throwaway graph to find them, so a feature used only for the loss (labels carried as
    features, ``is_real_example``) is not required from clients.
    """
    config = local_run_config(job)
    if model_fn is None:
        model_fn = resolve_user_fn(job, "model_fn")
    if job.serving_input_fn:
        make_inputs = lambda: custom_serving_inputs(job, config)  # noqa: E731
    else:
        feature_spec = _serving_feature_spec(job, config, model_fn, default_output)
        make_inputs = lambda: default_serving_inputs(feature_spec)  # noqa: E731
    graph, spec, inputs = _infer_graph(job, config, model_fn, make_inputs, default_output)
    with graph.as_default():
        signatures = build_signature_defs(_export_outputs(spec), inputs)
    return ExportGraph(graph, spec, signatures)


def build_receiver_export_graph(
    job: JobSpec,
    config: RunConfig,
    model_fn: Any,
    serving_input_fn: Any,
    default_output: str | None = None,
) -> ExportGraph:
    """The INFER graph of an Estimator-style export, with no checkpoint.

    ``serving_input_fn`` (a function object, or None for the job's) is called like a job's
    ``serving_input_fn``; ``model_fn`` (None: the job's) gets ``config``. Each of the
    receiver's ``receiver_tensors_alternatives`` adds the signatures
    ``<alternative>:<output key>``; one of those that cannot be built or served is left out
    with a warning, as TF's ``build_all_signature_defs`` did.
    """
    if model_fn is None:
        model_fn = resolve_user_fn(job, "model_fn")
    make_inputs = lambda: custom_serving_inputs(job, config, serving_input_fn)  # noqa: E731
    graph, spec, inputs = _infer_graph(job, config, model_fn, make_inputs, default_output)
    with graph.as_default():
        outputs = _export_outputs(spec)
        signatures = build_signature_defs(outputs, inputs)
        for name, receiver in inputs.alternatives.items():
            alternative = ServingInputs(inputs.features, receiver, receiver)
            for key, output in outputs.items():
                try:
                    built = build_signature_defs({key: output}, alternative)
                except ExportError as exc:
                    logging.getLogger(__name__).warning("signature left out: %s", exc)
                    continue
                signatures[f"{name}:{key}"] = built[key]
    return ExportGraph(graph, spec, signatures)


def _infer_graph(
    job: JobSpec, config: RunConfig, model_fn: Any, make_inputs: Any, default_output: str | None
) -> tuple[tf.Graph, EstimatorSpec, ServingInputs]:
    reset_keras_state()
    graph = tf.Graph()
    with graph.as_default():
        v1.train.get_or_create_global_step()
        inputs = make_inputs()
        with user_code("model_fn", ModeKeys.INFER):
            ops = call_model_fn(model_fn, inputs.features, None, ModeKeys.INFER, job.params, config)
        spec = _estimator_spec(ops, default_output)
    return graph, spec, inputs


def _serving_feature_spec(
    job: JobSpec, config: RunConfig, model_fn: Any, default_output: str | None
) -> Any:
    """input_fn's feature spec, narrowed to the features the export outputs use."""
    spec = feature_spec_from_input_fn(job, config, resolve_user_fn(job, "input_fn"))
    if not isinstance(spec, dict):
        return spec
    if job.serving_features is not None:
        unknown = [key for key in job.serving_features if key not in spec]
        if unknown:
            raise ExportError(
                f"serving_features: {unknown} are not among input_fn's features "
                f"({', '.join(sorted(spec))}); list only those"
            )
        return {key: spec[key] for key in job.serving_features}
    graph, probe, inputs = _infer_graph(
        job, config, model_fn, lambda: default_serving_inputs(spec), default_output
    )
    with graph.as_default():
        used = used_features(inputs.predict_receiver, _export_outputs(probe).values())
    return {key: spec[key] for key in spec if key in used} or spec


def _checkpoint(job: JobSpec, checkpoint_path: str | None) -> str:
    if checkpoint_path is None:
        checkpoint_path = tf.train.latest_checkpoint(job.model_dir)
        if checkpoint_path is None:
            raise CheckpointNotFoundError(
                f"no checkpoint in {job.model_dir}: train the model first (harness run), or "
                "pass --checkpoint PATH"
            )
    elif not checkpoint_exists(checkpoint_path):
        raise CheckpointNotFoundError(f"no checkpoint at {checkpoint_path}")
    return checkpoint_path


def _estimator_spec(ops: Any, default_output: str | None) -> EstimatorSpec:
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


def _export_outputs(spec: EstimatorSpec) -> dict[str, ExportOutput]:
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


def _timestamped_dir(export_dir_base: str) -> str:
    """``<base>/<seconds since epoch>`` that does not exist yet (waits a second on a clash)."""
    for _ in range(10):
        path = os.path.join(export_dir_base, str(int(time.time())))
        if not tf.io.gfile.exists(path):
            return path
        time.sleep(1)
    raise ExportError(f"cannot find an unused timestamped directory in {export_dir_base}")


def _write(
    scaffold: v1.train.Scaffold,
    checkpoint_path: str,
    signatures: dict[str, Any],
    export_dir: str,
    assets_extra: dict[str, str] | None = None,
    as_text: bool = False,
) -> None:
    """Restores the checkpoint and writes the SavedModel (via a temp- directory).

    ``assets_extra`` files are copied to ``assets.extra/<destination>`` before the rename.
    """
    local_init_op = scaffold.local_init_op or v1.train.Scaffold.default_local_init_op()
    saver = scaffold.saver or v1.train.Saver(sharded=True)
    temp_dir = os.path.join(os.path.dirname(export_dir), f"temp-{os.path.basename(export_dir)}")
    with v1.Session(config=v1.ConfigProto(allow_soft_placement=True)) as session:
        try:
            saver.restore(session, checkpoint_path)
        except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as exc:
            raise ExportError(
                f"cannot restore {checkpoint_path} into the INFER graph (does model_fn build the "
                f"same variables in INFER mode as in TRAIN mode?): {exc.message}"
            ) from exc
        builder = v1.saved_model.Builder(temp_dir)
        builder.add_meta_graph_and_variables(
            session,
            [tf.saved_model.SERVING],
            signature_def_map=signatures,
            assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS),
            main_op=local_init_op,
            clear_devices=True,
            strip_default_attrs=True,
            saver=saver,
        )
        builder.save(as_text=as_text)
    for destination, source in (assets_extra or {}).items():
        target = os.path.join(temp_dir, "assets.extra", destination)
        tf.io.gfile.makedirs(os.path.dirname(target))
        tf.io.gfile.copy(source, target, overwrite=True)
    tf.io.gfile.rename(temp_dir, export_dir)


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


def export_command(
    job: JobSpec, export_dir: str, checkpoint: str | None, default_output: str | None
) -> int:
    """``harness export``: exports, prints the SavedModel path and its signatures; exit code."""
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # TF's v1 signature builders log deprecation notices
    try:
        path, signatures = _export(job, export_dir, checkpoint, default_output)
    except (ExportError, UserCodeError, CheckpointNotFoundError) as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    finally:
        tf_logger.setLevel(level)
    print(f"harness: exported a SavedModel to {path}")
    print("signatures:")
    for line in describe_signatures(signatures):
        print(f"  {line}")
    return 0
