"""Writes the CNN example's data: 8x8 grey images of a horizontal or a vertical bar, as TFRecords.

    python examples/estimator_cnn/make_data.py /tmp/harness-cnn-data [--shards 4] [--per-shard 256]

Writes ``train-0000-of-0004.tfrecord`` ... (``--shards`` files of ``--per-shard`` examples each)
and one ``eval-0000-of-0001.tfrecord``. Each record is a ``tf.train.Example`` with
``image``: 64 floats (row-major 8x8) and ``label``: 0 for a horizontal bar, 1 for a vertical one.
The bar sits at a random row or column, and every pixel gets Gaussian noise.
"""

import argparse
import os

import numpy as np
import tensorflow as tf

SIZE = 8


def make_image(label, rng, noise):
    image = rng.normal(0.0, noise, size=(SIZE, SIZE))
    position = rng.randint(SIZE)
    if label == 0:
        image[position, :] += 1.0
    else:
        image[:, position] += 1.0
    return image.astype(np.float32)


def to_example(image, label):
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": tf.train.Feature(float_list=tf.train.FloatList(value=image.ravel())),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
        )
    )


def write_shards(data_dir, prefix, num_shards, per_shard, rng, noise):
    paths = []
    for shard in range(num_shards):
        path = os.path.join(data_dir, f"{prefix}-{shard:04d}-of-{num_shards:04d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(per_shard):
                label = i % 2
                writer.write(to_example(make_image(label, rng, noise), label).SerializeToString())
        paths.append(path)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--per-shard", type=int, default=256)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tf.io.gfile.makedirs(args.data_dir)
    rng = np.random.RandomState(args.seed)
    train = write_shards(args.data_dir, "train", args.shards, args.per_shard, rng, args.noise)
    held_out = write_shards(args.data_dir, "eval", 1, args.per_shard, rng, args.noise)
    print(f"wrote {len(train)} train shards and {len(held_out)} eval shard to {args.data_dir}")


if __name__ == "__main__":
    main()
