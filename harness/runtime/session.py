"""The MonitoredSession of a trainer: what MonitoredTrainingSession builds, per role.

Chief: ``MonitoredSession(ChiefSessionCreator, chief_hooks(...))``, i.e. what
``tf.compat.v1.train.MonitoredTrainingSession(is_chief=True)`` builds when called as contrib's
Estimator did (its hook arguments are ``hooks.roles.session_hook_arguments``:
``save_checkpoint_secs=0`` so that the only saver hook is the one ``hooks.roles`` chose),
except for the session creator: ``harness.runtime.chief_session.ChiefSessionCreator`` is TF's
(the Scaffold's saver restores the latest checkpoint of model_dir, or else ``init_op`` and
``init_fn`` run), but with ``failure.chief_restart: live`` and ps tasks a restarted chief
first joins the variables the ps kept. MonitoredTrainingSession cannot take a session
creator, so ``chief_hooks`` builds its hook list (a unit test compares it with MTS's own).

Worker: what MonitoredTrainingSession builds for ``is_chief=False``
(``MonitoredSession(WorkerSessionCreator(...), hooks)``), except that our
``FastWorkerSessionCreator`` tries again as soon as the supervisor relays the chief's
``variables_ready`` (the ``ready`` event, ``harness.runtime.join``), else every ``poll_secs``
(0.2 s) instead of SessionManager's fixed 30 s, and its tries share one session instead of
opening a new one each; it keeps TF's readiness rules (ready_for_local_init_op, then
local_init_op, then ready_op), never runs init_op or init_fn, and raises
``WorkerNotReadyError`` naming the task after ``max_wait_secs``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from tensorflow.python.training import training_util

from harness.config import RunConfig
from harness.job import JobSpec
from harness.runtime.chief_session import ChiefSessionCreator, tries_to_join
from harness.runtime.join import ReadyTimeout, wait_for_ready
from hooks import roles

v1 = tf.compat.v1


class WorkerNotReadyError(RuntimeError):
    """A worker waited ``max_wait_secs`` and the chief never made the model ready."""


class FastWorkerSessionCreator(v1.train.SessionCreator):
    def __init__(
        self,
        scaffold: v1.train.Scaffold,
        master: str,
        config: Any,
        task_name: str,
        max_wait_secs: float,
        poll_secs: float = 0.2,
        ready: threading.Event | None = None,
    ) -> None:
        self._scaffold = scaffold
        self._master = master
        self._config = config
        self._task_name = task_name
        self._max_wait_secs = max_wait_secs
        self._poll_secs = poll_secs
        self._ready = ready

    def create_session(self) -> Any:
        self._scaffold.finalize()
        graph = v1.get_default_graph()
        manager = v1.train.SessionManager(
            local_init_op=self._scaffold.local_init_op,
            local_init_feed_dict=self._scaffold.local_init_feed_dict,
            ready_op=self._scaffold.ready_op,
            ready_for_local_init_op=self._scaffold.ready_for_local_init_op,
            graph=graph,
            recovery_wait_secs=self._poll_secs,
        )

        sess: Any = None  # the one session every try checks (wait_for_session's)

        def try_once() -> Any | None:
            # One round of SessionManager.wait_for_session's loop (local_init_op once the
            # global variables are ready, then ready_op), on a session kept open between
            # tries, so that a relayed ``ready`` costs two small runs, not a new session.
            nonlocal sess
            first = sess is None
            if first:
                sess = v1.Session(self._master, graph=graph, config=self._config)
            local_ready, _ = manager._try_run_local_init_op(sess)
            if local_ready and manager._model_ready(sess)[0]:
                return sess
            if first:  # the first wait: prepare what runs right after the join
                warm_up(sess, self._scaffold, graph)
            return None

        try:
            return wait_for_ready(try_once, self._ready, self._poll_secs, self._max_wait_secs)
        except BaseException as exc:
            if sess is not None:
                manager._safe_close(sess)
            if not isinstance(exc, ReadyTimeout):
                raise
            raise WorkerNotReadyError(
                f"{self._task_name}: the model was still not initialized after "
                f"{self._max_wait_secs:.0f} s of waiting for the chief. The chief initializes "
                "or restores the variables; check that chief:0 is running and look at its log "
                "(raise timeouts.worker_ready_secs if its initialization is legitimately slow)."
            ) from None


def warm_up(sess: Any, scaffold: v1.train.Scaffold, graph: tf.Graph) -> None:
    """Run, while the worker waits, the fetches it runs right after it joins and that are safe
    before the variables are initialized: ``ready_op`` and the global step's read tensor
    (``ProgressHook.after_create_session``). TensorFlow prepares a graph partition for each
    new set of fetches of a session (a second or so on a loaded machine), so doing it now
    keeps that out of the join."""
    for fetch in (scaffold.ready_op, *graph.get_collection(training_util.GLOBAL_STEP_READ_KEY)):
        if fetch is not None:
            sess.run(fetch)


def close_grace_secs(job: JobSpec) -> float:
    """How long closing a session waits for its threads: a third of the supervisor's grace."""
    return job.timeouts.stop_grace_secs / 3


def chief_hooks(job: JobSpec, scaffold: v1.train.Scaffold, role_hooks: Any) -> list[Any]:
    """The hooks MonitoredTrainingSession(is_chief=True, checkpoint_dir=model_dir) calls with
    ``session_hook_arguments``, in its order: the chief-only hooks, its StepCounterHook and
    SummarySaverHook, then ``hooks`` (no CheckpointSaverHook of its own: secs=0)."""
    arguments = roles.session_hook_arguments(job)
    hooks = list(role_hooks.chief_only_hook_objects)
    if arguments["log_step_count_steps"] > 0:
        hooks.append(
            v1.train.StepCounterHook(
                output_dir=job.model_dir, every_n_steps=arguments["log_step_count_steps"]
            )
        )
    if arguments["save_summaries_steps"] > 0:
        hooks.append(
            v1.train.SummarySaverHook(
                scaffold=scaffold,
                save_steps=arguments["save_summaries_steps"],
                output_dir=job.model_dir,
            )
        )
    return hooks + list(role_hooks.hook_objects)


def chief_session_creator(
    job: JobSpec,
    config: RunConfig,
    scaffold: v1.train.Scaffold,
    on_ready: Callable[[], None] | None = None,
) -> ChiefSessionCreator:
    """The chief's session creator: joins live variables when ``tries_to_join`` says so;
    calls ``on_ready`` once the variables are ready (the trainer reports ``variables_ready``)."""
    return ChiefSessionCreator(
        scaffold,
        master=config.master,
        config=config.session_config,
        checkpoint_dir=job.model_dir,
        join_live=tries_to_join(job.failure.chief_restart, config.num_ps_replicas),
        task_name=f"{config.task_type or 'chief'}:{config.task_id or 0}",
        on_ready=on_ready,
    )


def monitored_training_session(
    job: JobSpec,
    config: RunConfig,
    scaffold: v1.train.Scaffold,
    role_hooks: Any,
    chief_creator: ChiefSessionCreator | None = None,
    ready: threading.Event | None = None,
    last_hook: Any = None,
) -> Any:
    """Open the task's MonitoredSession (see the module docstring for chief vs worker); a
    chief uses ``chief_creator`` when given (the trainer asks it how the session started), a
    worker tries again at once when ``ready`` is set (the supervisor's ``ready`` command).
    ``last_hook`` (the trainer's ``harness.runtime.closing.EndMarker``) is called after all
    the others."""
    last = [] if last_hook is None else [last_hook]
    if config.is_chief:
        return v1.train.MonitoredSession(
            session_creator=chief_creator or chief_session_creator(job, config, scaffold),
            hooks=chief_hooks(job, scaffold, role_hooks) + last,
            stop_grace_period_secs=close_grace_secs(job),
        )
    creator = FastWorkerSessionCreator(
        scaffold,
        master=config.master,
        config=config.session_config,
        task_name=f"{config.task_type}:{config.task_id}",
        max_wait_secs=job.timeouts.worker_ready_secs,
        ready=ready,
    )
    return v1.train.MonitoredSession(
        session_creator=creator,
        hooks=role_hooks.hook_objects + last,
        stop_grace_period_secs=close_grace_secs(job),
    )
