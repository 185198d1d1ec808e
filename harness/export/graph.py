"""The INFER graph of an export and its signatures, with no checkpoint.

In a new graph: the global step, the serving inputs, then ``model_fn`` in INFER mode; then one
SignatureDef per export output (``harness.export.signatures``). ``harness validate`` builds it
too. The serving inputs (what model_fn gets, what each signature is fed) come from
``harness.export.serving_inputs``; with the default ones, only the features the export outputs
depend on are kept (``_serving_feature_spec``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from harness.config import RunConfig
from harness.estimator_spec import EstimatorSpec
from harness.export.serving_inputs import (
    ExportError,
    ServingInputs,
    custom_serving_inputs,
    default_serving_inputs,
    feature_spec_from_input_fn,
    used_features,
)
from harness.export.signatures import build_signature_defs, export_outputs, infer_estimator_spec
from harness.job import JobSpec
from harness.model_fn import ModeKeys
from harness.runtime.graph import call_model_fn_as_user, resolve_user_fn, user_graph
from harness.runtime.run_config import local_run_config


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
        signatures = build_signature_defs(export_outputs(spec), inputs)
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
        outputs = export_outputs(spec)
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
    with user_graph(job, seed=False) as graph:
        inputs = make_inputs()
        ops = call_model_fn_as_user(model_fn, inputs.features, None, ModeKeys.INFER, job, config)
        spec = infer_estimator_spec(ops, default_output)
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
        used = used_features(inputs.predict_receiver, export_outputs(probe).values())
    return {key: spec[key] for key in spec if key in used} or spec
