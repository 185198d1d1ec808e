"""Evaluation of checkpoints: the EVAL graph, one-shot evaluation and the evaluator task.

This is contrib ``Estimator.evaluate`` (``_evaluate_model``) and the evaluator loop of
``train_and_evaluate``, on the harness's JobSpec:

1. ``build_eval_graph``: a new graph (``harness.runtime.graph.user_graph``) with the global
   step, ``input_fn`` (``eval.input_fn`` when set, else the job's ``input_fn``) and
   ``model_fn``, both called in EVAL mode. The result must be in EVAL mode with a loss. As contrib's ``_get_eval_ops`` did, a ``'loss'``
   metric (``tf.compat.v1.metrics.mean(loss)``) is added unless the model supplies one. Each
   ``eval_metric_ops`` entry is a ``(value, update_op)`` pair, or a bare value with no update
   (``_extract_metric_update_ops``). The key ``'global_step'`` is reserved.
2. ``evaluate_checkpoint``: a ``MonitoredSession`` whose ``ChiefSessionCreator`` restores the
   checkpoint with the model's Scaffold (its saver, else a default one) and runs the local and
   table initializers (Scaffold's ``local_init_op``). The update ops then run for
   ``eval.steps`` batches, or to the end of the data (``OutOfRangeError``/``StopIteration``)
   when ``eval.steps`` is null. The metric values and the global step are read once at the end
   (``FinalOpsHook``), as TF's ``_evaluate_once`` did. Each metric is written as a summary at
   that global step. The summaries go to ``<model_dir>/eval``, where TensorBoard shows them
   next to the training curves.
3. ``run_evaluator``: the evaluator task. It polls ``model_dir`` for the newest checkpoint,
   evaluates each one it has not evaluated yet (skipping to the newest and honouring
   ``eval.throttle_secs``), and reports ``eval`` events. Once ``stop_event`` is set, it
   evaluates the final checkpoint (unless it already has) and returns. It only reads
   checkpoints, so it never blocks training.

The evaluation session is local (``master=''``), as Estimator's evaluator was. The graph is
rebuilt for each checkpoint, so the input pipeline starts from the beginning every time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from harness.config import RunConfig
from harness.errors import HarnessError
from harness.identity import TaskSpec
from harness.job import JobSpec, import_function
from harness.model_fn import MetricKey, ModeKeys
from harness.runtime.graph import UserCodeError, call_user_fns, user_graph
from harness.runtime.run_config import local_run_config, run_config

v1 = tf.compat.v1
log = logging.getLogger(__name__)

EVAL_DIR_NAME = "eval"
GLOBAL_STEP_KEY = "global_step"


class CheckpointNotFoundError(HarnessError, ValueError):
    """The checkpoint to evaluate or export does not exist (or was deleted meanwhile)."""


@dataclass
class EvalGraph:
    """The EVAL graph: run ``update_op`` per batch, then read ``value_ops`` once."""

    graph: tf.Graph
    global_step: tf.Variable
    update_op: tf.Operation
    value_ops: dict[str, Any]
    scaffold: v1.train.Scaffold
    hooks: list[Any]


def eval_dir(job: JobSpec) -> str:
    """Where eval summaries go: ``<model_dir>/eval``."""
    return os.path.join(job.model_dir, EVAL_DIR_NAME)


def resolve_eval_functions(job: JobSpec) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(model_fn, eval input_fn)``; raises UserCodeError when one cannot be imported."""
    try:
        model_fn = job.resolve("model_fn")
        if job.eval.input_fn:
            input_fn = import_function(job.eval.input_fn, "eval.input_fn", job.source_dirs)
        else:
            input_fn = job.resolve("input_fn")
    except ValueError as exc:
        raise UserCodeError(str(exc), field=getattr(exc, "field", None)) from exc
    return model_fn, input_fn


def build_eval_graph(
    job: JobSpec, config: RunConfig, model_fn: Callable[..., Any], input_fn: Callable[..., Any]
) -> EvalGraph:
    """Builds the EVAL graph (see the module docstring). Raises UserCodeError for user mistakes."""
    with user_graph(job) as graph:
        global_step, ops = call_user_fns(job, config, model_fn, input_fn, ModeKeys.EVAL)
        if ops.mode != ModeKeys.EVAL:
            raise UserCodeError(f"model_fn returned mode={ops.mode!r} when called with mode='eval'")
        if ops.loss is None:
            raise UserCodeError("model_fn returned no loss in EVAL mode. Missing loss.")
        metrics = dict(ops.eval_metric_ops)
        if MetricKey.LOSS not in metrics:
            metrics[MetricKey.LOSS] = v1.metrics.mean(ops.loss)
        value_ops, update_op = _split_metric_ops(metrics)
        value_ops[GLOBAL_STEP_KEY] = global_step
        scaffold = ops.scaffold or v1.train.Scaffold()
        hooks = list(getattr(ops, "evaluation_hooks", ()))
    return EvalGraph(graph, global_step, update_op, value_ops, scaffold, hooks)


def _split_metric_ops(metrics: dict[str, Any]) -> tuple[dict[str, Any], tf.Operation]:
    """``({name: value}, one grouped update op)`` from ``{name: (value, update_op)}``."""
    values: dict[str, Any] = {}
    updates = []
    for name, metric in metrics.items():
        if name == GLOBAL_STEP_KEY:
            raise UserCodeError(
                "eval_metric_ops must not use the key 'global_step': the evaluation reports "
                "the checkpoint's global step under that name. Rename the metric."
            )
        if isinstance(metric, (tuple, list)):
            if len(metric) != 2:
                raise UserCodeError(
                    f"eval_metric_ops[{name!r}] must be a (value, update_op) pair, as "
                    f"tf.compat.v1.metrics.* return; got {len(metric)} items: {metric!r}"
                )
            values[name] = metric[0]
            updates.append(metric[1])
        else:
            values[name] = metric
    return values, tf.group(*updates, name="eval_update")


def checkpoint_exists(path: str) -> bool:
    """Whether the checkpoint prefix ``path`` is readable (its ``.index`` file exists)."""
    return tf.io.gfile.exists(path + ".index")


def evaluate_checkpoint(
    job: JobSpec,
    checkpoint_path: str,
    summary_dir: str | None = None,
    *,
    config: RunConfig | None = None,
    model_fn: Callable[..., Any] | None = None,
    input_fn: Callable[..., Any] | None = None,
    hooks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Evaluates one checkpoint; returns ``{metric: value, ..., 'global_step': step}``.

    Scalar metrics are floats (non-scalar ones are nested lists); ``global_step`` is an int.
    When ``summary_dir`` is given, one summary per metric is written there at that step.
    ``model_fn``/``input_fn`` are function objects to use instead of the job's (a None one is
    resolved from the job); ``hooks`` run in the evaluation session before the model's
    ``evaluation_hooks``.

    Raises:
        UserCodeError: model_fn/input_fn fail, or the checkpoint does not fit the EVAL graph.
        CheckpointNotFoundError: the checkpoint does not exist (or was deleted meanwhile).
    """
    if not checkpoint_exists(checkpoint_path):
        raise CheckpointNotFoundError(f"no checkpoint at {checkpoint_path}")
    if model_fn is None or input_fn is None:
        resolved = resolve_eval_functions(job)
        model_fn, input_fn = model_fn or resolved[0], input_fn or resolved[1]
    eval_graph = build_eval_graph(job, config or local_run_config(job), model_fn, input_fn)
    raw, steps = _run_evaluation(eval_graph, checkpoint_path, job.eval.steps, hooks)
    global_step = int(raw.pop(GLOBAL_STEP_KEY))
    results, summaries = _convert_results(raw)
    log.info("evaluated %s (%d batches) at global step %d", checkpoint_path, steps, global_step)
    if summary_dir is not None:
        write_eval_summaries(summary_dir, results, global_step, summaries)
    results[GLOBAL_STEP_KEY] = global_step
    return results


def _run_evaluation(
    eval_graph: EvalGraph, checkpoint_path: str, steps: int | None, hooks: Sequence[Any] = ()
) -> tuple[dict[str, Any], int]:
    """Restores, runs the update op ``steps`` times (or to the end of data), reads the values."""
    final = v1.train.FinalOpsHook(eval_graph.value_ops)
    creator = v1.train.ChiefSessionCreator(
        scaffold=eval_graph.scaffold,
        checkpoint_filename_with_path=checkpoint_path,
        config=v1.ConfigProto(allow_soft_placement=True),
    )
    done = 0
    with eval_graph.graph.as_default():
        try:
            session = v1.train.MonitoredSession(creator, hooks=[*hooks, *eval_graph.hooks, final])
        except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, ValueError) as exc:
            # Saver.restore's ValueError "not a valid checkpoint": the chief's Saver deleted
            # it (keep_checkpoint_max) between the check above and the restore.
            if not checkpoint_exists(checkpoint_path):
                raise CheckpointNotFoundError(f"checkpoint {checkpoint_path} vanished") from exc
            if isinstance(exc, ValueError):
                raise
            raise UserCodeError(
                f"cannot restore {checkpoint_path} into the EVAL graph (does model_fn build "
                f"the same variables in EVAL mode as in TRAIN mode?): {exc.message}"
            ) from exc
        with session:  # OutOfRangeError / StopIteration end the loop: the end of the data.
            while not session.should_stop() and (steps is None or done < steps):
                session.run(eval_graph.update_op)
                done += 1
    return dict(final.final_ops_values), done


def _convert_results(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``({name: float or list}, {name: serialized Summary})`` from the fetched metric values."""
    results: dict[str, Any] = {}
    summaries: dict[str, bytes] = {}
    for name, value in raw.items():
        if isinstance(value, bytes):
            summaries[name] = value
            continue
        array = np.asarray(value)
        if array.dtype.kind in "fiub" and array.size == 1:
            results[name] = float(array.reshape(()))
        elif array.dtype.kind in "fiub":
            results[name] = array.tolist()
        else:
            log.warning("skipping metric %s: a %s value has no summary", name, array.dtype)
    return results, summaries


def write_eval_summaries(
    summary_dir: str,
    results: dict[str, Any],
    global_step: int,
    summaries: dict[str, bytes] | None = None,
) -> None:
    """Writes one event at ``global_step``: scalars as simple values, arrays as tensors, and the
    values of serialized Summary metrics tagged ``<name>/<i>`` (as Estimator did)."""
    proto = v1.Summary()
    for name, value in results.items():
        if name == GLOBAL_STEP_KEY:
            continue
        if isinstance(value, float):
            proto.value.add(tag=name, simple_value=value)
        else:
            proto.value.add(tag=name, tensor=tf.make_tensor_proto(np.asarray(value)))
    for name, serialized in (summaries or {}).items():
        parsed = v1.Summary.FromString(serialized)
        for i, entry in enumerate(parsed.value):
            entry.tag = f"{name}/{i}"
        proto.value.extend(parsed.value)
    writer = _summary_writer(summary_dir)
    writer.add_summary(proto, global_step)
    writer.flush()


_WRITERS: dict[str, Any] = {}
_WRITERS_LOCK = threading.Lock()


def _summary_writer(summary_dir: str) -> Any:
    """One FileWriter per directory for the life of the process (like TF's FileWriterCache).

    An events file is named after the second it was opened in and the host: a writer per
    evaluation would overwrite the file of an evaluation in the same second. The pid suffix
    keeps a restarted evaluator from overwriting its predecessor's file.
    """
    with _WRITERS_LOCK:
        writer = _WRITERS.get(summary_dir)
        if writer is None:
            with tf.Graph().as_default():  # FileWriter refuses eager mode.
                writer = v1.summary.FileWriter(summary_dir, filename_suffix=f".{os.getpid()}")
            _WRITERS[summary_dir] = writer
        return writer


def run_evaluator(
    job: JobSpec,
    report: Callable[..., None],
    stop_event: threading.Event,
    poll_secs: float = 0.5,
    *,
    task: TaskSpec | None = None,
) -> None:
    """The evaluator task: evaluates new checkpoints until ``stop_event``, then the final one.

    ``task`` is the evaluator task's ``TaskSpec`` (its RunConfig names the task and the
    training cluster); without one, model_fn gets ``local_run_config(job)``.

    Each evaluation writes summaries to ``<model_dir>/eval`` and calls
    ``report('eval', global_step=step, metrics={name: value})``. Between two evaluations at
    least ``eval.throttle_secs`` pass; checkpoints written meanwhile are skipped for the newest.
    Set ``stop_event`` after the final checkpoint is written: it is then evaluated without
    throttling, and the function returns.

    Raises:
        UserCodeError: model_fn/input_fn are wrong, or checkpoints do not fit the EVAL graph.
    """
    config = local_run_config(job) if task is None else run_config(task)
    resolve_eval_functions(job)  # fail fast on import errors
    last_path: str | None = None
    last_start = -float("inf")
    while True:
        stopping = stop_event.is_set()
        path = tf.train.latest_checkpoint(job.model_dir)
        throttled = time.monotonic() - last_start < job.eval.throttle_secs
        if path is not None and path != last_path and (stopping or not throttled):
            last_start = time.monotonic()
            if _evaluate_and_report(job, path, config, report):
                last_path = path
            continue
        if stopping:
            return
        stop_event.wait(poll_secs)


def _evaluate_and_report(
    job: JobSpec, path: str, config: RunConfig, report: Callable[..., None]
) -> bool:
    """Evaluates ``path`` and reports it; False when the checkpoint vanished meanwhile."""
    try:
        results = evaluate_checkpoint(job, path, eval_dir(job), config=config)
    except CheckpointNotFoundError as exc:
        log.warning("skipping a checkpoint deleted before it could be evaluated: %s", exc)
        return False
    step = results.pop(GLOBAL_STEP_KEY)
    print(f"eval at global step {step}: {format_metrics(results)}", flush=True)
    report("eval", global_step=step, metrics=results)
    return True


def format_metrics(results: dict[str, Any]) -> str:
    """``name=value`` pairs, sorted by name, floats with 6 significant digits."""
    return ", ".join(
        f"{name}={value:.6g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in sorted(results.items())
    )
