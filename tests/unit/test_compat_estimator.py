"""tf.estimator.RunConfig, export receivers/builders and inputs.numpy_input_fn on TF 2.21."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import harness.compat  # noqa: F401
from harness.config import RunConfig

v1 = tf.compat.v1
export = tf.estimator.export

CLUSTER = {"chief": ["h:1"], "worker": ["h:2"], "ps": ["h:3"]}


def test_run_config_is_the_harness_class_with_tfs_constructor(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert tf.estimator.RunConfig is RunConfig is tf.contrib.learn.RunConfig
    config = tf.estimator.RunConfig(model_dir="/m", tf_random_seed=3, save_checkpoints_steps=10)
    assert config.model_dir == "/m" and config.tf_random_seed == 3
    assert config.save_checkpoints_steps == 10 and config.save_checkpoints_secs is None
    assert config.is_chief and config.master == "" and config.evaluation_master == ""
    default = RunConfig()
    assert default.save_checkpoints_secs == 600 and default.save_checkpoints_steps is None
    positional = RunConfig("/p", 7)
    assert positional.model_dir == "/p" and positional.tf_random_seed == 7
    with pytest.raises(ValueError, match="cannot be both set"):
        RunConfig(save_checkpoints_steps=1, save_checkpoints_secs=1)


def test_run_config_reads_tf_config(monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": CLUSTER, "task": {"type": "worker", "index": 0}})
    )
    config = tf.estimator.RunConfig(model_dir="/m")
    assert config.task_type == "worker" and not config.is_chief
    assert config.num_ps_replicas == 1 and config.num_worker_replicas == 2
    assert config.master == "grpc://h:2"
    monkeypatch.setenv("TF_CONFIG", json.dumps({"model_dir": "/env"}))
    assert RunConfig().model_dir == "/env"
    with pytest.raises(ValueError, match="must have the same value as the model_dir"):
        RunConfig(model_dir="/other")


def test_run_config_session_config_and_replace(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    proto = v1.ConfigProto(intra_op_parallelism_threads=2)
    config = RunConfig(session_config=proto, save_checkpoints_secs=30)
    assert config.session_config is proto and config.save_checkpoints_steps is None
    replaced = config.replace(save_checkpoints_steps=5, keep_checkpoint_max=2)
    assert replaced.save_checkpoints_steps == 5 and replaced.save_checkpoints_secs is None
    assert replaced.keep_checkpoint_max == 2 and replaced.session_config is proto
    assert config.save_checkpoints_secs == 30  # the original is unchanged
    with pytest.raises(ValueError, match="nope is not supported by RunConfig.replace"):
        config.replace(nope=1)


def test_serving_input_receiver_wraps_and_checks():
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None, 2])
        receiver = export.ServingInputReceiver(x, x)
        assert receiver.features == {"feature": x} and receiver.receiver_tensors == {"input": x}
        alternatives = {"raw": x}
        receiver = export.ServingInputReceiver({"x": x}, {"x": x}, alternatives)
        assert receiver.receiver_tensors_alternatives == {"raw": {"input": x}}
        tensor_receiver = export.TensorServingInputReceiver(x, {"x": x})
        assert tensor_receiver.features is x
        cases = [
            ((None, x), "features must be defined."),
            ((x, None), "receiver_tensors must be defined."),
            (({"x": 1.0}, x), "feature x must be a Tensor, SparseTensor, or RaggedTensor."),
            ((x, {1: x}), "receiver_tensor keys must be strings: 1."),
            (({1.5: x}, x), "feature keys must be strings or ints: 1.5."),
            ((x, x, [x]), "receiver_tensors_alternatives must be a dict"),
        ]
        for arguments, message in cases:
            with pytest.raises(ValueError) as caught:
                export.ServingInputReceiver(*arguments)
            assert message in str(caught.value)


def test_parsing_and_raw_builders():
    spec = {"x": tf.io.FixedLenFeature([2], tf.float32)}
    with tf.Graph().as_default():
        receiver = export.build_parsing_serving_input_receiver_fn(spec)()
        examples = receiver.receiver_tensors["examples"]
        assert examples.op.name == "input_example_tensor" and examples.dtype == tf.string
        example = tf.train.Example(
            features=tf.train.Features(
                feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0, 2.0]))}
            )
        )
        with v1.Session() as sess:
            parsed = sess.run(receiver.features["x"], {examples: [example.SerializeToString()]})
        np.testing.assert_array_equal(parsed, [[1.0, 2.0]])
    with tf.Graph().as_default():
        feature = tf.zeros([4, 3], name="age")
        receiver = export.build_raw_serving_input_receiver_fn({"age": feature}, 8)()
        placeholder = receiver.features["age"]
        assert placeholder.op.type == "Placeholder" and placeholder.shape.as_list() == [8, 3]
        assert receiver.receiver_tensors == receiver.features


def test_export_output_classes_and_unknown_names():
    from harness.export_output import PredictOutput

    assert export.PredictOutput is PredictOutput
    assert export.ClassificationOutput and export.RegressionOutput and export.ExportOutput
    with pytest.raises(harness.compat.RemovedAPIError, match="tf.estimator.export.BestExporter"):
        export.BestExporter  # noqa: B018


def _read_all(dataset):
    with tf.Graph().as_default():
        batch = v1.data.make_one_shot_iterator(dataset()).get_next()
        out = []
        with v1.Session() as sess:
            try:
                while True:
                    out.append(sess.run(batch))
            except tf.errors.OutOfRangeError:
                return out


def test_numpy_input_fn_epochs_batches_and_shuffle():
    x = {"a": np.arange(5, dtype=np.float32)}
    y = np.arange(5, dtype=np.int64) * 10
    batches = _read_all(
        tf.estimator.inputs.numpy_input_fn(x, y, batch_size=2, num_epochs=2, shuffle=False)
    )
    assert [len(labels) for _, labels in batches] == [2, 2, 1, 2, 2, 1]
    np.testing.assert_array_equal(batches[0][0]["a"], [0.0, 1.0])
    np.testing.assert_array_equal(batches[0][1], [0, 10])
    shuffled = _read_all(
        tf.estimator.inputs.numpy_input_fn(x, y, batch_size=5, num_epochs=1, shuffle=True)
    )
    features, labels = shuffled[0]
    assert sorted(features["a"]) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(labels, features["a"].astype(np.int64) * 10)
    only_x = _read_all(tf.estimator.inputs.numpy_input_fn(np.ones([3, 2]), shuffle=False))
    assert only_x[0].shape == (3, 2)
    with pytest.raises(ValueError, match="shuffle must be provided and explicitly set"):
        tf.estimator.inputs.numpy_input_fn(x, y)
    with pytest.raises(ValueError, match="Length of tensors in x and y is mismatched"):
        tf.estimator.inputs.numpy_input_fn(x, y[:3], shuffle=False)
    with pytest.raises(ValueError, match="1 duplicate keys are found in both x and y"):
        tf.estimator.inputs.numpy_input_fn(x, {"a": y}, shuffle=False)


def test_numpy_input_fn_without_epoch_limit_repeats():
    dataset = tf.estimator.inputs.numpy_input_fn(
        {"a": np.arange(3)}, batch_size=2, num_epochs=None, shuffle=False
    )
    with tf.Graph().as_default():
        batch = v1.data.make_one_shot_iterator(dataset()).get_next()
        with v1.Session() as sess:
            seen = [list(sess.run(batch)["a"]) for _ in range(4)]
    assert seen == [[0, 1], [2], [0, 1], [2]]


class _Column:
    def __init__(self, values):
        self.values = np.asarray(values)


class _Frame:
    """The part of a pandas DataFrame pandas_input_fn reads (pandas is not installed here)."""

    def __init__(self, columns, index):
        self._columns, self.index = columns, index
        self.columns = list(columns)

    def __contains__(self, name):
        return name in self._columns

    def __getitem__(self, name):
        return _Column(self._columns[name])


def test_pandas_input_fn_reads_columns():
    x = _Frame({"a": [1.0, 2.0], "b": [3, 4]}, [0, 1])
    y = _Column([5, 6])
    y.index = [0, 1]
    batches = _read_all(tf.estimator.inputs.pandas_input_fn(x, y, batch_size=2, shuffle=False))
    features, labels = batches[0]
    np.testing.assert_array_equal(features["b"], [3, 4])
    np.testing.assert_array_equal(labels, [5, 6])
    y.index = [1, 2]
    with pytest.raises(ValueError, match="Index for x and y are mismatched"):
        tf.estimator.inputs.pandas_input_fn(x, y, shuffle=False)
