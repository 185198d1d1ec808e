"""Read what ``RecorderHook`` wrote for one cluster run and turn it into the measured figures.

Every variant (bare TF, harness local, harness ray) writes the same records, and every
figure is computed here, in one way, from them and from two times the driver knows: when it
launched the cluster and when the last process (or Ray actor) was gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class ClusterRun:
    """The figures of one cluster run; times in seconds, ``None`` where not measured."""

    first_step_secs: float  # launch -> the first trainer's first step
    all_stepping_secs: float  # launch -> the last trainer's first step
    join_delay_secs: float | None  # the longest a worker's session waited for the chief's init
    steps_per_sec: float  # global steps/s in the window (every trainer stepping, warmed up)
    window_secs: float  # the length of that window
    teardown_secs: float  # chief's last step -> the last process or actor gone
    trainers: int
    peak_rss_mb: dict[str, float] | None = None  # task -> peak RSS (MiB)
    actor_rss_mb: dict[str, float] | None = None  # task -> its Ray actor's peak RSS (MiB)
    gone_secs: dict[str, float] | None = None  # process -> chief's last step to it gone
    bring_up: dict[str, float] | None = None  # harness runs: run.json's timings.bring_up
    relay_join_secs: float | None = None  # harness runs: the longest join_delay_secs.<worker>
    window_span: tuple[float, float] | None = None  # the window's (start, end), monotonic
    cpu_cores: dict[str, float] | None = None  # group -> cores used in the window (cpu_use)


class RecordError(RuntimeError):
    """The records of a run are missing something (the run failed or was cut short)."""


def read_records(record_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """``{task: [record, ...]}`` from ``<record_dir>/<role>-<index>.jsonl``."""
    records: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(Path(record_dir).glob("*.jsonl")):
        task = path.stem.replace("-", ":", 1)
        records[task] = [json.loads(line) for line in path.read_text().splitlines() if line]
    return records


def _event(records: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in records if r["event"] == name), None)


def _time(records: dict[str, list[dict[str, Any]]], task: str, name: str) -> float:
    record = _event(records.get(task, []), name)
    if record is None:
        raise RecordError(f"{task} recorded no {name!r} event")
    return float(record["t"])


def analyze(
    record_dir: str | Path,
    t_launch: float,
    t_gone: float,
    warmup_secs: float,
    exit_times: dict[str, float] | None = None,
) -> ClusterRun:
    """The figures of the run whose records are in ``record_dir`` (see ``ClusterRun``)."""
    records = read_records(record_dir)
    trainers = sorted(t for t in records if t.startswith(("chief", "worker")))
    if "chief:0" not in records:
        raise RecordError(f"no records of chief:0 in {record_dir}")
    first_steps = [_time(records, task, "first_step") for task in trainers]
    workers = [t for t in trainers if t.startswith("worker")]
    init = _time(records, "chief:0", "init")
    join_delay = max((join_wait(records, w, init) for w in workers), default=None)
    stop = _time(records, "chief:0", "stop")
    samples = _event(records["chief:0"], "end")
    if samples is None:
        raise RecordError("chief:0 recorded no 'end' event")
    window_event = _event(records["chief:0"], "window")  # the end of the chief's warm-up
    start = max(first_steps) + warmup_secs if window_event is None else window_event["t"]
    rate, window = window_rate(samples["samples"], start, stop)
    return ClusterRun(
        first_step_secs=min(first_steps) - t_launch,
        all_stepping_secs=max(first_steps) - t_launch,
        join_delay_secs=join_delay,
        steps_per_sec=rate,
        window_secs=window,
        teardown_secs=t_gone - stop,
        trainers=len(trainers),
        gone_secs={k: round(t - stop, 3) for k, t in sorted((exit_times or {}).items())} or None,
        window_span=(start, stop),
    )


def join_wait(records: dict[str, list[dict[str, Any]]], worker: str, init: float) -> float:
    """How long ``worker``'s session came after it could have: its session ready, less the
    later of the chief's init and the moment the worker started creating its session."""
    ready_from = max(init, _time(records, worker, "begin"))
    return _time(records, worker, "session") - ready_from


def window_rate(samples: list[list[float]], start: float, end: float) -> tuple[float, float]:
    """Global steps per second between ``start`` and ``end`` from the chief's (t, step) samples."""
    inside = [(t, step) for t, step in samples if start <= t <= end]
    if len(inside) < 2:
        raise RecordError(
            f"only {len(inside)} step samples in the measurement window; lengthen the window"
        )
    (t0, s0), (t1, s1) = inside[0], inside[-1]
    return (s1 - s0) / (t1 - t0), t1 - t0
