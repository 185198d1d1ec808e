"""An iris classifier written for tf.contrib.learn (TF 1.x, about TF 1.3 to 1.14).

This is what such a program looked like: a ``model_fn(features, targets, mode, params)`` that
returns ``tf.contrib.learn.ModelFnOps``, layers from ``tf.contrib.layers`` and ``tf.layers``,
``optimize_loss`` with a global step from ``tf.contrib.framework``, and an
``output_alternatives`` entry of problem type CLASSIFICATION for serving. The only line that
differs from TF 1.x is the import, ``import tensorflow.compat.v1 as tf``.

The data are iris-like: four measurements per flower drawn around the per-species means of
Fisher's iris set, three species. They are generated, not downloaded.
"""

import numpy as np
import tensorflow.compat.v1 as tf

SPECIES = ["setosa", "versicolor", "virginica"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

# Per-species means and standard deviations of the four measurements (cm).
MEANS = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
STDDEVS = np.array([[0.35, 0.38, 0.17, 0.10], [0.52, 0.31, 0.47, 0.20], [0.64, 0.32, 0.55, 0.27]])


def iris_like(num_examples, seed):
    """``(x [num_examples, 4] float32, y [num_examples] int64)``, classes in equal numbers."""
    rng = np.random.RandomState(seed)
    y = np.arange(num_examples) % len(SPECIES)
    x = MEANS[y] + STDDEVS[y] * rng.randn(num_examples, len(FEATURES))
    return x.astype(np.float32), y.astype(np.int64)


def train_input_fn():
    x, y = iris_like(1200, seed=0)
    dataset = tf.data.Dataset.from_tensor_slices(({"x": x}, y))
    dataset = dataset.shuffle(1200, seed=0).repeat().batch(32)
    return dataset.make_one_shot_iterator().get_next()


def eval_input_fn():
    """One pass over 300 held-out flowers."""
    x, y = iris_like(300, seed=1)
    dataset = tf.data.Dataset.from_tensor_slices(({"x": x}, y)).batch(100)
    return dataset.make_one_shot_iterator().get_next()


def model_fn(features, targets, mode, params):
    is_training = mode == tf.contrib.learn.ModeKeys.TRAIN

    net = tf.contrib.layers.stack(
        features["x"],
        tf.contrib.layers.fully_connected,
        params["hidden_units"],
        activation_fn=tf.nn.relu,
        scope="hidden",
    )
    net = tf.layers.dropout(net, rate=params["dropout"], training=is_training)
    logits = tf.layers.dense(net, len(SPECIES), name="logits")

    probabilities = tf.nn.softmax(logits, name="probabilities")
    class_ids = tf.argmax(logits, 1, name="class_ids")
    predictions = {"class_ids": class_ids, "probabilities": probabilities}

    # TF Serving's Classify API wants class names as strings, one row per example.
    class_names = tf.tile(tf.constant([SPECIES]), [tf.shape(logits)[0], 1])
    output_alternatives = {
        "species": (
            tf.contrib.learn.ProblemType.CLASSIFICATION,
            {"classes": class_names, "probabilities": probabilities},
        )
    }

    if mode == tf.contrib.learn.ModeKeys.INFER:
        return tf.contrib.learn.ModelFnOps(
            mode=mode, predictions=predictions, output_alternatives=output_alternatives
        )

    loss = tf.losses.sparse_softmax_cross_entropy(labels=targets, logits=logits)
    train_op = tf.contrib.layers.optimize_loss(
        loss=loss,
        global_step=tf.contrib.framework.get_or_create_global_step(),
        learning_rate=params["learning_rate"],
        optimizer="Adagrad",
    )
    eval_metric_ops = {
        "accuracy": tf.metrics.accuracy(labels=targets, predictions=class_ids),
    }
    return tf.contrib.learn.ModelFnOps(
        mode=mode,
        predictions=predictions,
        loss=loss,
        train_op=train_op,
        eval_metric_ops=eval_metric_ops,
        output_alternatives=output_alternatives,
    )
