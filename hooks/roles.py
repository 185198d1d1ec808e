"""Which hooks each role runs: THE place where the chief/worker hook semantics live.

This reproduces contrib ``Estimator._train_model`` and ``MonitoredTrainingSession``. Every
default hook a task runs is one row of ``DEFAULT_HOOKS``, whoever adds it: the harness, the
Estimator (whose ``_train_model`` the harness reproduces) or MonitoredTrainingSession (on
the chief, the hooks it adds itself for ``session_hook_arguments``; ``harness.runtime.session
.chief_hooks`` builds them exactly as it does, because the chief's session creator is ours).
The real hook lists (``build_role_hooks``) and the table ``harness validate`` prints
(``describe``) both come from these rows:

- every trainer (chief and workers) runs ``hooks``: the defaults for all trainers
  (``StopAtStepHook``, ``NanTensorHook``, ``LoggingTensorHook``, and in a task progress
  reporting and the stop signal), then the model_fn's ``training_hooks``;
- only the chief runs ``chief_only_hooks``: a ``CheckpointSaverHook`` built from the Scaffold
  (unless the model_fn supplied a ``CheckpointSaverHook`` itself), then the model_fn's
  ``training_chief_hooks``; then MonitoredTrainingSession's own ``StepCounterHook`` and
  ``SummarySaverHook``;
- ps and evaluator tasks run no training hooks at all.

A worker never receives a chief-only hook object: ``select`` leaves them out, rather than
relying on MonitoredTrainingSession to drop them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import tensorflow as tf

from harness import data_client
from hooks import steady
from hooks.progress import ProgressHook, Report, global_step_read
from hooks.shards import ShardAckHook, ShardCheckpointListener
from hooks.stop import StopSignalHook

if TYPE_CHECKING:
    from harness.job import JobSpec

v1 = tf.compat.v1
SessionRunHook = v1.train.SessionRunHook

ORIGIN_HARNESS = "harness default"
ORIGIN_TRAINING_HOOKS = "training_hooks"
ORIGIN_CHIEF_HOOKS = "training_chief_hooks"

AddedBy = Literal["harness", "Estimator", "MonitoredTrainingSession"]
#: Where a row's hook goes. ``chief_only_hooks`` and ``hooks`` are MonitoredTrainingSession's
#: arguments; ``session``: MonitoredTrainingSession builds it itself and calls it after the
#: chief-only hooks; ``wrapper``: not a hook of its own, it wraps the user's hooks.
Slot = Literal["chief_only_hooks", "session", "hooks", "wrapper"]
TRAINERS = ("chief", "worker")
CHIEF = ("chief",)

PROGRESS_EVERY_SECS = 0.5

#: What a role without training hooks does instead (``harness validate`` prints it).
ROLE_NOTES = {
    "ps": "no hooks: hosts variables",
    "evaluator": "no training hooks: evaluates checkpoints (evaluation_hooks run there)",
}


@dataclass(frozen=True)
class TaskSignals:
    """What only a cluster task has: the supervisor's report channel and its stop signal."""

    report: Report
    stop_event: threading.Event


@dataclass(frozen=True)
class BuildContext:
    """What the default hooks of one trainer's TRAIN graph are built from."""

    job: JobSpec
    loss: tf.Tensor
    global_step: Any
    scaffold: v1.train.Scaffold
    task: TaskSignals | None = None


@dataclass(frozen=True)
class DefaultHook:
    """One default hook: its class name, the roles that run it, how often it acts for a job,
    who adds it, and how it is built (None: MonitoredTrainingSession builds it, or it is a
    wrapper applied by the task runner)."""

    name: str
    roles: tuple[str, ...]
    cadence: Callable[[JobSpec], str]
    added_by: AddedBy
    build: Callable[[BuildContext], SessionRunHook] | None
    slot: Slot = "hooks"
    #: what it adds to every step's ``session.run`` fetches ("step": the global step, "-":
    #: nothing); "(+X)": X is fetched only on the steps of its cadence, and each distinct set
    #: of fetches makes TensorFlow build another partitioned graph the first time it occurs.
    fetches: str = "-"
    #: only in a cluster task (``harness run``), not in ``harness.Estimator.train``.
    task_only: bool = False
    enabled: Callable[[JobSpec], bool] = lambda job: True

    def applies(self, role: str, job: JobSpec, *, in_task: bool = True) -> bool:
        return role in self.roles and self.enabled(job) and (in_task or not self.task_only)


def stop_unblock_after_secs(job: JobSpec) -> float:
    """How long after the stop signal ``StopSignalHook`` closes the queues of a blocked step."""
    return max(0.5, job.timeouts.stop_grace_secs / 5)


def _checkpoint_cadence(job: JobSpec) -> str:
    if job.train.save_checkpoints_steps is not None:
        return f"every {job.train.save_checkpoints_steps} steps, at the end"
    return f"every {job.train.checkpoint_secs:g} s, at the end"


def _build_checkpoint_saver(ctx: BuildContext) -> SessionRunHook:
    client = data_client.current() if ctx.task is not None and ctx.job.data else None
    return v1.train.CheckpointSaverHook(
        ctx.job.model_dir,
        save_secs=ctx.job.train.checkpoint_secs,
        save_steps=ctx.job.train.save_checkpoints_steps,
        scaffold=ctx.scaffold,
        listeners=[ShardCheckpointListener(client)] if client is not None else None,
    )


def _shard_client(ctx: BuildContext) -> data_client.ShardClient:
    client = data_client.current()
    if client is None:
        raise ValueError("ShardAckHook runs only in a cluster task (no shard client)")
    return client


def _task(ctx: BuildContext) -> TaskSignals:
    if ctx.task is None:
        raise ValueError("this hook runs only in a cluster task (no TaskSignals given)")
    return ctx.task


DEFAULT_HOOKS: tuple[DefaultHook, ...] = (
    # chief_only_hooks, first in MonitoredTrainingSession's call order
    DefaultHook(
        "CheckpointSaverHook",
        CHIEF,
        _checkpoint_cadence,
        "Estimator",
        _build_checkpoint_saver,
        slot="chief_only_hooks",
        fetches="step",
    ),
    # MonitoredTrainingSession's own, on the chief (session_hook_arguments; session.chief_hooks)
    DefaultHook(
        "StepCounterHook",
        CHIEF,
        lambda job: f"every {job.train.log_step_count_steps} steps (steps/sec)",
        "MonitoredTrainingSession",
        None,
        slot="session",
        enabled=lambda job: job.train.log_step_count_steps > 0,
        fetches="step",
    ),
    DefaultHook(
        "SummarySaverHook",
        CHIEF,
        lambda job: f"every {job.train.save_summary_steps} steps",
        "MonitoredTrainingSession",
        None,
        slot="session",
        enabled=lambda job: job.train.save_summary_steps > 0,
        fetches="step (+summaries)",
    ),
    # hooks, on every trainer
    DefaultHook(
        "StopAtStepHook",
        TRAINERS,
        lambda job: f"stops at step {job.train.max_steps}",
        "Estimator",
        lambda ctx: v1.train.StopAtStepHook(last_step=ctx.job.train.max_steps),
        fetches="step",
    ),
    DefaultHook(
        "NanTensorHook",
        TRAINERS,
        lambda job: "every step (fails on NaN)",
        "Estimator",
        lambda ctx: v1.train.NanTensorHook(ctx.loss),
        fetches="loss",
    ),
    DefaultHook(
        "LoggingTensorHook",
        TRAINERS,
        lambda job: f"every {job.train.log_step_count_steps} steps (loss, step)",
        "Estimator",
        lambda ctx: steady.LoggingTensorHook(
            {"loss": ctx.loss, "step": global_step_read()},
            every_n_iter=ctx.job.train.log_step_count_steps,
        ),
        fetches="loss, step",
    ),
    DefaultHook(  # before ProgressHook: a step's shards are done before anything else
        "ShardAckHook",
        TRAINERS,
        lambda job: "each step (data: its shards are done)",
        "harness",
        lambda ctx: ShardAckHook(_shard_client(ctx)),
        task_only=True,
        enabled=lambda job: job.data is not None,
    ),
    DefaultHook(
        "ProgressHook",
        TRAINERS,
        lambda job: f"every {PROGRESS_EVERY_SECS:g} s, at the end",
        "harness",
        lambda ctx: ProgressHook(_task(ctx).report, ctx.loss, every_secs=PROGRESS_EVERY_SECS),
        task_only=True,
        fetches="loss, step",
    ),
    DefaultHook(
        "StopSignalHook",
        TRAINERS,
        lambda job: f"each step; unblocks after {stop_unblock_after_secs(job):g} s",
        "harness",
        lambda ctx: StopSignalHook(
            _task(ctx).stop_event, unblock_after_secs=stop_unblock_after_secs(ctx.job)
        ),
        task_only=True,
        fetches="-",
    ),
    # applied by the task runner to the user's hooks (hooks.guard.guard_user_hooks)
    DefaultHook(
        "UserHookGuard",
        TRAINERS,
        lambda job: "wraps each user hook",
        "harness",
        None,
        slot="wrapper",
        task_only=True,
    ),
)


def rows_for(role: str, job: JobSpec, *, in_task: bool = True) -> tuple[DefaultHook, ...]:
    """The default hooks a task of ``role`` runs for ``job``, in the table's order.

    ``in_task``: a cluster task (``harness run``, ``harness validate``); False for
    ``harness.Estimator.train`` in the calling process, which has no task-only hooks.
    """
    return tuple(row for row in DEFAULT_HOOKS if row.applies(role, job, in_task=in_task))


def session_hook_arguments(job: JobSpec) -> dict[str, Any]:
    """The MonitoredTrainingSession arguments that decide the hooks it adds itself: no
    checkpoint hook (the table's CheckpointSaverHook is the only saver), a StepCounterHook and
    a SummarySaverHook at the cadences of the ``session`` rows."""
    return {
        "save_checkpoint_secs": 0,
        "save_summaries_steps": job.train.save_summary_steps,
        "log_step_count_steps": job.train.log_step_count_steps,
    }


@dataclass(frozen=True)
class HookEntry:
    hook: SessionRunHook
    origin: str
    #: the DEFAULT_HOOKS row it was built from; None for the user's hooks.
    row: DefaultHook | None = None


@dataclass(frozen=True)
class RoleHooks:
    """The hooks of one task, in the order MonitoredTrainingSession will call them."""

    hooks: tuple[HookEntry, ...]
    chief_only_hooks: tuple[HookEntry, ...]

    @property
    def hook_objects(self) -> list[SessionRunHook]:
        return [entry.hook for entry in self.hooks]

    @property
    def chief_only_hook_objects(self) -> list[SessionRunHook]:
        return [entry.hook for entry in self.chief_only_hooks]

    def entries_in_call_order(self) -> tuple[HookEntry, ...]:
        """MonitoredTrainingSession calls chief-only hooks first, then ``hooks`` (the hooks it
        builds itself come in between: ``describe``)."""
        return self.chief_only_hooks + self.hooks


def select(
    model_fn_ops: Any,
    role: str,
    *,
    trainer_defaults: Sequence[SessionRunHook] = (),
    make_checkpoint_hook: Callable[[], SessionRunHook] | None = None,
) -> RoleHooks:
    """Decide the hooks of a task of ``role`` ('chief', 'worker', 'ps' or 'evaluator').

    Args:
      model_fn_ops: a ModelFnOps or EstimatorSpec (anything with ``training_hooks`` and
        ``training_chief_hooks``).
      role: the task's role.
      trainer_defaults: the harness hooks every trainer runs, before ``training_hooks``.
      make_checkpoint_hook: builds the chief's CheckpointSaverHook; called only for the chief
        and only when the model_fn did not supply a CheckpointSaverHook. None disables it.
    """
    defaults = tuple(HookEntry(h, ORIGIN_HARNESS) for h in trainer_defaults)
    make_entry = None
    if make_checkpoint_hook is not None:
        make_entry = lambda: HookEntry(make_checkpoint_hook(), ORIGIN_HARNESS)  # noqa: E731
    return _select(model_fn_ops, role, defaults, make_entry)


def _select(
    model_fn_ops: Any,
    role: str,
    trainer_defaults: tuple[HookEntry, ...],
    make_checkpoint_entry: Callable[[], HookEntry] | None,
) -> RoleHooks:
    if role not in TRAINERS:
        return RoleHooks(hooks=(), chief_only_hooks=())
    training_hooks = list(model_fn_ops.training_hooks or ())
    chief_hooks = list(model_fn_ops.training_chief_hooks or ())
    hooks = trainer_defaults + tuple(HookEntry(h, ORIGIN_TRAINING_HOOKS) for h in training_hooks)
    if role not in CHIEF:
        return RoleHooks(hooks=hooks, chief_only_hooks=())
    defaults: tuple[HookEntry, ...] = ()
    supplied = [*(e.hook for e in trainer_defaults), *training_hooks, *chief_hooks]
    has_saver = any(isinstance(h, v1.train.CheckpointSaverHook) for h in supplied)
    if make_checkpoint_entry is not None and not has_saver:
        defaults = (make_checkpoint_entry(),)
    chief_only = defaults + tuple(HookEntry(h, ORIGIN_CHIEF_HOOKS) for h in chief_hooks)
    return RoleHooks(hooks=hooks, chief_only_hooks=chief_only)


def build_role_hooks(
    model_fn_ops: Any,
    role: str,
    ctx: BuildContext,
    extra_trainer_hooks: Sequence[SessionRunHook] = (),
) -> RoleHooks:
    """The real hooks of a task of ``role``: the table's rows built (in a task, with
    ``ctx.task``, also the task-only ones), then ``extra_trainer_hooks`` (Estimator.train's
    ``hooks``), then the model_fn's, chosen by ``select``'s rules. Call it in the graph."""
    rows = rows_for(role, ctx.job, in_task=ctx.task is not None)
    built = tuple(
        HookEntry(row.build(ctx), ORIGIN_HARNESS, row)
        for row in rows
        if row.slot == "hooks" and row.build is not None
    )
    defaults = built + tuple(HookEntry(h, ORIGIN_HARNESS) for h in extra_trainer_hooks)
    saver = next((r for r in rows if r.slot == "chief_only_hooks" and r.build), None)
    make_entry = None
    if saver is not None:
        make_entry = lambda: HookEntry(saver.build(ctx), ORIGIN_HARNESS, saver)  # noqa: E731
    return _select(model_fn_ops, role, defaults, make_entry)


@dataclass(frozen=True)
class HookLine:
    """One line of ``harness validate``'s table: a hook as the task will call it."""

    hook: str
    origin: str
    cadence: str
    fetches: str = "-"  # what it adds to each step's fetches ("-": a user hook, unknown)


def describe(
    role_hooks: RoleHooks, role: str, job: JobSpec, *, in_task: bool = True
) -> tuple[HookLine, ...]:
    """Every hook of a task, in MonitoredSession's call order, with the ones
    MonitoredTrainingSession adds itself where it calls them. A default hook's origin is the
    row's ``added_by`` and its cadence the row's; a user hook's origin is where model_fn put it."""

    def line(entry: HookEntry) -> HookLine:
        if entry.row is not None:
            row = entry.row
            return HookLine(row.name, row.added_by, row.cadence(job), row.fetches)
        return HookLine(type(entry.hook).__name__, entry.origin, "-")

    session = tuple(
        HookLine(row.name, row.added_by, row.cadence(job), row.fetches)
        for row in rows_for(role, job, in_task=in_task)
        if row.slot == "session"
    )
    return (
        tuple(line(e) for e in role_hooks.chief_only_hooks)
        + session
        + tuple(line(e) for e in role_hooks.hooks)
    )


def wrappers(role: str, job: JobSpec, *, in_task: bool = True) -> tuple[HookLine, ...]:
    """The rows that wrap the user's hooks rather than add one (the task runner's guard)."""
    return tuple(
        HookLine(row.name, row.added_by, row.cadence(job))
        for row in rows_for(role, job, in_task=in_task)
        if row.slot == "wrapper"
    )
