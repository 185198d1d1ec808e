"""EstimatorSpec: TF 1.x core validation rules, their order and messages, and `_replace`."""

import inspect
import re

import pytest
import tensorflow as tf

from harness.estimator_spec import EstimatorSpec
from harness.export_output import PredictOutput, RegressionOutput

TRAIN, EVAL, PREDICT = "train", "eval", "infer"

_GRAPH_MESSAGE = (
    '{0} with "{1}" must be from the default graph. '
    "Possible causes of this error include: \n\n"
    "1) {0} was created outside the context of the default graph."
    "\n\n"
    "2) The object passed through to EstimatorSpec was not created "
    'in the most recent call to "model_fn".'
)


class _Hook(tf.compat.v1.train.SessionRunHook):
    pass


@pytest.fixture
def graph():
    with tf.Graph().as_default() as g:
        yield g


def _loss():
    return tf.constant(1.0, name="loss")


def _train_spec(**kwargs):
    """A valid TRAIN EstimatorSpec in the default graph; kwargs override fields."""
    fields = dict(loss=_loss(), train_op=tf.no_op(name="train"))
    fields.update(kwargs)
    return EstimatorSpec(TRAIN, **fields)


def _output(name="out"):
    return PredictOutput({"y": tf.constant([1.0], name=name)})


# --- structure ---------------------------------------------------------------------------------


def test_fields_are_in_core_order():
    assert EstimatorSpec._fields == (
        "mode",
        "predictions",
        "loss",
        "train_op",
        "eval_metric_ops",
        "export_outputs",
        "training_chief_hooks",
        "training_hooks",
        "scaffold",
        "evaluation_hooks",
        "prediction_hooks",
    )


def test_new_takes_the_fields_in_order_with_none_defaults():
    params = list(inspect.signature(EstimatorSpec.__new__).parameters.values())
    assert [p.name for p in params[1:]] == list(EstimatorSpec._fields)
    assert params[1].default is inspect.Parameter.empty
    assert all(p.default is None for p in params[2:])


def test_mode_is_not_validated(graph):
    spec = EstimatorSpec("anything")
    assert spec.mode == "anything"
    assert spec.predictions == {}


def test_defaults_in_predict_mode(graph):
    predictions = tf.constant([1.0])
    spec = EstimatorSpec(PREDICT, predictions=predictions)
    assert spec.predictions is predictions
    assert spec.loss is None and spec.train_op is None
    assert spec.eval_metric_ops == {}
    assert list(spec.export_outputs) == ["serving_default"]
    assert spec.export_outputs["serving_default"].outputs == {"output": predictions}
    assert spec.training_chief_hooks == spec.training_hooks == ()
    assert spec.evaluation_hooks == spec.prediction_hooks == ()
    assert isinstance(spec.scaffold, tf.compat.v1.train.Scaffold)


# --- 1. train_op -------------------------------------------------------------------------------


def test_missing_train_op_in_train(graph):
    with pytest.raises(ValueError) as exc:
        EstimatorSpec(TRAIN, loss=_loss())
    assert str(exc.value) == "Missing train_op."


@pytest.mark.parametrize("mode", [EVAL, PREDICT])
def test_train_op_is_optional_outside_train(graph, mode):
    spec = EstimatorSpec(mode, predictions=tf.constant(1.0), loss=_loss())
    assert spec.train_op is None


@pytest.mark.parametrize("make", [lambda: tf.no_op(), lambda: tf.constant(1.0)])
def test_train_op_may_be_operation_or_tensor_and_is_kept(graph, make):
    train_op = make()
    assert _train_spec(train_op=train_op).train_op is train_op


@pytest.mark.parametrize("train_op", ["train", 1, [None]])
def test_train_op_of_another_type_is_rejected(graph, train_op):
    with pytest.raises(TypeError) as exc:
        _train_spec(train_op=train_op)
    assert str(exc.value) == f"train_op must be Operation or Tensor, given: {train_op}"


def test_train_op_is_checked_before_loss(graph):
    with pytest.raises(ValueError, match=re.escape("Missing train_op.")):
        EstimatorSpec(TRAIN)


# --- 2. loss -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [TRAIN, EVAL])
def test_missing_loss_in_train_and_eval(graph, mode):
    with pytest.raises(ValueError) as exc:
        EstimatorSpec(mode, train_op=tf.no_op())
    assert str(exc.value) == "Missing loss."


def test_loss_is_optional_in_predict(graph):
    assert EstimatorSpec(PREDICT, predictions=tf.constant(1.0)).loss is None


@pytest.mark.parametrize("loss", [1.0, "loss"])
def test_loss_must_be_a_tensor(graph, loss):
    with pytest.raises(TypeError) as exc:
        _train_spec(loss=loss)
    assert str(exc.value) == f"loss must be Tensor, given: {loss}"


def test_loss_variable_is_read_into_a_tensor(graph):
    variable = tf.compat.v1.Variable(1.0)
    spec = _train_spec(loss=variable)
    assert isinstance(spec.loss, tf.Tensor) and spec.loss.op.type == "ReadVariableOp"


def test_non_scalar_loss_is_rejected(graph):
    loss = tf.ones([3])
    with pytest.raises(ValueError) as exc:
        _train_spec(loss=loss)
    assert str(exc.value) == f"Loss must be scalar, given: {loss}"


@pytest.mark.parametrize("shape", [[1], [1, 1]])
def test_one_element_loss_is_reshaped_to_scalar(graph, shape):
    loss = tf.ones(shape)
    spec = _train_spec(loss=loss)
    assert spec.loss.shape == tf.TensorShape([])
    assert spec.loss.op.type == "Reshape"
    assert spec.loss.op.inputs[0] is loss


def test_scalar_loss_is_kept(graph):
    loss = _loss()
    assert _train_spec(loss=loss).loss is loss


def test_loss_is_checked_before_predictions(graph):
    with pytest.raises(TypeError, match="^loss must be Tensor"):
        _train_spec(loss=1.0, predictions={"y": 1.0})


# --- 3. predictions ----------------------------------------------------------------------------


def test_missing_predictions_in_predict(graph):
    with pytest.raises(ValueError) as exc:
        EstimatorSpec(PREDICT)
    assert str(exc.value) == "Missing predictions."


@pytest.mark.parametrize("mode", [TRAIN, EVAL])
def test_missing_predictions_become_empty_dict_outside_predict(graph, mode):
    assert EstimatorSpec(mode, loss=_loss(), train_op=tf.no_op()).predictions == {}


def test_prediction_dict_values_must_be_tensors(graph):
    with pytest.raises(TypeError) as exc:
        EstimatorSpec(PREDICT, predictions={"ok": tf.constant(1.0), "bad": [1.0]})
    assert str(exc.value) == "predictions[bad] must be Tensor, given: [1.0]"


def test_single_prediction_must_be_a_tensor(graph):
    with pytest.raises(TypeError) as exc:
        EstimatorSpec(PREDICT, predictions=[1.0])
    assert str(exc.value) == "predictions must be Tensor, given: [1.0]"


def test_sparse_prediction_is_rejected(graph):
    sparse = tf.SparseTensor([[0]], [1.0], [2])
    with pytest.raises(TypeError) as exc:
        EstimatorSpec(PREDICT, predictions=sparse)
    assert str(exc.value) == f"predictions must be Tensor, given: {sparse}"


def test_prediction_tensors_are_kept(graph):
    y = tf.constant([1.0])
    assert EstimatorSpec(PREDICT, predictions={"y": y}).predictions == {"y": y}


def test_predictions_are_checked_before_eval_metric_ops(graph):
    with pytest.raises(TypeError, match=re.escape("predictions[y] must be Tensor")):
        EstimatorSpec(PREDICT, predictions={"y": 1}, eval_metric_ops="bad")


# --- 4. eval_metric_ops ------------------------------------------------------------------------


def test_eval_metric_ops_default_to_empty_dict(graph):
    assert _train_spec().eval_metric_ops == {}


def test_eval_metric_ops_must_be_a_dict(graph):
    with pytest.raises(TypeError) as exc:
        _train_spec(eval_metric_ops=[1])
    assert str(exc.value) == "eval_metric_ops must be a dict, given: [1]"


@pytest.mark.parametrize("value", ["x", (1,), (1, 2, 3)])
def test_eval_metric_values_must_be_pairs(graph, value):
    with pytest.raises(TypeError) as exc:
        _train_spec(eval_metric_ops={"m": value})
    assert str(exc.value) == (
        "Values of eval_metric_ops must be (metric_value, update_op) tuples, "
        f"given: {value} for key: m"
    )


def test_eval_metric_pair_must_be_a_tuple_not_a_list(graph):
    value = [tf.constant(1.0), tf.no_op()]
    with pytest.raises(TypeError, match="^Values of eval_metric_ops must be"):
        _train_spec(eval_metric_ops={"m": value})


def test_eval_metric_value_members_must_be_tensors_or_ops(graph):
    with pytest.raises(TypeError) as exc:
        _train_spec(eval_metric_ops={"m": ((tf.constant(1.0), 2.0), tf.no_op())})
    assert str(exc.value) == "eval_metric_ops[m] must be Operation or Tensor, given: 2.0"


def test_eval_metric_update_op_must_be_tensor_or_op(graph):
    with pytest.raises(TypeError) as exc:
        _train_spec(eval_metric_ops={"m": (tf.constant(1.0), "update")})
    assert str(exc.value) == "eval_metric_ops[m] must be Operation or Tensor, given: update"


def test_nested_metric_values_are_accepted(graph):
    metrics = {"m": ((tf.constant(1.0), {"a": tf.constant(2.0)}), tf.no_op())}
    assert _train_spec(eval_metric_ops=metrics).eval_metric_ops is metrics


def test_eval_metric_ops_are_checked_before_export_outputs(graph):
    with pytest.raises(TypeError, match="^eval_metric_ops must be a dict"):
        _train_spec(eval_metric_ops=[], export_outputs=[])


# --- 5. export_outputs -------------------------------------------------------------------------


def test_export_outputs_none_stays_none_outside_predict(graph):
    assert _train_spec().export_outputs is None
    assert EstimatorSpec(EVAL, loss=tf.constant(1.0)).export_outputs is None


def test_export_outputs_must_be_a_dict(graph):
    outputs = [_output()]
    with pytest.raises(TypeError) as exc:
        _train_spec(export_outputs=outputs)
    assert str(exc.value) == f"export_outputs must be dict, given: {outputs}"


def test_export_output_values_must_be_export_outputs(graph):
    outputs = {"a": _output(), "b": tf.constant(1.0)}
    with pytest.raises(TypeError) as exc:
        _train_spec(export_outputs=outputs)
    assert str(exc.value) == (
        f"Values in export_outputs must be ExportOutput objects. Given: {outputs}"
    )


def test_empty_export_outputs_are_allowed(graph):
    assert _train_spec(export_outputs={}).export_outputs == {}


def test_single_export_output_is_aliased_in_place(graph):
    output = _output()
    outputs = {"head": output}
    spec = _train_spec(export_outputs=outputs)
    assert spec.export_outputs is outputs
    assert outputs == {"head": output, "serving_default": output}


def test_single_serving_default_output_is_left_alone(graph):
    output = _output()
    spec = _train_spec(export_outputs={"serving_default": output})
    assert spec.export_outputs == {"serving_default": output}


def test_several_export_outputs_need_a_default(graph):
    with pytest.raises(ValueError) as exc:
        _train_spec(export_outputs={"a": _output("a"), "b": _output("b")})
    assert str(exc.value) == (
        "Multiple export_outputs were provided, but none of them is specified as the default.  "
        "Do this by naming one of them with signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY."
    )


def test_several_export_outputs_with_a_default_are_accepted(graph):
    outputs = {"a": _output("a"), "serving_default": RegressionOutput(tf.constant([1.0]))}
    assert set(_train_spec(export_outputs=outputs).export_outputs) == {"a", "serving_default"}


def test_export_outputs_are_checked_before_the_graph(graph):
    with tf.Graph().as_default():
        other_loss = _loss()
    with pytest.raises(TypeError, match="^export_outputs must be dict"):
        _train_spec(loss=other_loss, export_outputs=[])


# --- 6. default graph --------------------------------------------------------------------------


def _in_other_graph(make):
    with tf.Graph().as_default():
        return make()


def test_prediction_dict_value_from_another_graph(graph):
    y = _in_other_graph(lambda: tf.constant(1.0, name="y"))
    with pytest.raises(ValueError) as exc:
        EstimatorSpec(PREDICT, predictions={"key": y})
    assert str(exc.value) == _GRAPH_MESSAGE.format("prediction values", "key: y:0")


def test_single_prediction_from_another_graph(graph):
    y = _in_other_graph(lambda: tf.constant(1.0, name="y"))
    with pytest.raises(ValueError) as exc:
        EstimatorSpec(PREDICT, predictions=y)
    assert str(exc.value) == _GRAPH_MESSAGE.format("prediction values", "y:0")


def test_loss_from_another_graph(graph):
    loss = _in_other_graph(_loss)
    with pytest.raises(ValueError) as exc:
        _train_spec(loss=loss)
    assert str(exc.value) == _GRAPH_MESSAGE.format("loss", "loss:0")


def test_train_op_from_another_graph(graph):
    train_op = _in_other_graph(lambda: tf.no_op(name="other_train"))
    with pytest.raises(ValueError) as exc:
        _train_spec(train_op=train_op)
    assert str(exc.value) == _GRAPH_MESSAGE.format("train_op", "other_train")


def test_eval_metric_member_from_another_graph(graph):
    update = _in_other_graph(lambda: tf.no_op(name="update"))
    with pytest.raises(ValueError) as exc:
        _train_spec(eval_metric_ops={"m": (tf.constant(1.0), update)})
    assert str(exc.value) == _GRAPH_MESSAGE.format("eval_metric_ops", "m: update")


def test_spec_built_outside_the_tensors_graph_is_rejected():
    with tf.Graph().as_default():
        loss, train_op = _loss(), tf.no_op()
    with pytest.raises(ValueError, match="^loss with "):
        EstimatorSpec(TRAIN, loss=loss, train_op=train_op)


def test_predictions_are_checked_first_against_the_graph(graph):
    y = _in_other_graph(lambda: tf.constant(1.0, name="y"))
    loss = _in_other_graph(_loss)
    with pytest.raises(ValueError, match="^prediction values with "):
        _train_spec(predictions=y, loss=loss)


def test_graph_is_checked_before_hooks(graph):
    loss = _in_other_graph(_loss)
    with pytest.raises(ValueError, match="^loss with "):
        _train_spec(loss=loss, training_hooks=["not a hook"])


# --- 7. hooks ----------------------------------------------------------------------------------

_HOOK_FIELDS = ["training_chief_hooks", "training_hooks", "evaluation_hooks", "prediction_hooks"]


@pytest.mark.parametrize("field", _HOOK_FIELDS)
def test_hook_lists_become_tuples(graph, field):
    hooks = [_Hook(), _Hook()]
    spec = _train_spec(**{field: hooks})
    assert getattr(spec, field) == tuple(hooks)
    assert isinstance(getattr(spec, field), tuple)


@pytest.mark.parametrize("field", _HOOK_FIELDS)
def test_non_hooks_are_rejected_in_every_hook_field(graph, field):
    with pytest.raises(TypeError) as exc:
        _train_spec(**{field: [_Hook(), "not a hook"]})
    assert str(exc.value) == "All hooks must be SessionRunHook instances, given: not a hook"


def test_hooks_are_checked_before_scaffold(graph):
    with pytest.raises(TypeError, match="^All hooks must be"):
        _train_spec(prediction_hooks=[1], scaffold="not a scaffold")


# --- 8. scaffold -------------------------------------------------------------------------------


def test_given_scaffold_is_kept(graph):
    scaffold = tf.compat.v1.train.Scaffold()
    assert _train_spec(scaffold=scaffold).scaffold is scaffold


def test_missing_scaffold_gets_a_new_default_each_time(graph):
    first, second = _train_spec(), _train_spec()
    assert isinstance(first.scaffold, tf.compat.v1.train.Scaffold)
    assert first.scaffold is not second.scaffold


def test_non_scaffold_is_rejected(graph):
    with pytest.raises(TypeError) as exc:
        _train_spec(scaffold="not a scaffold")
    assert str(exc.value) == "scaffold must be tf.train.Scaffold. Given: not a scaffold"


# --- 9. _replace -------------------------------------------------------------------------------


def test_replace_returns_a_new_spec_with_the_field_changed(graph):
    spec = _train_spec()
    loss = tf.constant(2.0)
    replaced = spec._replace(loss=loss)
    assert type(replaced) is EstimatorSpec
    assert replaced.loss is loss
    assert replaced.train_op is spec.train_op
    assert replaced.scaffold is spec.scaffold
    assert spec.loss is not loss


def test_replace_revalidates(graph):
    spec = _train_spec()
    with pytest.raises(ValueError, match=re.escape("Missing loss.")):
        spec._replace(loss=None)
    with pytest.raises(TypeError, match="^All hooks must be"):
        spec._replace(training_hooks=["not a hook"])


def test_replace_converts_hooks_to_tuples(graph):
    hook = _Hook()
    assert _train_spec()._replace(training_hooks=[hook]).training_hooks == (hook,)


def test_replace_refuses_a_mode_change(graph):
    spec = EstimatorSpec(EVAL, loss=_loss())
    with pytest.raises(ValueError) as exc:
        spec._replace(mode=TRAIN)
    assert str(exc.value) == "mode of EstimatorSpec cannot be changed."


def test_replace_accepts_the_same_mode(graph):
    spec = EstimatorSpec(EVAL, loss=_loss())
    assert spec._replace(mode=EVAL).mode == EVAL


def test_replace_rejects_unknown_fields(graph):
    with pytest.raises(ValueError, match=re.escape("Got unexpected field names: ['los']")):
        _train_spec()._replace(los=None)
