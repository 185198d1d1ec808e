"""harness.Estimator in this process: train, evaluate, predict, export, variables, and
train_and_evaluate without a harness config (TF's local mode).

The model is linear regression on the exact data y = 2 x + 1, so the learned weights, the
predictions and the served outputs have known values.
"""

from __future__ import annotations

import logging
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from harness import (
    BestExporter,
    Estimator,
    EstimatorSpec,
    EvalSpec,
    FinalExporter,
    LatestExporter,
    RunConfig,
    TrainSpec,
    train_and_evaluate,
)

v1 = tf.compat.v1
X = np.linspace(-1, 1, 64, dtype=np.float32).reshape(-1, 1)
Y = 2 * X + 1


def model_fn(features, labels, mode, params):
    w = v1.get_variable("w", [1, 1], initializer=v1.zeros_initializer())
    b = v1.get_variable("b", [1], initializer=v1.zeros_initializer())
    y = tf.matmul(features["x"], w) + b
    if mode == "infer":
        return EstimatorSpec(mode, predictions={"y": y, "double": 2 * y})
    loss = tf.reduce_mean(tf.square(y - labels))
    optimizer = v1.train.GradientDescentOptimizer(params["learning_rate"])
    train_op = optimizer.minimize(loss, global_step=v1.train.get_global_step())
    metrics = {"mae": v1.metrics.mean_absolute_error(labels, y)}
    return EstimatorSpec(mode, loss=loss, train_op=train_op, eval_metric_ops=metrics)


def train_input_fn():
    return tf.data.Dataset.from_tensor_slices(({"x": X}, Y)).repeat().batch(16)


def eval_input_fn():
    return tf.data.Dataset.from_tensor_slices(({"x": X}, Y)).batch(16)


def serving_input_fn():
    x = v1.placeholder(tf.float32, [None, 1], name="x")
    return {"x": x}, {"x": x}


def make_estimator(model_dir, **config):
    return Estimator(
        model_fn,
        model_dir=str(model_dir),
        config=RunConfig(**config) if config else None,
        params={"learning_rate": 0.2},
    )


@pytest.fixture(autouse=True)
def _no_harness_config(monkeypatch):
    monkeypatch.delenv("HARNESS_CONFIG", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)


def test_train_evaluate_predict_and_variables(tmp_path):
    estimator = make_estimator(tmp_path)
    assert estimator.train(train_input_fn, steps=1) is estimator
    first = estimator.evaluate(eval_input_fn)
    estimator.train(train_input_fn, steps=60)
    last = estimator.evaluate(eval_input_fn, name="holdout")
    assert first["global_step"] == 1 and last["global_step"] == 61
    assert last["loss"] < first["loss"] / 100
    assert set(last) == {"loss", "mae", "global_step"}
    assert os.path.isdir(tmp_path / "eval_holdout")

    assert set(estimator.get_variable_names()) >= {"w", "b", "global_step"}
    w = float(estimator.get_variable_value("w").reshape(()))
    b = float(estimator.get_variable_value("b").reshape(()))
    assert w == pytest.approx(2.0, abs=0.05) and b == pytest.approx(1.0, abs=0.05)
    assert estimator.latest_checkpoint().endswith("model.ckpt-61")

    def predict_input_fn():
        return tf.data.Dataset.from_tensor_slices({"x": X[:5]}).batch(2)

    predictions = list(estimator.predict(predict_input_fn, predict_keys="y"))
    assert len(predictions) == 5 and set(predictions[0]) == {"y"}
    got = np.array([p["y"] for p in predictions]).reshape(-1)
    np.testing.assert_allclose(got, X[:5, 0] * w + b, rtol=1e-5, atol=1e-6)
    batches = list(estimator.predict(predict_input_fn, yield_single_examples=False))
    assert [batch["y"].shape[0] for batch in batches] == [2, 2, 1]
    with pytest.raises(ValueError, match="Expected to run at least one output"):
        next(estimator.predict(predict_input_fn, predict_keys=["nope"]))


def test_steps_and_max_steps(tmp_path, caplog):
    estimator = make_estimator(tmp_path, save_checkpoints_steps=5)
    with pytest.raises(ValueError, match="Can not provide both steps and max_steps."):
        estimator.train(train_input_fn, steps=1, max_steps=2)
    with pytest.raises(ValueError, match=r"Must specify steps > 0, given: 0"):
        estimator.train(train_input_fn, steps=0)
    with pytest.raises(ValueError, match=r"Must specify max_steps > 0, given: -1"):
        estimator.train(train_input_fn, max_steps=-1)
    with pytest.raises(ValueError, match="Could not find trained model"):
        estimator.evaluate(eval_input_fn)
    estimator.train(train_input_fn, steps=10)
    estimator.train(train_input_fn, steps=10)  # continues from the checkpoint
    assert int(estimator.get_variable_value("global_step")) == 20
    with caplog.at_level(logging.INFO, logger="harness.estimator"):
        estimator.train(train_input_fn, max_steps=15)
    assert "Skipping training since max_steps has already saved." in caplog.text
    assert int(estimator.get_variable_value("global_step")) == 20
    estimator.train(train_input_fn, max_steps=25)
    assert int(estimator.get_variable_value("global_step")) == 25
    estimator.train(eval_input_fn)  # no steps: until the input ends (4 batches)
    assert int(estimator.get_variable_value("global_step")) == 29


def test_export_saved_model_serves_the_learned_function(tmp_path):
    estimator = make_estimator(tmp_path / "model")
    estimator.train(train_input_fn, steps=60)
    w = float(estimator.get_variable_value("w").reshape(()))
    b = float(estimator.get_variable_value("b").reshape(()))
    extra = tmp_path / "vocab.txt"
    extra.write_text("a\nb\n")

    class Receiver:  # a ServingInputReceiver-like object with an alternative receiver
        def __init__(self):
            x = v1.placeholder(tf.float32, [None, 1], name="x")
            raw = v1.placeholder(tf.float32, [None], name="raw")
            self.features = {"x": x}
            self.receiver_tensors = {"x": x}
            self.receiver_tensors_alternatives = {"raw": {"x": x, "raw": raw}}

    path = estimator.export_saved_model(
        str(tmp_path / "export"), Receiver, assets_extra={"data/vocab.txt": str(extra)}
    )
    assert isinstance(path, bytes) and os.path.basename(path).isdigit()
    path = path.decode()
    assert (tmp_path / "export" / os.path.basename(path) / "assets.extra/data/vocab.txt").exists()
    model = tf.saved_model.load(path)
    assert "raw:serving_default" in model.signatures
    out = model.signatures["serving_default"](x=tf.constant([[0.5], [-1.0]]))
    np.testing.assert_allclose(out["y"].numpy().reshape(-1), [0.5 * w + b, -w + b], rtol=1e-5)
    np.testing.assert_allclose(out["double"].numpy().reshape(-1), [w + 2 * b, -2 * w + 2 * b])

    with v1.Session(graph=tf.Graph()) as session:  # the TF 1.x loader serves it as well
        meta = v1.saved_model.loader.load(session, ["serve"], path)
        signature = meta.signature_def["serving_default"]
        y = session.run(signature.outputs["y"].name, {signature.inputs["x"].name: [[0.25]]})
        assert float(y.reshape(())) == pytest.approx(0.25 * w + b, rel=1e-5)

    legacy = estimator.export_savedmodel(str(tmp_path / "export"), serving_input_fn)
    assert tf.saved_model.contains_saved_model(legacy.decode())
    with pytest.raises(ValueError, match="Couldn't find trained model"):
        make_estimator(tmp_path / "empty").export_saved_model(str(tmp_path), serving_input_fn)


def test_constructor_rules(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="harness.estimator"):
        estimator = Estimator(model_fn, params={"learning_rate": 0.1})
    assert os.path.isdir(estimator.model_dir)
    assert "Using temporary folder as model directory" in caplog.text
    assert estimator.config.model_dir == estimator.model_dir
    assert estimator.params == {"learning_rate": 0.1}
    config = RunConfig(model_dir=str(tmp_path / "a"))
    assert Estimator(model_fn, config=config).model_dir == str(tmp_path / "a")
    with pytest.raises(ValueError, match="are set both in constructor and `RunConfig`"):
        Estimator(model_fn, model_dir=str(tmp_path / "b"), config=config)


def test_spec_validation():
    with pytest.raises(TypeError, match="`input_fn` must be callable"):
        TrainSpec(input_fn=None)
    with pytest.raises(ValueError, match=r"Must specify max_steps > 0, given: 0"):
        TrainSpec(train_input_fn, max_steps=0)
    with pytest.raises(TypeError, match="All hooks must be `SessionRunHook` instances"):
        TrainSpec(train_input_fn, hooks=[object()])
    with pytest.raises(ValueError, match=r"Must specify steps > 0, given: 0"):
        EvalSpec(eval_input_fn, steps=0)
    with pytest.raises(ValueError, match=r"Must specify throttle_secs >= 0, given: -1"):
        EvalSpec(eval_input_fn, throttle_secs=-1)
    with pytest.raises(ValueError, match="`exporters` must have unique names"):
        EvalSpec(
            eval_input_fn,
            exporters=[FinalExporter("a", serving_input_fn), FinalExporter("a", serving_input_fn)],
        )
    with pytest.raises(TypeError, match="`exporters` must be an Exporter"):
        EvalSpec(eval_input_fn, exporters=[1])
    spec = EvalSpec(eval_input_fn, exporters=FinalExporter("a", serving_input_fn))
    assert len(spec.exporters) == 1 and spec.steps == 100 and spec.throttle_secs == 600
    with pytest.raises(TypeError, match="`estimator` must have type"):
        train_and_evaluate(object(), TrainSpec(train_input_fn), spec)


def test_train_and_evaluate_in_process(tmp_path):
    estimator = make_estimator(tmp_path, save_checkpoints_steps=10)
    exporters = [
        LatestExporter("latest", serving_input_fn, exports_to_keep=2),
        FinalExporter("final", serving_input_fn),
        BestExporter("best", serving_input_fn),
    ]
    result, exports = train_and_evaluate(
        estimator,
        TrainSpec(lambda: train_input_fn(), max_steps=40),
        EvalSpec(lambda: eval_input_fn(), steps=None, throttle_secs=0, exporters=exporters),
    )
    assert result["global_step"] == 40 and result["loss"] < 1e-3
    assert len(exports) == 3 and all(isinstance(e, bytes) for e in exports)
    assert os.path.dirname(exports[1]).endswith(b"export/final")
    # evaluated after each of the checkpoints 10, 20, 30, 40 (not the initial one)
    assert len(os.listdir(tmp_path / "export" / "latest")) == 2
    assert len(os.listdir(tmp_path / "export" / "final")) == 1
    assert len(os.listdir(tmp_path / "export" / "best")) == 4  # the loss fell each time

    again, exports = train_and_evaluate(  # max_steps already reached: evaluates only
        estimator, TrainSpec(train_input_fn, max_steps=40), EvalSpec(eval_input_fn, steps=2)
    )
    assert again["global_step"] == 40 and exports == []


def test_tf_estimator_names_resolve_to_the_facade():
    import harness.compat

    harness.compat.install()
    assert tf.estimator.Estimator is Estimator
    assert tf.estimator.TrainSpec is TrainSpec and tf.estimator.EvalSpec is EvalSpec
    assert tf.estimator.train_and_evaluate is train_and_evaluate
    assert tf.estimator.LatestExporter is LatestExporter
    assert tf.contrib.learn.Estimator is Estimator


def test_cluster_settings_are_checked_before_anything_starts(tmp_path, monkeypatch):
    estimator = make_estimator(tmp_path)
    train_spec, eval_spec = TrainSpec(train_input_fn, max_steps=5), EvalSpec(eval_input_fn)
    with pytest.raises(ValueError, match=r"train.max_steps: set it in the code instead"):
        train_and_evaluate(
            estimator, train_spec, eval_spec, harness_config={"train": {"max_steps": 3}}
        )
    with pytest.raises(ValueError, match="TrainSpec.max_steps is None"):
        train_and_evaluate(estimator, TrainSpec(train_input_fn), eval_spec, harness_config={})

    class LockedHook(v1.train.SessionRunHook):
        def __init__(self):
            import threading

            self.lock = threading.Lock()

    unpicklable = TrainSpec(train_input_fn, max_steps=5, hooks=[LockedHook()])
    with pytest.raises(ValueError, match="TrainSpec.hooks cannot be sent to the cluster's tasks"):
        train_and_evaluate(estimator, unpicklable, eval_spec, harness_config={})
    assert not (tmp_path / "run.json").exists()

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker"}}')
    with pytest.raises(ValueError, match="the harness starts a cluster's tasks itself"):
        train_and_evaluate(estimator, train_spec, eval_spec)


def test_warm_start_from_another_models_checkpoint(tmp_path):
    import harness.compat  # noqa: F401  (tf.estimator.WarmStartSettings)

    source = make_estimator(tmp_path / "source")
    source.train(train_input_fn, steps=40)
    learned = source.get_variable_value("w")
    assert abs(float(learned.ravel()[0])) > 0.5
    settings = tf.estimator.WarmStartSettings(str(tmp_path / "source"), vars_to_warm_start="w")
    target = Estimator(
        model_fn,
        model_dir=str(tmp_path / "target"),
        params={"learning_rate": 0.0},
        warm_start_from=settings,
    )
    target.train(train_input_fn, steps=1)
    np.testing.assert_allclose(target.get_variable_value("w"), learned)
    assert float(target.get_variable_value("b")[0]) == 0.0, "b was not in vars_to_warm_start"
    with pytest.raises(ValueError, match="ckpt_to_initialize_from"):
        tf.estimator.WarmStartSettings("")
