"""Peak RSS of a run's task processes, sampled from outside with psutil.

A ``PeakRss`` thread (a ``Sampler``, as ``bench.cpu_use.CpuUse`` is) calls a ``find``
function (which returns the processes of interest, by label) and reads each one's peak
resident set size. On Linux that is ``VmHWM`` from
``/proc/<pid>/status``, the kernel's own high-water mark, so the sample interval does not
hide short peaks; elsewhere it falls back to the largest ``rss`` seen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Self

import psutil

Finder = Callable[[], dict[str, psutil.Process]]
MIB = 1024 * 1024


def peak_rss_bytes(proc: psutil.Process) -> int:
    """The process's peak RSS so far (VmHWM), or its current RSS where that is unknown."""
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return proc.memory_info().rss


class Sampler:
    """A daemon thread that calls ``_tick`` every ``interval`` seconds from ``__enter__`` until
    ``stop`` (or ``__exit__``), and once more after the thread has ended."""

    def __init__(self, interval: float, name: str) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._tick()  # a last look

    def _run(self) -> None:
        while True:
            self._tick()
            if self._stop.wait(self._interval):
                return

    def _tick(self) -> None:
        raise NotImplementedError


class PeakRss(Sampler):
    """Samples the peak RSS of the processes ``find`` returns, until ``stop``.

    ``find`` is called on every tick until it has returned ``expected`` processes, and only
    the processes found are sampled after that (so a costly search stops early). The last
    look at ``stop`` gives every process seen gone its time.
    """

    def __init__(self, find: Finder, expected: int, interval: float = 0.1) -> None:
        self._find = find
        self._expected = expected
        self._procs: dict[str, psutil.Process] = {}
        self.peaks: dict[str, int] = {}
        self.gone_at: dict[str, float] = {}  # label -> when it was first seen gone
        super().__init__(interval, "bench-peak-rss")

    @property
    def pids(self) -> dict[str, int]:
        return {label: proc.pid for label, proc in self._procs.items()}

    def peaks_mb(self) -> dict[str, float]:
        return {label: round(value / MIB, 1) for label, value in sorted(self.peaks.items())}

    def _tick(self) -> None:
        if len(self._procs) < self._expected:
            try:
                for label, proc in self._find().items():
                    self._procs.setdefault(label, proc)
            except (psutil.Error, OSError):
                pass
        for label, proc in self._procs.items():
            if label in self.gone_at:
                continue
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    raise psutil.NoSuchProcess(proc.pid)
                self.peaks[label] = max(self.peaks.get(label, 0), peak_rss_bytes(proc))
            except (psutil.Error, OSError):
                self.gone_at[label] = time.monotonic()  # its last sample stands


def children_matching(*needles: str) -> Finder:
    """Descendants of this process whose command line contains every needle, by task label."""

    def find() -> dict[str, psutil.Process]:
        found = {}
        for proc in psutil.Process().children(recursive=True):
            try:
                cmdline = proc.cmdline()
            except psutil.Error:
                continue
            if all(any(n in part for part in cmdline) for n in needles):
                found[task_label(cmdline)] = proc
        return found

    return find


def task_label(cmdline: list[str]) -> str:
    """``role:index`` from ``--role R --index I`` or ``--task R:I`` in a command line."""
    args = dict(zip(cmdline, cmdline[1:], strict=False))
    if "--task" in args:
        return args["--task"]
    return f"{args.get('--role', '?')}:{args.get('--index', '?')}"


def processes_with_env(needle: str, env_key: str, env_value_part: str) -> Finder:
    """Any process on this machine whose command line contains ``needle`` and whose
    environment variable ``env_key`` contains ``env_value_part`` (e.g. a run's model_dir)."""

    def find() -> dict[str, psutil.Process]:
        found = {}
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if not any(needle in part for part in cmdline):
                continue
            try:
                if env_value_part in proc.environ().get(env_key, ""):
                    found[task_label(cmdline)] = proc
            except psutil.Error:
                continue
        return found

    return find


def all_gone(pids: list[int]) -> bool:
    """True once none of ``pids`` is a live (non-zombie) process."""
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True
