"""A wide & deep income classifier written for tf.estimator (TF 1.x / 2.x custom model_fn).

The way such code was written before Keras preprocessing layers: ``tf.feature_column`` columns,
a linear ("wide") part over sparse and crossed columns built with
``tf.compat.v1.feature_column.linear_model``, a DNN ("deep") part over dense and embedded
columns built with ``tf.compat.v1.feature_column.input_layer``, their logits added. Training is
synchronous: ``tf.compat.v1.train.SyncReplicasOptimizer`` aggregates one gradient per trainer
(chief and workers) before each update, and its ``make_session_run_hook(is_chief)`` goes in
``training_hooks``. A chief-only ``LossLogHook`` (``training_chief_hooks``) appends the global
step and loss to ``<model_dir>/loss_log.csv``.

The census-like data are generated: age, hours worked per week, education (a fixed vocabulary)
and occupation (hashed), with an income label that depends on the education x occupation
combination, so the crossed column matters.
"""

import os

import numpy as np
import tensorflow as tf

EDUCATION = ["HS-grad", "Some-college", "Bachelors", "Masters", "Doctorate"]
OCCUPATIONS = [
    "Tech-support",
    "Craft-repair",
    "Sales",
    "Exec-managerial",
    "Prof-specialty",
    "Adm-clerical",
    "Farming-fishing",
    "Machine-op-inspct",
]


def census_like(num_examples, seed):
    """Features (a dict of arrays) and a 0/1 label ``income_over_50k``."""
    rng = np.random.RandomState(seed)
    age = rng.uniform(18, 70, num_examples)
    hours = np.clip(rng.normal(40, 10, num_examples), 5, 90)
    education = rng.randint(len(EDUCATION), size=num_examples)
    occupation = rng.randint(len(OCCUPATIONS), size=num_examples)
    # Each (education, occupation) pair has its own effect; age and hours add a smooth part.
    pair_effect = np.random.RandomState(1234).normal(0, 1.5, (len(EDUCATION), len(OCCUPATIONS)))
    score = (
        pair_effect[education, occupation]
        + 0.6 * (education - 2)
        + 0.04 * (age - 40)
        + 0.05 * (hours - 40)
    )
    label = (score + rng.logistic(0, 0.3, num_examples) > 0).astype(np.int64)
    features = {
        "age": age.astype(np.float32),
        "hours_per_week": hours.astype(np.float32),
        "education": np.array(EDUCATION)[education],
        "occupation": np.array(OCCUPATIONS)[occupation],
    }
    return features, label


def input_fn(mode, params):
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    features, label = census_like(4000 if is_training else 1000, seed=0 if is_training else 1)
    dataset = tf.data.Dataset.from_tensor_slices((features, label))
    if is_training:
        dataset = dataset.shuffle(4000).repeat()
    return dataset.batch(params["batch_size"])


def build_columns(params):
    age = tf.feature_column.numeric_column("age")
    hours = tf.feature_column.numeric_column("hours_per_week")
    education = tf.feature_column.categorical_column_with_vocabulary_list("education", EDUCATION)
    occupation = tf.feature_column.categorical_column_with_hash_bucket(
        "occupation", hash_bucket_size=params["occupation_buckets"]
    )
    age_buckets = tf.feature_column.bucketized_column(age, boundaries=[25, 35, 45, 55, 65])

    wide_columns = [
        education,
        occupation,
        age_buckets,
        tf.feature_column.crossed_column(["education", "occupation"], hash_bucket_size=200),
        tf.feature_column.crossed_column([age_buckets, "education"], hash_bucket_size=100),
    ]
    deep_columns = [
        age,
        hours,
        tf.feature_column.indicator_column(education),
        tf.feature_column.embedding_column(occupation, dimension=params["embedding_dim"]),
    ]
    return wide_columns, deep_columns


def model_fn(features, labels, mode, params, config):
    wide_columns, deep_columns = build_columns(params)

    with tf.compat.v1.variable_scope("linear"):
        wide_logits = tf.compat.v1.feature_column.linear_model(features, wide_columns)
    with tf.compat.v1.variable_scope("dnn"):
        net = tf.compat.v1.feature_column.input_layer(features, deep_columns)
        net = tf.compat.v1.layers.batch_normalization(
            net, training=mode == tf.estimator.ModeKeys.TRAIN
        )
        for units in params["hidden_units"]:
            net = tf.compat.v1.layers.dense(net, units, activation=tf.nn.relu)
        deep_logits = tf.compat.v1.layers.dense(net, 1)
    logits = wide_logits + deep_logits

    probability = tf.sigmoid(logits)
    class_ids = tf.cast(probability > 0.5, tf.int64)
    predictions = {"logistic": probability, "class_ids": class_ids}
    if mode == tf.estimator.ModeKeys.PREDICT:
        scores = tf.concat([1.0 - probability, probability], axis=1)
        classes = tf.tile(tf.constant([["0", "1"]]), [tf.shape(scores)[0], 1])
        return tf.estimator.EstimatorSpec(
            mode=mode,
            predictions=predictions,
            export_outputs={
                "serving_default": tf.estimator.export.ClassificationOutput(
                    scores=scores, classes=classes
                ),
                "predict": tf.estimator.export.PredictOutput(predictions),
            },
        )

    labels = tf.reshape(tf.cast(labels, tf.float32), [-1, 1])
    loss = tf.compat.v1.losses.sigmoid_cross_entropy(multi_class_labels=labels, logits=logits)
    if mode == tf.estimator.ModeKeys.EVAL:
        return tf.estimator.EstimatorSpec(
            mode=mode,
            loss=loss,
            eval_metric_ops={
                "accuracy": tf.compat.v1.metrics.accuracy(labels, class_ids),
                "auc": tf.compat.v1.metrics.auc(labels, probability),
            },
        )

    optimizer = tf.compat.v1.train.SyncReplicasOptimizer(
        tf.compat.v1.train.AdagradOptimizer(learning_rate=params["learning_rate"]),
        replicas_to_aggregate=config.num_worker_replicas,
        total_num_replicas=config.num_worker_replicas,
    )
    update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops):
        train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
    return tf.estimator.EstimatorSpec(
        mode=mode,
        loss=loss,
        train_op=train_op,
        training_hooks=[optimizer.make_session_run_hook(config.is_chief)],
        training_chief_hooks=[
            LossLogHook(loss, os.path.join(config.model_dir, "loss_log.csv"), every_n_steps=20)
        ],
    )


class LossLogHook(tf.compat.v1.train.SessionRunHook):
    """Chief only: appends ``global_step,loss`` to a CSV file every N global steps."""

    def __init__(self, loss, path, every_n_steps):
        self._loss = loss
        self._path = path
        self._every_n_steps = every_n_steps

    def begin(self):
        self._global_step = tf.compat.v1.train.get_global_step()
        self._next_step = 0

    def before_run(self, run_context):
        return tf.compat.v1.train.SessionRunArgs([self._global_step, self._loss])

    def after_run(self, run_context, run_values):
        step, loss = run_values.results
        if step >= self._next_step:
            with tf.io.gfile.GFile(self._path, "a") as log:
                log.write(f"{step},{loss:.6f}\n")
            self._next_step = step + self._every_n_steps
