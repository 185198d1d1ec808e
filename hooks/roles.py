"""Which hooks each role runs: THE place where the chief/worker hook semantics live.

This reproduces contrib ``Estimator._train_model`` and ``MonitoredTrainingSession``:

- every trainer (chief and workers) runs ``hooks``: the harness defaults for all trainers
  (``StopAtStepHook``, ``NanTensorHook``, ``LoggingTensorHook``, progress reporting, stop
  signal), then the model_fn's ``training_hooks``;
- only the chief runs ``chief_only_hooks``: a ``CheckpointSaverHook`` built from the Scaffold
  (unless the model_fn supplied a ``CheckpointSaverHook`` itself), then the model_fn's
  ``training_chief_hooks``;
- ps and evaluator tasks run no training hooks at all.

A worker never receives a chief-only hook object: ``select`` leaves them out, rather than
relying on MonitoredTrainingSession to drop them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

SessionRunHook = tf.compat.v1.train.SessionRunHook

ORIGIN_HARNESS = "harness default"
ORIGIN_TRAINING_HOOKS = "training_hooks"
ORIGIN_CHIEF_HOOKS = "training_chief_hooks"


@dataclass(frozen=True)
class HookEntry:
    hook: SessionRunHook
    origin: str


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
        """MonitoredTrainingSession calls chief-only hooks first, then ``hooks``."""
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
    if role not in ("chief", "worker"):
        return RoleHooks(hooks=(), chief_only_hooks=())
    training_hooks = list(model_fn_ops.training_hooks or ())
    chief_hooks = list(model_fn_ops.training_chief_hooks or ())
    hooks = tuple(HookEntry(h, ORIGIN_HARNESS) for h in trainer_defaults) + tuple(
        HookEntry(h, ORIGIN_TRAINING_HOOKS) for h in training_hooks
    )
    if role != "chief":
        return RoleHooks(hooks=hooks, chief_only_hooks=())
    defaults: tuple[HookEntry, ...] = ()
    supplied = [*trainer_defaults, *training_hooks, *chief_hooks]
    has_saver = any(isinstance(h, tf.compat.v1.train.CheckpointSaverHook) for h in supplied)
    if make_checkpoint_hook is not None and not has_saver:
        defaults = (HookEntry(make_checkpoint_hook(), ORIGIN_HARNESS),)
    chief_only = defaults + tuple(HookEntry(h, ORIGIN_CHIEF_HOOKS) for h in chief_hooks)
    return RoleHooks(hooks=hooks, chief_only_hooks=chief_only)
