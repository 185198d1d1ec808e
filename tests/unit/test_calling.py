"""call_model_fn / call_input_fn: argument matching, return normalization, input_fn forms."""

import functools
import logging
import re

import pytest
import tensorflow as tf

from harness.calling import call_input_fn, call_model_fn, declared_kwargs, fn_args
from harness.estimator_spec import EstimatorSpec
from harness.model_fn import ModeKeys, ModelFnOps

TRAIN, EVAL, INFER = ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.INFER
PARAMS = {"learning_rate": 0.1}
CONFIG = object()


@pytest.fixture
def graph():
    with tf.Graph().as_default() as g:
        yield g


def _ops(mode=INFER):
    return ModelFnOps(mode, predictions={"y": tf.constant([1.0])})


def _call(model_fn, labels="labels", mode=INFER, params=PARAMS, config=CONFIG):
    return call_model_fn(model_fn, "features", labels, mode, params, config)


# --- fn_args -----------------------------------------------------------------------------------


def test_fn_args_of_a_function():
    def fn(features, labels, mode=None, *args, **kwargs):
        pass

    assert fn_args(fn) == ("features", "labels", "mode")


def test_fn_args_include_keyword_only_parameters():
    def fn(features, *, mode, params=None):
        pass

    assert fn_args(fn) == ("features", "mode", "params")


def test_fn_args_of_a_partial_drop_bound_names():
    def fn(a, features, labels, mode, params):
        pass

    assert fn_args(functools.partial(fn, 1, params=2)) == ("features", "labels", "mode")


def test_fn_args_of_a_callable_object_and_a_bound_method_drop_self():
    class Model:
        def __call__(self, features, labels):
            pass

        def model_fn(self, features, mode):
            pass

    assert fn_args(Model()) == ("features", "labels")
    assert fn_args(Model().model_fn) == ("features", "mode")


def test_fn_args_see_through_functools_wraps():
    def fn(features, labels):
        pass

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    assert fn_args(wrapper) == ("features", "labels")


def test_declared_kwargs_keep_only_the_declared_names_in_the_order_given():
    def fn(config, mode):
        pass

    kwargs = declared_kwargs(fn_args(fn), mode=TRAIN, params=PARAMS, config=CONFIG)
    assert list(kwargs) == ["mode", "config"]
    assert kwargs == {"mode": TRAIN, "config": CONFIG}


# --- call_model_fn: arguments ------------------------------------------------------------------


def test_model_fn_gets_every_declared_argument(graph):
    received = {}

    def model_fn(features, labels, mode, params, config):
        received.update(features=features, labels=labels, mode=mode, params=params, config=config)
        return _ops()

    _call(model_fn, mode=EVAL)
    assert received == dict(
        features="features", labels="labels", mode=EVAL, params=PARAMS, config=CONFIG
    )


def test_model_fn_arguments_are_matched_by_name_not_position(graph):
    received = {}

    def model_fn(config, mode, labels, features):
        received.update(features=features, labels=labels, mode=mode, config=config)
        return _ops()

    _call(model_fn, params=None)
    assert received == dict(features="features", labels="labels", mode=INFER, config=CONFIG)


@pytest.mark.parametrize(
    "declared",
    [
        ("features",),
        ("features", "labels"),
        ("features", "mode"),
        ("features", "labels", "mode"),
        ("features", "labels", "mode", "params"),
        ("features", "config"),
    ],
)
def test_model_fn_gets_only_what_it_declares(graph, declared):
    received = {}
    namespace = {"received": received, "result": _ops()}
    exec(
        f"def model_fn({', '.join(declared)}):\n    received.update(locals())\n    return result\n",
        namespace,
    )
    labels = "labels" if "labels" in declared else None
    params = PARAMS if "params" in declared else None
    call_model_fn(namespace["model_fn"], "features", labels, INFER, params, CONFIG)
    assert set(received) == set(declared)


def test_keyword_only_arguments_are_passed(graph):
    received = {}

    def model_fn(features, *, labels, mode):
        received.update(labels=labels, mode=mode)
        return _ops()

    _call(model_fn, params=None)
    assert received == {"labels": "labels", "mode": INFER}


def test_declared_labels_are_passed_even_when_none(graph):
    received = {}

    def model_fn(features, labels):
        received["labels"] = labels
        return _ops()

    _call(model_fn, labels=None, params=None)
    assert received == {"labels": None}


def test_labels_given_to_a_model_fn_without_labels_are_rejected(graph):
    def model_fn(features, mode):
        return _ops()

    with pytest.raises(ValueError) as exc:
        _call(model_fn, params=None)
    assert str(exc.value) == "model_fn does not take labels, but input_fn returns labels."


def test_model_fn_without_features_is_rejected(graph):
    def model_fn(mode, labels):
        return _ops()

    with pytest.raises(ValueError) as exc:
        _call(model_fn, params=None)
    assert str(exc.value) == f"model_fn ({model_fn}) must include features argument."


def test_params_given_to_a_model_fn_without_params_are_rejected(graph):
    def model_fn(features, labels):
        return _ops()

    with pytest.raises(ValueError) as exc:
        _call(model_fn)
    assert str(exc.value) == (
        f"model_fn ({model_fn}) does not include params argument, "
        f"but params ({PARAMS}) is passed to Estimator."
    )


def test_declared_params_without_params_get_an_empty_dict_and_a_warning(graph, caplog):
    received = {}

    def model_fn(features, labels, params):
        received["params"] = params
        return _ops()

    with caplog.at_level(logging.WARNING, logger="harness"):
        _call(model_fn, params=None)
    assert received == {"params": {}}
    assert "includes params argument, but params are not passed" in caplog.text


def test_unexpected_arguments_are_named(graph):
    def model_fn(features, labels, batch_size, model_dir, verbose=False):
        return _ops()

    with pytest.raises(ValueError) as exc:
        _call(model_fn, params=None)
    assert str(exc.value) == (
        f"model_fn ({model_fn}) has following not expected args: ['batch_size']"
    )


def test_features_are_checked_before_params_and_unexpected_args(graph):
    def model_fn(mode, other):
        return _ops()

    with pytest.raises(ValueError, match="must include features argument"):
        _call(model_fn)


def test_model_fn_is_not_called_when_arguments_do_not_fit(graph):
    calls = []

    def model_fn(features, mode):
        calls.append(1)
        return _ops()

    with pytest.raises(ValueError):
        _call(model_fn, params=None)
    assert calls == []


def test_partial_with_bound_params_needs_no_params(graph):
    received = {}

    def model_fn(features, labels, mode, params):
        received.update(params=params, mode=mode)
        return _ops()

    _call(functools.partial(model_fn, params={"bound": 1}), params=None)
    assert received == {"params": {"bound": 1}, "mode": INFER}


def test_partial_with_bound_params_rejects_other_params(graph):
    def model_fn(features, labels, params):
        return _ops()

    with pytest.raises(ValueError, match="does not include params argument"):
        _call(functools.partial(model_fn, params={"bound": 1}))


def test_partial_binding_features_positionally_has_no_features(graph):
    def model_fn(features, labels):
        return _ops()

    with pytest.raises(ValueError, match="must include features argument"):
        _call(functools.partial(model_fn, "bound features"), params=None)


def test_callable_object_model_fn(graph):
    class Model:
        def __init__(self):
            self.received = None

        def __call__(self, features, labels, mode, config):
            self.received = (features, labels, mode, config)
            return _ops()

    model = Model()
    _call(model, params=None)
    assert model.received == ("features", "labels", INFER, CONFIG)


def test_bound_method_model_fn(graph):
    class Model:
        def model_fn(self, features, mode):
            self.mode = mode
            return _ops()

    model = Model()
    _call(model.model_fn, labels=None, params=None, mode=INFER)
    assert model.mode == INFER


# --- call_model_fn: results --------------------------------------------------------------------


def test_model_fn_ops_is_returned_as_is(graph):
    ops = _ops()
    assert _call(lambda features: ops, labels=None, params=None) is ops


def test_estimator_spec_is_returned_as_is(graph):
    spec = EstimatorSpec(INFER, predictions=tf.constant([1.0]))
    assert _call(lambda features: spec, labels=None, params=None) is spec


@pytest.mark.parametrize("container", [tuple, list])
def test_legacy_three_tuple_is_wrapped_in_model_fn_ops(graph, container):
    predictions, loss = tf.constant([1.0]), tf.constant([2.0])
    step = tf.identity(loss, name="step")

    def model_fn(features, labels, mode):
        return container([predictions, loss, step])

    ops = _call(model_fn, mode=TRAIN, params=None)
    assert type(ops) is ModelFnOps
    assert ops.mode == TRAIN
    assert ops.predictions is predictions
    assert ops.loss.shape == tf.TensorShape([])  # validated: [1] loss reshaped
    assert ops.train_op is step.op  # validated: Tensor train_op replaced by its op


def test_legacy_tuple_is_validated(graph):
    def model_fn(features, labels):
        return (tf.constant([1.0]), tf.constant(1.0), None)

    with pytest.raises(ValueError, match=re.escape("Missing train_op.")):
        _call(model_fn, mode=TRAIN, params=None)


@pytest.mark.parametrize(
    "result",
    [None, (), (1, 2), (1, 2, 3, 4), {"predictions": 1, "loss": 2, "train_op": 3}, "abc", 3],
)
def test_unrecognized_results_are_rejected(graph, result):
    with pytest.raises(ValueError) as exc:
        _call(lambda features: result, labels=None, params=None)
    assert str(exc.value) == "Unrecognized value returned by model_fn, please return ModelFnOps."


# --- call_input_fn: arguments ------------------------------------------------------------------


def _features():
    return {"x": tf.constant([[1.0]])}


def test_input_fn_without_arguments(graph):
    features = _features()
    assert call_input_fn(lambda: features, TRAIN, PARAMS, CONFIG) == (features, None)


def test_input_fn_gets_every_declared_argument(graph):
    received = {}

    def input_fn(mode, params, config):
        received.update(mode=mode, params=params, config=config)
        return _features()

    call_input_fn(input_fn, EVAL, PARAMS, CONFIG)
    assert received == {"mode": EVAL, "params": PARAMS, "config": CONFIG}


@pytest.mark.parametrize("name", ["mode", "params", "config"])
def test_input_fn_gets_only_what_it_declares(graph, name):
    received = {}
    namespace = {"received": received, "make": _features}
    exec(f"def input_fn({name}):\n    received.update(locals())\n    return make()\n", namespace)
    call_input_fn(namespace["input_fn"], TRAIN, PARAMS, CONFIG)
    assert set(received) == {name}


def test_input_fn_partial_and_callable_object(graph):
    def input_fn(batch_size, mode):
        return {"x": tf.zeros([batch_size, 1])}, tf.constant([mode])

    features, labels = call_input_fn(functools.partial(input_fn, 4), TRAIN, None, None)
    assert features["x"].shape == tf.TensorShape([4, 1])

    class Input:
        def __call__(self, params):
            return {"x": tf.zeros([params["n"], 1])}

    features, labels = call_input_fn(Input(), TRAIN, {"n": 3}, None)
    assert features["x"].shape == tf.TensorShape([3, 1]) and labels is None


# --- call_input_fn: results --------------------------------------------------------------------


@pytest.mark.parametrize("container", [tuple, list])
def test_input_fn_returning_features_and_labels(graph, container):
    features, labels = _features(), tf.constant([1.0])
    result = call_input_fn(lambda: container([features, labels]), TRAIN, None, None)
    assert type(result) is tuple
    assert result[0] is features and result[1] is labels


@pytest.mark.parametrize(
    "make",
    [
        lambda: tf.constant([1.0]),
        lambda: tf.SparseTensor([[0]], [1.0], [2]),
        lambda: tf.ragged.constant([[1.0], [2.0, 3.0]]),
    ],
)
def test_input_fn_returning_features_alone(graph, make):
    features = make()
    assert call_input_fn(lambda: features, INFER, None, None) == (features, None)


def test_input_fn_returning_a_dataset_of_tuples(graph):
    def input_fn():
        return tf.data.Dataset.from_tensor_slices(({"x": [1.0, 2.0]}, [10, 20]))

    features, labels = call_input_fn(input_fn, TRAIN, None, None)
    assert labels.op.type == "IteratorGetNext"
    with tf.compat.v1.Session() as session:
        assert session.run([features, labels]) == [{"x": 1.0}, 10]
        assert session.run([features, labels]) == [{"x": 2.0}, 20]


def test_input_fn_returning_a_dataset_of_features(graph):
    def input_fn():
        return tf.data.Dataset.from_tensor_slices({"x": [1.0, 2.0]}).batch(2)

    features, labels = call_input_fn(input_fn, INFER, None, None)
    assert labels is None
    with tf.compat.v1.Session() as session:
        assert session.run(features)["x"].tolist() == [1.0, 2.0]


def test_input_fn_runs_on_cpu(graph):
    features, _ = call_input_fn(lambda: {"x": tf.constant(1.0)}, TRAIN, None, None)
    assert "CPU:0" in features["x"].device


@pytest.mark.parametrize(
    "make",
    [
        lambda: None,
        lambda: (tf.constant(1.0),),
        lambda: (tf.constant(1.0), tf.constant(2.0), tf.constant(3.0)),
        lambda: "features",
        lambda: 3,
        lambda: tf.data.Dataset.from_tensor_slices(([1], [2], [3])),
    ],
)
def test_input_fn_returning_anything_else_is_rejected(graph, make):
    def input_fn():
        return make()

    with pytest.raises(ValueError) as exc:
        call_input_fn(input_fn, TRAIN, None, None)
    message = str(exc.value)
    assert message.startswith(f"input_fn ({__name__}.{input_fn.__qualname__}) returned ")
    assert message.endswith(
        "; it must return (features, labels) as a len 2 tuple, features alone "
        "(a Tensor or a dict of Tensors), or a tf.data.Dataset whose elements are either."
    )


def test_rejected_input_fn_result_is_shown_shortened(graph):
    with pytest.raises(ValueError) as exc:
        call_input_fn(lambda: "x" * 1000, TRAIN, None, None)
    assert "'xxxx" in str(exc.value)
    assert len(str(exc.value)) < 500
