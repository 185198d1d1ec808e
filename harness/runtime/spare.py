"""The warm spare's protocol: a task process started before it is needed.

``python -m harness.task --spare`` imports TensorFlow and the harness's task code, then waits
for one ``become`` command on stdin (``become_command``): the task it becomes (role, index)
and the values of ``IDENTITY_ENV``, the variables a task reads after its imports. From there
it runs exactly as a task started with ``--role R --index I`` (``harness.task.main``).

Everything else in the environment may be read at import (``CUDA_VISIBLE_DEVICES``,
``TF_*``, ``PYTHONPATH``, ``TF_USE_LEGACY_KERAS``...), so a spare can only become a task
whose environment, ``IDENTITY_ENV`` aside, is the spare's own: ``pre_import_key`` is that
comparison, and a launcher starts the task cold when the keys differ. EOF on stdin (the
launcher is gone) ends a waiting spare at once, as it ends every task.

Pure except ``warm_up``, which does the imports.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from harness.identity import ROLES, TaskId

#: What a task reads after its imports (``harness.task.main``): sent with ``become``.
IDENTITY_ENV = ("HARNESS_JOB", "HARNESS_NODE_IP", "HARNESS_FAULT_INJECT")
#: Set by the task itself once it has the cluster: never part of the comparison.
TASK_SET_ENV = ("TF_CONFIG",)

BECOME = "become"
SPARE_FLAG = "--spare"


class BecomeError(ValueError):
    """A ``become`` line that does not say which task to become."""


def pre_import_key(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """What must be equal between a spare's environment and its task's: every variable but
    ``IDENTITY_ENV`` and ``TASK_SET_ENV``, sorted (a hashable value)."""
    skip = (*IDENTITY_ENV, *TASK_SET_ENV)
    return tuple(sorted((k, v) for k, v in env.items() if k not in skip))


def spare_command(python: str) -> list[str]:
    """The command line of a spare run by ``python``."""
    return [python, "-m", "harness.task", SPARE_FLAG]


def become_command(task_id: TaskId, env: Mapping[str, str]) -> str:
    """The line that turns a spare into ``task_id``; ``IDENTITY_ENV`` values from ``env``
    (null for a variable ``env`` lacks: the spare unsets it)."""
    identity = {name: env.get(name) for name in IDENTITY_ENV}
    line = {"cmd": BECOME, "role": task_id.role, "index": task_id.index, "env": identity}
    return json.dumps(line) + "\n"


def parse_become(line: str) -> tuple[TaskId, dict[str, str | None]]:
    """The task and the ``IDENTITY_ENV`` values of a ``become`` line (``BecomeError`` for any
    other line)."""
    try:
        message: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BecomeError(f"a spare expects a {BECOME!r} command, got {line[:200]!r}") from exc
    if not isinstance(message, dict) or message.get("cmd") != BECOME:
        raise BecomeError(f"a spare expects a {BECOME!r} command, got {line[:200]!r}")
    role, index, env = message.get("role"), message.get("index"), message.get("env") or {}
    if role not in ROLES or not isinstance(index, int) or index < 0:
        raise BecomeError(f"{BECOME}: role {role!r} / index {index!r} is not a task")
    unknown = sorted(set(env) - set(IDENTITY_ENV))
    if unknown:
        raise BecomeError(f"{BECOME}: only {', '.join(IDENTITY_ENV)} may be sent, not {unknown}")
    return TaskId(role, index), {name: env.get(name) for name in IDENTITY_ENV}


def warm_up() -> None:
    """Import what every task imports before it knows who it is: TensorFlow, the training
    loop (graph, sessions, hooks) and the evaluator."""
    import tensorflow  # noqa: F401

    import harness.runtime.evaluation  # noqa: F401
    import harness.runtime.trainer  # noqa: F401
