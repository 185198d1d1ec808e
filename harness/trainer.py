"""The training loop of a chief or worker task (contrib ``Estimator._train_model``).

``train`` builds the TRAIN graph with the role's hooks, opens the MonitoredSession and runs
``[train_op, loss]`` until a hook (StopAtStepHook at ``max_steps``, the supervisor's stop
signal, a user hook) asks to stop. Its ``RunConfig`` comes from ``TF_CONFIG``, which the task
has set before calling it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import tensorflow as tf

from harness.config import RunConfig
from harness.graph import TrainGraph, UserCodeError, build_train_graph
from harness.job import JobSpec
from harness.session import monitored_training_session
from hooks.progress import ProgressHook
from hooks.stop import StopSignalHook

log = logging.getLogger(__name__)


def is_user_error(exc: BaseException) -> bool:
    """Errors a restart cannot fix: bad user code, or a diverged (NaN) loss."""
    return isinstance(exc, UserCodeError | tf.compat.v1.train.NanLossDuringTrainingError)


def run_config(job: JobSpec) -> RunConfig:
    """The RunConfig of this task: TF_CONFIG plus the job's checkpoint settings."""
    return RunConfig.from_tf_config(
        model_dir=job.model_dir,
        save_checkpoints_steps=job.train.save_checkpoints_steps,
        save_checkpoints_secs=job.train.checkpoint_secs,
        keep_checkpoint_max=job.train.keep_checkpoint_max,
        keep_checkpoint_every_n_hours=job.train.keep_checkpoint_every_n_hours,
        save_summary_steps=job.train.save_summary_steps,
        log_step_count_steps=job.train.log_step_count_steps,
        tf_random_seed=job.train.tf_random_seed,
        gpu_memory_growth=job.resources.gpu_memory_growth,
    )


def build_task_graph(
    job: JobSpec, config: RunConfig, report: Any, stop_event: threading.Event
) -> tuple[TrainGraph, ProgressHook]:
    """The task's TRAIN graph with the harness's reporting and stop hooks among its defaults."""
    try:
        model_fn, input_fn = job.resolve_functions()
    except Exception as exc:
        raise UserCodeError(str(exc)) from exc
    progress: list[ProgressHook] = []

    def harness_hooks(loss: tf.Tensor) -> list[Any]:
        progress.append(ProgressHook(report, loss))
        unblock_after = max(0.5, job.timeouts.stop_grace_secs / 5)
        return [progress[0], StopSignalHook(stop_event, unblock_after_secs=unblock_after)]

    graph = build_train_graph(job, config, model_fn, input_fn, harness_hooks)
    return graph, progress[0]


def train(job: JobSpec, report: Any, stop_event: threading.Event) -> float | None:
    """Train until the loop should stop; reports ``session_ready``, ``progress`` and ``done``."""
    config = run_config(job)
    graph, progress = build_task_graph(job, config, report, stop_event)
    loss = None
    with graph.graph.as_default():
        try:
            with monitored_training_session(job, config, graph.scaffold, graph.role_hooks) as sess:
                while not sess.should_stop():
                    _, loss = sess.run([graph.train_op, graph.loss])
        except Exception:
            # After a stop signal that had to close the queues (hooks.stop), queue runners may
            # report the closed queues while the session closes; training itself ended
            # normally (every hook's end() ran, the final checkpoint is saved).
            if not (stop_event.is_set() and progress.ended):
                raise
            log.warning("ignored an error raised while closing the session after the stop signal")
    if config.is_chief and job.train.export_on_finish:
        from harness.export import ExportError, export_on_finish

        try:
            path = export_on_finish(job)
        except ExportError as exc:  # a configuration problem: retrying cannot help
            raise UserCodeError(f"train.export_on_finish: {exc}") from exc
        print(f"exported a SavedModel to {path}", flush=True)
    report(
        "done",
        global_step=int(progress.last_global_step or 0),
        local_steps=progress.local_steps,
        loss=None if loss is None else float(loss),
    )
    return loss
