"""The scale figure's measurements: simulated sizes, then real clusters, each checked for memory.

``measure`` runs the simulated scale (``bench.scale_sim``: 64, 256 and 1,024 fake tasks;
``--quick``: 64 and 256) and then the real clusters (``bench.scale_real``: 1 chief + N
workers + M ps for ``REAL_SIZES``; ``--quick``: the first two), each size in a fresh driver
process. Before every size but the first of its part, ``run_sizes`` estimates its memory
from the previous size's largest per-task RSS and what ``psutil.virtual_memory()`` says is
available now (``bench.scale_stats.memory_fit``); a size that does not fit is skipped and the
numbers that say so are kept as the reason. A size that fails is recorded and the next one
still runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench import scale_real, scale_sim
from bench.scale_stats import MIB, memory_fit

SIM_SIZES = (64, 256, 1024)
QUICK_SIM_SIZES = (64, 256)
SIM_WINDOW_SECS = {"full": 10.0, "quick": 3.0}
#: The real runs' time window, warm-up seconds and warm-up steps (bench.workload).
REAL_WINDOW = {"full": (3.0, 1.0, 250), "quick": (1.0, 0.5, 110)}


@dataclass
class ScaleResults:
    """What the scale figure measured: one dict per size run, the sizes skipped and why."""

    quick: bool = False
    simulated: list[dict[str, Any]] = field(default_factory=list)
    real: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # part, size, tasks, reason
    failures: list[str] = field(default_factory=list)


def run_sizes(
    part: str,
    sizes: Sequence[Any],
    tasks_of: Callable[[Any], int],
    run: Callable[[Any], dict[str, Any]],
    into: list[dict[str, Any]],
    results: ScaleResults,
    log: Callable[[str], None],
    available: Callable[[], float] = lambda: psutil.virtual_memory().available,
) -> None:
    """Run ``sizes`` in order with ``run``, appending each result to ``into`` (module docstring).

    A result must carry ``task_rss_max_mb`` (the estimate of the next size uses it).
    """
    previous: dict[str, Any] | None = None
    for size in sizes:
        tasks = tasks_of(size)
        label = f"{part} {size_label(size)}"
        if previous is not None:
            fits, why = memory_fit(tasks, previous["task_rss_max_mb"] * MIB, available())
            if not fits:
                results.skipped.append(
                    {"part": part, "size": size_label(size), "tasks": tasks, "reason": why}
                )
                log(f"  scale {label}: skipped, it would not fit: {why}")
                continue
        try:
            result = run(size)
        except Exception as exc:  # noqa: BLE001 - a failed size is reported, not fatal
            results.failures.append(f"scale {label}: {type(exc).__name__}: {exc}")
            log(f"  scale {label}: FAILED: {exc}")
            continue
        log(f"  scale {label}: {describe(result)}")
        into.append(result)
        previous = result


def size_label(size: Any) -> str:
    """``1024 tasks`` for a simulated size, ``7 workers + 2 ps`` (``1 worker``) for a real one."""
    if isinstance(size, tuple):
        return f"{size[0]} worker{'' if size[0] == 1 else 's'} + {size[1]} ps"
    return f"{size} tasks"


def describe(result: dict[str, Any]) -> str:
    text = (
        f"{result['tasks']} tasks: bring-up {result['bring_up_secs']} s, "
        f"teardown {result['teardown_secs']} s"
    )
    latency = result.get("latency")
    if latency:
        text += f", event latency p99 {latency['p99_ms']} ms"
    return text + f", driver peak RSS {result['driver_peak_rss_mb']} MiB"


def measure(work_dir: str, quick: bool, log: Callable[[str], None]) -> ScaleResults:
    """The whole figure (module docstring); every run's files go under ``work_dir``."""
    mode = "quick" if quick else "full"
    results = ScaleResults(quick=quick)
    window = SIM_WINDOW_SECS[mode]
    log(f"scale: simulated sizes {', '.join(map(str, QUICK_SIM_SIZES if quick else SIM_SIZES))}")

    def simulated(tasks: int) -> dict[str, Any]:
        return scale_sim.measure(tasks, os.path.join(work_dir, f"sim-{tasks}"), window)

    sim_sizes = QUICK_SIM_SIZES if quick else SIM_SIZES
    run_sizes("simulated", sim_sizes, int, simulated, results.simulated, results, log)
    real_window, warmup_secs, warmup_steps = REAL_WINDOW[mode]

    def real(size: tuple[int, int]) -> dict[str, Any]:
        workers, ps = size
        run_dir = os.path.join(work_dir, f"real-{workers}w{ps}ps")
        return scale_real.measure(workers, ps, run_dir, real_window, warmup_secs, warmup_steps)

    real_sizes = scale_real.QUICK_REAL_SIZES if quick else scale_real.REAL_SIZES
    log(f"scale: real clusters {', '.join(size_label(s) for s in real_sizes)} (local backend)")
    run_sizes("real", real_sizes, lambda s: 1 + s[0] + s[1], real, results.real, results, log)
    return results
