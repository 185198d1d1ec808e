"""The scale figure's arithmetic (bench/scale_stats.py) and one small simulated run end to end."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest

from bench import procwatch, scale_real, scale_sim, scale_suite
from bench.harness_runs import RunFailed
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


# ---- sizes in order, with the memory check ---------------------------------------------------


def _fake_run(rss_mb: float, fail: set[int] = frozenset()):
    ran: list[int] = []

    def run(size: int) -> dict:
        ran.append(size)
        if size in fail:
            raise RuntimeError(f"size {size} broke")
        tasks = size if isinstance(size, int) else 1 + sum(size)
        return {
            "tasks": tasks,
            "task_rss_max_mb": rss_mb,
            "bring_up_secs": 1.0,
            "teardown_secs": 0.5,
            "driver_peak_rss_mb": 50.0,
        }

    return run, ran


def test_run_sizes_skips_a_size_that_would_not_fit_and_says_why() -> None:
    results = scale_suite.ScaleResults()
    run, ran = _fake_run(rss_mb=10.0)
    available = 10_000 * MIB  # 60% of it: 6000 MiB, i.e. 600 tasks of 10 MiB
    into: list[dict] = []
    scale_suite.run_sizes(
        "simulated", [64, 256, 1024], int, run, into, results, lambda _: None, lambda: available
    )
    assert ran == [64, 256] and [r["tasks"] for r in into] == [64, 256]
    (skip,) = results.skipped
    assert (skip["part"], skip["size"], skip["tasks"]) == ("simulated", "1024 tasks", 1024)
    assert "1024 tasks x 10 MiB = 10240 MiB estimated" in skip["reason"]
    assert "6000 MiB allowed" in skip["reason"]
    assert results.failures == []


def test_run_sizes_runs_the_first_size_unchecked_and_goes_on_after_a_failure() -> None:
    results = scale_suite.ScaleResults()
    run, ran = _fake_run(rss_mb=1.0, fail={(3, 1)})
    into: list[dict] = []
    sizes = [(1, 1), (3, 1), (7, 2)]
    scale_suite.run_sizes(
        "real", sizes, lambda s: 1 + s[0] + s[1], run, into, results, lambda _: None, lambda: 0.0
    )
    assert ran == [(1, 1)]  # nothing is available: only the first size ran
    assert [s["size"] for s in results.skipped] == ["3 workers + 1 ps", "7 workers + 2 ps"]
    assert scale_suite.size_label((1, 1)) == "1 worker + 1 ps"
    results = scale_suite.ScaleResults()
    run, ran = _fake_run(rss_mb=1.0, fail={(3, 1)})
    scale_suite.run_sizes(
        "real", sizes, lambda s: 1 + s[0] + s[1], run, into, results, lambda _: None, lambda: 1e12
    )
    assert ran == sizes
    assert results.failures == ["scale real 3 workers + 1 ps: RuntimeError: size (3, 1) broke"]


# ---- the real clusters' job ------------------------------------------------------------------


def test_the_largest_real_cluster_is_a_valid_job_that_plans_on_two_cores(tmp_path: Path) -> None:
    from cluster.plan import make_plan
    from harness.job import JobSpec

    workers, ps = scale_real.REAL_SIZES[-1]
    params = {"size": "small", "record_dir": str(tmp_path), "num_trainers": 1 + workers}
    job = JobSpec.from_dict(scale_real.scale_job_dict(workers, ps, str(tmp_path), params))
    assert (job.cluster.workers, job.cluster.ps) == (31, 4)
    assert job.failure.max_failures == 0 and job.failure.warm_spares is False
    plan = make_plan(job)
    assert len(plan.tasks) == 36
    assert sum(task.cpu for task in plan.tasks) <= 2.0


def test_quick_sizes_are_the_first_of_the_full_ones() -> None:
    assert scale_real.QUICK_REAL_SIZES == scale_real.REAL_SIZES[:2]
    assert scale_suite.QUICK_SIM_SIZES == scale_suite.SIM_SIZES[:2]


def test_a_real_size_that_cannot_run_names_its_size_and_log(tmp_path: Path) -> None:
    with pytest.raises(RunFailed, match=r"-1 workers \+ 1 ps exited 1: .*--workers.*driver\.log"):
        scale_real.measure(-1, 1, str(tmp_path), 1.0, 0.5, 10)


def test_the_simulated_cli_refuses_too_few_tasks(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--tasks: at least 3"):
        scale_sim.main(["--tasks", "2", "--work-dir", str(tmp_path), "--out", "x.json"])


# ---- the figure's glue: which sizes, which windows, into the suite's results -----------------


def test_quick_measure_runs_the_quick_sizes_with_the_quick_windows(tmp_path: Path, monkeypatch):
    calls: list[tuple] = []

    def fake_sim(tasks: int, work_dir: str, window_secs: float) -> dict:
        calls.append(("sim", tasks, window_secs, Path(work_dir).name))
        return {"tasks": tasks, "task_rss_max_mb": 10.0, "bring_up_secs": 1.0}

    def fake_real(workers: int, ps: int, work_dir: str, *window: float) -> dict:
        calls.append(("real", workers, ps, window, Path(work_dir).name))
        return {"tasks": 1 + workers + ps, "task_rss_max_mb": 300.0, "bring_up_secs": 9.0}

    monkeypatch.setattr(scale_suite.scale_sim, "measure", fake_sim)
    monkeypatch.setattr(scale_suite.scale_real, "measure", fake_real)
    monkeypatch.setattr(scale_suite, "describe", lambda result: "ok")
    results = scale_suite.measure(str(tmp_path), quick=True, log=lambda _: None)
    assert results.quick is True and results.skipped == [] and results.failures == []
    assert calls == [
        ("sim", 64, 3.0, "sim-64"),
        ("sim", 256, 3.0, "sim-256"),
        ("real", 1, 1, (1.0, 0.5, 110), "real-1w1ps"),
        ("real", 3, 1, (1.0, 0.5, 110), "real-3w1ps"),
    ]
    assert [r["tasks"] for r in results.simulated] == [64, 256]
    assert [r["tasks"] for r in results.real] == [3, 5]


def test_the_suite_runs_the_scale_figure_and_lists_its_failures(tmp_path: Path, monkeypatch):
    from bench.suite import Settings, Suite

    seen: list[bool] = []

    def fake_measure(work_dir: str, quick: bool, log) -> scale_suite.ScaleResults:
        seen.append(quick)
        return scale_suite.ScaleResults(quick=quick, failures=["scale real 1 workers: broke"])

    monkeypatch.setattr(scale_suite, "measure", fake_measure)
    settings = Settings.quick(figures=("scale",), work_dir=str(tmp_path / "work"))
    results = Suite(settings).run()
    assert seen == [True]
    assert results.scale is not None and results.scale.quick is True
    assert results.failures == ["scale real 1 workers: broke"]
