"""Local launcher: one OS process per task on this machine.

``LocalBackend.render(plan)`` is the ``LocalRequest``: a process per task with its command
and environment (the plan's ``CUDA_VISIBLE_DEVICES`` slice included, from
``cluster.resources``), pure data that ``--dry-run`` prints; ``launch(request)`` returns the
``LocalLauncher`` that starts exactly those processes when the supervisor asks for them.

Each task is ``python -m harness.task`` in its own process group (``spawn_task``), with stdin and
stdout as pipes to the supervisor. A reader thread routes its output lines to the supervisor's
inbox. ``kill`` takes the whole process tree down (psutil), so processes the user's code
started go too. If ``harness run`` itself is killed, the tasks see EOF on stdin and exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cluster.handles import Inbox
from cluster.plan import Plan, TaskPlan, make_plan
from cluster.processes import WarmSpare, first_step, kill_tree, spawn_task, task_process_env
from cluster.tensorboard import (
    TensorBoardProcess,
    TensorBoardRequest,
    tensorboard_env,
    tensorboard_request,
)
from harness.job import JobSpec
from harness.runtime.spare import pre_import_key


def visible_gpus() -> list[str]:
    """GPU ids this machine offers: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


@dataclass(frozen=True)
class LocalProcess:
    """One task's process: its command and the environment the plan gives it."""

    key: str
    command: tuple[str, ...]
    env: Mapping[str, str]


@dataclass(frozen=True)
class LocalRequest:
    """What the local backend will start: one process per task, in plan order.

    Each process runs with this machine's environment, then ``extra_env``, then its own
    ``env`` (``cluster.processes.task_process_env``). ``tensorboard``: the TensorBoard
    process beside them on 127.0.0.1, when the job asks for one (``cluster.tensorboard``).
    """

    plan: Plan
    processes: tuple[LocalProcess, ...]
    extra_env: Mapping[str, str] = field(default_factory=dict)
    tensorboard: TensorBoardRequest | None = None

    def process(self, key: str) -> LocalProcess:
        return next(p for p in self.processes if p.key == key)

    def describe(self) -> str:
        """The dry-run text: processes, commands, environment, TF_CONFIG, the warm spares
        (``Plan.describe``; and TensorBoard)."""
        text = self.plan.describe()
        if self.tensorboard is None:
            return text
        return "\n".join([text, *self.tensorboard.describe("a process on this machine, CPU only")])


class LocalBackend:
    """``--backend local``: plan with this machine's GPUs, render, launch."""

    name = "local"

    def __init__(self, extra_env: Mapping[str, str] | None = None) -> None:
        self.extra_env = dict(extra_env or {})

    def plan(self, job: JobSpec) -> Plan:
        return make_plan(job, "local", visible_gpus=visible_gpus())

    def render(self, plan: Plan) -> LocalRequest:
        """Pure: the processes ``launch`` would start for ``plan``."""
        processes = tuple(LocalProcess(t.key, t.command, dict(t.env)) for t in plan.tasks)
        tensorboard = tensorboard_request(plan.job, host="127.0.0.1")
        return LocalRequest(plan, processes, dict(self.extra_env), tensorboard)

    def launch(self, request: LocalRequest) -> LocalLauncher:
        return LocalLauncher(request)


class LocalTaskHandle:
    """One task's process, started cold (``process``'s command) or a warm spare that became
    the task (``spawned``; ``warm`` is then True). ``on_step`` is called once, from the
    reader thread, at the task's first step (the launcher's cue to start spares)."""

    def __init__(
        self,
        plan: TaskPlan,
        process: LocalProcess,
        inbox: Inbox,
        extra_env: Mapping[str, str],
        spawned: subprocess.Popen[str] | None = None,
        on_step: Callable[[LocalTaskHandle], None] | None = None,
    ) -> None:
        self.plan = plan
        self.warm = spawned is not None
        self.stepped = False
        self._on_step = on_step
        env = task_process_env({**os.environ, **extra_env}, dict(process.env))
        self.process = spawned or spawn_task(list(process.command), env)
        self._lock = threading.Lock()
        self._reader = threading.Thread(
            target=self._read, args=(inbox,), daemon=True, name=f"read-{plan.key}"
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self, inbox: Inbox) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            inbox.line(self, line.rstrip("\n"))
            if not self.stepped and first_step(line):
                self.stepped = True
                if self._on_step is not None:
                    self._on_step(self)
        inbox.exited(self, self.process.wait())

    def send(self, command: str) -> None:
        with self._lock:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(command)
                self.process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass  # the task is gone; its exit message is on the way

    def kill(self) -> None:
        """SIGKILL the task and every process it started (idempotent)."""
        kill_tree(self.process.pid)

    def wait_gone(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        self._reader.join(timeout=timeout)
        if self.process.stdin:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        return True


class LocalLauncher:
    """Starts the processes of one ``LocalRequest``; ``close`` kills every one it started.

    Warm spares (``failure.warm_spares``): once every trainer has made its first step, one
    spare per distinct pre-import environment of the trainers is started
    (``cluster.processes.WarmSpare``); ``start`` hands a task to the spare of its environment
    when there is one (the spare is then replaced at the next first step), else starts it
    cold. ``close`` kills the spares too.
    """

    name = "local"

    def __init__(self, request: LocalRequest) -> None:
        self.request = request
        self.started: list[LocalTaskHandle] = []
        self.current: dict[str, LocalTaskHandle] = {}
        self.spares: dict[tuple[tuple[str, str], ...], WarmSpare] = {}
        self.all_spares: list[WarmSpare] = []
        self.tensorboard: TensorBoardProcess | None = None
        self._lock = threading.Lock()
        self._closed = False

    def task_env(self, key: str) -> dict[str, str]:
        """The whole environment ``key``'s process is started with."""
        base = {**os.environ, **self.request.extra_env}
        return task_process_env(base, dict(self.request.process(key).env))

    def start(self, task: TaskPlan, inbox: Inbox) -> LocalTaskHandle:
        process = self.request.process(task.key)
        with self._lock:
            spawned = self._take_spare(task)
            handle = LocalTaskHandle(
                task, process, inbox, self.request.extra_env, spawned, self._stepped
            )
            self.started.append(handle)
            self.current[task.key] = handle
        return handle

    def _take_spare(self, task: TaskPlan) -> subprocess.Popen[str] | None:
        env = self.task_env(task.key)
        spare = self.spares.pop(pre_import_key(env), None)
        return None if spare is None else spare.become(task.task_id, env)

    def _stepped(self, handle: LocalTaskHandle) -> None:
        """A task's first step: once every trainer has stepped, start the missing spares."""
        if not self.request.plan.job.failure.warm_spares:
            return
        with self._lock:
            trainers = [h for h in self.current.values() if h.plan.is_trainer]
            if self._closed or not all(h.stepped for h in trainers):
                return
            for trainer in trainers:
                env = self.task_env(trainer.plan.key)
                key = pre_import_key(env)
                if key not in self.spares or not self.spares[key].alive():
                    spare = WarmSpare(trainer.process.args[0], env)
                    self.spares[key] = spare
                    self.all_spares.append(spare)

    def spare_pids(self) -> list[int]:
        """The pids of the spares waiting now."""
        with self._lock:
            return [s.pid for s in self.spares.values() if s.alive()]

    def start_tensorboard(self, request: TensorBoardRequest) -> TensorBoardProcess:
        """Start TensorBoard as a process of this machine (returns before it serves)."""
        env = tensorboard_env({**os.environ, **self.request.extra_env})
        self.tensorboard = TensorBoardProcess(request, request.host or "127.0.0.1", env)
        return self.tensorboard.start()

    def close(self) -> None:
        """Kill every task process, every spare and TensorBoard
        (``cluster.tensorboard.serving`` stops it first; this is the backstop)."""
        with self._lock:
            self._closed = True
        if self.tensorboard is not None:
            self.tensorboard.stop()
        for spare in self.all_spares:
            spare.kill()
        for handle in self.started:
            handle.kill()
            handle.wait_gone(timeout=10.0)
