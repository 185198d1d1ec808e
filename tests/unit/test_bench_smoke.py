"""Smoke test of bench/: its quickest mode runs and the report renders. No timing checks."""

from __future__ import annotations

import pytest

from bench.__main__ import main
from bench.records import ClusterRun
from bench.report import render
from bench.suite import Results, Settings


@pytest.mark.timeout(300)
def test_quick_hook_cost_writes_a_report(tmp_path):
    output = tmp_path / "BENCHMARKS.md"
    argv = ["--quick", "--only", "hooks", "--output", str(output)]
    assert main([*argv, "--work-dir", str(tmp_path / "work")]) == 0
    text = output.read_text()
    assert "## Machine and versions" in text
    assert "## 5. Hook cost" in text
    assert "ProgressHook + StopSignalHook" in text
    # the saved results write the same report again
    again = tmp_path / "again.md"
    saved = str(tmp_path / "work" / "results.pickle")
    assert main(["--render", saved, "--output", str(again)]) == 0
    assert again.read_text() == text


def _cluster_run(trainers: int = 3, actors: bool = False) -> ClusterRun:
    phases = {"task_process_start": 0.5, "tensorflow_import": 6.0, "launch_to_all_stepping": 9.0}
    rss = {"chief:0": 700.0, "worker:0": 690.0, "worker:1": 690.0, "ps:0": 650.0}
    return ClusterRun(
        first_step_secs=8.0,
        all_stepping_secs=9.0,
        join_delay_secs=0.3,
        steps_per_sec=300.0,
        window_secs=6.0,
        teardown_secs=1.0,
        trainers=trainers,
        peak_rss_mb=rss,
        actor_rss_mb={k: 200.0 for k in rss} if actors else None,
        gone_secs={"chief:0": 0.2, "worker:0": 0.1, "ps:0": 0.3},
        bring_up={**phases, **({"ray_connect": 0.01, "actor_start": 1.0} if actors else {})},
        relay_join_secs=0.1,
        cpu_cores={"tasks": 1.8, "driver": 0.02, "idle": 0.1, "other": 0.08},
    )


@pytest.mark.timeout(60)
def test_report_renders_every_figure_from_results():
    from bench.ray_train_baseline import RayTrainRun

    results = Results(Settings.quick(work_dir="unused"))
    for size in ("small", "large"):
        results.clusters[f"bare-{size}"] = [_cluster_run(), None]
        results.clusters[f"local-{size}"] = [_cluster_run(), _cluster_run()]
        results.clusters[f"ray-{size}"] = [_cluster_run(actors=True), _cluster_run(actors=True)]
    for variant in ("bare_est-small", "bare_est-large", "ray_sync-large"):
        results.clusters[variant] = [_cluster_run(), _cluster_run()]
    results.ray_train = [RayTrainRun(10.0, 10.5, 14.0, 20.0, 15360.0), None]
    results.scaling = {n: [_cluster_run(trainers=n)] for n in (1, 2, 4)}
    results.failures = ["2/2 bare-small: RuntimeError: example"]
    text = render(results)
    for heading in ("1. Step throughput", "2. Bring-up", "3. Teardown", "4. Memory", "6. Scaling"):
        assert f"## {heading}" in text
    assert "## Explanations" in text
    assert "| tensorflow import | 6.00 [6.00–6.00] (2) | 6.00 [6.00–6.00] (2) |" in text
    assert "| actor start | — | 1.00 [1.00–1.00] (2) |" in text
    assert "## Failed runs" in text
    assert "| large model, global steps/s (steps/s) | bare TF + Estimator hooks |" in text
    assert "small model, time per global step (µs)" in text
    assert "ratio >= 0.99" in text and "Δ <= 20 µs" in text
    # Ray Train: 20 steps/s x 256 x 3 = 15360 examples/s; the harness's async ps 300 x 256.
    assert (
        "| Ray Train, MultiWorkerMirroredStrategy (3 workers) | 20.0 [20.0–20.0] (1) | 3 |" in text
    )
    assert (
        "| harness ray, async ps | 300.0 [300.0–300.0] (2) | 1 | 76800 [76800–76800] (2) |" in text
    )
    assert "different algorithm" in text
    assert "| model | variant | runs | tasks | ray actors |" in text
    assert "| small | harness local | 2 | 1.80 | — | — | 0.02 | 0.08 | 0.10 |" in text


def test_the_report_names_the_revision_and_versions_the_run_was_made_with():
    import dataclasses

    results = Results(Settings.quick(work_dir="unused"))
    assert results.environment.git != "unknown"  # captured from this checkout at the start
    measured = dataclasses.replace(results.environment, git="abc1234", tensorflow="2.99.0")
    results.environment = measured
    text = render(results)
    assert "(git abc1234)" in text
    assert "TensorFlow 2.99.0" in text
