"""Every name tf.contrib.layers / tf.contrib.framework export is called in a TF 2.21 graph.

A recipe per exported name: a name without a recipe fails the coverage test, so nothing is
exported unchecked.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

import harness.compat  # noqa: F401

v1 = tf.compat.v1
L = tf.contrib.layers
F = tf.contrib.framework


def img(channels=3):
    return v1.random_normal([2, 8, 8, channels])


def vol():
    return v1.random_normal([2, 4, 4, 4, 3])


def vec(width=5):
    return v1.random_normal([2, width])


def var(name="w", shape=(2,)):
    return v1.get_variable(name, list(shape))


def _recompute():
    def block(x):
        return L.fully_connected(x, 3, scope="fc")

    with v1.variable_scope("rc", use_resource=True):
        y = L.recompute_grad(block)(vec())
    return tf.gradients(tf.reduce_sum(y), v1.trainable_variables())


LAYER_RECIPES = {
    "GDN": lambda: L.GDN()(img()),
    "OPTIMIZER_CLS_NAMES": lambda: L.OPTIMIZER_CLS_NAMES["SGD"](0.1).minimize(tf.reduce_sum(var())),
    "OPTIMIZER_SUMMARIES": lambda: L.optimize_loss(
        tf.reduce_sum(var()), None, 0.1, "SGD", summaries=L.OPTIMIZER_SUMMARIES
    ),
    "RevBlock": lambda: L.RevBlock(
        lambda x: L.fully_connected(x, 4), lambda x: L.fully_connected(x, 4), num_layers=1
    ).forward(vec(4), vec(4))[0],
    "adaptive_clipping_fn": lambda: L.adaptive_clipping_fn()([(tf.constant([3.0]), var())])[0][0],
    "apply_regularization": lambda: L.apply_regularization(L.l2_regularizer(0.1), [var()]),
    "avg_pool2d": lambda: L.avg_pool2d(img(), 2),
    "avg_pool3d": lambda: L.avg_pool3d(vol(), 2),
    "batch_norm": lambda: [
        L.batch_norm(img(), is_training=True),
        L.batch_norm(vec(), is_training=True, scale=True),
        L.batch_norm(img(), is_training=tf.constant(False)),
        v1.get_collection(v1.GraphKeys.UPDATE_OPS),
    ],
    "bias_add": lambda: L.bias_add(vec()),
    "bucketize": lambda: L.bucketize(tf.constant([1.0, 5.0]), [2.0, 4.0]),
    "conv1d": lambda: L.conv1d(v1.random_normal([2, 8, 3]), 4, 3),
    "conv2d": lambda: L.conv2d(img(), 4, 3),
    "conv2d_in_plane": lambda: L.conv2d_in_plane(img(), 3),
    "conv2d_transpose": lambda: L.conv2d_transpose(img(), 4, 3, stride=2),
    "conv3d": lambda: L.conv3d(vol(), 4, 3),
    "conv3d_transpose": lambda: L.conv3d_transpose(vol(), 4, 3),
    "convolution": lambda: L.convolution(img(), 4, 3),
    "convolution1d": lambda: L.convolution1d(v1.random_normal([2, 8, 3]), 4, 3),
    "convolution2d": lambda: L.convolution2d(img(), 4, 3),
    "convolution2d_in_plane": lambda: L.convolution2d_in_plane(img(), 3),
    "convolution2d_transpose": lambda: L.convolution2d_transpose(img(), 4, 3),
    "convolution3d": lambda: L.convolution3d(vol(), 4, 3),
    "convolution3d_transpose": lambda: L.convolution3d_transpose(vol(), 4, 3),
    "dense_to_sparse": lambda: L.dense_to_sparse(tf.constant([[1, 0], [0, 2]])).values,
    "dropout": lambda: [L.dropout(vec(), 0.5), L.dropout(vec(), is_training=tf.constant(True))],
    "elu": lambda: L.elu(vec(), 3),
    "embed_sequence": lambda: [
        L.embed_sequence(tf.constant([[1, 2], [3, 1]]), vocab_size=5, embed_dim=4),
        L.embed_sequence(tf.constant([[1, 1]]), vocab_size=5, embed_dim=4, unique=True),
    ],
    "flatten": lambda: L.flatten(img()),
    "fully_connected": lambda: L.fully_connected(vec(), 3),
    "gdn": lambda: L.gdn(img()),
    "group_norm": lambda: L.group_norm(img(4), groups=2),
    "images_to_sequence": lambda: L.images_to_sequence(img()),
    "instance_norm": lambda: L.instance_norm(img()),
    "l1_l2_regularizer": lambda: L.l1_l2_regularizer(0.1, 0.1)(var()),
    "l1_regularizer": lambda: L.l1_regularizer(0.1)(var()),
    "l2_regularizer": lambda: L.l2_regularizer(0.1)(var()),
    "layer_norm": lambda: L.layer_norm(vec()),
    "legacy_fully_connected": lambda: L.legacy_fully_connected(vec(), 3),
    "legacy_linear": lambda: L.legacy_linear(vec(), 3),
    "legacy_relu": lambda: L.legacy_relu(vec(), 3),
    "linear": lambda: L.linear(vec(), 3),
    "max_pool2d": lambda: L.max_pool2d(img(), 2),
    "max_pool3d": lambda: L.max_pool3d(vol(), 2),
    "maxout": lambda: L.maxout(vec(6), 3),
    "one_hot_encoding": lambda: L.one_hot_encoding(tf.constant([1, 2]), 4),
    "optimize_loss": lambda: L.optimize_loss(
        tf.reduce_sum(var()), v1.train.get_or_create_global_step(), 0.1, "Adam"
    ),
    "pool": lambda: L.pool(img(), [2, 2], "MAX"),
    "recompute_grad": _recompute,
    "relu": lambda: L.relu(vec(), 3),
    "relu6": lambda: L.relu6(vec(), 3),
    "repeat": lambda: L.repeat(img(), 2, L.conv2d, 3, [3, 3]),
    "rev_block": lambda: L.rev_block(
        vec(4),
        vec(4),
        lambda x: L.fully_connected(x, 4),
        lambda x: L.fully_connected(x, 4),
        num_layers=1,
    )[0],
    "safe_embedding_lookup_sparse": lambda: L.safe_embedding_lookup_sparse(
        var("emb", (5, 3)), tf.SparseTensor([[0, 0], [1, 0]], tf.constant([1, 3], tf.int64), [2, 1])
    ),
    "scale_gradient": lambda: L.scale_gradient(vec(), 0.5),
    "separable_conv2d": lambda: [
        L.separable_conv2d(img(), 4, 3, 1),
        L.separable_conv2d(img(), None, 3, 1),
    ],
    "separable_convolution2d": lambda: L.separable_convolution2d(img(), 4, 3, 1),
    "sequence_to_images": lambda: L.sequence_to_images(v1.random_normal([8, 4, 3]), 2),
    "softmax": lambda: L.softmax(vec()),
    "spatial_softmax": lambda: L.spatial_softmax(img()),
    "stack": lambda: L.stack(vec(), L.fully_connected, [4, 3]),
    "sum_regularizer": lambda: L.sum_regularizer([L.l1_regularizer(0.1)])(var()),
    "summarize_activation": lambda: L.summarize_activation(L.fully_connected(vec(), 3)),
    "summarize_activations": lambda: (L.fully_connected(vec(), 3), L.summarize_activations())[1],
    "summarize_biases": lambda: (L.fully_connected(vec(), 3), L.summarize_biases())[1],
    "summarize_collection": lambda: (var(), L.summarize_collection("variables"))[1],
    "summarize_tensor": lambda: L.summarize_tensor(vec()),
    "summarize_tensors": lambda: L.summarize_tensors([vec(), vec()]),
    "summarize_variables": lambda: (var(), L.summarize_variables())[1],
    "summarize_weights": lambda: (L.fully_connected(vec(), 3), L.summarize_weights())[1],
    "unit_norm": lambda: L.unit_norm(vec(), 1),
    "variance_scaling_initializer": lambda: v1.get_variable(
        "w", [2, 2], initializer=L.variance_scaling_initializer()
    ),
    "xavier_initializer": lambda: v1.get_variable("w", [2, 2], initializer=L.xavier_initializer()),
    "xavier_initializer_conv2d": lambda: v1.get_variable(
        "w", [2, 2, 2, 2], initializer=L.xavier_initializer_conv2d()
    ),
}


def _model_var():
    return F.model_variable("m", [2])


FRAMEWORK_RECIPES = {
    "VariableDeviceChooser": lambda: (
        v1.get_variable("w", [2])
        if F.VariableDeviceChooser()(v1.get_variable("d", [1]).op) == ""
        else None
    ),
    "add_arg_scope": lambda: F.add_arg_scope(lambda x=1: tf.constant(x))(),
    "add_model_variable": lambda: F.add_model_variable(var()),
    "arg_scope": lambda: _in_arg_scope(),
    "arg_scoped_arguments": lambda: tf.constant(len(F.arg_scoped_arguments(L.conv2d))),
    "argsort": lambda: F.argsort(tf.constant([3, 1, 2])),
    "assert_global_step": lambda: F.assert_global_step(F.get_or_create_global_step()),
    "assert_or_get_global_step": lambda: (
        F.create_global_step(),
        F.assert_or_get_global_step(),
    )[1],
    "assign_from_checkpoint": None,  # tests/unit/test_compat_layers.py::test_checkpoint_helpers
    "assign_from_checkpoint_fn": None,  # idem
    "assign_from_values": lambda: _assign_from_values(),
    "assign_from_values_fn": lambda: (
        _model_var(),
        F.assign_from_values_fn({"m": np.ones(2, np.float32)}),
    )[0],
    "convert_to_tensor_or_sparse_tensor": lambda: F.convert_to_tensor_or_sparse_tensor([1.0]),
    "create_global_step": lambda: F.create_global_step(),
    "current_arg_scope": lambda: tf.constant(len(F.current_arg_scope())),
    "filter_variables": lambda: F.filter_variables([var()], include_patterns=["w"])[0],
    "get_global_step": lambda: (F.create_global_step(), F.get_global_step())[1],
    "get_local_variables": lambda: (F.local_variable(1.0), F.get_local_variables())[1],
    "get_model_variables": lambda: (_model_var(), F.get_model_variables())[1],
    "get_name_scope": lambda: _name_scope(),
    "get_or_create_global_step": lambda: F.get_or_create_global_step(),
    "get_trainable_variables": lambda: (var(), F.get_trainable_variables())[1],
    "get_unique_variable": lambda: (var(), F.get_unique_variable("w"))[1],
    "get_variable_full_name": lambda: tf.constant(F.get_variable_full_name(var())),
    "get_variables": lambda: (var(), F.get_variables())[1],
    "get_variables_by_name": lambda: (var(), F.get_variables_by_name("w"))[1],
    "get_variables_by_suffix": lambda: (var(), F.get_variables_by_suffix("w"))[1],
    "get_variables_to_restore": lambda: (var(), F.get_variables_to_restore())[1],
    "global_variable": lambda: F.global_variable(1.0),
    "has_arg_scope": lambda: tf.constant(F.has_arg_scope(L.conv2d)),
    "init_from_checkpoint": None,  # idem
    "is_tensor": lambda: tf.constant(F.is_tensor(tf.constant(1))),
    "list_variables": None,  # idem
    "load_variable": None,  # idem
    "local_variable": lambda: F.local_variable(1.0),
    "model_variable": lambda: _model_var(),
    "nest": lambda: F.nest.flatten({"a": tf.constant(1)}),
    "sort": lambda: F.sort(tf.constant([3, 1, 2])),
    "variable": lambda: F.variable("v", [2]),
}


def _in_arg_scope():
    with F.arg_scope([L.conv2d], padding="VALID"):
        out = L.conv2d(img(), 3, 3)
    assert out.shape.as_list() == [2, 6, 6, 3]
    return out


def _assign_from_values():
    _model_var()
    assign_op, feed = F.assign_from_values({"m": np.ones(2, np.float32)})
    return assign_op, feed


def _name_scope():
    with tf.name_scope("outer"):
        assert F.get_name_scope() == "outer"
    return None


def _build_and_run(recipe):
    with tf.Graph().as_default():
        out = recipe()
        with v1.Session() as sess:
            sess.run([v1.global_variables_initializer(), v1.local_variables_initializer()])
            if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
                sess.run(out[0], feed_dict=out[1])
            elif out is not None:
                sess.run(out)


@pytest.mark.parametrize("name", sorted(LAYER_RECIPES))
def test_every_layers_name_works_in_a_graph(name):
    _build_and_run(LAYER_RECIPES[name])


@pytest.mark.parametrize("name", sorted(n for n, r in FRAMEWORK_RECIPES.items() if r))
def test_every_framework_name_works_in_a_graph(name):
    _build_and_run(FRAMEWORK_RECIPES[name])


def test_every_exported_name_has_a_recipe():
    assert set(L.__all__) == set(LAYER_RECIPES)
    assert set(F.__all__) == set(FRAMEWORK_RECIPES)


def test_slim_exports_the_layers_and_this_packages_optimize_loss():
    slim = tf.contrib.slim
    for name in L.__all__:
        assert getattr(slim, name) is getattr(L, name), name
    assert slim.arg_scope is F.arg_scope and slim.model_variable is F.model_variable
    import tf_slim.nets

    assert slim.nets is tf_slim.nets
    with tf.Graph().as_default():
        loss = slim.losses.softmax_cross_entropy(vec(3), tf.one_hot([1, 2], 3))
        value, update = slim.metrics.streaming_mean(loss)
        train = slim.learning.create_train_op(
            loss + tf.reduce_sum(var()), v1.train.GradientDescentOptimizer(0.1)
        )
        with v1.Session() as sess:
            sess.run([v1.global_variables_initializer(), v1.local_variables_initializer()])
            sess.run([train, update])


def test_checkpoint_helpers(tmp_path):
    path = os.path.join(tmp_path, "model.ckpt")
    with tf.Graph().as_default():
        w = F.model_variable("w", initializer=tf.constant([1.0, 2.0]))
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            v1.train.Saver().save(sess, path)
    assert ("w", [2]) in F.list_variables(path)
    np.testing.assert_array_equal(F.load_variable(path, "w"), [1.0, 2.0])
    with tf.Graph().as_default():
        w = F.model_variable("w", initializer=tf.zeros([2]))
        init_fn = F.assign_from_checkpoint_fn(path, F.get_variables_to_restore())
        op, feed = F.assign_from_checkpoint(path, F.get_model_variables())
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            init_fn(sess)
            np.testing.assert_array_equal(sess.run(w), [1.0, 2.0])
            sess.run(w.assign([0.0, 0.0]))
            sess.run(op, feed_dict=feed)
            np.testing.assert_array_equal(sess.run(w), [1.0, 2.0])
    with tf.Graph().as_default():
        w = v1.get_variable("w", initializer=tf.zeros([2]))
        F.init_from_checkpoint(path, {"w": "w"})
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            np.testing.assert_array_equal(sess.run(w), [1.0, 2.0])
