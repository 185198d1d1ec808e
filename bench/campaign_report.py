"""The fault campaign's outputs (``bench.campaign``): the CSV of kills and the summary table.

Pure: ``write_csv`` writes one row per kill (``bench.campaign_measure.KillRow``), and
``summarize``/``markdown`` turn the rows into one line per backend and kind: pass count,
recovery p50/p95/max, steps lost, leftovers. ``passed`` says whether the campaign passed
(every kill recovered, nothing left after any run).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

from bench.campaign_measure import KillRow
from bench.campaign_plan import KINDS

CSV_FIELDS = tuple(field.name for field in dataclasses.fields(KillRow))


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of ``values``, interpolated linearly between the two
    nearest ranks (numpy's default); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be within 0..100, not {q}")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def write_csv(path: str | os.PathLike[str], rows: Iterable[KillRow]) -> None:
    """One line per kill under a header of ``CSV_FIELDS``; booleans as yes/no, unknown
    values (a kill that did not happen) empty."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in dataclasses.asdict(row).items()})


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else value


@dataclass(frozen=True)
class Line:
    """The summary of one backend's kills of one kind."""

    backend: str
    kind: str
    recovered: int
    total: int
    p50: float | None
    p95: float | None
    max: float | None
    steps_lost_max: int | None
    steps_lost_mean: float | None
    overlapped: int
    leftovers: int
    runs: int
    checkpoints_ok: int


def summarize(rows: list[KillRow]) -> list[Line]:
    """One ``Line`` per backend (in the rows' order) and kind (worker, chief, ps) that has
    kills. Recovery figures are over the recovered kills; leftovers add up each run's once."""
    backends = list(dict.fromkeys(row.backend for row in rows))
    lines = []
    for backend in backends:
        for kind in KINDS:
            group = [r for r in rows if r.backend == backend and r.kind == kind]
            if not group:
                continue
            secs = [r.recovery_secs for r in group if r.recovered and r.recovery_secs is not None]
            lost = [r.steps_lost for r in group if r.steps_lost is not None]
            runs = {r.run_id: r for r in group}.values()
            lines.append(
                Line(
                    backend=backend,
                    kind=kind,
                    recovered=sum(r.recovered for r in group),
                    total=len(group),
                    p50=percentile(secs, 50),
                    p95=percentile(secs, 95),
                    max=max(secs, default=None),
                    steps_lost_max=max(lost, default=None),
                    steps_lost_mean=sum(lost) / len(lost) if lost else None,
                    overlapped=sum(r.overlapped for r in group),
                    leftovers=sum(r.leftovers for r in runs),
                    runs=len(runs),
                    checkpoints_ok=sum(r.checkpoint_loads for r in runs),
                )
            )
    return lines


def markdown(lines: list[Line], runs: int) -> str:
    """The summary as a markdown table (the campaign prints it and writes it to a file)."""
    out = [
        "| backend | kind | recovered | recovery p50 | p95 | max | steps lost max (mean) "
        "| overlapped | final checkpoint loads | leftovers |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for line in lines:
        lost = (
            "-"
            if line.steps_lost_max is None
            else f"{line.steps_lost_max} ({line.steps_lost_mean:.1f})"
        )
        out.append(
            f"| {line.backend} | {line.kind} | {line.recovered}/{line.total} "
            f"| {_secs(line.p50)} | {_secs(line.p95)} | {_secs(line.max)} | {lost} "
            f"| {line.overlapped} | {line.checkpoints_ok}/{line.runs} runs | {line.leftovers} |"
        )
    out.append("")
    out.append(
        f"{runs} runs. Recovery: from the task's death to its replacement's first step (a ps: "
        "the restarted cluster's); steps lost: global steps rolled back; overlapped: kills "
        "during whose recovery another kill of the run happened."
    )
    return "\n".join(out) + "\n"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def passed(rows: list[KillRow]) -> bool:
    """Every kill recovered, every run's final checkpoint loads, nothing left after any run."""
    return bool(rows) and all(r.recovered and r.checkpoint_loads and not r.leftovers for r in rows)
