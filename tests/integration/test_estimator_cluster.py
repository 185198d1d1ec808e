"""train_and_evaluate from real driver scripts (tests/integration/estimator_scripts), run as
subprocesses, on real clusters: local processes, and ``ray job submit`` to a token-auth head.

The scripts train linear regression on y = 2 x + 1 through a feature column in params (not
JSON), with lambdas as input_fns and a FinalExporter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf
import yaml

from tests.integration.test_ray_backend import RAY_BIN, REPO, ray_head  # noqa: F401

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).resolve().parent / "estimator_scripts"
SMALL = {"cpu": 0.5}


def harness_config(path: Path, **cluster) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "cluster": cluster,
                "resources": {role: SMALL for role in ("chief", "worker", "ps", "evaluator")},
                "timeouts": {"startup_secs": 120, "stop_grace_secs": 5},
                "backend": "local",
            }
        )
    )
    return path


def run_script(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("HARNESS_CONFIG", "TF_CONFIG")}
    environ.update(
        TF_USE_LEGACY_KERAS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.pathsep.join([str(REPO), environ.get("PYTHONPATH", "")]),
        **env,
    )
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=240
    )


def printed_result(output: str) -> dict:
    """The script's JSON line (the last one; other output may follow it)."""
    lines = [line for line in output.splitlines() if line.startswith('{"result"')]
    assert lines, output[-3000:]
    return json.loads(lines[-1])


def test_driver_script_trains_on_chief_worker_ps_and_evaluator(tmp_path):
    model_dir = tmp_path / "model"
    config = harness_config(tmp_path / "harness.yaml", workers=1, ps=1)
    done = run_script([str(SCRIPTS / "train.py"), str(model_dir), str(config)], cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    run = json.loads((model_dir / "run.json").read_text())
    assert run["status"] == "succeeded" and run["final_global_step"] >= 40
    assert set(run["tasks"]) == {"chief:0", "worker:0", "ps:0", "evaluator:0"}
    assert run["tasks"]["worker:0"]["local_steps"] > 0 and run["restarts"] == 0
    printed = printed_result(done.stdout)
    result = printed["result"]
    # Both evaluated the final checkpoint, written at max_steps or a step later (the worker's
    # last asynchronous step may land between the chief's final save and its last report).
    assert result["global_step"] == run["eval"]["global_step"]
    assert 40 <= result["global_step"] <= run["final_global_step"], (result, run)
    assert result["loss"] < 1e-3 and "mae" in result
    assert "[evaluator:0] eval at global step" in done.stdout + done.stderr
    (export,) = printed["exports"]
    served = tf.saved_model.load(export).signatures["serving_default"](x=tf.constant([[0.5]]))
    assert float(served["y"].numpy().reshape(())) == pytest.approx(2.0, abs=0.05)


def test_script_without_main_guard_runs_and_tasks_do_not_import_it(tmp_path):
    config = harness_config(tmp_path / "chief.yaml", evaluator=0)
    model_dir = tmp_path / "model"
    done = run_script(
        [str(SCRIPTS / "unguarded.py")],
        cwd=tmp_path,
        EST_MODEL_DIR=str(model_dir),
        HARNESS_CONFIG=str(config),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    run = json.loads((model_dir / "run.json").read_text())
    assert set(run["tasks"]) == {"chief:0"} and run["final_global_step"] >= 40
    result = printed_result(done.stdout)["result"]  # evaluated by the driver (no evaluator)
    assert result["global_step"] == run["final_global_step"] and result["loss"] < 1e-3


def test_a_task_that_imports_an_unguarded_script_fails_clearly(tmp_path):
    config = harness_config(tmp_path / "chief.yaml", evaluator=0)
    done = run_script(
        ["-c", "import unguarded"],
        cwd=SCRIPTS,
        EST_MODEL_DIR=str(tmp_path / "model"),
        EST_HARNESS_CONFIG=str(config),
    )
    assert done.returncode != 0
    assert "TrainAndEvaluateError" in done.stderr
    assert "train_and_evaluate() was called inside a harness task" in done.stderr
    assert 'if __name__ == "__main__":' in done.stderr
    run = json.loads((tmp_path / "model" / "run.json").read_text())
    assert run["status"] == "failed" and run["restarts"] == 0


@pytest.mark.timeout(300)
def test_ray_job_submit_runs_train_and_evaluate(tmp_path, ray_head):  # noqa: F811
    workdir = tmp_path / "job"
    workdir.mkdir()
    shutil.copy(SCRIPTS / "train.py", workdir / "train.py")
    config = yaml.safe_load(harness_config(workdir / "harness.yaml", workers=1).read_text())
    del config["backend"]  # under `ray job submit` the backend is Ray by itself
    (workdir / "harness.yaml").write_text(yaml.safe_dump(config))
    model_dir = tmp_path / "model"
    runtime_env = {"py_modules": [str(REPO / p) for p in ("harness", "cluster", "hooks")]}
    command = [str(RAY_BIN), "job", "submit", "--submission-id=estimator-submit"]
    command += [f"--working-dir={workdir}", f"--runtime-env-json={json.dumps(runtime_env)}"]
    command += ["--", "python", "train.py", str(model_dir)]
    done = subprocess.run(command, env=ray_head.env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    assert ray_head.job_status("estimator-submit") == "SUCCEEDED"
    run = json.loads((model_dir / "run.json").read_text())
    assert run["status"] == "succeeded" and run["backend"] == "ray"
    assert set(run["tasks"]) == {"chief:0", "worker:0", "evaluator:0"}
    result = printed_result(done.stdout)["result"]
    # The final checkpoint's step: max_steps, or a step later when the worker's last step
    # lands between the chief's final save and its last report (asynchronous training).
    assert 40 <= result["global_step"] <= run["final_global_step"], (result, run)
    assert result["loss"] < 1e-3
    alive = ray_head.list_state("actors", "state=ALIVE")
    assert not [a for a in alive if (a.get("name") or "").startswith("train-")], alive
