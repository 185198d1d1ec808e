"""Build a trainer's TRAIN graph: device function, global step, input_fn, model_fn, hooks.

Shared by ``harness validate`` (throwaway graphs, no servers) and by the task runner, so what
validate reports is exactly what a task will run. This is contrib ``Estimator._train_model``
up to the MonitoredTrainingSession call:

1. ``with tf.Graph().as_default(), g.device(device_fn)``; device_fn is
   ``replica_device_setter`` when the cluster has ps tasks, else one that puts variables on
   ``/job:chief/task:0`` (the no-ps extension) and compute on the task itself;
2. global step, then ``input_fn(mode=TRAIN)``, then ``model_fn(mode=TRAIN)``; the result is
   checked (a ModelFnOps/EstimatorSpec in TRAIN mode with a loss and a train_op);
3. a ``loss`` scalar summary, as Estimator added;
4. the Scaffold (the model_fn's or a new one) and, when it has no saver and the graph has
   none, Estimator's default sharded Saver with ``max_to_keep=keep_checkpoint_max``;
5. the hooks of the task's role, built from ``hooks.roles``'s table (``build_role_hooks``).

``user_graph`` is the one preamble of every graph that calls the user's functions (TRAIN
here, EVAL in ``harness.runtime.evaluation``, INFER in ``harness.export.graph`` and
``harness.estimator.prediction``): Keras state reset, a new ``tf.Graph``, the job's seed and
the global step; ``call_input_fn_as_user``/``call_model_fn_as_user`` call the user's
functions with their errors raised as ``UserCodeError`` (``user_code``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from harness.calling import call_input_fn, call_model_fn
from harness.config import RunConfig
from harness.errors import UserCodeError, user_location
from harness.job import JobSpec
from harness.legacy_keras import hint as keras_hint
from harness.legacy_keras import reset_keras_state
from harness.model_fn import ModeKeys
from hooks import roles

v1 = tf.compat.v1


@dataclass
class TrainGraph:
    graph: tf.Graph
    loss: tf.Tensor
    train_op: tf.Operation
    scaffold: v1.train.Scaffold
    role_hooks: roles.RoleHooks


def device_function(config: RunConfig) -> Any:
    """Variables on the ps tasks (round robin) or, without ps, on the chief; compute local."""
    if config.task_type is None:
        return None
    if config.num_ps_replicas > 0:
        return v1.train.replica_device_setter(
            ps_tasks=config.num_ps_replicas,
            worker_device=config.worker_device,
            merge_devices=True,
            cluster=config.cluster_spec,
        )
    return v1.train.replica_device_setter(
        ps_tasks=1, ps_device="/job:chief", worker_device=config.worker_device, merge_devices=True
    )


@contextlib.contextmanager
def user_code(name: str, mode: str | None = None) -> Iterator[None]:
    """Re-raise any error of the user's ``name`` (input_fn, model_fn) as UserCodeError.

    The message names the mode it was called in and the user's innermost frame, e.g.
    ``model_fn failed in mode 'eval' at model.py:42 in model_fn: ValueError: ...``.
    """
    try:
        yield
    except UserCodeError:
        raise
    except Exception as exc:
        where = user_location(exc)
        context = (f" in mode {mode!r}" if mode else "") + (f" at {where}" if where else "")
        raise UserCodeError(
            f"{name} failed{context}: {type(exc).__name__}: {exc}{keras_hint(exc)}"
        ) from exc


def resolve_user_fn(job: JobSpec, field: str) -> Callable[..., Any]:
    """The job's ``field`` function (``model_fn``, ``input_fn``, ...), imported; an import
    failure is raised as UserCodeError with JobSpecError's message (field, module, fix)."""
    try:
        return job.resolve(field)
    except ValueError as exc:
        raise UserCodeError(str(exc), field=getattr(exc, "field", None)) from exc


@contextlib.contextmanager
def user_graph(job: JobSpec, device_fn: Any = None, *, seed: bool = True) -> Iterator[tf.Graph]:
    """A new graph, as the default graph, to call the user's functions in.

    Keras state is reset first, outside any graph (``reset_keras_state``); inside, under
    ``device_fn`` when given, the job's ``tf_random_seed`` is set (unless ``seed`` is False)
    and the global step is created, as Estimator did before calling input_fn.
    """
    reset_keras_state()
    graph = tf.Graph()
    devices = graph.device(device_fn) if device_fn is not None else contextlib.nullcontext()
    with graph.as_default(), devices:
        if seed and job.train.tf_random_seed is not None:
            v1.set_random_seed(job.train.tf_random_seed)
        v1.train.get_or_create_global_step()
        yield graph


def call_input_fn_as_user(
    input_fn: Callable[..., Any], mode: str, job: JobSpec, config: RunConfig
) -> tuple[Any, Any]:
    """``(features, labels)`` from ``input_fn`` in ``mode``; its errors raise UserCodeError."""
    with user_code("input_fn", mode):
        return call_input_fn(input_fn, mode, job.params, config)


def call_model_fn_as_user(
    model_fn: Callable[..., Any], features: Any, labels: Any, mode: str, job: JobSpec, config: Any
) -> Any:
    """model_fn's checked result in ``mode``; its errors raise UserCodeError."""
    with user_code("model_fn", mode):
        return call_model_fn(model_fn, features, labels, mode, job.params, config)


def call_user_fns(
    job: JobSpec,
    config: RunConfig,
    model_fn: Callable[..., Any],
    input_fn: Callable[..., Any],
    mode: str,
    *,
    with_labels: bool = True,
) -> tuple[tf.Variable, Any]:
    """In a ``user_graph``: input_fn, then model_fn in ``mode`` (labels None unless
    ``with_labels``). Returns ``(global_step, model_fn's result)``; user errors raise
    UserCodeError."""
    features, labels = call_input_fn_as_user(input_fn, mode, job, config)
    ops = call_model_fn_as_user(
        model_fn, features, labels if with_labels else None, mode, job, config
    )
    return v1.train.get_global_step(), ops


def build_train_graph(
    job: JobSpec,
    config: RunConfig,
    model_fn: Callable[..., Any],
    input_fn: Callable[..., Any],
    extra_trainer_hooks: Callable[[tf.Tensor], Sequence[Any]] = lambda loss: (),
    *,
    task: roles.TaskSignals | None = None,
) -> TrainGraph:
    """Build the TRAIN graph of ``config``'s task. Raises UserCodeError for user mistakes.

    The role's hooks are ``hooks.roles``'s defaults (with ``task``, a cluster task's, also the
    task-only ones), then ``extra_trainer_hooks(loss)``, then the model_fn's.
    """
    with user_graph(job, device_function(config)) as graph:
        global_step, ops = call_user_fns(job, config, model_fn, input_fn, ModeKeys.TRAIN)
        loss, train_op = _check_train_ops(ops)
        if not any(op.name == "loss" for op in graph.get_collection(v1.GraphKeys.SUMMARIES)):
            v1.summary.scalar("loss", loss)
        graph.add_to_collection(v1.GraphKeys.LOSSES, loss)
        scaffold = ops.scaffold or v1.train.Scaffold()
        _add_default_saver(scaffold, job)
        context = roles.BuildContext(job, loss, global_step, scaffold, task)
        role_hooks = roles.build_role_hooks(
            ops, config.task_type or "chief", context, list(extra_trainer_hooks(loss))
        )
    return TrainGraph(graph, loss, train_op, scaffold, role_hooks)


def _check_train_ops(ops: Any) -> tuple[tf.Tensor, tf.Operation]:
    if ops.mode != ModeKeys.TRAIN:
        raise UserCodeError(f"model_fn returned mode={ops.mode!r} when called with mode='train'")
    if ops.loss is None:
        raise UserCodeError("model_fn returned no loss in TRAIN mode. Missing loss.")
    if ops.train_op is None:
        raise UserCodeError("model_fn returned no train_op in TRAIN mode. Missing train_op.")
    train_op = ops.train_op if isinstance(ops.train_op, tf.Operation) else ops.train_op.op
    return ops.loss, train_op


def _add_default_saver(scaffold: v1.train.Scaffold, job: JobSpec) -> None:
    if scaffold.saver is None and not v1.get_collection(v1.GraphKeys.SAVERS):
        v1.add_to_collection(
            v1.GraphKeys.SAVERS,
            v1.train.Saver(
                sharded=True,
                max_to_keep=job.train.keep_checkpoint_max,
                keep_checkpoint_every_n_hours=job.train.keep_checkpoint_every_n_hours,
                defer_build=True,
                save_relative_paths=True,
            ),
        )
