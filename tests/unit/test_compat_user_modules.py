"""Unchanged user-like model modules (TF 1.x contrib style, tf.estimator style) on TF 2.21.

Each module is written to a file and imported as users' modules are; its graph is built and
trained for a few steps in a plain ``tf.compat.v1.Session``.
"""

from __future__ import annotations

import importlib.util
import os
import textwrap

import numpy as np
import tensorflow as tf

import harness.compat  # noqa: F401
from harness.estimator_spec import EstimatorSpec
from harness.model_fn import ModelFnOps

v1 = tf.compat.v1

CONTRIB_MODULE = """
import tensorflow.compat.v1 as tf
from tensorflow.contrib import layers
import tensorflow.contrib.slim as slim


def model_fn(features, targets, mode, params):
    net = tf.contrib.layers.stack(features["x"], tf.contrib.layers.fully_connected, [8, 4])
    with slim.arg_scope([layers.fully_connected], activation_fn=None):
        logits = layers.fully_connected(net, 3)
    net = tf.contrib.layers.batch_norm(logits, is_training=True)
    loss = tf.losses.sparse_softmax_cross_entropy(targets, logits)
    global_step = tf.contrib.framework.get_or_create_global_step()
    train_op = tf.contrib.layers.optimize_loss(
        loss, global_step, learning_rate=params["lr"], optimizer="Adam", clip_gradients=5.0
    )
    hparams = tf.contrib.training.HParams(lr=params["lr"]).parse("lr=0.5")
    return tf.contrib.learn.ModelFnOps(
        mode=tf.contrib.learn.ModeKeys.TRAIN,
        predictions={"classes": tf.argmax(logits, 1), "scale": tf.constant(hparams.lr)},
        loss=loss,
        train_op=train_op,
    )
"""

ESTIMATOR_MODULE = """
import tensorflow as tf


def model_fn(features, labels, mode, params, config):
    dense = tf.compat.v1.layers.dense(features["x"], 1)
    predictions = tf.squeeze(dense, 1)
    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(
            mode,
            predictions={"y": predictions},
            export_outputs={"out": tf.estimator.export.PredictOutput({"y": predictions})},
        )
    loss = tf.compat.v1.losses.mean_squared_error(labels, predictions)
    step = tf.compat.v1.train.get_or_create_global_step()
    train_op = tf.compat.v1.train.GradientDescentOptimizer(params["lr"]).minimize(loss, step)
    hook = tf.estimator.LoggingTensorHook({"loss": loss}, every_n_iter=100)
    return tf.estimator.EstimatorSpec(
        mode, loss=loss, train_op=train_op, training_hooks=[hook],
        eval_metric_ops={"mae": tf.compat.v1.metrics.mean_absolute_error(labels, predictions)},
    )


def input_fn():
    x = [[1.0, 2.0], [2.0, 1.0], [0.0, 1.0], [1.0, 0.0]]
    y = [5.0, 4.0, 2.0, 1.0]
    return tf.estimator.inputs.numpy_input_fn(
        {"x": __import__("numpy").array(x, "float32")}, __import__("numpy").array(y, "float32"),
        batch_size=4, num_epochs=None, shuffle=False)()


def serving_input_fn():
    x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
    return tf.estimator.export.ServingInputReceiver({"x": x}, {"x": x})
"""


def load(tmp_path, name, source):
    path = os.path.join(tmp_path, f"{name}.py")
    with open(path, "w") as handle:
        handle.write(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(loss, train_op, steps):
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        first = sess.run(loss)
        for _ in range(steps):
            sess.run(train_op)
        return first, sess.run(loss)


def test_contrib_style_module_builds_and_trains(tmp_path):
    module = load(tmp_path, "contrib_user_model", CONTRIB_MODULE)
    with tf.Graph().as_default():
        v1.set_random_seed(0)
        x = tf.constant(np.random.RandomState(0).randn(16, 4).astype(np.float32))
        y = tf.constant(np.arange(16) % 3)
        ops = module.model_fn({"x": x}, y, "train", {"lr": 0.05})
        assert isinstance(ops, ModelFnOps)
        first, last = train(ops.loss, ops.train_op, steps=30)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            assert sess.run(ops.predictions["scale"]) == 0.5
    assert last < first


def test_estimator_style_module_builds_trains_and_evaluates(tmp_path):
    module = load(tmp_path, "estimator_user_model", ESTIMATOR_MODULE)
    with tf.Graph().as_default():
        features, labels = v1.data.make_one_shot_iterator(module.input_fn()).get_next()
        spec = module.model_fn(features, labels, "train", {"lr": 0.05}, None)
        assert isinstance(spec, EstimatorSpec)
        first, last = train(spec.loss, spec.train_op, steps=30)
    assert last < first
    with tf.Graph().as_default():
        features, labels = v1.data.make_one_shot_iterator(module.input_fn()).get_next()
        spec = module.model_fn(features, labels, "eval", {"lr": 0.05}, None)
        assert set(spec.eval_metric_ops) == {"mae"}


def test_serving_input_receiver_exports_through_the_harness(tmp_path):
    from harness.export.saved_model import export_saved_model
    from harness.job import JobSpec

    load(tmp_path, "export_user_model", ESTIMATOR_MODULE)
    model_dir = os.path.join(tmp_path, "model")
    with tf.Graph().as_default():
        module = load(tmp_path, "export_user_model", ESTIMATOR_MODULE)
        features, labels = v1.data.make_one_shot_iterator(module.input_fn()).get_next()
        spec = module.model_fn(features, labels, "train", {"lr": 0.05}, None)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(spec.train_op)
            v1.train.Saver().save(sess, os.path.join(model_dir, "model.ckpt"), global_step=1)
    job = JobSpec.from_dict(
        {
            "name": "compat-export",
            "model_fn": "export_user_model:model_fn",
            "input_fn": "export_user_model:input_fn",
            "serving_input_fn": "export_user_model:serving_input_fn",
            "params": {"lr": 0.05},
            "model_dir": model_dir,
            "train": {"max_steps": 1},
            "source_dirs": [str(tmp_path)],
        }
    )
    export_dir = export_saved_model(job, os.path.join(tmp_path, "export"))
    loaded = tf.saved_model.load(export_dir)
    assert {"serving_default", "out"} <= set(loaded.signatures)
    result = loaded.signatures["serving_default"](x=tf.constant([[1.0, 2.0]]))
    assert result["y"].shape == (1,)
