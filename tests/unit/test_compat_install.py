"""harness.compat: the removed namespaces resolve as attributes and imports, idempotently."""

from __future__ import annotations

import importlib
import sys

import pytest
import tensorflow as tf

import harness.compat
from harness.compat import RemovedAPIError, RemovedModuleError

v1 = tf.compat.v1


def test_attributes_resolve_on_tf_and_the_compat_v1_wrapper():
    import harness.estimator_spec
    import harness.model_fn

    assert type(tf.compat.v1).__name__ == "TFModuleWrapper"
    for namespace in (tf, tf.compat.v1):
        assert namespace.estimator.EstimatorSpec is harness.estimator_spec.EstimatorSpec
        assert namespace.contrib.learn.ModelFnOps is harness.model_fn.ModelFnOps
        assert callable(namespace.contrib.layers.fully_connected)
        assert callable(namespace.contrib.framework.get_or_create_global_step)
        assert namespace.contrib.training.HParams(a=1).a == 1
    assert tf.compat.v2.estimator.ModeKeys.PREDICT == "infer"
    assert tf.estimator.ModeKeys.TRAIN == "train" and tf.estimator.ModeKeys.EVAL == "eval"
    assert tf.estimator.LoggingTensorHook is v1.train.LoggingTensorHook
    assert tf.estimator.SecondOrStepTimer is v1.train.SecondOrStepTimer


def test_import_statements_resolve():
    import tensorflow.contrib.slim as slim
    import tensorflow.contrib.slim.nets as nets
    from tensorflow.compat.v1.estimator import export as v1_export
    from tensorflow.contrib import layers
    from tensorflow.estimator import export
    from tensorflow.estimator.export import ServingInputReceiver

    assert layers is tf.contrib.layers and export is v1_export is tf.estimator.export
    assert ServingInputReceiver is tf.estimator.export.ServingInputReceiver
    assert slim.fully_connected is layers.fully_connected
    assert slim.optimize_loss is layers.optimize_loss
    import tf_slim.nets

    assert nets is tf_slim.nets and tf_slim.nets.__spec__.name == "tf_slim.nets"
    resnet_v1 = importlib.import_module("tensorflow.contrib.slim.nets.resnet_v1")
    assert resnet_v1 is importlib.import_module("tf_slim.nets.resnet_v1")
    assert sys.modules["tensorflow.compat.v1.contrib.learn"] is tf.contrib.learn


def test_estimator_spec_is_resolved_at_access_time(monkeypatch):
    import harness.estimator_spec

    class Replacement:
        pass

    monkeypatch.setattr(harness.estimator_spec, "EstimatorSpec", Replacement)
    assert tf.estimator.EstimatorSpec is Replacement
    assert tf.compat.v1.estimator.EstimatorSpec is Replacement


def test_install_is_idempotent_and_keeps_what_tf_has():
    estimator, contrib = tf.estimator, tf.contrib
    finders = list(sys.meta_path)
    harness.compat.install()
    importlib.reload(harness.compat)
    assert tf.estimator is estimator and tf.contrib is contrib
    assert len(sys.meta_path) == len(finders)
    assert callable(v1.layers.dense) and callable(v1.nn.rnn_cell.LSTMCell)
    assert tf.keras.layers.Dense is not None and callable(v1.train.AdamOptimizer)
    with tf.Graph().as_default():
        assert v1.layers.dense(tf.zeros([1, 2]), 3).shape.as_list() == [1, 3]


@pytest.mark.parametrize(
    ("expression", "api", "replacement"),
    [
        (lambda: tf.contrib.rnn, "tf.contrib.rnn", "tf.compat.v1.nn.rnn_cell"),
        (lambda: v1.contrib.metrics, "tf.contrib.metrics", "tf.compat.v1.metrics"),
        (lambda: tf.contrib.data, "tf.contrib.data", "tf.data.experimental"),
        (lambda: tf.contrib.lookup, "tf.contrib.lookup", "tf.lookup"),
        (lambda: tf.contrib.keras, "tf.contrib.keras", "tf.keras"),
        (lambda: tf.contrib.whatever_else, "tf.contrib.whatever_else", "contrib-sunset"),
        (lambda: tf.estimator.DNNClassifier, "tf.estimator.DNNClassifier", "model_fn"),
        (
            lambda: tf.contrib.layers.real_valued_column,
            "tf.contrib.layers.real_valued_column",
            "tf.feature_column.numeric_column",
        ),
        (lambda: tf.contrib.tpu.TPUEstimator, "tf.contrib.tpu.TPUEstimator", "harness"),
        (lambda: tf.contrib.learn.Experiment, "tf.contrib.learn.Experiment", "train_and_eval"),
    ],
)
def test_removed_attribute_names_the_api_and_its_replacement(expression, api, replacement):
    with pytest.raises(RemovedAPIError) as caught:
        expression()
    message = str(caught.value)
    assert message.startswith(f"{api} was removed in TensorFlow 2; use ")
    assert replacement in message and caught.value.api == api
    assert isinstance(caught.value, AttributeError)


def test_hasattr_is_false_for_removed_names():
    assert not hasattr(tf.contrib, "rnn")
    assert not hasattr(tf.estimator, "LinearRegressor")
    assert hasattr(tf.contrib, "layers")


@pytest.mark.parametrize(
    ("statement", "api"),
    [
        ("from tensorflow.contrib import rnn", "tf.contrib.rnn"),
        ("import tensorflow.contrib.seq2seq", "tf.contrib.seq2seq"),
        ("from tensorflow.compat.v1.contrib import cudnn_rnn", "tf.contrib.cudnn_rnn"),
        ("from tensorflow.estimator import DNNRegressor", "tf.estimator.DNNRegressor"),
        ("from tensorflow.contrib.layers import real_valued_column", None),
    ],
)
def test_removed_import_names_the_api(statement, api):
    with pytest.raises(ImportError) as caught:
        exec(statement, {})
    if api is not None:
        assert isinstance(caught.value, RemovedModuleError)
        assert str(caught.value).startswith(f"{api} was removed in TensorFlow 2; use ")


def test_optional_import_pattern_keeps_working():
    try:
        from tensorflow.contrib import rnn  # noqa: F401

        found = True
    except ImportError:
        found = False
    assert not found


def test_private_names_raise_plain_attribute_errors():
    with pytest.raises(AttributeError) as caught:
        tf.contrib.__wrapped__  # noqa: B018
    assert not isinstance(caught.value, RemovedAPIError)
