"""The era examples as a user runs them: train, evaluate, export and validate through the CLI.

Each example under examples/ is model code written the way its era wrote it (tf.contrib.learn
ModelFnOps, a tf.estimator CNN over TFRecord shards, a wide & deep model with feature columns
and SyncReplicasOptimizer). A test copies the example's job.yaml with a temporary model_dir
and fewer steps, runs `python -m harness run/evaluate/export/validate` as subprocesses, and
checks what a user would look at: the exit status, the chief's `loss` curve in TensorBoard
events, the printed metrics, and a SavedModel that serves a real request.
"""

from __future__ import annotations

import glob
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.testing import leftover_task_processes

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

pytestmark = pytest.mark.slow


def harness(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def job_copy(tmp_path: Path, example: str, max_steps: int, **params: Any) -> Path:
    """The example's job.yaml with model_dir in tmp_path, max_steps and params overridden."""
    job = yaml.safe_load((EXAMPLES / example / "job.yaml").read_text())
    job["model_dir"] = str(tmp_path / "model")
    job["train"]["max_steps"] = max_steps
    # Checkpoints at 0, 1/3, 2/3 and the end: model.ckpt-0 (untrained) is kept.
    job["train"]["save_checkpoints_steps"] = max(1, max_steps // 3)
    job["params"].update(params)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def train(job: Path) -> Path:
    result = harness("run", str(job), "--backend", "local", "--quiet", timeout=150)
    model_dir = Path(yaml.safe_load(job.read_text())["model_dir"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "succeeded" in result.stdout + result.stderr
    assert not leftover_task_processes(model_dir)
    return model_dir


def assert_loss_fell(job: Path, model_dir: Path) -> dict[str, float]:
    """The final checkpoint's eval loss is clearly below the untrained model's, on the same
    eval data; returns the final metrics.

    The untrained model is ``model.ckpt-0``, the chief's first checkpoint. (The chief's
    TensorBoard curve alone cannot show it: under load a worker may train for many steps
    before the chief's first summary.) The chief's ``loss`` summaries must exist too.
    """
    import tensorflow as tf

    tags = {
        value.tag
        for events in glob.glob(str(model_dir / "events.out.tfevents.*"))
        for event in tf.compat.v1.train.summary_iterator(events)
        for value in event.summary.value
    }
    assert "loss" in tags, f"no loss summaries in {model_dir}: {sorted(tags)}"
    initial = evaluate(job, model_dir / "model.ckpt-0")
    final = evaluate(job)
    assert final["loss"] < 0.7 * initial["loss"], f"loss did not fall: {initial} -> {final}"
    return final


def evaluate(job: Path, checkpoint: Path | None = None) -> dict[str, float]:
    """`harness evaluate` (of ``checkpoint``, default the latest): exit 0; the metrics."""
    extra = ["--checkpoint", str(checkpoint)] if checkpoint else []
    result = harness("evaluate", str(job), *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = dict(re.findall(r"│ (\w+)\s*│\s*([-+.0-9e]+) │", result.stdout))
    assert "loss" in metrics, result.stdout
    return {name: float(value) for name, value in metrics.items()}


def export(job: Path, export_dir: Path) -> Any:
    """`harness export`: exit 0; the one versioned SavedModel, loaded with tf.saved_model.load."""
    import tensorflow as tf

    result = harness("export", str(job), "--export-dir", str(export_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    (version,) = export_dir.iterdir()
    assert version.name.isdigit()
    return tf.saved_model.load(str(version))


def validate(job: Path) -> str:
    result = harness("validate", str(job))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "valid" in result.stdout
    # Built, never run: TF's "Object was never used" reports (SyncReplicas) are not shown.
    assert "Object was never used" not in result.stderr
    return result.stdout


def example_proto(**features: Any) -> bytes:
    import tensorflow as tf

    feature = {}
    for key, value in features.items():
        if isinstance(value, str):
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        else:
            values = list(value) if isinstance(value, list | tuple) else [value]
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.mark.timeout(170)
def test_contrib_learn_model_fn_ops_classifier(tmp_path):
    job = job_copy(tmp_path, "contrib_learn", max_steps=600)
    model_dir = train(job)
    metrics = assert_loss_fell(job, model_dir)
    assert metrics["accuracy"] > 0.8  # three classes: chance is 1/3

    import tensorflow as tf

    model = export(job, tmp_path / "export")
    assert {"serving_default", "species"} <= set(model.signatures)
    flowers = [
        example_proto(x=[5.0, 3.4, 1.5, 0.2]),  # setosa-like
        example_proto(x=[6.6, 3.0, 5.6, 2.0]),  # virginica-like
    ]
    out = model.signatures["serving_default"](inputs=tf.constant(flowers))
    assert out["scores"].shape == (2, 3)
    assert out["classes"].shape == (2, 3)
    assert out["classes"][0].numpy().tolist() == [b"setosa", b"versicolor", b"virginica"]
    assert out["scores"].numpy().argmax(axis=1).tolist() == [0, 2]

    validate(job)


@pytest.mark.timeout(170)
def test_estimator_cnn_reads_tfrecord_shards(tmp_path):
    data_dir = tmp_path / "data"
    made = subprocess.run(
        [sys.executable, str(EXAMPLES / "estimator_cnn" / "make_data.py"), str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    assert len(list(data_dir.glob("train-*.tfrecord"))) == 4
    assert len(list(data_dir.glob("eval-*.tfrecord"))) == 1

    job = job_copy(tmp_path, "estimator_cnn", max_steps=600, data_dir=str(data_dir))
    model_dir = train(job)
    metrics = assert_loss_fell(job, model_dir)
    assert metrics["accuracy"] > 0.75  # two balanced classes: chance is 1/2

    import numpy as np
    import tensorflow as tf

    model = export(job, tmp_path / "export")
    images = np.zeros((2, 8, 8), np.float32)
    images[0, 3, :] = 1.0  # a horizontal bar: class 0
    images[1, :, 5] = 1.0  # a vertical bar: class 1
    out = model.signatures["serving_default"](image=tf.constant(images))
    assert out["probabilities"].shape == (2, 2)
    assert out["classes"].shape == (2,)
    assert out["classes"].numpy().tolist() == [0, 1]

    validate(job)


@pytest.mark.timeout(170)
def test_wide_deep_feature_columns_with_sync_replicas(tmp_path):
    job = job_copy(tmp_path, "wide_deep", max_steps=200)
    model_dir = train(job)
    metrics = assert_loss_fell(job, model_dir)
    # the chief-only hook ran on the chief and wrote its log
    steps = [int(row.split(",")[0]) for row in (model_dir / "loss_log.csv").read_text().split()]
    assert len(steps) >= 5 and steps == sorted(steps) and steps[-1] >= 150, steps

    assert metrics["auc"] > 0.8
    assert metrics["accuracy"] > 0.7  # about 60% of the examples are positive

    import tensorflow as tf

    model = export(job, tmp_path / "export")
    assert {"serving_default", "predict"} <= set(model.signatures)
    person = {"age": 45.0, "hours_per_week": 50.0, "education": "Masters"}
    requests = [
        example_proto(**person, occupation="Exec-managerial"),
        example_proto(**person, occupation="a job the hash buckets never saw"),
    ]
    classified = model.signatures["serving_default"](inputs=tf.constant(requests))
    assert classified["scores"].shape == (2, 2)
    assert classified["classes"].shape == (2, 2)
    predicted = model.signatures["predict"](
        age=tf.constant([45.0]),
        hours_per_week=tf.constant([50.0]),
        education=tf.constant(["Masters"]),
        occupation=tf.constant(["Exec-managerial"]),
    )
    assert predicted["logistic"].shape == (1, 1)

    out = validate(job)
    chief = [line for line in out.splitlines() if "chief:0" in line]
    worker = [line for line in out.splitlines() if "worker:0" in line]
    assert any("LossLogHook" in line for line in chief)
    assert not any("LossLogHook" in line for line in worker)
    assert any("SyncReplicasOptimizerHook" in line for line in chief)
    assert any("SyncReplicasOptimizerHook" in line for line in worker)
