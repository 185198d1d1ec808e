"""The scale figure's section of BENCHMARKS.md (bench/scale_report.py) and its plots."""

from __future__ import annotations

from pathlib import Path

from bench import scale_report
from bench.report import render
from bench.scale_suite import ScaleResults
from bench.suite import Results, Settings

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sim_row(tasks: int, bring_up: float, teardown: float, p99: float) -> dict:
    return {
        "tasks": tasks,
        "workers": tasks - 1 - max(1, tasks // 64),
        "ps": max(1, tasks // 64),
        "bring_up_secs": bring_up,
        "teardown_secs": teardown,
        "latency": {"n": 100, "p50_ms": p99 / 4, "p90_ms": p99 / 2, "p99_ms": p99, "max_ms": p99},
        "window_events": 100,
        "events_per_sec": tasks * 2.0,
        "cpu_per_event_us": 150.0,
        "driver_peak_rss_mb": 40.0 + tasks / 10,
        "task_rss_mean_mb": 10.3,
        "task_rss_max_mb": 10.5,
    }


def real_row(workers: int, ps: int) -> dict:
    return {
        "workers": workers,
        "ps": ps,
        "tasks": 1 + workers + ps,
        "bring_up_secs": 10.0 + workers,
        "teardown_secs": 1.5,
        "driver_cpu_secs": 3.25,
        "driver_peak_rss_mb": 210.0,
        "task_rss_mean_mb": 300.0,
        "task_rss_max_mb": 320.0,
    }


def linear_results() -> ScaleResults:
    return ScaleResults(
        simulated=[sim_row(64, 1.0, 0.1, 5.0), sim_row(256, 4.0, 0.4, 20.0)]
        + [sim_row(1024, 15.0, 1.5, 80.0)],
        real=[real_row(1, 1), real_row(3, 1)],
        skipped=[
            {
                "part": "real",
                "size": "31 workers + 4 ps",
                "tasks": 36,
                "reason": "36 tasks x 320 MiB = 11520 MiB estimated, 6000 MiB allowed",
            }
        ],
        failures=["scale real 7 workers + 2 ps: RunFailed: it broke"],
    )


def test_the_section_has_both_tables_the_targets_and_the_skipped_sizes(tmp_path: Path) -> None:
    text = "\n".join(scale_report.section(linear_results(), tmp_path / "plots", tmp_path))
    assert "| 1024 | 15.00 | 1.50 | 20.0 | 80.0 | 80.0 | 2048.0 | 150.0 | 142.4 |" in text
    assert (
        "| 1 chief + 3 workers + 1 ps | 5 | 13.00 | 1.50 | 3.25 | 210.0 | 300.0 / 320.0 |" in text
    )
    growth = [line for line in text.splitlines() if "grows at most linearly from 64" in line]
    assert len(growth) == 2 and all(line.endswith("| yes |") for line in growth)
    assert "| event latency p99 <= 100 ms at 1024 tasks | 80.0 ms | yes |" in text
    assert "- real 31 workers + 4 ps (36 tasks): 36 tasks x 320 MiB" in text
    assert "- scale real 7 workers + 2 ps: RunFailed: it broke" in text


def test_missed_targets_say_no(tmp_path: Path) -> None:
    results = ScaleResults(
        simulated=[sim_row(64, 1.0, 0.1, 5.0), sim_row(256, 16.0, 0.4, 20.0)]
        + [sim_row(1024, 256.0, 1.5, 250.0)]
    )
    lines = scale_report.section(results, tmp_path, tmp_path)
    bring_up = next(line for line in lines if line.startswith("| bring-up grows"))
    assert bring_up.endswith("| NO |") and "log-log slope 2.00" in bring_up
    assert "| event latency p99 <= 100 ms at 1024 tasks | 250.0 ms | NO |" in lines


def test_quick_results_without_1024_tasks_say_not_measured(tmp_path: Path) -> None:
    results = ScaleResults(quick=True, simulated=[sim_row(64, 1.0, 0.1, 5.0)])
    text = "\n".join(scale_report.section(results, tmp_path, tmp_path))
    assert "`--quick`" in text
    assert "fewer than two sizes measured" in text
    assert "not measured (no 1024-task run)" in text
    assert "No size measured." in text  # the real part


def test_the_plots_are_pngs_linked_relative_to_the_report(tmp_path: Path) -> None:
    plots_dir = tmp_path / "repo" / "bench"
    lines = scale_report.section(linear_results(), plots_dir, tmp_path / "repo")
    links = [line for line in lines if line.startswith("![")]
    assert links == [
        "![scale_bringup](bench/scale_bringup.png)",
        "![scale_latency](bench/scale_latency.png)",
        "![scale_driver](bench/scale_driver.png)",
    ]
    for name in ("scale_bringup", "scale_latency", "scale_driver"):
        assert (plots_dir / f"{name}.png").read_bytes().startswith(PNG_MAGIC)


def test_nothing_measured_draws_no_plot(tmp_path: Path) -> None:
    lines = scale_report.section(ScaleResults(), tmp_path, tmp_path)
    assert not [line for line in lines if line.startswith("![")]
    assert list(tmp_path.iterdir()) == []


def test_the_report_renders_the_scale_figure_alone(tmp_path: Path, monkeypatch) -> None:
    plots: list[Path] = []
    monkeypatch.setattr(scale_report.plots, "scale_plots", lambda s, d: plots.append(d) or [])
    settings = Settings(figures=("scale",), report_path=str(tmp_path / "BENCHMARKS.md"))
    results = Results(settings, scale=linear_results(), finished=1.0)
    text = render(results)
    assert "## 8. Scale" in text and "### Real clusters (local backend)" in text
    assert "## 1. Step throughput" not in text
    assert plots == [str(tmp_path)]  # a report outside the repository: the plots beside it


def test_plots_go_to_bench_only_for_the_repositorys_report(tmp_path):
    """``--output`` elsewhere puts the plots beside that report, never over bench/'s."""
    from bench.report import plot_and_report_dirs

    repo = Path(__file__).resolve().parents[2]
    plots, report_dir = plot_and_report_dirs(str(repo / "BENCHMARKS.md"))
    assert (plots, report_dir) == (str(repo / "bench"), str(repo))
    elsewhere = tmp_path / "check.md"
    assert plot_and_report_dirs(str(elsewhere)) == (str(tmp_path), str(tmp_path))
