"""The `harness` command as a user runs it: a subprocess, its exit status and its messages."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
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
    result = harness("run", str(write_job(tmp_path, model_fn)), "--backend", "local", "--quiet")
    assert result.returncode == 2  # a user error: the exit status of invalid input
    assert "failed with an error in the user's code (not retried)" in result.stderr
    assert message in result.stderr
    # whichever trainer built its graph first is named, with the log to read
    assert re.search(r"(chief|worker):0 failed with an error in the user's code", result.stderr)
    assert re.search(r"full log: .*/logs/(chief|worker)-0\.log", result.stderr)
    summary = run_json(tmp_path)  # at once: the first failure fails the job, nothing restarts
    assert summary["restarts"] == 0 and [f["decision"] for f in summary["failures"]] == ["FAIL"]
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


def run_json(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "model" / "run.json").read_text())


def assert_failed_at_once(result: subprocess.CompletedProcess, tmp_path: Path) -> dict:
    """Exit 2, one failure and no restart, nothing left; returns run.json."""
    assert result.returncode == 2, result.stderr
    assert "failed with an error in the user's code (not retried): " in result.stderr
    summary = run_json(tmp_path)
    assert summary["status"] == "failed" and summary["user_error"] is True
    assert summary["restarts"] == 0
    assert [f["decision"] for f in summary["failures"]] == ["FAIL"]
    assert all(task["restarts"] == 0 for task in summary["tasks"].values())
    assert summary["error"] in result.stderr
    assert not leftover_task_processes(tmp_path / "model")
    return summary


@pytest.mark.parametrize("method", ["begin", "after_run"])
def test_a_chief_hook_that_raises_fails_the_job_at_once_naming_the_hook(tmp_path, method):
    path = write_job(tmp_path, params={"failing_chief_hook": method}, workers=1, ps=0)
    result = harness("run", str(path), "--backend", "local", "--quiet")
    summary = assert_failed_at_once(result, tmp_path)
    assert re.match(
        rf"chief:0 failed with an error in the user's code \(not retried\): training_chief_hooks "
        rf"FailingHook\.{method} raised at \S*models\.py:\d+ in _fail: RuntimeError: the user's "
        rf"hook fails in {method}\n",
        summary["error"],
    ), summary["error"]


def test_an_op_of_the_users_failing_at_the_first_step_fails_at_once_naming_the_line(tmp_path):
    path = write_job(tmp_path, "tests.integration.models:model_fn_with_a_wrong_shape", ps=0)
    result = harness("run", str(path), "--backend", "local", "--quiet")
    summary = assert_failed_at_once(result, tmp_path)
    first_line = summary["error"].splitlines()[0]
    assert re.match(
        r"(chief|worker):0 failed with an error in the user's code \(not retried\): the first "
        r"training step failed in op 'Reshape' created at \S*models\.py:\d+ in "
        r"model_fn_with_a_wrong_shape: InvalidArgumentError: (From \S+: )?Input to reshape is "
        r"a tensor with 16 values, but the requested shape requires a multiple of 7$",
        first_line,
    ), first_line


def test_a_model_dir_holding_another_graphs_checkpoint_fails_at_once(tmp_path):
    import tensorflow as tf

    v1 = tf.compat.v1
    model_dir = tmp_path / "model"
    with tf.Graph().as_default():
        v1.train.get_or_create_global_step()
        v1.get_variable("bias", [1])
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            v1.train.Saver().save(session, str(model_dir / "model.ckpt"), global_step=3)
    result = harness("run", str(write_job(tmp_path, ps=0)), "--backend", "local", "--quiet")
    summary = assert_failed_at_once(result, tmp_path)
    assert re.match(
        r"chief:0 failed with an error in the user's code \(not retried\): the checkpoint "
        rf"{re.escape(str(model_dir))}/model\.ckpt-3 does not match the graph: NotFoundError: "
        r"(From \S+: )?Key \w+ not found in checkpoint\. ",
        summary["error"],
    ), summary["error"]


@pytest.mark.parametrize(
    ("signum", "inherited"),
    [(signal.SIGINT, signal.SIG_IGN), (signal.SIGHUP, signal.SIG_DFL)],
    ids=["sigint-inherited-ignored", "sighup"],
)
def test_a_signal_stops_every_task_whatever_was_inherited(tmp_path, signum, inherited):
    path = write_job(tmp_path, params={"slow_secs": 0.05}, max_steps=100000, ps=0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(path), "--backend", "local"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # as `harness run ... &` in a script inherits SIGINT ignored
        preexec_fn=lambda: signal.signal(signum, inherited),
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:  # wait until training runs
            if "[harness] step" in line and "step 0/" not in line:
                break
        os.kill(proc.pid, signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # the signal was ignored: do not leave the job running
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out[-3000:]
    assert f"interrupted by the user ({signal.Signals(signum).name})" in out
    assert not leftover_task_processes(tmp_path / "model")
    assert run_json(tmp_path)["status"] == "interrupted"


def assert_one_line_error(result: subprocess.CompletedProcess, *parts: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("harness: error:")]
    assert len(errors) == 1, result.stderr
    for part in parts:
        assert part in errors[0], errors[0]


def test_a_binary_job_file_is_a_one_line_error_naming_it(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    result = harness("run", str(path), "--backend", "local")
    assert_one_line_error(result, str(path), "not a text (UTF-8) file")


def test_a_model_dir_that_is_a_file_is_a_one_line_error_and_starts_nothing(tmp_path):
    path = write_job(tmp_path)
    (tmp_path / "model").write_text("not a folder")
    result = harness("run", str(path), "--backend", "local")
    assert_one_line_error(result, f"model_dir {tmp_path / 'model'}: is a file, not a directory")
    below = tmp_path / "job2.yaml"
    below.write_text(path.read_text().replace(str(tmp_path / "model"), str(tmp_path / "model/x")))
    result = harness("run", str(below), "--backend", "local")
    assert_one_line_error(
        result, f"model_dir {tmp_path / 'model/x'}: a folder on its path is a file"
    )
    assert not leftover_task_processes(tmp_path / "model")


def _writable(folder: Path) -> bool:
    try:
        (folder / "probe").touch()
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


def test_a_read_only_model_dir_is_a_one_line_error_and_starts_nothing(tmp_path):
    path = write_job(tmp_path)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    model_dir.chmod(0o555)
    immutable = False
    try:
        if _writable(model_dir):  # root ignores permission bits; an immutable folder stops it
            chattr = shutil.which("chattr")
            immutable = (
                bool(chattr) and subprocess.run([chattr, "+i", str(model_dir)]).returncode == 0
            )
            if _writable(model_dir):
                pytest.skip("cannot make a folder read-only for this user")
        result = harness("run", str(path), "--backend", "local")
    finally:
        if immutable:
            subprocess.run([shutil.which("chattr") or "chattr", "-i", str(model_dir)])
        model_dir.chmod(0o755)
    assert_one_line_error(result, f"model_dir {model_dir}: cannot write there")
    assert not leftover_task_processes(model_dir)
    assert list(model_dir.iterdir()) == []


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
