"""The throughput figures of BENCHMARKS.md: steps/s against bare TF, time per step, Ray Train.

Rows are ``bench.stats.Comparison`` values of the suite's cluster runs (keys
``<variant>-<size>``, variants as in ``NAMES``); ``bench.report`` renders them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.cpu_use import GROUPS
from bench.stats import Comparison, Summary, Target, paired_overheads, step_times
from bench.suite import PEER_SIZE, SIZES_MEASURED, Results, batch_size


def fmt(summary: Summary | None, scale: float = 1.0, digits: int = 2) -> str:
    """``median [min–max] (n)``, or ``—`` where nothing was measured."""
    if summary is None:
        return "—"
    med, low, high = (x * scale for x in (summary.median, summary.low, summary.high))
    return f"{med:.{digits}f} [{low:.{digits}f}–{high:.{digits}f}] ({summary.n})"


def field(runs: Sequence[Any] | None, name: str) -> list[float | None]:
    """One attribute of every run (``None`` for a failed run)."""
    return [None if r is None else getattr(r, name) for r in runs or []]


NAMES = {
    "bare": "bare TF",
    "bare_est": "bare TF + Estimator hooks",
    "local": "harness local",
    "ray": "harness ray",
    "ray_sync": "harness ray, SyncReplicas",
}
THROUGHPUT_BASELINES = ("bare", "bare_est")
RATIO_TARGET = Target("ratio", ">=", 0.99)
OVERHEAD_TARGET = Target("delta", "<=", 20e-6)  # seconds per global step


def throughput_rows(r: Results) -> list[Comparison]:
    """Global steps/s, each harness backend against each bare-TF baseline (paired ratio)."""
    rows = []
    for size in SIZES_MEASURED:
        for baseline in THROUGHPUT_BASELINES:
            base = field(r.clusters.get(f"{baseline}-{size}"), "steps_per_sec")
            for variant in ("local", "ray"):
                rows.append(
                    Comparison(
                        f"{size} model, global steps/s",
                        "steps/s",
                        NAMES[baseline],
                        base,
                        NAMES[variant],
                        field(r.clusters.get(f"{variant}-{size}"), "steps_per_sec"),
                        RATIO_TARGET,
                    )
                )
    return rows


def overhead_rows(r: Results) -> list[Comparison]:
    """Time per global step (1 / steps/s), and per repetition the candidate's extra time per
    global step over the baseline's: ``1/candidate - 1/baseline``."""
    rows = []
    for size in SIZES_MEASURED:
        for baseline in THROUGHPUT_BASELINES:
            base = field(r.clusters.get(f"{baseline}-{size}"), "steps_per_sec")
            for variant in ("local", "ray"):
                cand = field(r.clusters.get(f"{variant}-{size}"), "steps_per_sec")
                rows.append(
                    Comparison(
                        f"{size} model, time per global step",
                        "µs",
                        NAMES[baseline],
                        step_times(base),
                        NAMES[variant],
                        step_times(cand),
                        OVERHEAD_TARGET,
                        scale=1e6,
                        paired_deltas=paired_overheads(base, cand),
                    )
                )
    return rows


def peer_table(r: Results) -> list[str]:
    """The peer comparison on PEER_SIZE: steps/s and examples/s of Ray Train, the harness's
    async ps and its SyncReplicas variant, and examples/s paired against Ray Train."""
    batch = batch_size(PEER_SIZE)
    trainers = 3
    ray_train = [None if x is None else x.steps_per_sec for x in r.ray_train]
    variants = [
        ("Ray Train, MultiWorkerMirroredStrategy (3 workers)", ray_train, trainers),
        (
            f"{NAMES['ray']}, async ps",
            field(r.clusters.get(f"ray-{PEER_SIZE}"), "steps_per_sec"),
            1,
        ),
        (
            NAMES["ray_sync"],
            field(r.clusters.get(f"ray_sync-{PEER_SIZE}"), "steps_per_sec"),
            trainers,
        ),
    ]
    base_examples = [None if x is None else x * batch * trainers for x in ray_train]
    lines = [
        "| variant | steps/s | batches per step | examples/s | examples/s ÷ Ray Train (paired) |",
        "|---|---|---|---|---|",
    ]
    for name, rates, per_step in variants:
        examples = [None if x is None else x * batch * per_step for x in rates]
        ratio = Comparison("", "", "", base_examples, "", examples).ratio_summary
        lines.append(
            f"| {name} | {fmt(Summary.of(rates), digits=1)} | {per_step} | "
            f"{fmt(Summary.of(examples), digits=0)} | {fmt(ratio, digits=3)} |"
        )
    return lines + [""]


CPU_SETUP = (
    "Where the CPU went inside the same windows (`bench/cpu_use.py`: every process's CPU "
    "seconds, sampled once a second, by kind; cores used, median over the runs; the columns "
    "add up to the machine's cores). On a machine whose cores the task processes share, any "
    "CPU that the driver, Ray's processes or idle time take is CPU the steps do not get."
)


def cpu_table(r: Results) -> list[str]:
    """Median cores per ``cpu_use`` group in each variant's windows; [] when none measured."""
    lines = []
    for size in SIZES_MEASURED:
        for variant in NAMES:
            runs = [c for c in r.clusters.get(f"{variant}-{size}") or [] if c and c.cpu_cores]
            if not runs:
                continue
            medians = []
            for group in GROUPS:
                summary = Summary.of([c.cpu_cores.get(group) for c in runs])
                medians.append("—" if summary is None else f"{summary.median:.2f}")
            lines.append(
                f"| {size} | {NAMES[variant]} | {len(runs)} | " + " | ".join(medians) + " |"
            )
    if not lines:
        return []
    head = "| model | variant | runs | " + " | ".join(GROUPS) + " |"
    rule = "|" + "---|" * (3 + len(GROUPS))
    return [CPU_SETUP, "", head, rule, *lines, ""]
