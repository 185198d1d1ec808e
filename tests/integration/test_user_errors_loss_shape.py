"""A loss of the wrong shape is a user error: it fails in the first ``session.run`` (the
batch's size is unknown when the graph is built), is not retried, and ``harness run`` exits
2 with one message naming the task, the op, the user's line and TensorFlow's text.

The other user-error kinds (a chief hook raising in begin/after_run, another op of the
user's failing at the first step, a model_dir holding another graph's checkpoint) are in
tests/integration/test_cli.py; docs/recovery-tests.md maps them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.testing import leftover_task_processes, make_job_dict

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]


def model_fn_with_a_loss_of_the_wrong_shape(features, labels, mode):
    """Predictions of 16 rows against 7 labels: ``Incompatible shapes`` in the step."""
    import tensorflow as tf

    from harness import ModelFnOps

    v1 = tf.compat.v1
    w = v1.get_variable("w", [1, 1])
    predictions = tf.matmul(features["x"], w)
    loss = tf.reduce_mean(tf.square(predictions - labels[:7]))  # the user's wrong shape
    train_op = v1.train.GradientDescentOptimizer(0.1).minimize(loss, v1.train.get_global_step())
    return ModelFnOps(mode, loss=loss, train_op=train_op)


def test_a_loss_of_the_wrong_shape_fails_at_once_naming_the_users_line(tmp_path):
    model_dir = tmp_path / "model"
    job = make_job_dict(
        f"{__name__}:model_fn_with_a_loss_of_the_wrong_shape",
        "tests.integration.models:input_fn",
        model_dir,
        ps=0,
        max_steps=20,
    )
    job.pop("source_dirs")
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(path), "--backend", "local", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 2, result.stderr
    summary = json.loads((model_dir / "run.json").read_text())
    assert summary["status"] == "failed" and summary["user_error"] is True
    assert summary["restarts"] == 0, summary["failures"]
    assert [f["decision"] for f in summary["failures"]] == ["FAIL"]
    assert all(task["restarts"] == 0 for task in summary["tasks"].values())
    first_line = summary["error"].splitlines()[0]
    assert first_line in result.stderr
    assert re.match(
        r"(chief|worker):0 failed with an error in the user's code \(not retried\): the first "
        r"training step failed in op '[\w/]+' created at \S*test_user_errors_loss_shape\.py:\d+ in "
        r"model_fn_with_a_loss_of_the_wrong_shape: InvalidArgumentError: (From \S+: )?"
        r"Incompatible shapes: \[16,1\] vs\. \[7,1\]",
        first_line,
    ), first_line
    assert not leftover_task_processes(model_dir)
