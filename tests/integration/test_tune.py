"""Ray Tune trials that are whole clusters (harness.tune), on an embedded Ray (loopback only).

Four trials of a learning-rate grid, each a chief + 1 worker cluster of 1 CPU in all, on a Ray
of 2 CPUs: two trials at a time. ASHA (by global step) stops the clearly worse ones. What holds
whatever the load: the two bad rates start only after the first two trials placed their
clusters and the best of them has reported at ASHA's first rung, so both are stopped there;
the best rate is never stopped; no more than two clusters ever ran at once; and afterwards
no task process, actor or placement group is left while every trial's model_dir is kept.
A trial that failed is restored by ``Tuner.restore`` into the same model_dir and goes on from
its latest checkpoint.
"""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray address is 127.0.0.1

import json
import socket
import time
from pathlib import Path

import pytest
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.util.state import list_actors, list_placement_groups

import harness
import harness.tune
from harness.testing import leftover_task_processes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
MODELS = "tests.integration.models"
MAX_STEPS = 40
RATES = [0.3, 0.1, 0.003, 0.001]  # the first two train well, the last two barely move


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_trials_of_ray():
    """An embedded Ray with 2 CPUs (two 1-CPU trials) and a dashboard for the state API."""
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=free_port(),
        logging_level="WARNING",
    )
    try:
        yield "http://" + ray._private.worker._global_node.webui_url
    finally:
        ray.shutdown()


def tiny_job(tmp_path: Path, **params) -> harness.Job:
    return harness.Job(
        name="lr",
        model_fn=f"{MODELS}:model_fn",
        input_fn=f"{MODELS}:input_fn",
        model_dir=str(tmp_path / "unused"),  # each trial has its own, in its trial directory
        cluster={"workers": 1, "ps": 0},
        resources={"chief": {"cpu": 0.5}, "worker": {"cpu": 0.5}},
        params={"slow_secs": 0.1, **params},  # a few reports before ASHA's first rung
        train={"max_steps": MAX_STEPS, "save_checkpoints_steps": 10},
        timeouts={"stop_grace_secs": 5},
        source_dirs=[str(REPO)],
    )


def max_overlap(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, change in edges:  # an end sorts before a start at the same instant
        running += change
        peak = max(peak, running)
    return peak


def cluster_span(model_dir: Path) -> tuple[float, float]:
    """When the trial's supervisor ran: run.json is written at its end, after total_secs."""
    run = model_dir / "run.json"
    end = run.stat().st_mtime
    return end - json.loads(run.read_text())["timings"]["total_secs"], end


def test_asha_stops_the_bad_rates_and_each_trial_is_a_whole_cluster(tmp_path, two_trials_of_ray):
    job = tiny_job(tmp_path)
    asha = ASHAScheduler(time_attr="global_step", max_t=MAX_STEPS, grace_period=10)
    tuner = tune.Tuner(
        harness.tune.trainable(job, report_every_steps=5),
        param_space={"learning_rate": tune.grid_search(RATES)},
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=asha),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), name="lr", verbose=0),
    )
    results = tuner.fit()

    assert not results.errors, results.errors
    best = results.get_best_result()
    assert best.config["learning_rate"] == 0.3
    assert best.metrics["done"] and best.metrics["global_step"] >= MAX_STEPS
    assert best.metrics["checkpoint_step"] >= MAX_STEPS
    by_rate = {r.config["learning_rate"]: r for r in results}
    model_dirs = {rate: Path(r.metrics["model_dir"]) for rate, r in by_rate.items()}
    for rate in (0.003, 0.001):  # stopped at ASHA's first rung, cleanly
        assert by_rate[rate].metrics["global_step"] < MAX_STEPS
        run = json.loads((model_dirs[rate] / "run.json").read_text())
        assert run["status"] == "interrupted", run
    for rate, model_dir in model_dirs.items():  # each trial's own model_dir, kept
        assert model_dir == Path(by_rate[rate].path) / "model"
        assert (model_dir / "checkpoint").is_file(), rate
        assert not leftover_task_processes(model_dir), rate
    assert len(set(model_dirs.values())) == len(RATES)
    assert max_overlap([cluster_span(d) for d in model_dirs.values()]) <= 2

    address = two_trials_of_ray
    deadline = time.monotonic() + 30
    while True:  # Tune removes its groups as the trials end; give it a moment
        alive = [
            a.name or a.class_name
            for a in list_actors(address=address, filters=[("state", "=", "ALIVE")])
            if (a.name or "").startswith("lr-") or "ClusterTrial" in a.class_name
        ]
        groups = [g.name for g in list_placement_groups(address=address) if g.state != "REMOVED"]
        if (not alive and not groups) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not alive, f"actors left: {alive}"
    assert not groups, f"placement groups left: {groups}"


def test_a_restored_trial_goes_on_from_the_checkpoints_in_its_model_dir(
    tmp_path, two_trials_of_ray
):
    marker = tmp_path / "failed-once"
    job = tiny_job(tmp_path, fail_once_at_step=25, fail_once_marker=str(marker))
    trainable = harness.tune.trainable(job, report_every_steps=5)
    run_config = tune.RunConfig(storage_path=str(tmp_path / "tune"), name="restore", verbose=0)
    first = tune.Tuner(trainable, run_config=run_config).fit()
    assert len(first.errors) == 1 and "fails once at step 25" in str(first.errors[0])
    model_dir = Path(first[0].path) / "model"
    failed_at = json.loads((model_dir / "run.json").read_text())["final_global_step"]
    assert 20 <= failed_at < MAX_STEPS and (model_dir / "checkpoint").is_file()

    again = tune.Tuner.restore(str(tmp_path / "tune" / "restore"), trainable, resume_errored=True)
    result = again.fit()[0]
    assert result.error is None and result.metrics["done"]
    assert Path(result.metrics["model_dir"]) == model_dir  # the same trial, the same model_dir
    run = json.loads((model_dir / "run.json").read_text())
    assert run["status"] == "succeeded" and run["final_global_step"] >= MAX_STEPS
    steps = sum(task["local_steps"] for task in run["tasks"].values())
    assert steps <= MAX_STEPS - 20 + 5, run["tasks"]  # from the checkpoint at step 20, not 0
    assert not leftover_task_processes(model_dir)
