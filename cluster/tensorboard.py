"""TensorBoard beside a run: ``harness run --tensorboard [PORT]`` or the job's ``tensorboard``.

This module owns TensorBoard's life in a run: start it for a job, report its URL, stop it.

- ``tensorboard_request(job, host)`` is pure: what will be started (logdir = the job's
  model_dir, the port, the host), or None when the job does not ask for TensorBoard. The
  local and Ray backends put it in their request, so ``--dry-run`` shows it.
- ``serving(request, launcher, console)`` is the context manager ``harness run`` wraps
  around the supervisor. It asks the launcher to start TensorBoard
  (``launcher.start_tensorboard``: a subprocess of ``harness run`` locally, an actor in the
  chief's bundle on Ray) and returns at once; a thread waits until TensorBoard serves and
  prints ``[harness] TensorBoard: http://HOST:PORT/``. TensorBoard never holds the job back:
  when it cannot start (port in use, package missing, not serving within ``STARTUP_SECS``)
  a one-line warning names the port and the job goes on without it. On leaving the block
  (success, failure, Ctrl-C, SIGTERM) TensorBoard is killed with its process tree.
  ``Board.record(summary)`` puts the URL (None when it never served) in run.json.
- ``TensorBoardProcess`` is one TensorBoard process: ``python -m cluster.tensorboard`` (this
  module's ``main``: TensorBoard's own main plus a watch of stdin, so that it exits when its
  parent dies and the pipe closes, as a task does). On Ray, ``cluster.ray_tensorboard``'s
  actor owns such a process on the chief's node.

TensorBoard is started with ``--load_fast false`` (one Python process, no data-server binary
beside it) and ``CUDA_VISIBLE_DEVICES=""`` (it never touches a GPU).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cluster.console import Console, is_console_noise
from cluster.processes import join_paths, kill_tree, spawn_task, task_process_env
from cluster.record import write_run_json

if TYPE_CHECKING:
    from harness.job import JobSpec

DEFAULT_PORT = 6006  # TensorBoard's own default
STARTUP_SECS = 120.0  # from its start until TensorBoard serves, or it is given up
_SERVING = re.compile(r"TensorBoard \S+ at https?://\S*?:(\d+)/")


class TensorBoardFailed(RuntimeError):
    """TensorBoard did not start; the message is one line saying why."""


@dataclass(frozen=True)
class TensorBoardRequest:
    """What TensorBoard will serve: ``logdir`` (the job's model_dir) on ``host:port``.

    ``port`` 0 lets TensorBoard pick a free port; ``host`` None means the IP of the node it
    runs on (Ray: the chief's node).
    """

    logdir: str
    port: int
    host: str | None = None

    @property
    def log_path(self) -> str:
        """TensorBoard's own output: ``<model_dir>/logs/tensorboard.log``."""
        return os.path.join(self.logdir, "logs", "tensorboard.log")

    @property
    def port_text(self) -> str:
        return f"port {self.port}" if self.port else "a free port"

    def command(self, host: str, python: str = sys.executable) -> tuple[str, ...]:
        return (
            python,
            "-m",
            "cluster.tensorboard",
            "--logdir",
            self.logdir,
            "--port",
            str(self.port),
            "--host",
            host,
            "--load_fast",
            "false",
        )

    def describe(self, where: str) -> list[str]:
        """The dry-run lines of TensorBoard: ``where`` it runs, its command and URL."""
        host = self.host or "<node IP>"
        port = str(self.port) if self.port else "<free port>"
        return [
            f"  [tensorboard] {where}",
            f"    command: {' '.join(self.command(host))}",
            f"    URL: http://{self.host or '<the chief node IP>'}:{port}/ (printed once it "
            "serves; run.json's tensorboard)",
        ]


def tensorboard_request(job: JobSpec, host: str | None) -> TensorBoardRequest | None:
    """The TensorBoard ``job`` asks for (its ``tensorboard``: true is ``DEFAULT_PORT``), or
    None when it asks for none."""
    if job.tensorboard is False:
        return None
    port = DEFAULT_PORT if job.tensorboard is True else int(job.tensorboard)
    return TensorBoardRequest(logdir=job.model_dir, port=port, host=host)


def url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def tensorboard_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """TensorBoard's environment: ``base`` (this process's), CPU only, this folder importable."""
    env = task_process_env(dict(os.environ if base is None else base), {})
    env["PYTHONPATH"] = join_paths(env.get("PYTHONPATH", ""), os.getcwd())
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


# ---- one TensorBoard process -------------------------------------------------------------


class TensorBoardProcess:
    """One TensorBoard process on this machine: ``start``, ``wait_url``, ``stop``.

    Its output goes to ``request.log_path`` (when that can be written); the line TensorBoard
    prints when it serves gives the port. Plain Python: the local launcher and
    ``TensorBoardActor`` use it alike.
    """

    def __init__(
        self,
        request: TensorBoardRequest,
        host: str,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.request = request
        self.host = host
        self._command = list(request.command(host, python))
        self._env = tensorboard_env() if env is None else env
        self._process: subprocess.Popen[str] | None = None
        self._cond = threading.Condition()
        self._url: str | None = None
        self._exit_code: int | None = None
        self._stopped = False
        self._tail: deque[str] = deque(maxlen=20)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> TensorBoardProcess:
        """Start the process (returns at once); ``wait_url`` says when it serves."""
        self._process = spawn_task(self._command, self._env)
        threading.Thread(target=self._pump, daemon=True, name="tensorboard-output").start()
        return self

    def _pump(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        try:
            os.makedirs(os.path.dirname(self.request.log_path), exist_ok=True)
            log: Any = open(self.request.log_path, "a", buffering=1)
        except OSError:
            log = None
        for line in process.stdout:
            line = line.rstrip("\n")
            if log is not None:
                log.write(line + "\n")
            match = _SERVING.search(line)
            with self._cond:
                self._tail.append(line)
                if match and self._url is None:
                    self._url = url(self.host, int(match.group(1)))
                    self._cond.notify_all()
        code = process.wait()
        if log is not None:
            log.close()
        with self._cond:
            self._exit_code = code
            self._cond.notify_all()

    def wait_url(self, timeout: float = STARTUP_SECS) -> str:
        """TensorBoard's URL once it serves; TensorBoardFailed when it exits or times out."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._url or self._exit_code is not None or self._stopped, timeout
            )
            if self._url:
                return self._url
            if self._stopped:
                raise TensorBoardFailed("stopped before it served")
            if self._exit_code is not None:
                raise TensorBoardFailed(f"it exited ({self._exit_code}): {self._reason()}")
        raise TensorBoardFailed(f"it was not serving after {timeout:g} s")

    def _reason(self) -> str:
        lines = [line.strip() for line in self._tail if line.strip()]
        useful = [line for line in lines if not is_console_noise(line)] or lines
        return useful[-1][:300] if useful else "no output"

    def stop(self) -> None:
        """Kill TensorBoard and everything it started (idempotent)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        process = self._process
        if process is None:
            return
        kill_tree(process.pid)
        try:
            process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            pass
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass


# ---- in a run ------------------------------------------------------------------------------


class Server(Protocol):
    """A started TensorBoard, what ``launcher.start_tensorboard`` returns."""

    def wait_url(self, timeout: float = STARTUP_SECS) -> str: ...
    def stop(self) -> None: ...


class Board:
    """What ``serving`` yields: ``url`` once TensorBoard serves (None before, or if it did not
    start), and ``record`` for run.json."""

    def __init__(self, request: TensorBoardRequest | None, console: Console) -> None:
        self.request = request
        self.console = console
        self.url: str | None = None
        self._server: Server | None = None
        self._watcher: threading.Thread | None = None
        self._stopped = threading.Event()

    def start(self, launcher: Any) -> None:
        """Ask ``launcher`` for TensorBoard and return at once (nothing when not requested)."""
        if self.request is None:
            return
        try:
            self._server = launcher.start_tensorboard(self.request)
        except Exception as exc:  # noqa: BLE001 - the job matters more than TensorBoard
            self._warn(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
            return
        self._watcher = threading.Thread(target=self._watch, daemon=True, name="tensorboard")
        self._watcher.start()

    def _watch(self) -> None:
        assert self._server is not None
        try:
            found = self._server.wait_url(STARTUP_SECS)
        except Exception as exc:  # noqa: BLE001 - TensorBoardFailed, or Ray going away
            if not self._stopped.is_set():
                self._warn(str(exc))
                self._server.stop()
            return
        if not self._stopped.is_set():
            self.url = found
            self.console.info(f"TensorBoard: {found}")

    def _warn(self, why: str) -> None:
        assert self.request is not None
        self.console.info(
            f"warning: TensorBoard did not start on {self.request.port_text}: {why}; "
            "the job goes on without it"
        )

    def stop(self) -> None:
        """Stop TensorBoard (idempotent); returns once its watcher has finished."""
        self._stopped.set()
        if self._server is not None:
            self._server.stop()
        if self._watcher is not None:
            self._watcher.join(timeout=15.0)

    def record(self, summary: dict[str, Any]) -> dict[str, Any]:
        """``summary`` with ``tensorboard`` (the URL, or None) when requested; run.json too."""
        if self.request is None:
            return summary
        summary = {**summary, "tensorboard": self.url}
        write_run_json(self.request.logdir, summary)
        return summary


@contextmanager
def serving(request: Any, launcher: Any, console: Console) -> Iterator[Board]:
    """TensorBoard for the length of the block, when ``request.tensorboard`` asks for it.

    ``request`` is a backend's request (its ``tensorboard`` attribute, None or missing when
    not asked for), ``launcher`` the one that launched it (``start_tensorboard``). Returns at
    once; see the module docstring for what is printed and what happens on failure.
    """
    board = Board(getattr(request, "tensorboard", None), console)
    try:
        board.start(launcher)
        yield board
    finally:
        board.stop()


# ---- the process: python -m cluster.tensorboard TENSORBOARD-ARGS -----------------------------


def main(argv: list[str] | None = None) -> None:
    """TensorBoard's main with ``argv``; exits at once when stdin closes (its parent died)."""
    threading.Thread(target=_exit_at_eof, daemon=True, name="stdin-watch").start()
    try:
        from tensorboard import main as tensorboard_main
    except ImportError as exc:
        print(f"the tensorboard package is not installed ({exc}); pip install tensorboard")
        sys.exit(1)
    sys.argv = ["tensorboard", *(sys.argv[1:] if argv is None else argv)]
    tensorboard_main.run_main()


def _exit_at_eof() -> None:
    # os.read, not sys.stdin: a daemon thread blocked in a buffered read aborts the
    # interpreter's shutdown when TensorBoard exits by itself (a port in use).
    while os.read(0, 4096):
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
