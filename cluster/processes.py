"""Starting and killing task processes: shared by the local launcher and the Ray actor.

``spawn_task`` starts ``python -m harness.task`` in its own process group, in the parent's
session (its docstring says why not a session of its own), with stdin/stdout as text pipes
(stderr merged into stdout), so the supervisor's wire protocol works the same under every
launcher. ``kill_tree`` takes the task down with everything it started. ``WarmSpare`` is a
task process started before it is needed (docs/ARCHITECTURE.md, "Warm spares").
"""

from __future__ import annotations

import os
import signal
import subprocess

import psutil

from harness import protocol
from harness.identity import TaskId
from harness.job import JobSpec
from harness.runtime.spare import become_command, pre_import_key, spare_command


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


def first_step(line: str) -> bool:
    """Whether a task's output line is the event of a step (``progress`` or ``done``)."""
    if protocol.MARKER not in line:
        return False
    event = protocol.split_event(line.rstrip("\n"))[1]
    return event is not None and event.get("event") in ("progress", "done")


def spawn_task(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start a task process: its own process group (so a Ctrl-C at the driver's terminal, which
    goes to the terminal's foreground group, does not reach it, and ``kill_tree`` can kill the
    group), but the session of its parent (the driver, or the Ray actor).

    Not a session of its own: Linux's scheduler autogroups (``kernel.sched_autogroup_enabled``,
    on by default) put every new session in a scheduling group of its own and share the CPU
    between groups before threads. Four task processes sharing two cores then get a fixed
    share each, however busy: the ps, which serves every trainer, is preempted 2-3 times as
    often, and the small benchmark model ran 13 % fewer steps/s than the same tasks started
    in one session (BENCHMARKS.md, "1. Step throughput").
    """
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        bufsize=1,
        process_group=0,
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


class WarmSpare:
    """A ``python -m harness.task --spare`` process (``harness.runtime.spare``) started with
    ``env``; ``become`` hands it to one task whose environment has the same ``key``."""

    def __init__(self, python: str, env: dict[str, str]) -> None:
        self.key = pre_import_key(env)
        self.process = spawn_task(spare_command(python), env)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def become(self, task_id: TaskId, env: dict[str, str]) -> subprocess.Popen[str] | None:
        """Turn the spare into ``task_id`` (started with ``env``); None when it cannot be:
        it is gone, or ``env`` differs from its own beyond ``IDENTITY_ENV`` (start cold)."""
        if pre_import_key(env) != self.key or not self.alive():
            return None
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(become_command(task_id, env))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return None
        return self.process

    def kill(self) -> None:
        kill_tree(self.process.pid)
        try:
            self.process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            pass
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass


def spares_text(job: JobSpec) -> str:
    """The dry-run's line on ``failure.warm_spares``."""
    if not job.failure.warm_spares:
        return "warm spares: off (failure.warm_spares: false): a restarted task starts cold"
    return (
        "warm spares: on (failure.warm_spares): once every trainer steps, one idle "
        "`python -m harness.task --spare` per distinct trainer environment (about 300-700 MiB "
        "RSS each) waits to become a restarted task"
    )
