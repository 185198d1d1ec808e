"""The `harness` command as a user runs it: a subprocess, its exit status and its messages."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.testing import leftover_task_processes, make_job_dict

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "linear" / "job.yaml"

pytestmark = pytest.mark.timeout(180)


def harness(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_job(
    tmp_path: Path, model_fn: str = "tests.integration.models:model_fn", **fields
) -> Path:
    fields.setdefault("max_steps", 20)
    job = make_job_dict(model_fn, "tests.integration.models:input_fn", tmp_path / "model", **fields)
    job.pop("source_dirs")
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def test_validate_the_example_lists_hooks_per_role():
    result = harness("validate", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "valid" in out
    for expected in (
        "CheckpointSaverHook",
        "WeightReportHook",
        "training_chief_hooks",
        "ThroughputHook",
    ):
        assert expected in out
    worker_rows = [line for line in out.splitlines() if "worker:0" in line]
    assert worker_rows and not any(
        "WeightReportHook" in r or "CheckpointSaver" in r for r in worker_rows
    )


@pytest.mark.parametrize(
    ("model_fn", "message"),
    [
        ("tests.integration.models:model_fn_without_train_op", "Missing train_op."),
        ("tests.integration.models:model_fn_with_bad_hook", "must be SessionRunHook instances"),
        ("tests.integration.models:model_fn_that_raises", "boom: the user's model_fn is broken"),
    ],
)
def test_validate_rejects_a_broken_model_fn(tmp_path, model_fn, message):
    result = harness("validate", str(write_job(tmp_path, model_fn)))
    assert result.returncode == 2
    assert message in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("model_fn", "message"),
    [
        ("tests.integration.models:model_fn_without_train_op", "Missing train_op."),
        ("tests.integration.models:model_fn_with_bad_hook", "must be SessionRunHook instances"),
        ("tests.integration.models:model_fn_that_raises", "boom: the user's model_fn is broken"),
    ],
)
def test_run_fails_fast_on_user_errors_and_leaves_nothing(tmp_path, model_fn, message):
    start = time.monotonic()
    result = harness("run", str(write_job(tmp_path, model_fn)), "--backend", "local", "--quiet")
    assert result.returncode == 1
    assert "failed with an error in the user's code (not retried)" in result.stderr
    assert message in result.stderr
    # whichever trainer built its graph first is named, with the log to read
    assert re.search(r"(chief|worker):0 failed with an error in the user's code", result.stderr)
    assert re.search(r"full log: .*/logs/(chief|worker)-0\.log", result.stderr)
    assert time.monotonic() - start < 60
    assert not leftover_task_processes(tmp_path / "model")


def test_an_unimportable_model_fn_is_refused_before_anything_starts(tmp_path):
    result = harness(
        "run", str(write_job(tmp_path, "tests.integration.modles:model_fn")), "--backend", "local"
    )
    assert result.returncode == 2
    assert "model_fn: cannot import module 'tests.integration.modles'" in result.stderr
    missing_attr = harness(
        "validate", str(write_job(tmp_path, "tests.integration.models:model_fm"))
    )
    assert missing_attr.returncode == 2
    assert "Did you mean 'tests.integration.models:model_fn'?" in missing_attr.stderr
    assert not (tmp_path / "model" / "logs").exists()


def test_an_unknown_yaml_key_names_the_key_and_a_fix(tmp_path):
    path = write_job(tmp_path)
    text = path.read_text().replace("max_steps:", "max_step:")
    path.write_text(text)
    result = harness("run", str(path), "--backend", "local")
    assert result.returncode == 2
    assert "train.max_step: unknown key 'max_step'. Did you mean 'max_steps'?" in result.stderr
    assert "train.max_steps: required field is missing" in result.stderr


def test_help_and_a_wrong_flag():
    assert harness("--help").returncode == 0
    wrong = harness("run", str(EXAMPLE), "--backend", "spark")
    assert wrong.returncode == 2
    assert "invalid choice: 'spark'" in wrong.stderr


def test_ctrl_c_stops_every_task(tmp_path):
    path = write_job(tmp_path, params={"slow_secs": 0.05}, max_steps=100000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(path), "--backend", "local"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until training runs
        if "[harness] step" in line and "step 0/" not in line:
            break
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in out
    assert not leftover_task_processes(tmp_path / "model")
    assert '"status": "interrupted"' in (tmp_path / "model" / "run.json").read_text()


def serving_job(tmp_path: Path, params: dict, **fields) -> Path:
    module = "tests.integration.serving_models"
    job = make_job_dict(f"{module}:model_fn", f"{module}:input_fn", tmp_path / "m", params=params)
    job.pop("source_dirs")
    job.update(fields)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def test_validate_builds_the_eval_and_export_graphs_and_names_the_users_line(tmp_path):
    ok = harness("validate", str(serving_job(tmp_path, {})))
    assert ok.returncode == 0, ok.stderr
    assert "keras: legacy graph-mode Keras, tf_keras" in ok.stdout
    assert "EVAL graph: builds; metrics global_step, loss" in ok.stdout
    assert "export graph: builds; signatures serving_default (inputs x)" in ok.stdout

    # The job has an evaluator: an EVAL graph that fails is an error, with mode, file, line.
    bad_eval = serving_job(tmp_path, {"eval_fails": True}, cluster={"workers": 1, "evaluator": 1})
    result = harness("validate", str(bad_eval))
    assert result.returncode == 2
    assert re.search(
        r"EVAL graph: model_fn failed in mode 'eval' at tests/integration/serving_models\.py:\d+ "
        r"in model_fn: ValueError: no EVAL graph in this model",
        result.stderr,
    ), result.stderr

    # Without an evaluator it is only a warning: `harness run` would not build it.
    warned = harness("validate", str(serving_job(tmp_path, {"eval_fails": True})))
    assert warned.returncode == 0, warned.stderr
    assert "warning: EVAL graph: model_fn failed in mode 'eval'" in warned.stdout
    assert "harness evaluate` would fail" in warned.stdout

    # export_on_finish: a failing INFER graph is an error.
    bad_export = serving_job(
        tmp_path, {"predict_fails": True}, train={"max_steps": 5, "export_on_finish": True}
    )
    result = harness("validate", str(bad_export))
    assert result.returncode == 2
    assert (
        "export graph: model_fn failed in mode 'infer' at tests/integration/serving_models.py"
        in result.stderr
    )


REMOVED_AT_IMPORT = """
import tensorflow.compat.v1 as tf

rnn = tf.contrib.rnn


def model_fn(features, labels, mode):
    pass


def input_fn():
    pass
"""

REMOVED_IN_MODEL_FN = """
import tensorflow.compat.v1 as tf


def input_fn():
    return {"x": tf.ones([4, 1])}, tf.ones([4, 1])


def model_fn(features, labels, mode):
    net = tf.contrib.layers.fully_connected(features["x"], 2)
    return tf.contrib.seq2seq.BasicDecoder(net)
"""


@pytest.mark.parametrize(
    ("source", "where", "api"),
    [
        (REMOVED_AT_IMPORT, r"\(at \S*removed\.py:4 in <module>\)", r"tf\.contrib\.rnn"),
        (
            REMOVED_IN_MODEL_FN,
            r"mode 'train' at \S*removed\.py:11 in model_fn",
            r"tf\.contrib\.seq2seq",
        ),
    ],
)
def test_validate_names_a_removed_api_and_its_replacement(tmp_path, source, where, api):
    (tmp_path / "removed.py").write_text(source)
    job = {
        "name": "removed",
        "model_fn": "removed:model_fn",
        "input_fn": "removed:input_fn",
        "model_dir": str(tmp_path / "model"),
        "train": {"max_steps": 5},
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    result = harness("validate", str(path))
    assert result.returncode == 2
    assert re.search(where, result.stderr), result.stderr
    assert re.search(api + r" was removed in TensorFlow 2; use \S+", result.stderr), result.stderr
