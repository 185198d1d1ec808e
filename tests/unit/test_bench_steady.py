"""Pure parts of bench/'s steady-state figures: per-step overhead and the measurement window."""

from __future__ import annotations

import json

import pytest

from bench.records import analyze
from bench.stats import Comparison, Target, paired_overheads, step_times


def test_step_times_invert_rates_and_keep_missing_runs():
    assert step_times([500.0, None, 0.0]) == [0.002, None, None]


def test_paired_overheads_are_per_repetition_differences_of_step_times():
    deltas = paired_overheads([500.0, 400.0, None], [400.0, 400.0, 300.0])
    assert deltas[0] == pytest.approx(1 / 400 - 1 / 500)
    assert deltas[1] == 0.0
    assert deltas[2] is None


def test_overhead_target_reads_the_paired_deltas():
    base, cand = [500.0, 500.0, 500.0], [499.0, 498.0, 400.0]
    row = Comparison(
        "t", "µs", "b", step_times(base), "c", step_times(cand),
        Target("delta", "<=", 20e-6), scale=1e6, paired_deltas=paired_overheads(base, cand),
    )  # fmt: skip
    assert row.delta_summary is not None
    assert row.delta_summary.median == pytest.approx(1 / 498 - 1 / 500)  # about 8 µs
    assert row.met is True
    row_slow = Comparison(
        "t", "µs", "b", step_times(base), "c", step_times([400.0] * 3),
        Target("delta", "<=", 20e-6), paired_deltas=paired_overheads(base, [400.0] * 3),
    )  # fmt: skip
    assert row_slow.met is False


def _write(record_dir, task, *records):
    with open(record_dir / f"{task}.jsonl", "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def test_window_starts_at_the_chiefs_window_record_not_at_first_steps(tmp_path):
    # Slow steps (a partitioned-graph build) before t=20 must stay out of the window.
    samples = [[10.0, 0], [11.0, 10], [19.0, 20]] + [[20.0 + i, 1000 + 500 * i] for i in range(11)]
    _write(
        tmp_path,
        "chief-0",
        {"event": "init", "t": 9.0},
        {"event": "first_step", "t": 10.0},
        {"event": "window", "t": 20.0},
        {"event": "stop", "t": 30.0},
        {"event": "end", "t": 30.1, "samples": samples},
    )
    _write(
        tmp_path,
        "worker-0",
        {"event": "begin", "t": 9.5},
        {"event": "session", "t": 9.8},
        {"event": "first_step", "t": 10.5},
    )
    run = analyze(tmp_path, t_launch=0.0, t_gone=31.0, warmup_secs=0.5)
    assert run.steps_per_sec == pytest.approx(500.0)
    assert run.window_secs == pytest.approx(10.0)
    assert run.teardown_secs == pytest.approx(1.0)


def test_without_a_window_record_the_warmup_after_first_steps_is_used(tmp_path):
    samples = [[10.0, 0], [11.0, 10]] + [[12.0 + i, 100 + 200 * i] for i in range(5)]
    _write(
        tmp_path,
        "chief-0",
        {"event": "init", "t": 9.0},
        {"event": "first_step", "t": 10.0},
        {"event": "stop", "t": 16.0},
        {"event": "end", "t": 16.1, "samples": samples},
    )
    run = analyze(tmp_path, t_launch=0.0, t_gone=17.0, warmup_secs=1.5)
    assert run.steps_per_sec == pytest.approx(200.0)
