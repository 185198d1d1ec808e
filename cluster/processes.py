"""Starting and killing task processes: shared by the local launcher and the Ray actor.

``spawn_task`` starts ``python -m harness.task`` in its own session (process group) with
stdin/stdout as text pipes (stderr merged into stdout), so the supervisor's wire protocol
works the same under every launcher. ``kill_tree`` takes the task down with everything it
started.
"""

from __future__ import annotations

import os
import signal
import subprocess

import psutil


def task_process_env(base: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    """``base`` + ``overrides``, unbuffered output, and TF's C++ INFO/WARNING lines off.

    ``PYTHONPATH`` is joined, not replaced: the plan's folders (the job's source
    directories) first, then what ``base`` had (the user's own PYTHONPATH), each once.
    """
    env = {**base, **overrides}
    env["PYTHONPATH"] = join_paths(overrides.get("PYTHONPATH", ""), base.get("PYTHONPATH", ""))
    if not env["PYTHONPATH"]:
        del env["PYTHONPATH"]
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # errors still show
    return env


def join_paths(*paths: str) -> str:
    """``os.pathsep``-joined search paths, in order, each entry once, empty entries dropped."""
    entries: list[str] = []
    for path in paths:
        for entry in path.split(os.pathsep):
            if entry and entry not in entries:
                entries.append(entry)
    return os.pathsep.join(entries)


def spawn_task(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        bufsize=1,
        start_new_session=True,
    )


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, its descendants and whatever else is left in its session (idempotent)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
