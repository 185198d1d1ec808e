"""Pure arithmetic of the scale figure: percentiles, growth with the task count, memory fit.

Nothing here starts a process or reads a clock, so every rule the report states (what
"grows at most linearly" means, which size is skipped for memory) is unit-tested
(``tests/unit/test_scale.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

LINEAR_SLACK = 1.5  # per-task cost may grow this much over the smallest size (noise, load)
MEMORY_HEADROOM = 0.6  # a size may use this share of the memory available before it starts
MIB = 1024 * 1024


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated; None if empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q={q} is outside 0..100")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(latencies_secs: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p90, p99 and max of event latencies, in milliseconds."""
    ms = [1000 * v for v in latencies_secs]
    return {
        "n": len(ms),
        "p50_ms": _round(percentile(ms, 50)),
        "p90_ms": _round(percentile(ms, 90)),
        "p99_ms": _round(percentile(ms, 99)),
        "max_ms": _round(max(ms) if ms else None),
    }


def loglog_slope(sizes: Sequence[float], values: Sequence[float]) -> float | None:
    """The least-squares slope of log(value) over log(size): 1 is linear growth, 2 quadratic.

    None with fewer than two usable points (a value or size that is not positive is left out).
    """
    points = [
        (math.log(s), math.log(v)) for s, v in zip(sizes, values, strict=True) if s > 0 and v > 0
    ]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx


def at_most_linear(
    sizes: Sequence[float], values: Sequence[float], slack: float = LINEAR_SLACK
) -> bool | None:
    """Whether ``values`` grow at most linearly with ``sizes`` from the smallest size.

    True when, at every size, the cost per unit of size is at most ``slack`` times that of
    the smallest size (a fixed overhead makes the cost grow more slowly, which passes).
    None with fewer than two sizes.
    """
    pairs = sorted(zip(sizes, values, strict=True))
    if len(pairs) < 2:
        return None
    base_size, base_value = pairs[0]
    if base_size <= 0:
        raise ValueError(f"at_most_linear: sizes must be positive, got {base_size}")
    per_unit = max(base_value, 0.0) / base_size
    return all(value / size <= slack * per_unit + 1e-12 for size, value in pairs[1:])


def memory_fit(
    tasks: int, per_task_bytes: float, available_bytes: float, headroom: float = MEMORY_HEADROOM
) -> tuple[bool, str]:
    """Whether ``tasks`` processes of ``per_task_bytes`` fit in ``headroom`` of what is
    available, and the numbers that say so (the report's reason for a skipped size)."""
    need, budget = tasks * per_task_bytes, headroom * available_bytes
    text = (
        f"{tasks} tasks x {per_task_bytes / MIB:.0f} MiB = {need / MIB:.0f} MiB estimated, "
        f"{budget / MIB:.0f} MiB allowed ({headroom:.0%} of {available_bytes / MIB:.0f} MiB "
        "available)"
    )
    return need <= budget, text


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
