"""A small CNN written for tf.estimator (TF 2.0 to 2.15), reading sharded TFRecord files.

The way such code was written: ``import tensorflow as tf``, ``tf.compat.v1.layers`` for the
layers, a ``model_fn`` returning ``tf.estimator.EstimatorSpec`` per ``tf.estimator.ModeKeys``
mode, ``tf.compat.v1.metrics`` for evaluation, an ``input_fn(mode, params, config)`` over
``tf.data`` and a ``serving_input_receiver_fn`` for export. It runs as it is: nothing in this
file is specific to the harness.

The images (8x8, one channel) show a horizontal bar (label 0) or a vertical bar (label 1) in
noise; ``make_data.py`` writes them.
"""

import os

import tensorflow as tf

IMAGE_SIZE = 8
NUM_CLASSES = 2


def parse_example(serialized):
    parsed = tf.io.parse_single_example(
        serialized,
        {
            "image": tf.io.FixedLenFeature([IMAGE_SIZE, IMAGE_SIZE], tf.float32),
            "label": tf.io.FixedLenFeature([], tf.int64),
        },
    )
    return {"image": parsed["image"]}, parsed["label"]


def input_fn(mode, params, config):
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    pattern = "train-*.tfrecord" if is_training else "eval-*.tfrecord"
    files = sorted(tf.io.gfile.glob(os.path.join(params["data_dir"], pattern)))
    if not files:
        raise ValueError(f"no {pattern} files in {params['data_dir']}: run make_data.py first")

    dataset = tf.data.Dataset.from_tensor_slices(files)
    if is_training:
        # Each trainer reads its own files. config.task_id cannot tell them apart: the chief is
        # task 0 of job "chief" and the first worker is task 0 of job "worker", so both would
        # read shard 0. config.global_id_in_cluster numbers the chief 0 and the workers 1..N,
        # one id per trainer, and num_worker_replicas counts the chief and the workers.
        dataset = dataset.shard(config.num_worker_replicas, config.global_id_in_cluster)
        dataset = dataset.shuffle(len(files))
    dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=2)
    dataset = dataset.map(parse_example)
    if is_training:
        dataset = dataset.shuffle(1024).repeat()
    return dataset.batch(params["batch_size"])


def model_fn(features, labels, mode, params):
    images = tf.reshape(features["image"], [-1, IMAGE_SIZE, IMAGE_SIZE, 1])

    net = tf.compat.v1.layers.conv2d(images, 8, 3, padding="same", activation=tf.nn.relu)
    net = tf.compat.v1.layers.max_pooling2d(net, pool_size=2, strides=2)
    net = tf.compat.v1.layers.conv2d(net, 16, 3, padding="same", activation=tf.nn.relu)
    net = tf.compat.v1.layers.max_pooling2d(net, pool_size=2, strides=2)
    net = tf.reshape(net, [-1, (IMAGE_SIZE // 4) * (IMAGE_SIZE // 4) * 16])
    net = tf.compat.v1.layers.dense(net, 32, activation=tf.nn.relu)
    net = tf.compat.v1.layers.dropout(
        net, rate=params["dropout"], training=mode == tf.estimator.ModeKeys.TRAIN
    )
    logits = tf.compat.v1.layers.dense(net, NUM_CLASSES)

    predictions = {
        "classes": tf.argmax(logits, axis=1),
        "probabilities": tf.nn.softmax(logits, name="softmax_tensor"),
    }
    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(
            mode=mode,
            predictions=predictions,
            export_outputs={"predict": tf.estimator.export.PredictOutput(predictions)},
        )

    loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels=labels, logits=logits)
    if mode == tf.estimator.ModeKeys.TRAIN:
        optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate=params["learning_rate"])
        train_op = optimizer.minimize(loss, global_step=tf.compat.v1.train.get_global_step())
        return tf.estimator.EstimatorSpec(mode=mode, loss=loss, train_op=train_op)

    eval_metric_ops = {
        "accuracy": tf.compat.v1.metrics.accuracy(labels=labels, predictions=predictions["classes"])
    }
    return tf.estimator.EstimatorSpec(mode=mode, loss=loss, eval_metric_ops=eval_metric_ops)


def serving_input_receiver_fn():
    """Serving takes raw images: ``image``, a float32 ``[batch, 8, 8]`` tensor."""
    image = tf.compat.v1.placeholder(tf.float32, [None, IMAGE_SIZE, IMAGE_SIZE], name="image")
    return tf.estimator.export.ServingInputReceiver({"image": image}, {"image": image})
