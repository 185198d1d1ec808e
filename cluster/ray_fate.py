"""An embedded Ray dies with its driver: a watchdog process for what Ray's own fate-sharing misses.

Ray (2.60) starts an embedded Ray's head processes (gcs_server, raylet, dashboard, monitor,
log_monitor) with ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so they die with the driver at once,
and its workers (the task actors) exit within about 2 s of the raylet. The raylet's agents
(``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) do not: they notice the raylet's death
within about 2 s, then publish an error to the dead GCS with a fixed 60 s timeout
(``ray._private.process_watcher``), and only then exit. After a ``kill -9`` of the driver they
would stay for about a minute.

``RayFate.start(driver_pid, ray_dir)`` (the Ray launcher, before it starts an embedded Ray)
starts ``python -m cluster.ray_fate``, a small process in its own session whose stdin is a
pipe from the driver. Every ``POLL_SECS`` it records the driver's children that run Ray's
code (their command line is under ``ray_dir``, the ray package) and everything below them.
When the pipe reaches EOF (the driver is gone, or ``close`` was called after
``ray.shutdown()``) or the driver's pid is no longer the driver, it SIGKILLs every recorded
process that still runs (psutil checks that a pid was not reused) and exits. A process Ray
started less than ``POLL_SECS`` before the driver died may be missed; the agents start
with the head, so they are always recorded.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterable

import psutil

POLL_SECS = 0.25


class RayFate:
    """The driver's side: the watchdog process and the pipe whose end is its signal."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    @classmethod
    def start(cls, driver_pid: int, ray_dir: str) -> RayFate:
        """Start the watchdog of ``driver_pid``'s Ray processes (those running ``ray_dir``)."""
        command = [sys.executable, "-m", "cluster.ray_fate", str(driver_pid), ray_dir]
        env = {**os.environ, "PYTHONPATH": _package_root(os.environ.get("PYTHONPATH", ""))}
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C to the driver's terminal does not reach it
        )
        return cls(process)

    def close(self, timeout: float = 10.0) -> None:
        """After ``ray.shutdown()``: the watchdog kills what is left of Ray, then exits."""
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _package_root(pythonpath: str) -> str:
    """PYTHONPATH with the folder that holds the ``cluster`` package first."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.pathsep.join([root, *(p for p in pythonpath.split(os.pathsep) if p)])


def watch(driver_pid: int, ray_dir: str, poll_secs: float = POLL_SECS) -> int:
    """The watchdog's loop (module docstring); returns how many processes it killed."""
    try:
        driver = psutil.Process(driver_pid)
    except psutil.NoSuchProcess:
        return 0
    recorded: dict[int, psutil.Process] = {}
    while True:
        _record(driver, ray_dir, recorded)
        readable, _, _ = select.select([sys.stdin], [], [], poll_secs)
        if readable and not os.read(sys.stdin.fileno(), 4096):
            break  # EOF: the driver closed the pipe or is gone
        if not driver.is_running() or driver.status() == psutil.STATUS_ZOMBIE:
            break
    return _kill(recorded.values())


def _record(driver: psutil.Process, ray_dir: str, recorded: dict[int, psutil.Process]) -> None:
    try:
        children = driver.children()
    except psutil.Error:
        return
    for child in children:
        try:
            if child.pid == os.getpid() or not any(ray_dir in p for p in child.cmdline()):
                continue
            for proc in [child, *child.children(recursive=True)]:
                recorded.setdefault(proc.pid, proc)
        except psutil.Error:
            continue


def _kill(processes: Iterable[psutil.Process]) -> int:
    killed = 0
    for proc in processes:
        try:
            proc.kill()  # psutil refuses a pid that now belongs to another process
            killed += 1
        except psutil.Error:
            continue
    return killed


def main(argv: list[str]) -> None:
    for signum in (signal.SIGINT, signal.SIGHUP):  # only the pipe ends the watch
        signal.signal(signum, signal.SIG_IGN)
    watch(int(argv[0]), argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
