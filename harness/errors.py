"""Where in the user's code an exception came from, and the errors that are the user's
(pure Python: no TensorFlow import).

Errors raised inside a user's model_fn often surface deep in TensorFlow (a shape check in
``tf.matmul``). What the user needs is the last frame of their own code: ``model.py:42 in
model_fn``. A frame is "the harness's or a library's" when its file lies under this package,
under the ``cluster``/``hooks`` packages next to it, or in an installed package (site-packages,
dist-packages) or the standard library; every other frame is the user's.

TensorFlow's runtime errors (``OpError``) from ``session.run`` carry no user frame in their
Python traceback: the failing op's creation stack (``exc.op.traceback``, graph mode) does, and
``op_user_location`` reads it. ``describe`` turns any exception into the one line a user reads
first: its type, its text without TensorFlow's node listings, and the user's frame.

``HarnessError`` is the base of the harness's user-facing errors (``UserCodeError`` and its
subclasses, ``harness.job.JobSpecError``, ``harness.export.serving_inputs.ExportError``,
``harness.runtime.evaluation.CheckpointNotFoundError``, ``harness.compat``'s
``RemovedAPIError``/``RemovedModuleError``): besides its message it carries the facts as
attributes, each None when unknown: ``role`` and ``index`` (the task), ``field`` (the job
file's field path, e.g. ``train.max_steps``). Each subclass keeps the builtin base it had
(``JobSpecError`` is still a ``ValueError``), so every existing ``except`` still catches it.

``UserCodeError`` and its subclasses are the errors a restart cannot fix: the task reports
them as ``user_error`` and the failure policy fails the job at once.
"""

from __future__ import annotations

import os
import re
import sysconfig
import traceback
from typing import Any


class HarnessError(Exception):
    """A user-facing error of the harness: a message, and the facts it is about.

    Attributes:
        message: the text (``str(error)``).
        role: the task's role (``'chief'``, ``'worker'``, ...), or None.
        index: the task's index within its role, or None.
        field: the job file's field path (``'train.max_steps'``, ``'model_fn'``), or None.
    """

    def __init__(
        self,
        message: str = "",
        *,
        role: str | None = None,
        index: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.role = role
        self.index = index
        self.field = field

    @property
    def task(self) -> str | None:
        """``'role:index'`` (``'chief:0'``), ``'role'`` without an index, or None."""
        if self.role is None:
            return None
        return self.role if self.index is None else f"{self.role}:{self.index}"


class UserCodeError(HarnessError):
    """model_fn, input_fn, a user hook or what they returned is wrong: retrying cannot help."""


class UserHookError(UserCodeError):
    """A SessionRunHook of the model_fn's ``training_hooks``/``training_chief_hooks`` raised.

    ``hook`` is ``Class.method`` (e.g. ``MyHook.after_run``); the message names it, the
    user's frame and the original exception's type and text (also kept as ``__cause__``).
    """

    def __init__(self, message: str, hook: str, **facts: Any) -> None:
        super().__init__(message, **facts)
        self.hook = hook


class UserGraphError(UserCodeError):
    """An op created in the user's code failed at the first training step (say, a reshape to
    a shape the data does not have): every restart would fail the same way."""


class CheckpointMismatchError(UserCodeError):
    """The checkpoint in model_dir does not fit the graph (a missing key, another shape)."""


_HERE = os.path.dirname(os.path.abspath(__file__))
_PROJECT = os.path.dirname(_HERE)
_NOT_USER = tuple(
    os.path.join(_PROJECT, name) + os.sep for name in ("harness", "cluster", "hooks")
) + tuple(
    {
        os.path.abspath(path) + os.sep
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (path := sysconfig.get_paths().get(key))
    }
)


def is_user_file(filename: str) -> bool:
    """Whether ``filename`` is user code (not the harness, a library or the stdlib)."""
    path = os.path.abspath(filename)
    if path.startswith(_NOT_USER) or filename.startswith("<"):
        return False
    return "site-packages" not in path.split(os.sep) and "dist-packages" not in path.split(os.sep)


def user_location(exc: BaseException) -> str | None:
    """``file:line in function`` of the innermost user frame of ``exc``'s traceback, or None.

    The traceback of ``exc`` is searched first, then its ``__cause__``/``__context__`` chain.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = [
            f for f in traceback.extract_tb(current.__traceback__) if is_user_file(f.filename)
        ]
        if frames:
            frame = frames[-1]
            return f"{_short(frame.filename)}:{frame.lineno} in {frame.name}"
        current = current.__cause__ or current.__context__
    return None


def op_user_location(op: Any) -> str | None:
    """``file:line in function`` of the innermost user frame where ``op`` was created, or None.

    ``op`` is a TensorFlow ``Operation`` (its ``traceback`` is a sequence of frames with
    ``filename``, ``lineno`` and ``name``, or of ``(filename, lineno, name, line)`` tuples);
    None, or an op without a user frame, gives None.
    """
    frames = getattr(op, "traceback", None) if op is not None else None
    found = None
    for frame in frames or ():
        if isinstance(frame, tuple):
            filename, lineno, name = frame[0], frame[1], frame[2]
        else:
            filename, lineno, name = frame.filename, frame.lineno, frame.name
        if is_user_file(filename):
            found = f"{_short(filename)}:{lineno} in {name}"
    return found


# Lines of a TensorFlow runtime error message that list where the node is, not what failed.
_TF_NOISE = re.compile(
    r"^(Graph execution error:|Detected at node .* defined at|File \"|Node: '|\[\[|=+$)"
)
# Lines after which a TensorFlow runtime error message only repeats or details the failure:
# the gRPC detail of a remote task, the runtime's recent log lines.
_TF_TRAILER = re.compile(r"^(Additional GRPC error information|Recent warning and error logs:)")
# The head of one task's error inside TensorFlow's aggregated multi-task error
# ("=====================" / "INVALID_ARGUMENT: From /job:worker/...:" / ...).
_TF_TASK_ERROR = re.compile(r"^[A-Z_]+: (From /job:.*)$")


def error_text(exc: BaseException) -> str:
    """The text of ``exc`` on one line.

    For a TensorFlow OpError: its message without the node listings ("Detected at node ...",
    "[[{{node ...}}]]") and the creation stack that its ``str`` appends, without the gRPC
    detail and recent log lines the runtime attaches, and, when the runtime aggregated the
    errors of several tasks, only the first task's ("From /job:worker/...: <text>"). For
    anything else the same applied to ``str(exc)``: its lines joined with spaces.
    """
    message = getattr(exc, "message", None)
    if not isinstance(message, str) or getattr(exc, "error_code", None) is None:
        message = str(exc)
    kept: list[str] = []
    for line in (line.strip() for line in message.splitlines()):
        if not line or _TF_NOISE.match(line):
            continue
        if _TF_TRAILER.match(line):
            break
        task_error = _TF_TASK_ERROR.match(line)
        if task_error:
            if kept:
                break
            line = task_error.group(1)
        kept.append(line)
    return " ".join(kept) or type(exc).__name__


def describe(exc: BaseException) -> str:
    """One line for the final error: ``Type: text (at file:line in function)``.

    A ``UserCodeError`` already says where and what (its cause's type and text), so its own
    text is used as it is. For other errors the user's frame is the failing op's creation
    site when ``exc`` is a TensorFlow error, else the innermost user frame of the traceback.
    """
    if isinstance(exc, UserCodeError):
        return str(exc)
    where = op_user_location(getattr(exc, "op", None)) or user_location(exc)
    return f"{type(exc).__name__}: {error_text(exc)}" + (f" (at {where})" if where else "")


def _short(filename: str) -> str:
    """A path relative to the current directory when it lies below it."""
    path = os.path.abspath(filename)
    cwd = os.getcwd() + os.sep
    return path[len(cwd) :] if path.startswith(cwd) else path


__all__ = [
    "CheckpointMismatchError",
    "HarnessError",
    "UserCodeError",
    "UserGraphError",
    "UserHookError",
    "describe",
    "error_text",
    "is_user_file",
    "op_user_location",
    "user_location",
]
