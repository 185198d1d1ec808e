"""The scale figure's section of BENCHMARKS.md: tables, targets, skipped sizes and plots.

``section`` renders a ``bench.scale_suite.ScaleResults``; it also writes the PNGs
(``bench.plots.scale_plots``) into ``plots_dir`` and links them relative to ``report_dir``.
Targets (from the performance issue): bring-up and teardown grow at most linearly from the
smallest simulated size (``bench.scale_stats.at_most_linear``), and the driver's event
latency p99 is at most ``P99_TARGET_MS`` at ``TARGET_TASKS`` simulated tasks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import plots
from bench.scale_stats import LINEAR_SLACK, at_most_linear, loglog_slope
from bench.scale_suite import size_label

P99_TARGET_MS = 100.0
TARGET_TASKS = 1024

SETUP = (
    "How the driver's cost grows with the number of tasks. **Simulated**: the real "
    "supervisor and local launcher (`harness run`'s code path, run.json writes and all) "
    "driving `bench/fake_task.py` processes, which speak the task protocol without "
    "TensorFlow (`python -I -S`, standard library only) and report progress every 0.5 s "
    "as trainers do; 1 chief, one ps per 64 tasks, the rest workers (`bench/scale_sim.py`). "
    "Bring-up is launch -> every trainer stepping; teardown is `stop` sent to the chief -> "
    "the last task process gone; the event latency is a task's write of a progress event -> "
    "the supervisor's observer call for it, over a steady window after a settling time; the "
    "driver's CPU per event covers all its threads (supervisor and the launcher's readers) "
    "over that window. **Real**: 1 chief + N workers + M ps of real TF tasks on the "
    "benchmark's small model, local backend (`bench/scale_real.py`): bring-up is launch -> "
    "the last trainer's first step, teardown the chief's last step -> the last process gone. "
    "Each size runs in a fresh driver process. Before a size, its memory is estimated from "
    "the previous size's largest per-task RSS and the memory available then; a size that "
    "would not fit is skipped, with the numbers."
)


def _v(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def simulated_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    head = (
        "| tasks | bring-up s | teardown s | latency p50 ms | p99 ms | max ms | events/s "
        "| driver CPU µs/event | driver peak RSS MiB | task RSS MiB (mean / max) |"
    )
    out = [head, "|" + "---|" * 10]
    for r in sorted(rows, key=lambda r: r["tasks"]):
        lat = r.get("latency") or {}
        out.append(
            f"| {r['tasks']} | {_v(r['bring_up_secs'], 2)} | {_v(r['teardown_secs'], 2)} "
            f"| {_v(lat.get('p50_ms'))} | {_v(lat.get('p99_ms'))} | {_v(lat.get('max_ms'))} "
            f"| {_v(r['events_per_sec'])} | {_v(r['cpu_per_event_us'])} "
            f"| {_v(r['driver_peak_rss_mb'])} "
            f"| {_v(r['task_rss_mean_mb'])} / {_v(r['task_rss_max_mb'])} |"
        )
    return [*out, ""]


def growth_row(rows: Sequence[dict[str, Any]], key: str, what: str) -> str:
    """One target row: whether ``key`` grows at most linearly over the simulated sizes."""
    points = sorted((r["tasks"], r[key]) for r in rows if r.get(key) is not None)
    sizes, values = [p[0] for p in points], [p[1] for p in points]
    met = at_most_linear(sizes, values) if points else None
    if met is None:
        return f"| {what} grows at most linearly | fewer than two sizes measured | – |"
    per_task = ", ".join(f"{1000 * v / s:.2f} ms at {s}" for s, v in points)
    slope = loglog_slope(sizes, values)
    slope_text = "" if slope is None else f"; log-log slope {slope:.2f}"
    return (
        f"| {what} grows at most linearly from {sizes[0]} tasks (per task: at most "
        f"{LINEAR_SLACK}x that at {sizes[0]}) | per task {per_task}{slope_text} "
        f"| {'yes' if met else 'NO'} |"
    )


def latency_row(rows: Sequence[dict[str, Any]]) -> str:
    at_target = [r for r in rows if r["tasks"] == TARGET_TASKS]
    what = f"event latency p99 <= {P99_TARGET_MS:.0f} ms at {TARGET_TASKS} tasks"
    if not at_target:
        return f"| {what} | not measured (no {TARGET_TASKS}-task run) | – |"
    p99 = (at_target[0].get("latency") or {}).get("p99_ms")
    if p99 is None:
        return f"| {what} | no events in the window | NO |"
    return f"| {what} | {p99:.1f} ms | {'yes' if p99 <= P99_TARGET_MS else 'NO'} |"


def targets_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [
        "| target | measured | met |",
        "|---|---|---|",
        growth_row(rows, "bring_up_secs", "bring-up"),
        growth_row(rows, "teardown_secs", "teardown"),
        latency_row(rows),
        "",
    ]


def real_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    head = (
        "| cluster | tasks | bring-up s | teardown s | driver CPU s | driver peak RSS MiB "
        "| task peak RSS MiB (mean / max) |"
    )
    out = [head, "|" + "---|" * 7]
    for r in sorted(rows, key=lambda r: r["tasks"]):
        out.append(
            f"| 1 chief + {size_label((r['workers'], r['ps']))} | {r['tasks']} "
            f"| {_v(r['bring_up_secs'], 2)} | {_v(r['teardown_secs'], 2)} "
            f"| {_v(r['driver_cpu_secs'], 2)} | {_v(r['driver_peak_rss_mb'])} "
            f"| {_v(r['task_rss_mean_mb'])} / {_v(r['task_rss_max_mb'])} |"
        )
    return [*out, ""]


def section(scale: Any, plots_dir: str | Path, report_dir: str | Path) -> list[str]:
    """The whole section (module docstring); ``scale`` None renders a "not measured" line."""
    out = ["## 8. Scale", "", SETUP, ""]
    if scale is None:
        return [*out, "Not measured.", ""]
    if scale.quick:
        out += ["`--quick`: simulated 64 and 256 tasks, real clusters up to 3 workers.", ""]
    out += ["### Simulated (fake tasks)", ""]
    out += simulated_table(scale.simulated) if scale.simulated else ["No size measured.", ""]
    out += targets_table(scale.simulated)
    out += ["### Real clusters (local backend)", ""]
    out += real_table(scale.real) if scale.real else ["No size measured.", ""]
    if scale.skipped:
        out += ["Sizes skipped for memory:", ""]
        out += [
            f"- {s['part']} {s['size']} ({s['tasks']} tasks): {s['reason']}" for s in scale.skipped
        ]
        out += [""]
    if scale.failures:
        out += ["Sizes that failed:", "", *[f"- {f}" for f in scale.failures], ""]
    for path in plots.scale_plots(scale, plots_dir):
        link = os.path.relpath(path, report_dir)
        out += [f"![{path.stem}]({link})", ""]
    return out
