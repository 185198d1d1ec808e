"""What each kill of a campaign run did (``bench.campaign``), from the tasks' own records.

Pure but for reading files. The sources, all written by the tasks with their own wall clock
(``time.time()``):

- the kill's marker (``harness.faults.KillRecord``): the dying task's pid, the step it died
  at and when;
- the model's step files (``bench.campaign_model``): one per trainer process, ``{"t", "g"}``
  per step;
- run.json's ``failures`` (the supervisor's log): the decision taken for each exit.

Recovery time is from the death to the first step of the replacement: for a worker or
chief kill, the first step of a new process of that task; for a ps kill, the first step of
any trainer process started after the death (the restarted cluster). Steps lost: for a
trainer kill, how far the global step the replacement first read is below the step the task
died at (0 when the ps kept the variables); for a ps kill, the rollback from the highest
global step read before the death to the one the restarted cluster started from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from bench.campaign_plan import PlannedKill, RunPlan
from harness.faults import KillRecord

#: run.json's decision for each kind of kill (cluster.policy.Decision's names).
EXPECTED_DECISION = {"worker": "RESTART_TASK", "chief": "RESTART_TASK", "ps": "RESTART_CLUSTER"}


@dataclass(frozen=True)
class Steps:
    """One trainer process's step records."""

    task: str
    pid: int
    records: tuple[tuple[float, int], ...]  # (t, g), in order

    @property
    def first(self) -> tuple[float, int]:
        return self.records[0]


@dataclass(frozen=True)
class KillRow:
    """One CSV row: a planned kill and what became of it."""

    backend: str
    run_id: str
    kind: str
    target: str
    planned_step: int
    death_step: int | None
    recovered: bool
    recovery_secs: float | None
    steps_lost: int | None
    decision: str
    overlapped: bool  # another kill of the run happened while this one was recovering
    checkpoint_loads: bool
    leftovers: int
    run_status: str


def read_steps(steps_dir: str | os.PathLike[str]) -> list[Steps]:
    """Every trainer process's records in ``steps_dir`` (files ``role-index-pid.jsonl``);
    processes that made no step are left out. A partial last line (a kill mid-write) is
    skipped."""
    found = []
    for path in sorted(Path(steps_dir).glob("*.jsonl")):
        role, index, pid = path.stem.rsplit("-", 2)
        records = []
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
                records.append((float(entry["t"]), int(entry["g"])))
            except (ValueError, KeyError, TypeError):
                continue
        if records:
            found.append(Steps(f"{role}:{index}", int(pid), tuple(records)))
    return found


def measure_kill(
    kill: PlannedKill, record: KillRecord | None, steps: list[Steps]
) -> tuple[float | None, int | None]:
    """(recovery seconds, global steps lost) for one kill; (None, None) when it did not
    happen or no replacement made a step."""
    if record is None:
        return None, None
    later = [s for s in steps if s.pid != record.pid and s.first[0] > record.t]
    if kill.kind != "ps":
        replacements = [s for s in later if s.task == kill.target]
        if not replacements:
            return None, None
        first_t, first_g = min(s.first for s in replacements)
        return round(first_t - record.t, 3), max(0, record.step - first_g)
    if not later:
        return None, None
    first_t = min(s.first[0] for s in later)
    restored = min(s.first[1] for s in later)
    before = [g for s in steps for t, g in s.records if t <= record.t]
    highest = max(before, default=restored - 1)
    return round(first_t - record.t, 3), max(0, highest + 1 - restored)


def overlaps(death: float, recovery: float | None, windows: list[tuple[float, float]]) -> bool:
    """Whether the recovery window ``[death, death + recovery]`` (to the end of time when it
    did not recover) meets another of ``windows`` (each kill's, this one's among them)."""
    end = death + recovery if recovery is not None else float("inf")
    others = [w for w in windows if w[0] != death]
    return any(start <= end and death <= stop for start, stop in others)


def match_decisions(kills: tuple[PlannedKill, ...], failures: list[dict]) -> list[str]:
    """The decision run.json's ``failures`` logged for each kill, in order (each failure of a
    target goes to that target's next kill); "" for a kill with none."""
    pending: dict[str, list[str]] = {}
    for failure in failures:
        pending.setdefault(str(failure.get("task")), []).append(str(failure.get("decision")))
    decisions = []
    for kill in kills:
        queue = pending.get(kill.target) or [""]
        decisions.append(queue.pop(0))
    return decisions


def rows_for_run(
    run: RunPlan,
    markers: list[str | os.PathLike[str]],
    steps_dir: str | os.PathLike[str],
    summary: dict,
    checkpoint_loads: bool,
    leftovers: int,
) -> list[KillRow]:
    """The CSV rows of one finished run; ``markers[j]`` is kill ``j``'s marker file.

    A kill is recovered when it happened (its marker exists), run.json logged the decision
    its kind calls for, and a replacement made a step.
    """
    steps = read_steps(steps_dir)
    decisions = match_decisions(run.kills, list(summary.get("failures") or ()))
    records = [KillRecord.read(marker) for marker in markers]
    measures = [measure_kill(k, r, steps) for k, r in zip(run.kills, records, strict=True)]
    windows = [
        (r.t, r.t + (m[0] if m[0] is not None else float("inf")))
        for r, m in zip(records, measures, strict=True)
        if r is not None
    ]
    rows = []
    for kill, record, (recovery, lost), decision in zip(
        run.kills, records, measures, decisions, strict=True
    ):
        recovered = (
            record is not None
            and decision == EXPECTED_DECISION[kill.kind]
            and recovery is not None
            and recovery > 0
        )
        rows.append(
            KillRow(
                backend=run.backend,
                run_id=run.run_id,
                kind=kill.kind,
                target=kill.target,
                planned_step=kill.step,
                death_step=record.step if record else None,
                recovered=recovered,
                recovery_secs=recovery,
                steps_lost=lost,
                decision=decision,
                overlapped=record is not None and overlaps(record.t, recovery, windows),
                checkpoint_loads=checkpoint_loads,
                leftovers=leftovers,
                run_status=str(summary.get("status")),
            )
        )
    return rows
