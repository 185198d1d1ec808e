"""A BERT-like model for the serving-input tests: labels travel inside the features.

input_fn returns features only: ``x`` (the model's input), ``label_ids`` and
``is_real_example``, which model_fn uses for the loss only. ``eval_fails`` (params) makes the
EVAL graph fail; ``predict_fails`` makes the INFER graph fail.
"""

from __future__ import annotations

import tensorflow as tf

from harness import EstimatorSpec, ModeKeys

v1 = tf.compat.v1


def input_fn(params):
    features = {
        "x": [[0.0], [1.0], [2.0], [3.0]],
        "label_ids": [1, 3, 5, 7],
        "is_real_example": [1.0, 1.0, 1.0, 0.0],
    }
    return tf.data.Dataset.from_tensor_slices(features).repeat().batch(2)


def model_fn(features, mode, params):
    if mode == ModeKeys.EVAL and params.get("eval_fails"):
        raise ValueError("no EVAL graph in this model")
    if mode == ModeKeys.PREDICT and params.get("predict_fails"):
        raise KeyError("probabilities")
    w = v1.get_variable("w", [1, 1], initializer=v1.zeros_initializer())
    y = tf.matmul(features["x"], w)
    if mode == ModeKeys.PREDICT:
        return EstimatorSpec(mode, predictions={"y": y})
    target = tf.cast(tf.reshape(features["label_ids"], [-1, 1]), tf.float32)
    weight = tf.reshape(features["is_real_example"], [-1, 1])
    loss = tf.reduce_mean(weight * tf.square(y - target))
    train_op = v1.train.GradientDescentOptimizer(0.01).minimize(loss, v1.train.get_global_step())
    return EstimatorSpec(mode, loss=loss, train_op=train_op)
