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

The INFER graph and its signatures are built by ``harness.export.graph``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import tensorflow as tf

from harness.config import RunConfig
from harness.export.graph import build_export_graph, build_receiver_export_graph
from harness.export.serving_inputs import ExportError
from harness.job import JobSpec
from harness.runtime.evaluation import CheckpointNotFoundError, checkpoint_exists
from harness.runtime.run_config import local_run_config

v1 = tf.compat.v1

EXPORT_DIR_NAME = "export"


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
    return export_with_signatures(job, export_dir_base, checkpoint_path, default_output, **options)[
        0
    ]


def export_on_finish(job: JobSpec) -> str:
    """Exports the latest checkpoint to ``<model_dir>/export/<timestamp>`` (``export_on_finish``)."""
    return export_saved_model(
        job,
        os.path.join(job.model_dir, EXPORT_DIR_NAME),
        default_output=job.train.export_default_output,
    )


def export_with_signatures(
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
