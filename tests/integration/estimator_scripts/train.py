"""A tf.estimator-style driver script: ``python train.py MODEL_DIR [HARNESS_CONFIG]``.

Linear regression on y = 2 x + 1 through a feature column passed in params (not JSON), with
lambdas as input_fns and a FinalExporter. It prints the result as one JSON line at the end.
"""

import json
import sys

import numpy as np
import tensorflow as tf

from harness import (
    Estimator,
    EstimatorSpec,
    EvalSpec,
    FinalExporter,
    RunConfig,
    TrainSpec,
    train_and_evaluate,
)

v1 = tf.compat.v1
X = np.linspace(-1, 1, 64, dtype=np.float32).reshape(-1, 1)
Y = 2 * X + 1


def input_fn(x, y, repeat):
    dataset = tf.data.Dataset.from_tensor_slices(({"x": x}, y))
    return (dataset.repeat() if repeat else dataset).batch(16)


def model_fn(features, labels, mode, params):
    net = v1.feature_column.input_layer(features, params["feature_columns"])
    w = v1.get_variable("w", [1, 1], initializer=v1.zeros_initializer())
    b = v1.get_variable("b", [1], initializer=v1.zeros_initializer())
    y = tf.matmul(net, w) + b
    if mode == "infer":
        return EstimatorSpec(mode, predictions={"y": y})
    loss = tf.reduce_mean(tf.square(y - labels))
    step = v1.train.get_global_step()
    train_op = v1.train.GradientDescentOptimizer(params["learning_rate"]).minimize(loss, step)
    metrics = {"mae": v1.metrics.mean_absolute_error(labels, y)}
    return EstimatorSpec(mode, loss=loss, train_op=train_op, eval_metric_ops=metrics)


def serving_input_fn():
    x = v1.placeholder(tf.float32, [None, 1], name="x")
    return {"x": x}, {"x": x}


def main(model_dir, harness_config=None, model=model_fn):
    estimator = Estimator(
        model,
        model_dir=model_dir,
        config=RunConfig(save_checkpoints_steps=10),
        params={"feature_columns": [tf.feature_column.numeric_column("x")], "learning_rate": 0.2},
    )
    train_spec = TrainSpec(input_fn=lambda: input_fn(X, Y, True), max_steps=40)
    eval_spec = EvalSpec(
        input_fn=lambda: input_fn(X, Y, False),
        steps=None,
        throttle_secs=0,
        exporters=[FinalExporter("final", serving_input_fn)],
    )
    result, exports = train_and_evaluate(
        estimator, train_spec, eval_spec, harness_config=harness_config
    )
    print(json.dumps({"result": result, "exports": [e and e.decode() for e in exports]}))


if __name__ == "__main__":
    main(*sys.argv[1:])
