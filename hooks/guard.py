"""UserHookGuard: the user's SessionRunHooks, with their errors marked as the user's.

A hook of the model_fn's ``training_hooks`` or ``training_chief_hooks`` that raises in
``begin``, ``after_create_session``, ``before_run``, ``after_run`` or ``end`` raises the same
way in every restarted task: the harness must fail the job at once, and say which hook and
which line. ``guard_user_hooks`` wraps each of those hooks (and only those: the harness's
defaults are left as they are) in a ``UserHookGuard`` that calls the hook and re-raises its
exception as ``harness.errors.UserHookError`` ("training_chief_hooks FailingHook.after_run
raised at model.py:42 in after_run: RuntimeError: ..."), the original as ``__cause__``.

Exceptions that are not the hook's fault pass through unchanged:

- TensorFlow runtime errors (``tf.errors.OpError``): a hook's own ``session.run`` fails with
  ``UnavailableError`` when a ps is gone, which MonitoredSession recovers from or the failure
  policy restarts; the trainer classifies the deterministic ones (``harness.runtime.trainer``);
- ``StopIteration`` and ``OutOfRangeError`` (the end of the input, for MonitoredSession);
- ``BaseException``s that are not ``Exception`` (``KeyboardInterrupt``, ``SystemExit``).

The guard is used by the task runner only; ``harness.Estimator`` passes the user's hooks to
TensorFlow as they are, so that its callers see their own exceptions.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from harness.errors import UserHookError, user_location
from hooks.roles import ORIGIN_CHIEF_HOOKS, ORIGIN_TRAINING_HOOKS, HookEntry, RoleHooks

SessionRunHook = tf.compat.v1.train.SessionRunHook

_PASS_THROUGH = (tf.errors.OpError, StopIteration, UserHookError)


class UserHookGuard(SessionRunHook):
    """Calls ``hook``'s methods; their non-TensorFlow exceptions become ``UserHookError``."""

    def __init__(self, hook: SessionRunHook, origin: str) -> None:
        self.hook = hook
        self.origin = origin

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self.hook, method)(*args)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            name = f"{type(self.hook).__name__}.{method}"
            where = user_location(exc)
            at = f" at {where}" if where else ""
            raise UserHookError(
                f"{self.origin} {name} raised{at}: {type(exc).__name__}: {exc}", hook=name
            ) from exc

    def begin(self) -> None:
        self._call("begin")

    def after_create_session(self, session: Any, coord: Any) -> None:
        self._call("after_create_session", session, coord)

    def before_run(self, run_context: Any) -> Any:
        return self._call("before_run", run_context)

    def after_run(self, run_context: Any, run_values: Any) -> None:
        self._call("after_run", run_context, run_values)

    def end(self, session: Any) -> None:
        self._call("end", session)


def guard_user_hooks(role_hooks: RoleHooks) -> RoleHooks:
    """``role_hooks`` with every user hook (training_hooks, training_chief_hooks) guarded.

    Order and origins are kept; the harness's own hooks are the same objects.
    """

    def guarded(entries: tuple[HookEntry, ...]) -> tuple[HookEntry, ...]:
        return tuple(
            HookEntry(UserHookGuard(e.hook, e.origin), e.origin)
            if e.origin in (ORIGIN_TRAINING_HOOKS, ORIGIN_CHIEF_HOOKS)
            else e
            for e in entries
        )

    return RoleHooks(
        hooks=guarded(role_hooks.hooks), chief_only_hooks=guarded(role_hooks.chief_only_hooks)
    )
