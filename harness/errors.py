"""Where in the user's code an exception came from (pure Python: no TensorFlow import).

Errors raised inside a user's model_fn often surface deep in TensorFlow (a shape check in
``tf.matmul``). What the user needs is the last frame of their own code: ``model.py:42 in
model_fn``. A frame is "the harness's or a library's" when its file lies under this package,
under the ``cluster``/``hooks`` packages next to it, or in an installed package (site-packages,
dist-packages) or the standard library; every other frame is the user's.
"""

from __future__ import annotations

import os
import sysconfig
import traceback

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


def _short(filename: str) -> str:
    """A path relative to the current directory when it lies below it."""
    path = os.path.abspath(filename)
    cwd = os.getcwd() + os.sep
    return path[len(cwd) :] if path.startswith(cwd) else path


__all__ = ["is_user_file", "user_location"]
