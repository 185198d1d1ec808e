"""The benchmark's figures as PNG files, drawn with matplotlib's Agg backend (no display).

``scale_plots`` draws the scale figure (``bench.scale_suite.ScaleResults``) against the
number of tasks, on log-log axes with a dotted "linear from the smallest size" guide:

- ``scale_bringup.png``: bring-up and teardown, simulated and real;
- ``scale_latency.png``: the simulated event latency (p50, p99, max) and the 100 ms target;
- ``scale_driver.png``: the driver's CPU per event and its peak RSS (simulated), and the
  real runs' driver peak RSS.

A plot with nothing to draw is not written. matplotlib is the ``bench`` extra's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

LATENCY_TARGET_MS = 100.0


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(rows: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(tasks, value) of the rows where ``key`` (``a.b`` for a nested one) has a value."""
    xs, ys = [], []
    for row in rows:
        value: Any = row
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None and value > 0:
            xs.append(float(row["tasks"]))
            ys.append(float(value))
    return xs, ys


def _linear_guide(ax: Any, xs: list[float], ys: list[float]) -> None:
    if len(xs) >= 2:
        ax.plot([xs[0], xs[-1]], [ys[0], ys[0] * xs[-1] / xs[0]], ":", color="grey", label="linear")


def _finish(plt: Any, fig: Any, ax: Any, title: str, ylabel: str, path: Path) -> Path:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tasks")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_curves(plt: Any, curves: list[tuple[Any, str, str, str]]) -> tuple[Any, Any] | None:
    """A figure with each ``(rows, key, label, style)`` curve that has points; None if none."""
    series = [(_series(rows, key), label, style) for rows, key, label, style in curves]
    if not any(xs for (xs, _), _, _ in series):
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (xs, ys), label, style in series:
        if xs:
            ax.plot(xs, ys, style, label=label)
    return fig, ax


def scale_plots(scale: Any, out_dir: str | Path) -> list[Path]:
    """Write the scale figure's PNGs into ``out_dir``; returns the paths written."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    curves = [
        (scale.simulated, "bring_up_secs", "bring-up, simulated", "o-"),
        (scale.simulated, "teardown_secs", "teardown, simulated", "s-"),
        (scale.real, "bring_up_secs", "bring-up, real", "o--"),
        (scale.real, "teardown_secs", "teardown, real", "s--"),
    ]
    drawn = _plot_curves(plt, curves)
    if drawn:
        fig, ax = drawn
        _linear_guide(ax, *_series(scale.simulated, "bring_up_secs"))
        path = out / "scale_bringup.png"
        written.append(_finish(plt, fig, ax, "Bring-up and teardown", "seconds", path))
    if _series(scale.simulated, "latency.p99_ms")[0]:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("max_ms", "max")):
            ax.plot(*_series(scale.simulated, f"latency.{key}"), "o-", label=label)
        ax.axhline(LATENCY_TARGET_MS, color="red", linestyle="--", label="p99 target")
        path = out / "scale_latency.png"
        written.append(_finish(plt, fig, ax, "Event latency (simulated)", "ms", path))
    driver = [
        (scale.simulated, "cpu_per_event_us", "CPU per event, simulated (µs)", "o-"),
        (scale.simulated, "driver_peak_rss_mb", "peak RSS, simulated (MiB)", "s-"),
        (scale.real, "driver_peak_rss_mb", "peak RSS, real (MiB)", "s--"),
    ]
    drawn = _plot_curves(plt, driver)
    if drawn:
        fig, ax = drawn
        path = out / "scale_driver.png"
        written.append(_finish(plt, fig, ax, "The driver's cost", "µs or MiB", path))
    return written
