"""Medians, ranges, paired ratios and targets: how every figure is summarized.

A ``Comparison`` holds one figure's per-repetition values for a baseline and a candidate
measured in the same repetitions (``None`` where a run failed). Paired ratios and differences
only use repetitions where both sides were measured.
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

Values = Sequence[float | None]

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Values) -> Summary | None:
        present = [v for v in values if v is not None]
        if not present:
            return None
        return cls(statistics.median(present), min(present), max(present), len(present))


@dataclass(frozen=True)
class Target:
    """``on`` (the candidate's value, the paired ratio, or the paired difference) ``op`` bound."""

    on: str  # "value" | "ratio" | "delta"
    op: str  # one of _OPS
    bound: float

    def met(self, comparison: Comparison) -> bool | None:
        summary = {
            "value": comparison.candidate_summary,
            "ratio": comparison.ratio_summary,
            "delta": comparison.delta_summary,
        }[self.on]
        return None if summary is None else _OPS[self.op](summary.median, self.bound)


@dataclass
class Comparison:
    """One row of a figure: a candidate against its baseline from the same repetitions."""

    label: str
    unit: str
    baseline_name: str
    baseline: Values
    candidate_name: str
    candidate: Values
    target: Target | None = None
    scale: float = 1.0  # multiply values by this for display (e.g. 1e6 for µs)
    paired_deltas: Values | None = None  # measured differences, where finer than c - b

    def pairs(self) -> list[tuple[float, float]]:
        return [
            (b, c)
            for b, c in zip(self.baseline, self.candidate, strict=False)
            if b is not None and c is not None
        ]

    @property
    def baseline_summary(self) -> Summary | None:
        return Summary.of(self.baseline)

    @property
    def candidate_summary(self) -> Summary | None:
        return Summary.of(self.candidate)

    @property
    def ratio_summary(self) -> Summary | None:
        return Summary.of([c / b for b, c in self.pairs() if b])

    @property
    def delta_summary(self) -> Summary | None:
        if self.paired_deltas is not None:
            return Summary.of(self.paired_deltas)
        return Summary.of([c - b for b, c in self.pairs()])

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self)


def step_times(rates: Values) -> list[float | None]:
    """Seconds per step from steps/s (``None`` where a run failed or measured no step)."""
    return [1.0 / r if r else None for r in rates]


def paired_overheads(baseline_rates: Values, candidate_rates: Values) -> list[float | None]:
    """Per repetition, ``1/candidate - 1/baseline``: the seconds each step took longer in the
    candidate than in the baseline of the same repetition (``None`` where either is missing)."""
    return [
        1.0 / c - 1.0 / b if b and c else None
        for b, c in zip(baseline_rates, candidate_rates, strict=False)
    ]
