"""The training loop of a chief or worker task (contrib ``Estimator._train_model``).

``train`` builds the TRAIN graph with the role's hooks, opens the MonitoredSession and runs
``[train_op, loss]`` until a hook (StopAtStepHook at ``max_steps``, the supervisor's stop
signal, a user hook) asks to stop; a chief that joined the live variables at ``max_steps``
runs none (``ChiefSessionCreator.joined_at``). Once every hook's ``end()`` has run (the final
checkpoint is written), a TF session close that hangs is not waited for
(``harness.runtime.closing``). Its ``RunConfig`` comes from the task's ``TaskSpec`` (id and
cluster), which the task passes in (``harness.identity``).

Errors that would fail the same way after a restart are raised as ``UserCodeError``s, which
the task reports as ``user_error`` (never retried, see ``cluster.policy``):

- an exception from a user hook (``hooks.guard``): ``UserHookError``;
- a checkpoint in model_dir that does not fit the graph (TensorFlow's "Restoring from
  checkpoint failed": a key missing from the checkpoint, another shape): ``CheckpointMismatchError``;
- an ``InvalidArgumentError`` at the trainer's first step from an op created in the user's
  code (a reshape or matmul to shapes the data does not have): ``UserGraphError``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from harness.config import RunConfig
from harness.errors import (
    CheckpointMismatchError,
    UserCodeError,
    UserGraphError,
    error_text,
    op_user_location,
)
from harness.identity import TaskSpec
from harness.job import JobSpec
from harness.runtime.closing import BoundedClose, EndMarker
from harness.runtime.graph import TrainGraph, build_train_graph
from harness.runtime.run_config import run_config
from harness.runtime.session import chief_session_creator, monitored_training_session
from hooks import roles
from hooks.guard import guard_user_hooks
from hooks.progress import ProgressHook

log = logging.getLogger(__name__)


def is_user_error(exc: BaseException) -> bool:
    """Errors a restart cannot fix: bad user code, or a diverged (NaN) loss."""
    return isinstance(exc, UserCodeError | tf.compat.v1.train.NanLossDuringTrainingError)


def classify_training_error(
    exc: BaseException, first_step: bool, model_dir: str
) -> UserCodeError | None:
    """The ``UserCodeError`` that ``exc`` amounts to (see the module docstring), or None when
    a restart may help. ``first_step``: no training step of this trainer has finished yet."""
    if isinstance(exc, UserCodeError):
        return exc
    if not isinstance(exc, tf.errors.NotFoundError | tf.errors.InvalidArgumentError):
        return None
    text = error_text(exc)
    if "Restoring from checkpoint failed" in text:
        checkpoint = tf.train.latest_checkpoint(model_dir) or model_dir
        cause = text.split("Original error:", 1)[-1].strip()
        return CheckpointMismatchError(
            f"the checkpoint {checkpoint} does not match the graph: "
            f"{type(exc).__name__}: {cause}. model_dir holds another model's checkpoints: use "
            "a new model_dir, or remove the old checkpoints"
        )
    where = op_user_location(exc.op)
    if first_step and isinstance(exc, tf.errors.InvalidArgumentError) and where:
        return UserGraphError(
            f"the first training step failed in op {exc.op.name!r} created at {where}: "
            f"{type(exc).__name__}: {text}"
        )
    return None


def build_task_graph(
    job: JobSpec, config: RunConfig, report: Any, stop_event: threading.Event
) -> tuple[TrainGraph, ProgressHook]:
    """The task's TRAIN graph with the task-only hooks of ``hooks.roles`` (the reporting and
    stop hooks) among its defaults; returns it and its ProgressHook."""
    try:
        model_fn, input_fn = job.resolve_functions()
    except Exception as exc:
        raise UserCodeError(str(exc), field=getattr(exc, "field", None)) from exc
    task = roles.TaskSignals(report, stop_event)
    graph = build_train_graph(job, config, model_fn, input_fn, task=task)
    progress = next(e.hook for e in graph.role_hooks.hooks if isinstance(e.hook, ProgressHook))
    return graph, progress


def train(
    task: TaskSpec,
    report: Any,
    stop_event: threading.Event,
    dump_listeners: list[Callable[[], None]] | None = None,
    after_training: Callable[[], None] | None = None,
    ready: threading.Event | None = None,
) -> float | None:
    """Train ``task`` (a chief or worker that knows its cluster) until the loop should stop;
    reports ``variables_ready`` (the chief), ``session_ready``, ``progress`` and ``done``.

    ``dump_listeners`` (the task's ``Commands.dump_listeners``) gets a callable that reports
    the latest progress at once, so a stall report names the step the trainer really reached.
    ``after_training`` runs on the chief after the loop ended normally, before ``done`` is
    reported (the task passes the SavedModel export of ``train.export_on_finish``).
    ``ready`` (a worker's; the task's ``Commands.ready_event``) is set when the supervisor
    relays the chief's ``session_ready``: the worker then creates its session at once.
    Raises ``UserCodeError`` for errors that a restart cannot fix (module docstring).
    """
    job = task.job
    config = run_config(task)
    graph, progress = build_task_graph(job, config, report, stop_event)
    if dump_listeners is not None:
        dump_listeners.append(progress.report_latest)
    role_hooks = guard_user_hooks(graph.role_hooks)
    loss = None
    steps = 0
    with graph.graph.as_default():
        try:
            creator = (
                chief_session_creator(
                    job,
                    config,
                    graph.scaffold,
                    on_ready=lambda: report("variables_ready", t=time.time()),
                )
                if config.is_chief
                else None
            )
            marker = EndMarker()
            session = monitored_training_session(
                job,
                config,
                graph.scaffold,
                role_hooks,
                chief_creator=creator,
                ready=ready,
                last_hook=marker,
            )
            with BoundedClose(session, marker, graph.graph) as sess:
                while not sess.should_stop() and not (
                    creator and creator.joined_at(job.train.max_steps)
                ):
                    _, loss = sess.run([graph.train_op, graph.loss])
                    steps += 1
                # The loop ended: the hooks' end() (the chief's final checkpoint) and the
                # session's close follow (bounded once the hooks ended: BoundedClose), which
                # take seconds on a loaded machine; a chief that says so is finishing, not
                # lingering (cluster.watchdogs.lingering_chief).
                report(
                    "progress",
                    global_step=int(progress.last_global_step or 0),
                    local_steps=progress.local_steps,
                    loss=None if loss is None else float(loss),
                    finishing=True,
                )
        except Exception as exc:
            # After a stop signal that had to close the queues (hooks.stop), queue runners may
            # report the closed queues while the session closes; training itself ended
            # normally (every hook's end() ran, the final checkpoint is saved).
            if not (stop_event.is_set() and progress.ended):
                user_error = classify_training_error(exc, steps == 0, job.model_dir)
                if user_error is None or user_error is exc:
                    raise
                raise user_error from exc
            log.warning("ignored an error raised while closing the session after the stop signal")
    if config.is_chief and after_training is not None:
        after_training()
    report(
        "done",
        global_step=int(progress.last_global_step or 0),
        local_steps=progress.local_steps,
        loss=None if loss is None else float(loss),
    )
    return loss
