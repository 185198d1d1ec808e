"""tf.contrib.tpu.TPUEstimatorSpec converts to an EstimatorSpec as TF's CPU path did."""

from __future__ import annotations

import pytest
import tensorflow as tf

import harness.compat
from harness.compat.tpu import CrossShardOptimizer, TPUEstimatorSpec, to_estimator_spec
from harness.estimator_spec import EstimatorSpec

v1 = tf.compat.v1


def _graph_parts():
    w = v1.get_variable("w", initializer=2.0)
    loss = tf.square(w)
    step = v1.train.get_or_create_global_step()
    train_op = v1.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=step)
    return w, loss, train_op


def test_train_spec_with_scaffold_fn():
    with tf.Graph().as_default():
        _, loss, train_op = _graph_parts()
        scaffold = v1.train.Scaffold()
        calls = []

        def scaffold_fn():
            calls.append(1)
            return scaffold

        spec = tf.contrib.tpu.TPUEstimatorSpec(
            mode="train", loss=loss, train_op=train_op, scaffold_fn=scaffold_fn
        )
        converted = harness.compat.to_estimator_spec(spec)
    assert isinstance(converted, EstimatorSpec) and converted.scaffold is scaffold
    assert calls == [1] and converted.loss is loss and converted.train_op is train_op


@pytest.mark.parametrize("as_dict", [False, True])
def test_eval_metrics_become_eval_metric_ops(as_dict):
    with tf.Graph().as_default():
        w, loss, _ = _graph_parts()
        labels = tf.constant([1.0, 2.0])
        predictions = tf.constant([1.0, 3.0])

        def metric_fn(labels, predictions):
            return {"mae": v1.metrics.mean_absolute_error(labels, predictions)}

        tensors = (
            {"labels": labels, "predictions": predictions} if as_dict else [labels, predictions]
        )
        spec = TPUEstimatorSpec(mode="eval", loss=loss, eval_metrics=(metric_fn, tensors))
        converted = spec.as_estimator_spec()
        value, update = converted.eval_metric_ops["mae"]
        with v1.Session() as sess:
            sess.run([v1.global_variables_initializer(), v1.local_variables_initializer()])
            sess.run(update)
            assert sess.run(value) == pytest.approx(0.5)


def test_host_call_runs_every_step_as_a_hook():
    with tf.Graph().as_default():
        _, loss, train_op = _graph_parts()
        counter = v1.get_variable("calls", initializer=0, trainable=False)

        def host_fn(step):
            return v1.assign_add(counter, 1)

        step = v1.train.get_global_step()
        spec = TPUEstimatorSpec(
            mode="train",
            loss=loss,
            train_op=train_op,
            host_call=(host_fn, [tf.reshape(step, [1])]),
        )
        converted = spec.as_estimator_spec()
        assert len(converted.training_hooks) == 1
        with v1.train.MonitoredSession(hooks=list(converted.training_hooks)) as sess:
            for _ in range(3):
                sess.run(converted.train_op)
            assert sess.run(counter) == 3


@pytest.mark.parametrize(
    ("eval_metrics", "error", "message"),
    [
        ("x", ValueError, "eval_metrics should be tuple or list"),
        ((len,), ValueError, "eval_metrics should have two elements."),
        ((1, []), TypeError, "eval_metrics[0] should be callable."),
        ((len, 3), ValueError, "eval_metrics[1] should be tuple or list, or dict."),
        (
            (lambda a, b, c: {}, [1, 2]),
            RuntimeError,
            "In TPUEstimatorSpec.eval_metrics, length of tensors 2 does not match method args "
            "of the function, which takes 3.",
        ),
    ],
)
def test_validation_messages(eval_metrics, error, message):
    with pytest.raises(error) as caught:
        TPUEstimatorSpec(mode="eval", eval_metrics=eval_metrics)
    assert str(caught.value) == message


def test_hooks_must_be_session_run_hooks():
    with pytest.raises(TypeError, match="All hooks must be SessionRunHook instances, given: 3"):
        TPUEstimatorSpec(mode="train", training_hooks=[3])


def test_other_results_pass_through_and_cross_shard_is_the_optimizer():
    marker = object()
    assert to_estimator_spec(marker) is marker
    opt = v1.train.AdamOptimizer(0.1)
    assert tf.contrib.tpu.CrossShardOptimizer(opt) is opt
    assert CrossShardOptimizer(opt, reduction="sum") is opt


def test_a_model_fn_returning_a_tpu_spec_is_called_and_converted_by_the_harness():
    from harness.calling import call_model_fn

    def bert_style_model_fn(features, labels, mode, params):
        _, loss, train_op = _graph_parts()
        return tf.contrib.tpu.TPUEstimatorSpec(mode=mode, loss=loss, train_op=train_op)

    with tf.Graph().as_default():
        spec = call_model_fn(bert_style_model_fn, {"x": tf.ones([1])}, None, "train", {}, None)
    assert isinstance(spec, EstimatorSpec) and spec.mode == "train"
