"""The Ray actor that owns one task process (``python -m harness.task``) on its node.

The actor does not run TensorFlow itself. It starts the task's command as a subprocess, with
the plan's environment plus what only the node knows:

- ``HARNESS_NODE_IP``: this node's IP, which the task reports as its TF server address;
- ``CUDA_VISIBLE_DEVICES``: exactly the GPUs Ray assigned to this actor (``""`` when none,
  so ps and CPU-only tasks never touch a GPU).

Its output lines are buffered until the driver collects them with ``read`` (a long poll);
``send`` writes one command line to the task's stdin. When the actor dies, the task's stdin
reaches EOF and the task exits on its own (see ``harness.protocol``); ``kill`` does it at once.

The class is plain Python (``cluster.ray_launcher`` wraps it with ``ray.remote``), so it can
be read and tested without Ray. It needs a concurrency of at least 2: ``read`` blocks while
``send`` and ``kill`` must still get through.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from typing import Any

from cluster.processes import join_paths, kill_tree, spawn_task, task_process_env

READ_MAX_LINES = 1000


class TaskActor:
    """Owns one task process; see the module docstring for the contract."""

    def __init__(self, key: str, command: list[str], env: dict[str, str]) -> None:
        self._key = key
        self._command = list(command)
        self._env = dict(env)
        self._process: subprocess.Popen[str] | None = None
        self._lines: deque[str] = deque()
        self._exit_code: int | None = None
        self._cond = threading.Condition()
        self._stdin_lock = threading.Lock()

    def __repr__(self) -> str:  # Ray prefixes the actor's own log lines with this
        return self._key

    # ---- start -------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start the task process; returns where it runs: node ip and id, pid, GPUs, and
        ``started_at``, when this call began (wall clock, for ``cluster.bringup``)."""
        started_at = time.time()
        import ray

        gpu_ids = [str(g) for g in ray.get_gpu_ids()]
        node_ip = ray.util.get_node_ip_address()
        env = task_environment(self._env, node_ip, gpu_ids)
        command = list(self._command)
        if command and not os.path.exists(command[0]):
            command[0] = sys.executable  # the driver's interpreter path does not exist here
        self._process = spawn_task(command, env)
        threading.Thread(target=self._pump, daemon=True, name=f"pump-{self._key}").start()
        return {
            "pid": self._process.pid,
            "node_ip": node_ip,
            "node_id": ray.get_runtime_context().get_node_id(),
            "cuda_visible_devices": env["CUDA_VISIBLE_DEVICES"],
            "started_at": started_at,
        }

    def _pump(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        for line in process.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        code = process.wait()
        with self._cond:
            self._exit_code = code
            self._cond.notify_all()

    # ---- the driver's calls ------------------------------------------------------------

    def read(
        self, max_lines: int = READ_MAX_LINES, timeout: float = 0.5
    ) -> tuple[list[str], int | None]:
        """Output lines so far (waits up to ``timeout`` for one), and the exit code.

        The exit code is only returned once every line before it has been read, so the
        driver sees the task's last words before its exit.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._lines or self._exit_code is not None, timeout)
            lines = [self._lines.popleft() for _ in range(min(max_lines, len(self._lines)))]
            return lines, (self._exit_code if not self._lines else None)

    def send(self, line: str) -> bool:
        """Write one command line to the task's stdin; False when the task is gone."""
        process = self._process
        if process is None or process.stdin is None:
            return False
        with self._stdin_lock:
            try:
                process.stdin.write(line)
                process.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    def kill(self, timeout: float = 10.0) -> int | None:
        """SIGKILL the task and every process it started; returns its exit code."""
        process = self._process
        if process is None:
            return None
        kill_tree(process.pid)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid


def task_environment(
    plan_env: dict[str, str], node_ip: str, gpu_ids: list[str], base: dict[str, str] | None = None
) -> dict[str, str]:
    """The task process's environment on this node (see the module docstring).

    ``PYTHONPATH`` is the plan's source directories followed by what the actor already had
    (Ray puts a job's ``working_dir`` and ``py_modules`` there), then the actor's directory.
    """
    base = dict(os.environ if base is None else base)
    env = task_process_env(base, plan_env)
    env["PYTHONPATH"] = join_paths(env.get("PYTHONPATH", ""), os.getcwd())
    env["HARNESS_NODE_IP"] = node_ip
    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
    return env
