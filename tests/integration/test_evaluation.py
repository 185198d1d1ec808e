"""Evaluation: metrics of known answers, eval summaries, the evaluator loop, `harness evaluate`.

The model (tests/integration/export_models.py) is linear regression on the exact data
y = 2 x + 1 (64 examples, batches of 16), so every metric has a value computed here with numpy.
"""

from __future__ import annotations

import glob
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from harness.job import JobSpec
from harness.runtime.evaluation import eval_dir, evaluate_checkpoint, run_evaluator
from harness.runtime.graph import UserCodeError
from harness.testing import make_job_dict
from tests.integration import export_models as models

REPO = Path(__file__).resolve().parents[2]
MODULE = "tests.integration.export_models"
ANSWER = {"weight": 2.0, "bias": 1.0}
ZERO = {"weight": 0.0, "bias": 0.0}


def job_for(model_dir: Path, params: dict | None = None, **eval_settings) -> JobSpec:
    data = make_job_dict(
        f"{MODULE}:model_fn",
        f"{MODULE}:input_fn",
        model_dir,
        params=params or {},
        source_dirs=(str(REPO),),
        eval={"steps": None, **eval_settings},
    )
    return JobSpec.from_dict(data)


def zero_model_metrics(examples: int = models.EXAMPLES) -> dict[str, float]:
    """mse/mae/loss of weight = bias = 0 (predictions 0) on the first `examples` examples."""
    _, y = models.data()
    y = y[:examples]
    return {
        "mse": float(np.mean(y**2)),
        "mae": float(np.mean(np.abs(y))),
        "loss": float(np.mean(y**2)),
    }


def read_eval_summaries(model_dir: Path) -> dict[int, dict[str, float]]:
    """{global step: {tag: value}} from every event file in <model_dir>/eval."""
    found: dict[int, dict[str, float]] = {}
    for path in sorted(glob.glob(str(model_dir / "eval" / "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(event.step, {})[value.tag] = value.simple_value
    return found


@pytest.mark.timeout(60)
def test_metrics_of_known_answers_and_their_summaries(tmp_path):
    job = job_for(tmp_path / "model")
    exact = models.write_checkpoint(job.model_dir, job.params, ANSWER, global_step=10)
    zero = models.write_checkpoint(job.model_dir, job.params, ZERO, global_step=20)

    results = evaluate_checkpoint(job, exact, eval_dir(job))
    assert results == {"mse": 0.0, "mae": 0.0, "loss": 0.0, "global_step": 10}
    results = evaluate_checkpoint(job, zero, eval_dir(job))
    assert results.pop("global_step") == 20
    assert results == pytest.approx(zero_model_metrics(), rel=1e-5)

    summaries = read_eval_summaries(tmp_path / "model")
    assert sorted(summaries) == [10, 20]
    assert summaries[10] == {"mse": 0.0, "mae": 0.0, "loss": 0.0}
    assert summaries[20] == pytest.approx(zero_model_metrics(), rel=1e-5)


@pytest.mark.timeout(60)
def test_eval_steps_and_eval_input_fn(tmp_path):
    job = job_for(tmp_path / "model", steps=2)  # two batches of 16: the first 32 examples
    zero = models.write_checkpoint(job.model_dir, job.params, ZERO, global_step=4)
    results = evaluate_checkpoint(job, zero)
    assert results.pop("global_step") == 4
    assert results == pytest.approx(zero_model_metrics(examples=32), rel=1e-5)
    assert not (tmp_path / "model" / "eval").exists()  # no summary_dir, no summaries

    job = job_for(tmp_path / "model", input_fn=f"{MODULE}:shifted_input_fn")
    exact = models.write_checkpoint(job.model_dir, job.params, ANSWER, global_step=5)
    results = evaluate_checkpoint(job, exact)
    assert results == pytest.approx({"mse": 1.0, "mae": 1.0, "loss": 1.0, "global_step": 5})


class Reports:
    """A `report` callable that records eval events and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self._cond = threading.Condition()

    def __call__(self, event: str, **fields) -> None:
        with self._cond:
            self.events.append({"event": event, "time": time.monotonic(), **fields})
            self._cond.notify_all()

    def steps(self) -> list[int]:
        return [e["global_step"] for e in self.events]

    def wait_for(self, step: int, timeout: float = 30.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: step in self.steps(), timeout), self.events


def start_evaluator(job: JobSpec, reports: Reports, stop: threading.Event) -> threading.Thread:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_evaluator(job, reports, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.errors = errors
    thread.start()
    return thread


@pytest.mark.timeout(90)
def test_evaluator_evaluates_new_checkpoints_and_the_final_one_after_stop(tmp_path):
    job = job_for(tmp_path / "model")
    reports, stop = Reports(), threading.Event()
    evaluator = start_evaluator(job, reports, stop)
    for step in (10, 20):
        models.write_checkpoint(job.model_dir, job.params, ZERO, global_step=step)
        reports.wait_for(step)
    # Two more at once, then the stop: 40 is the final checkpoint and must be evaluated.
    models.write_checkpoint(job.model_dir, job.params, ZERO, global_step=30)
    models.write_checkpoint(job.model_dir, job.params, ANSWER, global_step=40)
    stop.set()
    evaluator.join(30)
    assert not evaluator.is_alive() and not evaluator.errors
    steps = reports.steps()
    assert steps[:2] == [10, 20] and steps[-1] == 40 and set(steps) <= {10, 20, 30, 40}
    assert all(e["event"] == "eval" for e in reports.events)
    assert reports.events[0]["metrics"] == pytest.approx(zero_model_metrics(), rel=1e-5)
    assert reports.events[-1]["metrics"] == {"mse": 0.0, "mae": 0.0, "loss": 0.0}
    assert set(read_eval_summaries(tmp_path / "model")) == set(steps)


@pytest.mark.timeout(60)
def test_evaluator_honours_throttle_secs(tmp_path):
    job = job_for(tmp_path / "model", throttle_secs=2.0)
    reports, stop = Reports(), threading.Event()
    evaluator = start_evaluator(job, reports, stop)
    models.write_checkpoint(job.model_dir, job.params, ZERO, global_step=1)
    reports.wait_for(1)
    models.write_checkpoint(job.model_dir, job.params, ZERO, global_step=2)
    reports.wait_for(2)
    stop.set()
    evaluator.join(30)
    assert not evaluator.is_alive() and not evaluator.errors
    first, second = reports.events
    # The second evaluation starts >= 2 s after the first one started (it ends after that).
    assert second["time"] - first["time"] >= 1.9


@pytest.mark.timeout(90)
def test_evaluator_alongside_in_process_training(tmp_path):
    job = job_for(tmp_path / "model")
    reports, stop = Reports(), threading.Event()
    evaluator = start_evaluator(job, reports, stop)
    models.train(job.model_dir, job.params, max_steps=200, save_steps=50, step_secs=0.02)
    stop.set()
    evaluator.join(60)
    assert not evaluator.is_alive() and not evaluator.errors
    steps = reports.steps()
    assert len(steps) >= 2 and steps == sorted(set(steps)) and steps[-1] == 200
    assert reports.events[-1]["metrics"]["mse"] < 1e-6  # trained to the exact answer
    assert sorted(read_eval_summaries(tmp_path / "model")) == steps


@pytest.mark.timeout(60)
def test_model_errors_raise_user_code_error(tmp_path):
    job = job_for(tmp_path / "model", {"fail_in_eval": True})
    models.write_checkpoint(job.model_dir, {}, ANSWER, global_step=1)
    with pytest.raises(
        UserCodeError,
        match=r"model_fn failed in mode 'eval' at tests/integration/export_models\.py:\d+ in "
        r"model_fn: ValueError: this model cannot",
    ):
        run_evaluator(job, Reports(), threading.Event())
    missing = job.with_overrides(model_fn=f"{MODULE}:no_such_model_fn")
    with pytest.raises(UserCodeError, match="no attribute 'no_such_model_fn'"):
        run_evaluator(missing, Reports(), threading.Event())


def harness_evaluate(tmp_path: Path, checkpoint: bool) -> subprocess.CompletedProcess:
    job = make_job_dict(f"{MODULE}:model_fn", f"{MODULE}:input_fn", tmp_path / "model", params={})
    job.pop("source_dirs")
    job["eval"] = {"steps": None}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    if checkpoint:
        models.write_checkpoint(str(tmp_path / "model"), {}, ZERO, global_step=8)
    return subprocess.run(
        [sys.executable, "-m", "harness", "evaluate", str(tmp_path / "job.yaml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.timeout(120)
def test_cli_evaluate_prints_the_metrics(tmp_path):
    result = harness_evaluate(tmp_path, checkpoint=True)
    assert result.returncode == 0, result.stderr
    assert "model.ckpt-8 (global step 8)" in result.stdout
    expected = zero_model_metrics()
    for name in ("mse", "mae", "loss"):
        row = next(line for line in result.stdout.splitlines() if f" {name} " in line)
        assert float(row.split()[-2]) == pytest.approx(expected[name], rel=1e-4)
    assert sorted(read_eval_summaries(tmp_path / "model")) == [8]


@pytest.mark.timeout(120)
def test_cli_evaluate_without_checkpoint_exits_2_naming_model_dir(tmp_path):
    result = harness_evaluate(tmp_path, checkpoint=False)
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("harness: error: no checkpoint in ")
    assert str(tmp_path / "model") in message
