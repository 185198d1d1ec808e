"""tf.contrib.layers.optimize_loss written for TF 2.21: trains, clips, summarizes, validates."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import harness.compat  # noqa: F401
from harness.compat.optimizers import adaptive_clipping_fn, optimize_loss

v1 = tf.compat.v1


def _problem():
    w = v1.get_variable("w", initializer=tf.constant([3.0, -4.0]))
    loss = tf.reduce_sum(tf.square(w))
    return w, loss, v1.train.get_or_create_global_step()


def _run(train, fetches, steps=1):
    with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        for _ in range(steps):
            sess.run(train)
        return sess.run(fetches)


@pytest.mark.parametrize(
    "optimizer",
    ["SGD", "Adam", "Adagrad", "Ftrl", "Momentum", "RMSProp", v1.train.GradientDescentOptimizer],
)
def test_trains_and_increments_the_global_step(optimizer):
    with tf.Graph().as_default():
        w, loss, step = _problem()
        train = tf.contrib.layers.optimize_loss(loss, step, 0.1, optimizer)
        first = _run(train, loss, steps=0)
        last, steps = _run(train, [loss, step], steps=5)
    assert last < first and steps == 5


def test_optimizer_instance_and_callable():
    with tf.Graph().as_default():
        _, loss, step = _problem()
        train = optimize_loss(loss, step, None, v1.train.GradientDescentOptimizer(0.1))
        assert _run(train, step, steps=2) == 2
    with tf.Graph().as_default():
        _, loss, step = _problem()
        train = optimize_loss(loss, step, 0.1, lambda lr: v1.train.MomentumOptimizer(lr, 0.5))
        assert _run(train, step, steps=2) == 2


def test_sgd_step_is_exact_and_increment_can_be_off():
    with tf.Graph().as_default():
        w, loss, step = _problem()
        train = optimize_loss(loss, step, 0.1, "SGD", increment_global_step=False)
        value, steps = _run(train, [w, step])
    np.testing.assert_allclose(value, [3.0 - 0.6, -4.0 + 0.8], rtol=1e-6)
    assert steps == 0


def test_float_clip_clips_by_global_norm():
    with tf.Graph().as_default():
        w, loss, step = _problem()  # gradient (6, -8): norm 10
        train = optimize_loss(loss, step, 1.0, "SGD", clip_gradients=1.0)
        value = _run(train, w)
    np.testing.assert_allclose(value, [3.0 - 0.6, -4.0 + 0.8], rtol=1e-5)


def test_callable_clip_and_multipliers():
    def halve(grads_and_vars):
        return [(g * 0.5, v) for g, v in grads_and_vars]

    with tf.Graph().as_default():
        w, loss, step = _problem()
        train = optimize_loss(
            loss, step, 0.1, "SGD", clip_gradients=halve, gradient_multipliers={"w:0": 2.0}
        )
        value = _run(train, w)
    np.testing.assert_allclose(value, [3.0 - 0.6, -4.0 + 0.8], rtol=1e-6)


def test_adaptive_clipping_and_noise_build_and_run():
    with tf.Graph().as_default():
        w, loss, step = _problem()
        train = optimize_loss(
            loss,
            step,
            0.01,
            "SGD",
            clip_gradients=adaptive_clipping_fn(global_step=step, report_summary=True),
            gradient_noise_scale=0.01,
        )
        assert np.all(np.isfinite(_run(train, w, steps=3)))


def test_default_and_requested_summaries_exist():
    with tf.Graph().as_default():
        _, loss, step = _problem()
        optimize_loss(loss, step, 0.1, "SGD", clip_gradients=5.0)
        names = {s.name for s in v1.get_collection(v1.GraphKeys.SUMMARIES)}
    assert {
        "OptimizeLoss/loss:0",
        "OptimizeLoss/global_norm/gradient_norm:0",
        "OptimizeLoss/global_norm/clipped_gradient_norm:0",
    } <= names
    with tf.Graph().as_default():
        _, loss, step = _problem()
        optimize_loss(loss, step, 0.1, "SGD", summaries=["gradients", "gradient_norm"])
        names = {s.name for s in v1.get_collection(v1.GraphKeys.SUMMARIES)}
    assert "OptimizeLoss/gradients/w_0:0" in names
    assert "OptimizeLoss/gradient_norm/w_0:0" in names
    assert "OptimizeLoss/loss:0" not in names


def test_learning_rate_decay_and_update_ops():
    with tf.Graph().as_default():
        _, loss, step = _problem()
        counter = v1.get_variable("counter", initializer=0.0, trainable=False)
        v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, v1.assign_add(counter, 1.0))
        train = optimize_loss(
            loss,
            step,
            0.1,
            "SGD",
            learning_rate_decay_fn=lambda lr, gs: lr * 0.5,
            name="opt",
        )
        names = {s.op.name for s in v1.get_collection(v1.GraphKeys.SUMMARIES)}
        # The decayed rate's summary; 'opt/learning_rate' is the rate variable's name.
        assert "opt/learning_rate_1" in names
        assert _run(train, counter, steps=3) == 3.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"optimizer": "Nope"},
            "Optimizer name should be one of [Adagrad, Adam, Ftrl, Momentum, RMSProp, SGD], "
            "you provided Nope.",
        ),
        ({"learning_rate": -1.0}, "Invalid learning_rate -1.0."),
        ({"learning_rate": 1}, "Learning rate should be 0d Tensor or float."),
        ({"learning_rate": None}, "Learning rate is None, but should be specified"),
        ({"summaries": ["nope"]}, "Summaries should be one of [learning_rate, loss,"),
        ({"clip_gradients": 1}, "Unknown type <class 'int'> for clip_gradients"),
        ({"optimizer": 3}, "Unrecognized optimizer: should be string"),
        ({"optimizer": lambda lr: 3}, "function should return subclass of Optimizer"),
    ],
)
def test_errors_have_contrib_messages(kwargs, message):
    arguments = {"learning_rate": 0.1, "optimizer": "SGD", **kwargs}
    with tf.Graph().as_default():
        _, loss, step = _problem()
        with pytest.raises(ValueError) as caught:
            optimize_loss(loss, step, **arguments)
    assert message in str(caught.value)


def test_decay_needs_a_global_step():
    with tf.Graph().as_default():
        w = v1.get_variable("w", initializer=1.0)
        with pytest.raises(ValueError, match="global_step is required"):
            optimize_loss(w * w, None, 0.1, "SGD", learning_rate_decay_fn=lambda lr, gs: lr)


def test_loss_must_be_scalar():
    with tf.Graph().as_default():
        w = v1.get_variable("w", initializer=[1.0, 2.0])
        with pytest.raises(ValueError):
            optimize_loss(w * w, None, 0.1, "SGD")
