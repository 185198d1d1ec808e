"""harness.tune without a Ray cluster: a trial's resources, job, reports and checkpoints, and the
Ray backend rendering into an existing placement group.

tests/integration/test_tune.py runs real trials.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cluster.console import Console
from cluster.handles import Inbox
from cluster.observe import Snapshot
from cluster.plan import make_plan
from cluster.ray_launcher import RayBackend
from harness import tune as harness_tune
from harness.job import JobSpec, JobSpecError


def make_job(**changes) -> JobSpec:
    data = {
        "name": "tuned",
        "model_fn": "m:model_fn",
        "input_fn": "m:input_fn",
        "model_dir": "/tmp/tuned",
        "params": {"learning_rate": 0.05, "hidden": 4},
        "cluster": {"workers": 2, "ps": 1, "evaluator": 1},
        "resources": {
            "chief": {"cpu": 1, "gpu": 1, "memory_mb": 1024},
            "worker": {"cpu": 0.5, "gpu": 0.5},
            "ps": {"cpu": 0.5},
            "evaluator": {"cpu": 0.25},
        },
        "placement": {"strategy": "SPREAD"},
        "train": {"max_steps": 10},
        "source_dirs": ["/src"],
    }
    data.update(changes)
    return JobSpec.from_dict(data)


def snapshot(step: int, loss: float | None = 1.0) -> Snapshot:
    return Snapshot(step, 100, loss, 5.0, 1.0, "chief:0")


# ---- resources: an empty head bundle, then the job's bundles ----------------------------------


def test_a_trials_bundles_are_the_jobs_after_an_empty_head():
    job = make_job()
    factory = harness_tune.trial_resources(job)
    rendered = RayBackend().render(make_plan(job, "ray")).bundles
    assert factory.head_bundle_is_empty
    assert factory.bundles == rendered  # Tune leaves the empty head out of the group
    assert factory.strategy == "SPREAD"
    gpus = [b.get("GPU", 0) for b in factory.bundles]
    assert gpus == [1, 0.5, 0.5, 0, 0]  # chief, 2 workers: GPUs; ps, evaluator: none
    assert factory.bundles[0]["memory"] == 1024 * 2**20


def test_the_backend_renders_into_an_existing_group_from_its_first_bundle():
    job = make_job()
    group = object()  # an opaque handle: rendering never looks into it
    request = RayBackend(placement_group=group, first_bundle=2).render(make_plan(job, "ray"))
    assert not request.owns_group and request.existing_group is group
    assert [a.bundle_index for a in request.actors] == [2, 3, 4, 5, 6]
    assert request.bundles == RayBackend().render(make_plan(job, "ray")).bundles
    text = request.describe()
    assert "an existing placement group from its bundle 2 on" in text
    assert "[worker:1] actor tuned-worker-1, bundle 4 {CPU: 0.5, GPU: 0.5}" in text
    own = RayBackend().render(make_plan(job, "ray"))
    assert own.owns_group and [a.bundle_index for a in own.actors] == [0, 1, 2, 3, 4]


# ---- the trial's job ------------------------------------------------------------------------


def test_a_trials_job_has_the_config_over_its_params_its_own_model_dir_and_name():
    job = harness_tune.trial_job(make_job(), {"learning_rate": 0.3}, "ab12c_00003", "/r/t3")
    assert job.params == {"learning_rate": 0.3, "hidden": 4}
    assert job.model_dir == "/r/t3/model"
    assert job.name == "tuned-ab12c-00003"
    long = make_job(name="a-long-job-name-of-forty-characters-xyz")
    named = harness_tune.trial_job(long, {}, "ab12c_00003", "/r/t3").name
    with pytest.raises(JobSpecError, match="report_every_steps"):
        harness_tune.trainable(make_job(), report_every_steps=0)
    assert len(named) <= 40 and named.endswith("-ab12c-00003") and "--" not in named


# ---- reports --------------------------------------------------------------------------------


def test_reports_come_every_n_steps_and_queued_ones_are_merged():
    reports = harness_tune.TrialReports(10, "/m", max_steps=40)
    reports.progress(snapshot(3))
    reports.progress(snapshot(6, loss=None))  # no loss yet: nothing to report
    reports.progress(snapshot(11, loss=0.5))
    assert reports.take() == (
        {"model_dir": "/m", "global_step": 11, "loss": 0.5, "steps_per_sec": 5.0},
        False,
    )
    reports.progress(snapshot(15))  # before the next 10 steps
    reports.progress(snapshot(22, loss=0.25))
    reports.evaluation(20, {"loss": 0.3, "mae": 0.4})
    result, ended = reports.take()  # both queued: one result, the latest values
    assert not ended
    assert result["global_step"] == 22 and result["loss"] == 0.25
    assert result["eval/loss"] == 0.3 and result["eval/global_step"] == 20
    reports.progress(snapshot(40))  # max_steps: the run's last result comes next
    reports.evaluation(40, {"loss": 0.2})
    reports.finished({"status": "succeeded"})
    assert reports.take() == ({}, True)


def test_without_a_step_interval_only_evaluations_are_reported():
    reports = harness_tune.TrialReports(None, "/m", max_steps=100)
    for step in range(1, 50):
        reports.progress(snapshot(step))
    reports.evaluation(40, {"loss": 0.1})
    result, _ = reports.take()
    assert result["eval/loss"] == 0.1 and result["global_step"] == 49
    reports.finished({})
    assert reports.take() == ({}, True)


def test_the_supervisors_inbox_raises_once_stop_is_set(tmp_path):
    stop = threading.Event()
    inbox = Inbox(Console(str(tmp_path / "logs"), 10, quiet_tasks=True), stop=stop)
    assert inbox.get(timeout=0.01) is None
    stop.set()
    with pytest.raises(KeyboardInterrupt, match="stop requested"):
        inbox.get(timeout=0.01)


# ---- checkpoints ----------------------------------------------------------------------------


def fake_checkpoint(model_dir: Path, step: int) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("index", "data-00000-of-00001", "meta"):
        (model_dir / f"model.ckpt-{step}.{suffix}").write_text(f"{step}")
    (model_dir / "checkpoint").write_text(f'model_checkpoint_path: "model.ckpt-{step}"\n')


def test_a_saved_checkpoint_restores_into_another_trials_model_dir(tmp_path):
    donor, saved, other = tmp_path / "a" / "model", tmp_path / "ckpt", tmp_path / "b" / "model"
    fake_checkpoint(donor, 20)
    saved.mkdir()
    harness_tune.save_model_checkpoint(str(donor), str(saved))
    assert (saved / "model.ckpt-20.index").exists()
    fake_checkpoint(other, 30)  # newer, but another trial's: PBT's exploit replaces it
    harness_tune.restore_model_checkpoint(str(saved), str(other))
    assert (other / "model.ckpt-20.data-00000-of-00001").read_text() == "20"
    assert '"model.ckpt-20"' in (other / "checkpoint").read_text()


def test_a_trials_own_checkpoint_does_not_replace_a_newer_one(tmp_path):
    model_dir, saved = tmp_path / "model", tmp_path / "ckpt"
    fake_checkpoint(model_dir, 20)
    saved.mkdir()
    harness_tune.save_model_checkpoint(str(model_dir), str(saved))
    fake_checkpoint(model_dir, 40)
    harness_tune.restore_model_checkpoint(str(saved), str(model_dir))
    assert '"model.ckpt-40"' in (model_dir / "checkpoint").read_text()
