"""Where the machine's CPU went during a run's measuring window, by kind of process.

A ``CpuUse`` thread takes a snapshot every second: every process's CPU seconds (user +
system, psutil), sorted into groups by its command line. ``cores(start, end)`` gives each
group's CPU use between the first and last snapshots inside that window, in cores (CPU
seconds per second). ``idle`` is what is left of the cores this process may run on
(``os.sched_getaffinity``), so the groups and ``idle`` add up to those cores. It is not the
kernel's idle counter: in a container ``/proc/stat`` may count the host's cores.

Groups: ``tasks`` (bare TF or harness task processes), ``ray actors`` (``ray::`` worker
processes, which own the harness's task processes under Ray), ``ray services`` (raylet, GCS,
dashboard and Ray's other agents), ``driver`` (this process: the benchmark driver, which is
the harness's supervisor in harness runs), ``other`` (anything else on the machine) and
``idle``. A process started inside the window counts from its start.
"""

from __future__ import annotations

import bisect
import os
import time
from collections import defaultdict

import psutil

from bench import procwatch

GROUPS = ("tasks", "ray actors", "ray services", "driver", "other", "idle")
_RAY_SERVICES = ("raylet", "gcs_server", "ray/dashboard", "ray/_private", "ray/autoscaler")

Snapshot = tuple[float, dict[int, tuple[str, float]]]  # (t, pid -> (group, cpu secs))


def group_of(pid: int, cmdline: list[str], driver: int) -> str:
    """The group of a process, from its pid and command line (module docstring)."""
    if pid == driver:
        return "driver"
    text = " ".join(cmdline)
    if "harness.task" in text or ("bench.bare_tf" in text and "--task" in text):
        return "tasks"
    if text.startswith("ray::"):
        return "ray actors"
    if any(name in text for name in _RAY_SERVICES):
        return "ray services"
    return "other"


def machine_cores() -> int:
    """The cores this process may run on: its CPU affinity, else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cores_between(before: Snapshot, after: Snapshot, cores: int) -> dict[str, float]:
    """Each group's CPU use between two snapshots, in cores; ``idle`` is the rest of
    ``cores`` (module docstring)."""
    secs = after[0] - before[0]
    used: dict[str, float] = defaultdict(float)
    for pid, (group, cpu) in after[1].items():
        start = before[1].get(pid)
        used[group] += cpu - (start[1] if start is not None and start[0] == group else 0.0)
    used["idle"] = cores * secs - sum(used.values())
    return {group: round(max(used.get(group, 0.0), 0.0) / secs, 3) for group in GROUPS}


class CpuUse(procwatch.Sampler):
    """Snapshots of the machine's CPU use every ``interval`` seconds, until ``stop``."""

    def __init__(self, interval: float = 1.0) -> None:
        self._driver = os.getpid()
        self._cores = machine_cores()
        self.snapshots: list[Snapshot] = []
        super().__init__(interval, "bench-cpu-use")

    def cores(self, start: float, end: float) -> dict[str, float] | None:
        """CPU use between the first snapshot at or after ``start`` and the last at or before
        ``end`` (``time.monotonic`` times), so that only processes running through the window
        count (the harness's tasks may be gone within 0.1 s of its end); None when fewer than
        two snapshots fall inside."""
        times = [s[0] for s in self.snapshots]
        i, j = bisect.bisect_left(times, start), bisect.bisect_right(times, end) - 1
        if j <= i:
            return None
        return cores_between(self.snapshots[i], self.snapshots[j], self._cores)

    def _tick(self) -> None:
        self.snapshots.append(self._snapshot())

    def _snapshot(self) -> Snapshot:
        t = time.monotonic()
        procs: dict[int, tuple[str, float]] = {}
        for proc in psutil.process_iter(["cpu_times", "cmdline"]):
            try:
                times = proc.info["cpu_times"]
                if times is None:
                    continue
                group = group_of(proc.pid, proc.info["cmdline"] or [], self._driver)
                procs[proc.pid] = (group, times.user + times.system)
            except (psutil.Error, OSError):
                continue
        return t, procs
