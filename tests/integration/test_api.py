"""The Python API on real clusters: ``harness.fit(harness.Job(...))`` and its Result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import harness
from harness.testing import leftover_task_processes

REPO = Path(__file__).resolve().parents[2]
MODELS = "tests.integration.models"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def make_job(tmp_path: Path, **fields) -> harness.Job:
    base = {
        "name": "api",
        "model_fn": f"{MODELS}:model_fn",
        "input_fn": f"{MODELS}:input_fn",
        "model_dir": str(tmp_path / "model"),
        "cluster": {"workers": 1, "ps": 1},
        "resources": {r: {"cpu": 0.5} for r in ("chief", "worker", "ps")},
        "train": {"max_steps": 40, "save_checkpoints_steps": 20},
        "timeouts": {"stop_grace_secs": 5},
        "source_dirs": [str(REPO)],
    }
    base.update(fields)
    return harness.Job(**base)


def test_fit_returns_metrics_checkpoint_and_run_quietly(tmp_path, capsys):
    job = make_job(tmp_path)
    result = harness.fit(job, backend="local")
    assert result.succeeded and result.error is None, result.error
    assert result.metrics["global_step"] >= 40
    assert result.metrics["loss"] is not None and result.metrics["loss"] < 10
    assert result.metrics["steps_per_sec"] and result.metrics["steps_per_sec"] > 0
    assert result.checkpoint is not None and result.checkpoint.step >= 40
    assert Path(result.checkpoint.path + ".index").exists()
    assert result.model_dir == str(tmp_path / "model")
    assert result.run == json.loads((tmp_path / "model" / "run.json").read_text())
    assert result.raise_for_error() is result
    out = capsys.readouterr().out
    assert "[worker:0]" not in out and "step 40/40" not in out  # no echo, no progress
    assert (tmp_path / "model" / "logs" / "worker-0.log").read_text()  # but logged
    assert not leftover_task_processes(job.model_dir)


def test_a_failed_run_is_a_result_with_the_task_and_its_traceback(tmp_path):
    job = make_job(tmp_path, model_fn=f"{MODELS}:model_fn_with_a_wrong_shape")
    result = harness.fit(job, backend="local")
    assert not result.succeeded and result.status == "failed"
    error = result.error
    assert isinstance(error, harness.HarnessError) and error.user_error
    assert (error.role, error.index) in {("chief", 0), ("worker", 0)}
    assert any("models.py" in line for line in error.traceback), error.traceback
    assert "InvalidArgumentError" in str(error)
    with pytest.raises(harness.HarnessError):
        result.raise_for_error()
    assert not leftover_task_processes(job.model_dir)


def test_invalid_input_raises_before_anything_starts(tmp_path):
    with pytest.raises(harness.JobSpecError) as info:
        make_job(tmp_path, train={"max_steps": 0})
    assert info.value.field == "train.max_steps"
    job = make_job(tmp_path, model_fn=f"{MODELS}:no_such_model_fn")
    with pytest.raises(harness.JobSpecError) as info:
        harness.fit(job, backend="local")
    assert info.value.field == "model_fn" and "no attribute 'no_such_model_fn'" in str(info.value)
    with pytest.raises(harness.JobSpecError, match="backend must be one of"):
        harness.fit(make_job(tmp_path), backend="k8s")
    assert not (tmp_path / "model" / "run.json").exists()


def test_fit_on_an_embedded_ray_from_a_driver_script(tmp_path):
    """The example driver (examples/python_api/train.py): fit on Ray, then the Result."""
    script = REPO / "examples" / "python_api" / "train.py"
    model_dir = tmp_path / "model"
    env_code = "import os; os.environ['RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'] = '0'"
    done = subprocess.run(
        [sys.executable, "-c", f"{env_code}; import runpy; runpy.run_path({str(script)!r})"],
        cwd=REPO / "examples" / "python_api",
        env={**__import__("os").environ, "MODEL_DIR": str(model_dir), "MAX_STEPS": "60"},
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("result:")]
    assert lines, done.stdout[-3000:]
    reported = json.loads(lines[-1].removeprefix("result:"))
    run = json.loads((model_dir / "run.json").read_text())
    assert run["backend"] == "ray" and run["status"] == "succeeded"
    assert reported["global_step"] == run["final_global_step"] >= 60
    assert reported["checkpoint_step"] >= 60
    assert not leftover_task_processes(model_dir)
