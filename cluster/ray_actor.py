"""The Ray actor that owns one task process (``python -m harness.task``) on its node.

The actor does not run TensorFlow itself. It starts the task's command as a subprocess, with
the plan's environment plus what only the node knows:

- ``HARNESS_NODE_IP``: this node's IP, which the task reports as its TF server address;
- ``CUDA_VISIBLE_DEVICES``: exactly the GPUs Ray assigned to this actor (``""`` when none,
  so ps and CPU-only tasks never touch a GPU).

Its output lines are buffered until the driver collects them with ``read`` (a long poll);
``send`` writes one command line to the task's stdin. When the actor dies, the task's stdin
reaches EOF and the task exits on its own (see ``harness.protocol``); ``kill`` does it at once.

A task restarted while its actor lives is started again inside it (``restart``: no new actor,
no new placement); each start is a ``generation``, and ``read``/``send`` of a replaced one
see nothing of its successor. Once the task steps, the actor keeps a warm spare
(``cluster.processes.WarmSpare``, with the task's environment: this node's IP, the actor's
GPUs), which the next ``restart`` hands the task to (``failure.warm_spares``).

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

from cluster.processes import (
    WarmSpare,
    first_step,
    join_paths,
    kill_tree,
    spawn_task,
    task_process_env,
)
from harness.identity import TaskId

READ_MAX_LINES = 1000
ACTOR_RESTARTED = -9  # a replaced generation's exit code: its process was SIGKILLed


class TaskActor:
    """Owns one task process at a time; see the module docstring for the contract."""

    def __init__(
        self, key: str, command: list[str], env: dict[str, str], warm_spares: bool = True
    ) -> None:
        self._key = key
        self._command = list(command)
        self._env = dict(env)
        self._warm_spares = warm_spares
        self._task_env: dict[str, str] = {}
        self._process: subprocess.Popen[str] | None = None
        self._spare: WarmSpare | None = None
        self._generation = 0  # which start of the task the lines and exit code belong to
        self._lines: deque[str] = deque()
        self._exit_code: int | None = None
        self._cond = threading.Condition()
        self._stdin_lock = threading.Lock()
        self._restart_lock = threading.Lock()

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
        self._task_env = task_environment(self._env, node_ip, gpu_ids)
        if self._command and not os.path.exists(self._command[0]):
            self._command[0] = sys.executable  # the driver's interpreter path does not exist
        return self._launch(started_at, node_ip, ray.get_runtime_context().get_node_id())

    def restart(self) -> dict[str, Any]:
        """Start the task again in this actor (its process is killed first): the warm spare
        becomes it when there is one; returns ``start``'s facts, ``warm`` and ``generation``
        (the one ``read`` then takes)."""
        started_at = time.time()
        import ray

        with self._restart_lock:
            self.kill()
            node_ip = self._task_env["HARNESS_NODE_IP"]
            return self._launch(started_at, node_ip, ray.get_runtime_context().get_node_id())

    def _launch(self, started_at: float, node_ip: str, node_id: str) -> dict[str, Any]:
        spare, self._spare = self._spare, None
        process = None if spare is None else spare.become(self._task_id(), self._task_env)
        if spare is not None and process is None:
            spare.kill()
        with self._cond:
            self._generation += 1
            self._lines.clear()
            self._exit_code = None
            generation = self._generation
        warm = process is not None
        self._process = process or spawn_task(self._command, self._task_env)
        threading.Thread(
            target=self._pump, args=(self._process, generation), daemon=True, name="pump"
        ).start()
        return {
            "pid": self._process.pid,
            "node_ip": node_ip,
            "node_id": node_id,
            "cuda_visible_devices": self._task_env["CUDA_VISIBLE_DEVICES"],
            "started_at": started_at,
            "warm": warm,
            "generation": generation,
        }

    def _task_id(self) -> TaskId:
        role, index = self._key.split(":")
        return TaskId(role, int(index))

    def _pump(self, process: subprocess.Popen[str], generation: int) -> None:
        assert process.stdout is not None
        stepped = False
        for line in process.stdout:
            with self._cond:
                if generation != self._generation:
                    continue  # a restart took over; what this process still says is stale
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
            if not stepped and first_step(line):
                stepped = True
                self._start_spare(generation)
        code = process.wait()
        with self._cond:
            if generation == self._generation:
                self._exit_code = code
                self._cond.notify_all()

    def _start_spare(self, generation: int) -> None:
        """Once the task steps, a warm spare waits beside it (``failure.warm_spares``)."""
        with self._restart_lock:
            if generation != self._generation or not self._warm_spares:
                return
            if self._spare is None or not self._spare.alive():
                self._spare = WarmSpare(self._command[0], self._task_env)

    # ---- the driver's calls ------------------------------------------------------------

    def read(
        self, max_lines: int = READ_MAX_LINES, timeout: float = 0.5, generation: int = 1
    ) -> tuple[list[str], int | None]:
        """Output lines so far (waits up to ``timeout`` for one), and the exit code.

        The exit code is only returned once every line before it has been read, so the
        driver sees the task's last words before its exit. A ``generation`` that a restart
        replaced reads no lines and ``ACTOR_RESTARTED`` (that process is gone).
        """
        with self._cond:
            if generation != self._generation:
                return [], ACTOR_RESTARTED
            self._cond.wait_for(lambda: self._lines or self._exit_code is not None, timeout)
            if generation != self._generation:
                return [], ACTOR_RESTARTED
            lines = [self._lines.popleft() for _ in range(min(max_lines, len(self._lines)))]
            return lines, (self._exit_code if not self._lines else None)

    def send(self, line: str, generation: int = 1) -> bool:
        """Write one command line to the task's stdin; False when the task is gone."""
        process = self._process
        if process is None or process.stdin is None or generation != self._generation:
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

    def shutdown(self) -> None:
        """Kill the task and the spare (before the actor itself is killed)."""
        self.kill()
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.kill()

    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def spare_pid(self) -> int | None:
        spare = self._spare
        return spare.pid if spare is not None and spare.alive() else None


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
