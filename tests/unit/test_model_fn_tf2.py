"""The model_fn contract for the code TF 2.x produces, and contrib's calling convention.

contrib positional calling (`target`, `targets`, `x, y`, `model_dir`), Variable train_ops from a
real SyncReplicasOptimizer, Keras metric objects (converted and evaluated), the default
'serving_default' export output in PREDICT mode, and `call_logit_fn`.
"""

import logging
import threading

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import harness
from harness.calling import call_logit_fn, call_model_fn
from harness.config import RunConfig
from harness.estimator_spec import EstimatorSpec
from harness.export_output import DEFAULT_SERVING_SIGNATURE_DEF_KEY, PredictOutput, RegressionOutput
from harness.model_fn import ModeKeys, ModelFnOps

v1 = tf.compat.v1
TRAIN, EVAL, INFER = ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.INFER
PARAMS = {"learning_rate": 0.1}


@pytest.fixture
def graph():
    with tf.Graph().as_default() as g:
        yield g


def _ops(mode=INFER):
    return ModelFnOps(mode, predictions={"y": tf.constant([1.0])})


# --- contrib's calling convention ----------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    ["features, target", "features, targets", "x, y", "inputs, labels_tensor", "features, y"],
)
def test_contrib_model_fn_gets_features_and_labels_by_position(graph, signature):
    received = []
    namespace = {"received": received, "result": _ops()}
    exec(
        f"def model_fn({signature}):\n    received.extend(locals().values())\n    return result\n",
        namespace,
    )
    call_model_fn(namespace["model_fn"], "features", "labels", INFER, None, None)
    assert received == ["features", "labels"]


def test_contrib_model_fn_gets_mode_params_config_and_model_dir_by_name(graph, tmp_path):
    received = {}
    config = RunConfig(model_dir=str(tmp_path))

    def model_fn(x, y, params, model_dir, config, mode):
        received.update(x=x, y=y, mode=mode, params=params, config=config, model_dir=model_dir)
        return _ops()

    call_model_fn(model_fn, "features", "labels", EVAL, PARAMS, config)
    assert received == dict(
        x="features",
        y="labels",
        mode=EVAL,
        params=PARAMS,
        config=config,
        model_dir=str(tmp_path),
    )


def test_model_dir_makes_a_features_labels_model_fn_use_the_contrib_convention(graph):
    received = {}
    config = RunConfig(model_dir="/tmp/the-model-dir")

    def model_fn(features, labels, mode, model_dir):
        received.update(features=features, labels=labels, mode=mode, model_dir=model_dir)
        return _ops()

    call_model_fn(model_fn, "features", None, INFER, None, config)
    assert received == dict(
        features="features", labels=None, mode=INFER, model_dir="/tmp/the-model-dir"
    )


def test_contrib_legacy_three_tuple_is_wrapped(graph):
    def model_fn(features, targets, mode):
        predictions = tf.constant([1.0])
        return predictions, tf.constant(2.0), tf.no_op()

    ops = call_model_fn(model_fn, tf.constant([1.0]), tf.constant([0.0]), TRAIN, None, None)
    assert isinstance(ops, ModelFnOps) and ops.mode == TRAIN
    assert isinstance(ops.train_op, tf.Operation)


def test_contrib_params_not_declared_but_given_is_contribs_error(graph):
    calls = []

    def model_fn(features, targets):
        calls.append(1)
        return _ops()

    with pytest.raises(ValueError) as exc:
        call_model_fn(model_fn, "features", "labels", INFER, PARAMS, None)
    assert str(exc.value) == (
        f"Estimator's model_fn ({model_fn}) does not have a params argument, but params "
        f"({PARAMS}) were passed to the Estimator's constructor."
    )
    assert calls == []


def test_contrib_declared_params_without_params_get_none_and_a_warning(graph, caplog):
    received = {}

    def model_fn(x, y, params):
        received["params"] = params
        return _ops()

    with caplog.at_level(logging.WARNING, logger="harness"):
        call_model_fn(model_fn, "features", "labels", INFER, None, None)
    assert received == {"params": None}
    assert "includes params argument, but params are not passed" in caplog.text


def test_single_positional_parameter_gets_features_only(graph):
    received = []

    def model_fn(inputs):
        received.append(inputs)
        return _ops()

    call_model_fn(model_fn, "features", None, INFER, None, None)
    assert received == ["features"]


def test_features_only_contrib_model_fn_with_mode_by_name(graph):
    received = {}

    def model_fn(inputs, mode):
        received.update(inputs=inputs, mode=mode)
        return _ops()

    call_model_fn(model_fn, "features", None, EVAL, None, None)
    assert received == {"inputs": "features", "mode": EVAL}


@pytest.mark.parametrize("signature", ["inputs", "inputs, mode", "inputs, config"])
def test_features_only_contrib_model_fn_rejects_labels(graph, signature):
    calls = []
    namespace = {"calls": calls, "result": _ops()}
    exec(f"def model_fn({signature}):\n    calls.append(1)\n    return result\n", namespace)
    with pytest.raises(ValueError) as exc:
        call_model_fn(namespace["model_fn"], "features", "labels", INFER, None, None)
    assert str(exc.value) == "model_fn does not take labels, but input_fn returns labels."
    assert calls == []


@pytest.mark.parametrize("signature", ["mode, x", "labels, x", "model_dir", "*, x"])
def test_contrib_model_fn_needs_a_features_slot(graph, signature):
    namespace = {"result": _ops()}
    exec(f"def model_fn({signature}):\n    return result\n", namespace)
    model_fn = namespace["model_fn"]
    with pytest.raises(ValueError) as exc:
        call_model_fn(model_fn, "features", None, INFER, None, None)
    assert str(exc.value) == f"model_fn ({model_fn}) must include features argument."


def test_features_only_contrib_model_fn_gets_keyword_only_labels_by_name(graph):
    received = {}

    def model_fn(inputs, *, labels, model_dir):
        received.update(inputs=inputs, labels=labels, model_dir=model_dir)
        return _ops()

    call_model_fn(model_fn, "features", "labels", INFER, None, RunConfig(model_dir="/m"))
    assert received == {"inputs": "features", "labels": "labels", "model_dir": "/m"}


def test_contrib_required_arguments_that_cannot_be_filled_are_named(graph):
    calls = []

    def model_fn(x, y, hidden_units, mode, *, dropout, batch_size=32):
        calls.append(1)
        return _ops()

    with pytest.raises(ValueError) as exc:
        call_model_fn(model_fn, "features", "labels", INFER, None, None)
    assert str(exc.value) == (
        f"model_fn ({model_fn}) has following not expected args: ['hidden_units', 'dropout']"
    )
    assert calls == []


def test_contrib_optional_unknown_arguments_keep_their_defaults(graph):
    received = {}

    def model_fn(x, y, hidden_units=(10, 10)):
        received.update(x=x, y=y, hidden_units=hidden_units)
        return _ops()

    call_model_fn(model_fn, "features", "labels", INFER, None, None)
    assert received == {"x": "features", "y": "labels", "hidden_units": (10, 10)}


def test_var_positional_wrapper_gets_features_and_labels_by_position(graph):
    received = []

    def model_fn(*args, **kwargs):
        received.append((args, kwargs))
        return _ops()

    call_model_fn(model_fn, "features", "labels", INFER, None, None)
    assert received == [(("features", "labels"), {})]


def test_core_convention_still_matches_by_name(graph):
    received = {}

    def model_fn(mode, labels, features):
        received.update(features=features, labels=labels, mode=mode)
        return _ops()

    call_model_fn(model_fn, "features", "labels", INFER, None, None)
    assert received == {"features": "features", "labels": "labels", "mode": INFER}


# --- Variables as train_op / loss: a real SyncReplicasOptimizer ----------------------------------


def _sync_replicas_graph():
    """A one-replica SyncReplicasOptimizer minimizing (w - 3)^2; returns its pieces."""
    global_step = v1.train.get_or_create_global_step()
    weight = v1.get_variable("w", initializer=1.0, use_resource=True)
    loss = tf.square(weight - 3.0)
    optimizer = v1.train.SyncReplicasOptimizer(
        v1.train.GradientDescentOptimizer(0.1), replicas_to_aggregate=1, total_num_replicas=1
    )
    train_op = optimizer.minimize(loss, global_step=global_step)
    return global_step, weight, loss, optimizer, train_op


def _run_sync_steps(optimizer, train_op, fetches, steps=4):
    """Runs `train_op` in a plain Session as the chief would; returns `fetches` after it."""
    init_tokens = optimizer.get_init_tokens_op()
    queue_runner = optimizer.get_chief_queue_runner()
    with v1.Session() as session:
        session.run([v1.global_variables_initializer(), v1.local_variables_initializer()])
        session.run(optimizer.chief_init_op)
        session.run(init_tokens)
        coordinator = tf.train.Coordinator()
        threads = queue_runner.create_threads(session, coord=coordinator, daemon=True, start=True)
        for _ in range(steps):
            session.run(train_op)
        values = session.run(fetches)
        coordinator.request_stop()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(
        thread.is_alive() for thread in threads if thread is not threading.current_thread()
    )
    return values


def test_sync_replicas_minimize_returns_a_variable(graph):
    *_, train_op = _sync_replicas_graph()
    assert isinstance(train_op, tf.Variable) and not isinstance(train_op, tf.Tensor)


def test_estimator_spec_variable_train_op_becomes_the_assign_op_that_trains(graph):
    global_step, weight, loss, optimizer, train_op = _sync_replicas_graph()
    spec = EstimatorSpec(TRAIN, loss=loss, train_op=train_op)
    assert isinstance(spec.train_op, tf.Operation)
    assert spec.train_op is train_op.op and spec.train_op.type == "AssignVariableOp"
    step, w = _run_sync_steps(optimizer, spec.train_op, [global_step, weight])
    assert step >= 3  # The first token is stale and is dropped, as SyncReplicas does.
    assert 1.0 < w < 3.0


def test_model_fn_ops_variable_train_op_is_a_read_after_the_assign_that_trains(graph):
    global_step, weight, loss, optimizer, train_op = _sync_replicas_graph()
    ops = ModelFnOps(TRAIN, predictions={"w": weight.read_value()}, loss=loss, train_op=train_op)
    assert isinstance(ops.train_op, tf.Operation)
    assert ops.train_op.type == "ReadVariableOp"
    assert train_op.op in ops.train_op.control_inputs
    step, w = _run_sync_steps(optimizer, ops.train_op, [global_step, weight])
    assert step >= 3 and 1.0 < w < 3.0
    assert ops.estimator_spec().train_op is ops.train_op


def test_variable_train_op_from_another_graph_is_rejected(graph):
    with tf.Graph().as_default():
        other = v1.Variable(1.0, use_resource=True)
    with pytest.raises(ValueError, match="^train_op with .* must be from the default graph"):
        EstimatorSpec(TRAIN, loss=tf.constant(1.0), train_op=other)


def test_variable_loss_is_read_and_reshaped(graph):
    variable = v1.Variable([2.0], use_resource=True)
    spec = EstimatorSpec(TRAIN, loss=variable, train_op=tf.no_op())
    assert isinstance(spec.loss, tf.Tensor) and spec.loss.shape == []
    with v1.Session() as session:
        session.run(variable.initializer)
        assert session.run(spec.loss) == 2.0


def test_non_scalar_variable_loss_is_rejected(graph):
    variable = v1.Variable([1.0, 2.0], use_resource=True)
    with pytest.raises(ValueError, match="^Loss must be scalar, given: "):
        EstimatorSpec(TRAIN, loss=variable, train_op=tf.no_op())


def test_non_tensor_train_op_is_still_rejected(graph):
    with pytest.raises(TypeError, match="^train_op must be Operation or Tensor, given: nope"):
        EstimatorSpec(TRAIN, loss=tf.constant(1.0), train_op="nope")


# --- Keras metric objects in eval_metric_ops -----------------------------------------------------


def _in_collection(name, variables):
    members = v1.get_collection(name)
    return all(any(v is m for m in members) for v in variables)


def test_keras_metric_is_converted_and_its_variables_collected(graph):
    metric = tf_keras.metrics.Mean()
    update = metric.update_state(tf.constant([1.0, 3.0]))
    assert not _in_collection(v1.GraphKeys.LOCAL_VARIABLES, metric.variables)
    metrics = {"mean": metric}
    spec = EstimatorSpec(EVAL, loss=tf.constant(1.0), eval_metric_ops=metrics)
    value, update_op = spec.eval_metric_ops["mean"]
    assert isinstance(value, tf.Tensor)
    assert update_op is metric.updates[0] and update_op is update
    assert spec.eval_metric_ops is metrics  # Converted in place, as tensorflow_estimator did.
    for collection in (v1.GraphKeys.LOCAL_VARIABLES, v1.GraphKeys.METRIC_VARIABLES):
        assert _in_collection(collection, metric.variables)
        assert len(v1.get_collection(collection)) == len(metric.variables)


def test_keras_metric_values_are_computed_through_the_scaffold_local_init(graph):
    labels = tf.constant([1.0, 2.0, 6.0])
    mean = tf_keras.metrics.Mean()
    mean.update_state(labels)
    accuracy = tf.keras.metrics.BinaryAccuracy()  # tf.keras is tf_keras here.
    accuracy.update_state(tf.constant([1.0, 0.0, 1.0]), tf.constant([0.9, 0.2, 0.1]))
    spec = EstimatorSpec(
        EVAL, loss=tf.constant(1.0), eval_metric_ops={"mean": mean, "accuracy": accuracy}
    )
    spec.scaffold.finalize()
    with v1.Session() as session:
        session.run(spec.scaffold.local_init_op)
        for _ in range(2):
            session.run([update for _, update in spec.eval_metric_ops.values()])
        values = session.run({key: value for key, (value, _) in spec.eval_metric_ops.items()})
    assert values["mean"] == pytest.approx(3.0)
    assert values["accuracy"] == pytest.approx(2 / 3)


def test_keras_metric_without_updates_is_rejected(graph):
    metric = tf_keras.metrics.Mean(name="my_mean")
    with pytest.raises(ValueError) as exc:
        EstimatorSpec(EVAL, loss=tf.constant(1.0), eval_metric_ops={"m": metric})
    assert str(exc.value) == 'Please call update_state(...) on the "my_mean" metric'


def test_keras_metric_from_another_graph_is_rejected(graph):
    with tf.Graph().as_default():
        metric = tf_keras.metrics.Mean()
        metric.update_state(tf.constant(1.0))
    with pytest.raises(ValueError, match='^eval_metric_ops with "m: .*must be from the default'):
        EstimatorSpec(EVAL, loss=tf.constant(1.0), eval_metric_ops={"m": metric})


def test_keras_metric_updated_twice_groups_its_updates(graph):
    metric = tf_keras.metrics.Sum()
    metric.update_state(tf.constant(1.0))
    metric.update_state(tf.constant(2.0))
    spec = EstimatorSpec(EVAL, loss=tf.constant(1.0), eval_metric_ops={"sum": metric})
    spec.scaffold.finalize()
    value, update = spec.eval_metric_ops["sum"]
    with v1.Session() as session:
        session.run(spec.scaffold.local_init_op)
        session.run(update)
        assert session.run(value) == 3.0


def test_model_fn_ops_converts_keras_metrics_too(graph):
    metric = tf_keras.metrics.Mean()
    metric.update_state(tf.constant([4.0]))
    ops = ModelFnOps(
        EVAL,
        predictions={"y": tf.constant([1.0])},
        loss=tf.constant(1.0),
        eval_metric_ops={"m": metric},
    )
    value, update = ops.eval_metric_ops["m"]
    assert isinstance(value, tf.Tensor) and update is metric.updates[0]
    assert _in_collection(v1.GraphKeys.LOCAL_VARIABLES, metric.variables)
    assert ops.estimator_spec().eval_metric_ops["m"] == (value, update)


def test_model_fn_ops_keras_metric_without_updates_is_rejected(graph):
    metric = tf_keras.metrics.Mean(name="nothing")
    with pytest.raises(ValueError, match=r'^Please call update_state\(\.\.\.\) on the "nothing"'):
        ModelFnOps(
            EVAL,
            predictions={"y": tf.constant([1.0])},
            loss=tf.constant(1.0),
            eval_metric_ops={"m": metric},
        )


def _keras_metric_model_fn(features, labels, mode):
    weight = v1.get_variable("weight", initializer=2.0)
    predictions = weight * features
    loss = tf.reduce_mean(tf.square(predictions - labels))
    error = tf_keras.metrics.MeanAbsoluteError()
    error.update_state(labels, predictions)
    mean_label = tf_keras.metrics.Mean()
    mean_label.update_state(labels)
    train_op = v1.assign_add(v1.train.get_global_step(), 1) if mode == TRAIN else None
    return EstimatorSpec(
        mode,
        predictions={"y": predictions},
        loss=loss,
        train_op=train_op,
        eval_metric_ops={"mae": error, "label_mean": mean_label},
    )


def _keras_metric_input_fn():
    features = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    labels = np.array([2.0, 5.0, 6.0, 9.0], np.float32)  # 2x, off by 0, 1, 0, 1.
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(2)


def test_keras_metrics_evaluate_a_checkpoint_end_to_end(tmp_path):
    from harness.job import JobSpec
    from harness.runtime.evaluation import evaluate_checkpoint
    from harness.testing import make_job_dict

    module = "tests.unit.test_model_fn_tf2"
    job = JobSpec.from_dict(
        make_job_dict(
            f"{module}:_keras_metric_model_fn",
            f"{module}:_keras_metric_input_fn",
            tmp_path,
            eval={"steps": None},
        )
    )
    with tf.Graph().as_default():
        global_step = v1.train.get_or_create_global_step()
        v1.get_variable("weight", initializer=2.0)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            session.run(v1.assign(global_step, 7))
            path = v1.train.Saver().save(session, str(tmp_path / "model.ckpt"), global_step=7)
    results = evaluate_checkpoint(
        job, path, model_fn=_keras_metric_model_fn, input_fn=_keras_metric_input_fn
    )
    assert results["global_step"] == 7
    assert results["mae"] == pytest.approx(0.5)
    assert results["label_mean"] == pytest.approx(5.5)
    assert results["loss"] == pytest.approx(0.5)


# --- the default serving output in PREDICT mode -------------------------------------------------


@pytest.mark.parametrize("make", [lambda: tf.constant([1.0]), lambda: {"a": tf.constant(1.0)}])
def test_predict_spec_without_export_outputs_gets_a_default_predict_output(graph, make):
    predictions = make()
    spec = EstimatorSpec(INFER, predictions=predictions)
    assert list(spec.export_outputs) == [DEFAULT_SERVING_SIGNATURE_DEF_KEY]
    output = spec.export_outputs[DEFAULT_SERVING_SIGNATURE_DEF_KEY]
    assert isinstance(output, PredictOutput)
    assert output.outputs == PredictOutput(predictions).outputs


@pytest.mark.parametrize("mode", [TRAIN, EVAL])
def test_no_default_export_output_outside_predict(graph, mode):
    spec = EstimatorSpec(mode, loss=tf.constant(1.0), train_op=tf.no_op())
    assert spec.export_outputs is None


def test_given_export_outputs_replace_the_default(graph):
    output = RegressionOutput(tf.constant([1.0]))
    spec = EstimatorSpec(INFER, predictions=tf.constant([1.0]), export_outputs={"r": output})
    assert spec.export_outputs == {"r": output, DEFAULT_SERVING_SIGNATURE_DEF_KEY: output}


def test_export_outputs_are_still_validated_in_train(graph):
    with pytest.raises(TypeError, match="^export_outputs must be dict, given: "):
        EstimatorSpec(TRAIN, loss=tf.constant(1.0), train_op=tf.no_op(), export_outputs=[1])


def test_infer_model_fn_ops_gets_the_default_serving_output(graph):
    predictions = {"y": tf.constant([1.0]), "z": tf.constant([2.0])}
    spec = ModelFnOps(INFER, predictions=predictions).estimator_spec()
    assert spec.export_outputs[DEFAULT_SERVING_SIGNATURE_DEF_KEY].outputs == predictions


# --- call_logit_fn -------------------------------------------------------------------------------


def test_call_logit_fn_is_exported():
    assert harness.call_logit_fn is call_logit_fn


def test_call_logit_fn_passes_only_declared_arguments_by_keyword(graph):
    received = {}

    def logit_fn(*, config, features, mode):
        received.update(features=features, mode=mode, config=config)
        return features["x"]

    features = {"x": tf.constant([[1.0]])}
    assert call_logit_fn(logit_fn, features, EVAL, "params", "config") is features["x"]
    assert received == {"features": features, "mode": EVAL, "config": "config"}


def test_call_logit_fn_passes_params_as_given(graph):
    received = []

    def logit_fn(features, params):
        received.append(params)
        return {"head": features}

    call_logit_fn(logit_fn, tf.constant(1.0), TRAIN, None, None)
    assert received == [None]


@pytest.mark.parametrize(
    "make",
    [
        lambda: [tf.constant(1.0)],
        lambda: {"head": "not a tensor"},
        lambda: {1: tf.constant(1.0)},
        lambda: 1.0,
    ],
)
def test_call_logit_fn_rejects_other_results(graph, make):
    result = make()
    with pytest.raises(ValueError) as exc:
        call_logit_fn(lambda features: result, {}, TRAIN, None, None)
    assert str(exc.value) == (
        "logit_fn should return a Tensor or a dictionary mapping strings to Tensors.  "
        f"logit_fn returned: {result}"
    )
