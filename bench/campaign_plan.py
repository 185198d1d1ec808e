"""The fault campaign's plan (``bench.campaign``): which task dies at which step, in which run.

Pure: ``plan_runs`` turns the kill counts and a seed into runs; the same seed gives the same
plan. Each run is one job (1 chief, ``WORKERS`` workers, 1 ps) with up to ``kills_per_run``
kills, their kinds shuffled over the backend's runs. Kill ``j`` of a run is planned at a
random step in ``[first_step + j * gap_steps, first_step + j * gap_steps + gap_steps // 4]``,
so two kills of a run are at least ``3 * gap_steps // 4`` steps apart (time for the previous
one's recovery); the run's max_steps leaves ``tail_steps`` more after the window of the last,
for its recovery before the job ends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

KINDS = ("worker", "chief", "ps")
WORKERS = 2


@dataclass(frozen=True)
class PlannedKill:
    """``target`` (``role:index``) of ``kind`` SIGKILLs itself at global ``step``."""

    kind: str
    target: str
    step: int


@dataclass(frozen=True)
class RunPlan:
    backend: str
    run_id: str
    kills: tuple[PlannedKill, ...]
    max_steps: int


@dataclass(frozen=True)
class Counts:
    """Kills per backend, by kind."""

    worker: int
    chief: int
    ps: int

    def __post_init__(self) -> None:
        for kind in KINDS:
            if getattr(self, kind) < 0:
                raise ValueError(f"--{kind}-kills must be 0 or more, not {getattr(self, kind)}")
        if self.total == 0:
            raise ValueError("no kills asked for: give --worker-kills, --chief-kills or --ps-kills")

    @property
    def total(self) -> int:
        return self.worker + self.chief + self.ps


def plan_runs(
    backend: str,
    counts: Counts,
    kills_per_run: int,
    seed: int,
    gap_steps: int,
    first_step: int,
    tail_steps: int = 400,
) -> list[RunPlan]:
    """The runs of one backend: ``counts`` kills in runs of up to ``kills_per_run``.

    Raises ValueError for a ``kills_per_run`` below 1, a ``gap_steps`` below 2 or a
    ``first_step`` below 1.
    """
    if kills_per_run < 1:
        raise ValueError(f"--kills-per-run must be 1 or more, not {kills_per_run}")
    if gap_steps < 4:
        raise ValueError(f"--gap-steps must be 4 or more, not {gap_steps}")
    if tail_steps < 1:
        raise ValueError(f"--tail-steps must be 1 or more, not {tail_steps}")
    if first_step < 1:
        raise ValueError(f"--first-step must be 1 or more, not {first_step}")
    rng = random.Random(f"{seed}:{backend}")
    kinds = [kind for kind in KINDS for _ in range(getattr(counts, kind))]
    rng.shuffle(kinds)
    runs = []
    for number, start in enumerate(range(0, len(kinds), kills_per_run)):
        chunk = kinds[start : start + kills_per_run]
        kills = tuple(
            PlannedKill(
                kind,
                _target(kind, rng),
                first_step + j * gap_steps + rng.randint(0, gap_steps // 4),
            )
            for j, kind in enumerate(chunk)
        )
        max_steps = first_step + len(chunk) * gap_steps + tail_steps
        runs.append(RunPlan(backend, f"{backend}-{number + 1:02d}", kills, max_steps))
    return runs


def _target(kind: str, rng: random.Random) -> str:
    return f"worker:{rng.randrange(WORKERS)}" if kind == "worker" else f"{kind}:0"
