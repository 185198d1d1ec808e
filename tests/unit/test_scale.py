"""The scale figure's arithmetic (bench/scale_stats.py) and one small simulated run end to end."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest

from bench import procwatch, scale_sim
from bench.scale_stats import (
    MIB,
    at_most_linear,
    latency_summary,
    loglog_slope,
    memory_fit,
    percentile,
)

# ---- percentiles and latencies ---------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 99) == pytest.approx(3.97)


def test_percentile_of_one_value_and_of_none() -> None:
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_rejects_q_outside_0_100(q: float) -> None:
    with pytest.raises(ValueError, match="q="):
        percentile([1.0], q)


def test_latency_summary_is_in_milliseconds() -> None:
    latencies = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms
    summary = latency_summary(latencies)
    assert summary["n"] == 100
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p99_ms"] == pytest.approx(99.01)
    assert summary["max_ms"] == 100.0


def test_latency_summary_of_no_events_has_no_figures() -> None:
    assert latency_summary([]) == {
        "n": 0,
        "p50_ms": None,
        "p90_ms": None,
        "p99_ms": None,
        "max_ms": None,
    }


# ---- growth with the task count --------------------------------------------------------------


def test_loglog_slope_is_the_growth_exponent() -> None:
    sizes = [64, 256, 1024]
    assert loglog_slope(sizes, [3 * s for s in sizes]) == pytest.approx(1.0)
    assert loglog_slope(sizes, [s * s for s in sizes]) == pytest.approx(2.0)
    assert loglog_slope(sizes, [5.0, 5.0, 5.0]) == pytest.approx(0.0)


def test_loglog_slope_leaves_out_unusable_points() -> None:
    assert loglog_slope([64, 256], [1.0, 0.0]) is None  # one usable point left
    assert loglog_slope([64, 64], [1.0, 2.0]) is None  # no spread in size
    assert loglog_slope([64, 256, 1024], [0.0, 2.0, 8.0]) == pytest.approx(1.0)


def test_linear_and_slower_growth_pass() -> None:
    assert at_most_linear([64, 256, 1024], [1.0, 4.0, 16.0]) is True
    assert at_most_linear([64, 256, 1024], [5.0, 6.0, 9.0]) is True  # a fixed overhead
    assert at_most_linear([1024, 64, 256], [16.0, 1.0, 4.0]) is True  # order does not matter


def test_faster_than_linear_growth_fails() -> None:
    assert at_most_linear([64, 256, 1024], [1.0, 4.0, 64.0]) is False  # quadratic at the end
    assert at_most_linear([64, 256], [1.0, 4.0 * 1.6]) is False  # past the 1.5 slack


def test_linear_check_needs_two_sizes_and_positive_ones() -> None:
    assert at_most_linear([64], [1.0]) is None
    with pytest.raises(ValueError, match="positive"):
        at_most_linear([0, 64], [1.0, 2.0])


# ---- memory fit ------------------------------------------------------------------------------


def test_memory_fit_states_its_numbers() -> None:
    fits, why = memory_fit(36, 300 * MIB, 20_000 * MIB)
    assert fits is True
    assert "36 tasks x 300 MiB = 10800 MiB estimated" in why
    assert "12000 MiB allowed (60% of 20000 MiB available)" in why


def test_memory_fit_refuses_what_is_over_the_headroom() -> None:
    fits, why = memory_fit(1024, 20 * MIB, 30_000 * MIB)
    assert fits is False and "20480 MiB estimated" in why and "18000 MiB allowed" in why


# ---- the simulated scale, end to end ---------------------------------------------------------


def test_ps_for_gives_one_ps_per_64_tasks() -> None:
    assert [scale_sim.ps_for(n) for n in (8, 64, 256, 1024)] == [1, 1, 4, 16]


def test_fake_command_runs_the_fake_task_isolated() -> None:
    command = scale_sim.fake_command("worker:12")
    assert command[1:3] == ("-I", "-S") and command[3] == scale_sim.FAKE_TASK
    assert command[-4:] == ("--role", "worker", "--index", "12")


@pytest.mark.slow
def test_eight_simulated_tasks_give_sane_figures(tmp_path: Path, monkeypatch) -> None:
    mark = uuid.uuid4().hex  # every process of this run inherits it
    monkeypatch.setenv("SCALE_TEST_MARK", mark)
    result = scale_sim.measure(8, str(tmp_path / "sim"), window_secs=2.0)
    assert (result["tasks"], result["workers"], result["ps"]) == (8, 6, 1)
    assert result["bring_up_secs"] > 0 and result["teardown_secs"] >= 0
    latency = result["latency"]
    assert latency["n"] == result["window_events"] > 0
    assert 0 <= latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert result["events_per_sec"] > 0 and result["cpu_per_event_us"] > 0
    assert result["driver_peak_rss_mb"] >= result["driver_rss_start_mb"] > 0
    assert 0 < result["task_rss_mean_mb"] <= result["task_rss_max_mb"]
    assert all(math.isfinite(v) for v in result.values() if isinstance(v, float))
    left = procwatch.processes_with_env("fake_task.py", "SCALE_TEST_MARK", mark)()
    assert left == {}, f"fake tasks left running: {sorted(left)}"
