"""ModelFnOps: TF 1.x contrib field order, validation order and messages, estimator_spec()."""

import copy
import inspect
import logging
import re

import pytest
import tensorflow as tf

from harness.estimator_spec import EstimatorSpec
from harness.export_output import ClassificationOutput, PredictOutput, RegressionOutput
from harness.model_fn import MetricKey, ModeKeys, ModelFnOps, PredictionKey, ProblemType

TRAIN, EVAL, INFER = ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.INFER


class _Hook(tf.compat.v1.train.SessionRunHook):
    pass


@pytest.fixture
def graph():
    with tf.Graph().as_default() as g:
        yield g


def _loss():
    return tf.constant(1.0, name="loss")


def _train_op():
    return tf.no_op(name="train")


def _train_ops(**kwargs):
    """A valid TRAIN ModelFnOps built in the default graph; kwargs override fields."""
    fields = dict(predictions={"y": tf.constant([1.0])}, loss=_loss(), train_op=_train_op())
    fields.update(kwargs)
    return ModelFnOps(TRAIN, **fields)


# --- constants ---------------------------------------------------------------------------------


def test_mode_keys_have_contrib_values_and_predict_alias():
    assert (ModeKeys.TRAIN, ModeKeys.EVAL, ModeKeys.INFER) == ("train", "eval", "infer")
    assert ModeKeys.PREDICT == "infer"


@pytest.mark.parametrize("key", ["train", "eval", "infer"])
def test_mode_keys_validate_accepts_the_three_modes(key):
    ModeKeys.validate(key)


@pytest.mark.parametrize("key", ["predict", "TRAIN", None, ""])
def test_mode_keys_validate_rejects_other_keys(key):
    with pytest.raises(ValueError) as exc:
        ModeKeys.validate(key)
    assert str(exc.value) == f"Invalid mode {key}."


def test_problem_type_values():
    assert ProblemType.UNSPECIFIED == 0
    assert ProblemType.CLASSIFICATION == 1
    assert ProblemType.LINEAR_REGRESSION == 2
    assert ProblemType.LOGISTIC_REGRESSION == 3


def test_prediction_key_values():
    assert PredictionKey.CLASSES == "classes"
    assert PredictionKey.PROBABILITIES == "probabilities"
    assert PredictionKey.LOGITS == "logits"
    assert PredictionKey.LOGISTIC == "logistic"
    assert PredictionKey.SCORES == "scores"
    assert PredictionKey.TOP_K == "top_k"
    assert PredictionKey.GENERIC == "output"


def test_metric_key_values():
    assert MetricKey.LOSS == "loss"
    assert MetricKey.AUC == "auc"
    assert MetricKey.PREDICTION_MEAN == "labels/prediction_mean"
    assert MetricKey.LABEL_MEAN == "labels/actual_label_mean"
    assert MetricKey.ACCURACY == "accuracy"
    assert MetricKey.ACCURACY_BASELINE == "accuracy/baseline_label_mean"
    assert MetricKey.ACCURACY_MEAN == "accuracy/threshold_%f_mean"
    assert MetricKey.PRECISION_MEAN == "precision/positive_threshold_%f_mean"
    assert MetricKey.RECALL_MEAN == "recall/positive_threshold_%f_mean"


# --- structure and defaults --------------------------------------------------------------------


def test_fields_are_in_contrib_order_with_mode_last():
    assert ModelFnOps._fields == (
        "predictions",
        "loss",
        "train_op",
        "eval_metric_ops",
        "output_alternatives",
        "training_chief_hooks",
        "training_hooks",
        "scaffold",
        "mode",
    )
    assert issubclass(ModelFnOps, tuple)


def test_new_takes_mode_first_and_defaults_everything_else_to_none():
    params = list(inspect.signature(ModelFnOps.__new__).parameters.values())
    assert [p.name for p in params] == [
        "cls",
        "mode",
        "predictions",
        "loss",
        "train_op",
        "eval_metric_ops",
        "output_alternatives",
        "training_chief_hooks",
        "training_hooks",
        "scaffold",
    ]
    assert params[1].default is inspect.Parameter.empty
    assert all(p.default is None for p in params[2:])


def test_defaults_for_infer_with_predictions_only(graph):
    y = tf.constant([1.0])
    ops = ModelFnOps(INFER, predictions=y)
    assert ops.mode == "infer"
    assert ops.predictions is y
    assert ops.loss is None
    assert ops.train_op is None
    assert ops.eval_metric_ops == {}
    assert ops.output_alternatives is None
    assert ops.training_chief_hooks == []
    assert ops.training_hooks == []
    assert ops.scaffold is None


def test_mode_is_positional_first():
    with tf.Graph().as_default():
        ops = ModelFnOps(INFER, {"y": tf.constant(1.0)})
    assert ops.mode == INFER
    assert set(ops.predictions) == {"y"}


# --- 1. mode -----------------------------------------------------------------------------------


def test_invalid_mode_is_rejected_first(graph):
    with tf.Graph().as_default():
        other_loss = _loss()
    with pytest.raises(ValueError) as exc:
        ModelFnOps("predict", loss=other_loss, train_op=_train_op())
    assert str(exc.value) == "Invalid mode predict."


# --- 2. same graph -----------------------------------------------------------------------------


def test_loss_and_train_op_from_different_graphs_are_rejected(graph):
    with tf.Graph().as_default():
        other_loss = _loss()
    train_op = _train_op()
    with pytest.raises(ValueError) as exc:
        ModelFnOps(TRAIN, predictions={"y": tf.constant(1.0)}, loss=other_loss, train_op=train_op)
    assert str(exc.value) == f"{train_op} must be from the same graph as {other_loss}."


def test_tensor_predictions_take_part_in_the_same_graph_check(graph):
    predictions = tf.constant(1.0)
    with tf.Graph().as_default():
        other_loss = _loss()
    with pytest.raises(ValueError) as exc:
        ModelFnOps(EVAL, predictions=predictions, loss=other_loss)
    assert str(exc.value) == f"{other_loss} must be from the same graph as {predictions}."


def test_same_graph_check_comes_before_missing_train_op(graph):
    with tf.Graph().as_default():
        other_loss = _loss()
    with pytest.raises(ValueError, match="must be from the same graph as"):
        ModelFnOps(TRAIN, predictions=tf.constant(1.0), loss=other_loss)


def test_dict_predictions_are_not_part_of_the_same_graph_check(graph):
    with tf.Graph().as_default():
        other_prediction = tf.constant(1.0)
    ops = ModelFnOps(EVAL, predictions={"y": other_prediction}, loss=_loss())
    assert ops.predictions["y"] is other_prediction


def test_sparse_tensor_predictions_take_part_in_the_same_graph_check(graph):
    with tf.Graph().as_default():
        sparse = tf.SparseTensor([[0]], [1.0], [2])
    with pytest.raises(ValueError, match=re.escape("must be from the same graph as")):
        ModelFnOps(EVAL, predictions=sparse, loss=_loss())


# --- 3. train_op -------------------------------------------------------------------------------


def test_missing_train_op_in_train(graph):
    with pytest.raises(ValueError) as exc:
        ModelFnOps(TRAIN, predictions=tf.constant(1.0), loss=_loss())
    assert str(exc.value) == "Missing train_op."


@pytest.mark.parametrize("mode", [EVAL, INFER])
def test_train_op_is_optional_outside_train(graph, mode):
    ops = ModelFnOps(mode, predictions=tf.constant(1.0), loss=_loss())
    assert ops.train_op is None


def test_missing_train_op_is_reported_before_missing_loss(graph):
    with pytest.raises(ValueError) as exc:
        ModelFnOps(TRAIN, predictions=tf.constant(1.0))
    assert str(exc.value) == "Missing train_op."


def test_operation_train_op_is_kept(graph):
    train_op = _train_op()
    assert _train_ops(train_op=train_op).train_op is train_op


def test_tensor_train_op_is_replaced_by_its_op(graph):
    step = tf.identity(tf.constant(1.0), name="step")
    ops = _train_ops(train_op=step)
    assert isinstance(ops.train_op, tf.Operation)
    assert ops.train_op is step.op


def test_train_op_that_is_not_convertible_raises_type_error(graph):
    with pytest.raises(TypeError, match="to Tensor"):
        _train_ops(train_op=object())


# --- 4. loss -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [TRAIN, EVAL])
def test_missing_loss_in_train_and_eval(graph, mode):
    with pytest.raises(ValueError) as exc:
        ModelFnOps(mode, predictions=tf.constant(1.0), train_op=_train_op())
    assert str(exc.value) == "Missing loss."


def test_loss_is_optional_in_infer(graph):
    assert ModelFnOps(INFER, predictions=tf.constant(1.0)).loss is None


def test_missing_loss_is_reported_before_missing_predictions(graph):
    with pytest.raises(ValueError) as exc:
        ModelFnOps(EVAL)
    assert str(exc.value) == "Missing loss."


def test_scalar_loss_is_kept(graph):
    loss = _loss()
    assert _train_ops(loss=loss).loss is loss


@pytest.mark.parametrize("shape", [[1], [1, 1], [None]])
def test_loss_with_one_element_shape_is_reshaped_to_scalar(graph, shape):
    if None in shape:
        loss = tf.compat.v1.placeholder(tf.float32, shape)
    else:
        loss = tf.ones(shape)
    ops = _train_ops(loss=loss)
    assert ops.loss is not loss
    assert ops.loss.shape == tf.TensorShape([])
    assert ops.loss.op.type == "Reshape"
    assert ops.loss.op.inputs[0] is loss


def test_loss_of_unknown_rank_is_kept_as_is(graph):
    loss = tf.compat.v1.placeholder(tf.float32, None)
    assert _train_ops(loss=loss).loss is loss


def test_python_number_loss_is_converted_to_a_tensor(graph):
    ops = _train_ops(loss=2.5)
    assert isinstance(ops.loss, tf.Tensor)
    assert ops.loss.dtype == tf.float32
    assert ops.loss.shape == tf.TensorShape([])


def test_non_scalar_loss_is_rejected(graph):
    loss = tf.ones([2])
    with pytest.raises(ValueError) as exc:
        _train_ops(loss=loss)
    assert str(exc.value) == f"Loss must be scalar: {loss}."


# --- 5. predictions ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [EVAL, INFER])
def test_missing_predictions_in_eval_and_infer(graph, mode):
    with pytest.raises(ValueError) as exc:
        ModelFnOps(mode, loss=_loss())
    assert str(exc.value) == "Missing predictions."


def test_predictions_are_optional_in_train(graph):
    assert _train_ops(predictions=None).predictions is None


def test_prediction_dict_values_are_converted(graph):
    sparse = tf.SparseTensor([[0]], [1.0], [2])
    ops = _train_ops(
        predictions={
            "list": [1.0, 2.0],
            "sparse": sparse,
            "sparse_value": tf.compat.v1.SparseTensorValue([[0]], [1.0], [2]),
        }
    )
    assert isinstance(ops.predictions["list"], tf.Tensor)
    assert ops.predictions["list"].shape == tf.TensorShape([2])
    assert ops.predictions["sparse"] is sparse
    assert isinstance(ops.predictions["sparse_value"], tf.SparseTensor)


def test_single_prediction_value_is_converted(graph):
    ops = ModelFnOps(INFER, predictions=[[1, 2]])
    assert isinstance(ops.predictions, tf.Tensor)
    assert ops.predictions.dtype == tf.int32


def test_unconvertible_prediction_raises_type_error(graph):
    with pytest.raises(TypeError, match="to Tensor"):
        ModelFnOps(INFER, predictions={"y": object()})


# --- 6. eval_metric_ops ------------------------------------------------------------------------


def test_eval_metric_ops_default_to_empty_dict(graph):
    assert _train_ops().eval_metric_ops == {}


@pytest.mark.parametrize("value", [[("m", 1)], ("value", "update"), "metrics"])
def test_non_dict_eval_metric_ops_raise_value_error(graph, value):
    with pytest.raises(ValueError) as exc:
        _train_ops(eval_metric_ops=value)
    assert str(exc.value) == "eval_metric_ops must be a dict."


def test_eval_metric_op_values_are_not_checked(graph):
    metrics = {"m": "not a metric"}
    assert _train_ops(eval_metric_ops=metrics).eval_metric_ops is metrics


def test_eval_metric_ops_are_checked_before_hooks(graph):
    with pytest.raises(ValueError, match=re.escape("eval_metric_ops must be a dict.")):
        _train_ops(eval_metric_ops=[], training_hooks=["not a hook"])


# --- 7. hooks ----------------------------------------------------------------------------------


def test_hook_lists_default_to_empty_lists(graph):
    ops = _train_ops()
    assert ops.training_hooks == [] and isinstance(ops.training_hooks, list)
    assert ops.training_chief_hooks == [] and isinstance(ops.training_chief_hooks, list)


def test_hook_lists_are_stored_as_given(graph):
    hooks, chief_hooks = [_Hook()], [_Hook()]
    ops = _train_ops(training_hooks=hooks, training_chief_hooks=chief_hooks)
    assert ops.training_hooks is hooks
    assert ops.training_chief_hooks is chief_hooks


@pytest.mark.parametrize("field", ["training_hooks", "training_chief_hooks"])
def test_non_hook_is_rejected_in_either_list(graph, field):
    with pytest.raises(TypeError) as exc:
        _train_ops(**{field: [_Hook(), "not a hook"]})
    assert str(exc.value) == (
        "All hooks returned from model_fn must be SessionRunHook instances, "
        "got instance of <class 'str'>: not a hook"
    )


def test_training_hooks_are_checked_before_chief_hooks(graph):
    with pytest.raises(TypeError, match="got instance of <class 'int'>: 1$"):
        _train_ops(training_hooks=[1], training_chief_hooks=[2])


def test_tuple_and_list_hooks_cannot_be_mixed(graph):
    with pytest.raises(TypeError, match="can only concatenate tuple"):
        _train_ops(training_hooks=(_Hook(),), training_chief_hooks=[_Hook()])


def test_tuples_for_both_hook_fields_are_accepted(graph):
    ops = _train_ops(training_hooks=(_Hook(),), training_chief_hooks=(_Hook(),))
    assert len(ops.training_hooks) == len(ops.training_chief_hooks) == 1


# --- 8. unvalidated fields, _replace, copy -----------------------------------------------------


def test_output_alternatives_and_scaffold_are_stored_unvalidated(graph):
    alternatives = {"head": ("any problem type", "any tensors")}
    scaffold = "not a scaffold"
    ops = _train_ops(output_alternatives=alternatives, scaffold=scaffold)
    assert ops.output_alternatives is alternatives
    assert ops.scaffold is scaffold


def test_replace_does_not_revalidate(graph):
    ops = _train_ops()
    replaced = ops._replace(loss=None, train_op=None, training_chief_hooks=["not a hook"])
    assert isinstance(replaced, ModelFnOps)
    assert replaced.loss is None and replaced.train_op is None
    assert replaced.training_chief_hooks == ["not a hook"]
    assert replaced.mode == TRAIN


def test_copy_keeps_every_field(graph):
    ops = _train_ops(training_hooks=[_Hook()])
    copied = copy.copy(ops)
    assert copied == ops
    assert copied.mode == TRAIN


# --- estimator_spec() --------------------------------------------------------------------------


def _infer_ops(output_alternatives, **kwargs):
    return ModelFnOps(
        INFER,
        predictions={"y": tf.constant([1.0])},
        output_alternatives=output_alternatives,
        **kwargs,
    )


def _float(name="scores"):
    return tf.constant([[0.2, 0.8]], name=name)


def test_estimator_spec_returns_a_harness_estimator_spec(graph):
    spec = _train_ops().estimator_spec()
    assert type(spec) is EstimatorSpec


@pytest.mark.parametrize("mode", [TRAIN, EVAL, INFER])
def test_estimator_spec_keeps_the_mode_string(graph, mode):
    ops = ModelFnOps(mode, predictions={"y": tf.constant(1.0)}, loss=_loss(), train_op=_train_op())
    assert ops.estimator_spec().mode == mode


def test_infer_becomes_core_predict(graph):
    spec = _infer_ops(None).estimator_spec()
    assert spec.mode == ModeKeys.PREDICT == "infer"


def test_estimator_spec_copies_the_other_fields(graph):
    hook, chief_hook = _Hook(), _Hook()
    scaffold = tf.compat.v1.train.Scaffold()
    ops = _train_ops(training_hooks=[hook], training_chief_hooks=[chief_hook], scaffold=scaffold)
    spec = ops.estimator_spec()
    assert spec.predictions == ops.predictions
    assert spec.loss is ops.loss
    assert spec.train_op is ops.train_op
    assert spec.training_hooks == (hook,)
    assert spec.training_chief_hooks == (chief_hook,)
    assert spec.scaffold is scaffold
    assert spec.evaluation_hooks == () and spec.prediction_hooks == ()


def test_missing_scaffold_becomes_a_default_scaffold(graph):
    assert isinstance(_train_ops().estimator_spec().scaffold, tf.compat.v1.train.Scaffold)


@pytest.mark.parametrize("alternatives", [None, {}])
def test_no_output_alternatives_give_the_default_serving_output_in_infer(graph, alternatives):
    ops = _infer_ops(alternatives)
    export_outputs = ops.estimator_spec().export_outputs
    assert list(export_outputs) == ["serving_default"]
    assert isinstance(export_outputs["serving_default"], PredictOutput)
    assert export_outputs["serving_default"].outputs == ops.predictions


@pytest.mark.parametrize("mode", [TRAIN, EVAL])
def test_no_output_alternatives_give_no_export_outputs_outside_infer(graph, mode):
    ops = ModelFnOps(
        mode, predictions={"y": tf.constant([1.0])}, loss=tf.constant(1.0), train_op=tf.no_op()
    )
    assert ops.estimator_spec().export_outputs is None


def test_loss_metric_is_dropped_and_others_kept(graph):
    value, update = tf.constant(1.0), tf.no_op()
    metrics = {"loss": (value, update), "accuracy": (value, update)}
    ops = ModelFnOps(EVAL, predictions={"y": value}, loss=_loss(), eval_metric_ops=metrics)
    spec = ops.estimator_spec()
    assert spec.eval_metric_ops == {"accuracy": (value, update)}
    assert set(ops.eval_metric_ops) == {"loss", "accuracy"}


def test_linear_regression_becomes_regression_output_of_scores(graph):
    scores = _float()
    spec = _infer_ops(
        {"head": (ProblemType.LINEAR_REGRESSION, {"scores": scores})}
    ).estimator_spec()
    output = spec.export_outputs["head"]
    assert type(output) is RegressionOutput
    assert output.value is scores


@pytest.mark.parametrize(
    "problem_type", [ProblemType.CLASSIFICATION, ProblemType.LOGISTIC_REGRESSION]
)
def test_classification_types_become_classification_output(graph, problem_type):
    scores, classes = _float(), tf.constant([["a", "b"]])
    tensors = {"scores": scores, "classes": classes}
    spec = _infer_ops({"head": (problem_type, tensors)}).estimator_spec()
    output = spec.export_outputs["head"]
    assert type(output) is ClassificationOutput
    assert output.scores is scores
    assert output.classes is classes


def test_unspecified_becomes_predict_output_of_all_tensors(graph):
    tensors = {"a": tf.constant([1.0]), "b": tf.constant([2])}
    spec = _infer_ops({"head": (ProblemType.UNSPECIFIED, tensors)}).estimator_spec()
    output = spec.export_outputs["head"]
    assert type(output) is PredictOutput
    assert output.outputs == tensors


def test_scores_fall_back_to_probabilities(graph):
    probabilities = _float("probabilities")
    tensors = {"probabilities": probabilities}
    spec = _infer_ops({"head": (ProblemType.LINEAR_REGRESSION, tensors)}).estimator_spec()
    assert spec.export_outputs["head"].value is probabilities


def test_scores_win_over_probabilities(graph):
    scores, probabilities = _float(), _float("probabilities")
    tensors = {"scores": scores, "probabilities": probabilities, "classes": tf.constant(["a"])}
    spec = _infer_ops({"head": (ProblemType.CLASSIFICATION, tensors)}).estimator_spec()
    assert spec.export_outputs["head"].scores is scores


def test_missing_classes_log_a_warning_and_are_left_out(graph, caplog):
    probabilities = _float("probabilities")
    alternatives = {"head": (ProblemType.CLASSIFICATION, {"probabilities": probabilities})}
    with caplog.at_level(logging.WARNING, logger="harness"):
        spec = _infer_ops(alternatives).estimator_spec()
    assert spec.export_outputs["head"].classes is None
    assert spec.export_outputs["head"].scores is probabilities
    assert [r.getMessage() for r in caplog.records] == [
        "classes is None, Servo inference will not have class ids."
    ]


def test_non_string_classes_log_a_warning_and_are_left_out(graph, caplog):
    tensors = {"scores": _float(), "classes": tf.constant([[0, 1]])}
    with caplog.at_level(logging.WARNING, logger="harness"):
        spec = _infer_ops({"head": (ProblemType.CLASSIFICATION, tensors)}).estimator_spec()
    assert spec.export_outputs["head"].classes is None
    assert [r.getMessage() for r in caplog.records] == [
        "classes is not string, Servo inference will not have class ids."
    ]


def test_int_classes_without_scores_fail_in_classification_output(graph, caplog):
    tensors = {"classes": tf.constant([[0, 1]])}
    with caplog.at_level(logging.WARNING, logger="harness"):
        with pytest.raises(ValueError, match="At least one of `scores` and `classes`"):
            _infer_ops({"head": (ProblemType.CLASSIFICATION, tensors)}).estimator_spec()
    assert "classes is not string" in caplog.text


def test_regression_without_scores_fails_in_regression_output(graph):
    alternatives = {"head": (ProblemType.LINEAR_REGRESSION, {"other": _float()})}
    with pytest.raises(ValueError) as exc:
        _infer_ops(alternatives).estimator_spec()
    assert str(exc.value) == "Regression output value must be a float32 Tensor; got None"


@pytest.mark.parametrize("problem_type", [4, -1, "classification", None])
def test_unknown_problem_type_is_rejected(graph, problem_type):
    with pytest.raises(ValueError) as exc:
        _infer_ops({"head": (problem_type, {"scores": _float()})}).estimator_spec()
    assert str(exc.value) == f"Unknown problem_type={problem_type}"


def test_output_alternatives_are_converted_in_train_mode_too(graph):
    ops = _train_ops(output_alternatives={"head": (7, {"scores": _float()})})
    with pytest.raises(ValueError, match=re.escape("Unknown problem_type=7")):
        ops.estimator_spec()


def _two_heads():
    return {
        "a": (ProblemType.LINEAR_REGRESSION, {"scores": _float("a")}),
        "b": (ProblemType.UNSPECIFIED, {"out": _float("b")}),
    }


def test_several_alternatives_add_the_named_default(graph):
    alternatives = _two_heads()
    spec = _infer_ops(alternatives).estimator_spec(default_serving_output_alternative_key="b")
    assert set(spec.export_outputs) == {"a", "b", "serving_default"}
    default = spec.export_outputs["serving_default"]
    assert type(default) is PredictOutput
    assert default.outputs == spec.export_outputs["b"].outputs
    assert set(alternatives) == {"a", "b"}  # the ModelFnOps' own dict is left alone


def test_several_alternatives_without_default_key_raise_bare_key_error(graph):
    with pytest.raises(KeyError) as exc:
        _infer_ops(_two_heads()).estimator_spec()
    assert exc.value.args == (None,)


def test_several_alternatives_with_unknown_default_key_raise_key_error(graph):
    with pytest.raises(KeyError) as exc:
        _infer_ops(_two_heads()).estimator_spec("missing")
    assert exc.value.args == ("missing",)


def test_existing_serving_default_alternative_needs_no_default_key(graph):
    alternatives = _two_heads()
    alternatives["serving_default"] = alternatives.pop("b")
    spec = _infer_ops(alternatives).estimator_spec()
    assert set(spec.export_outputs) == {"a", "serving_default"}
    assert type(spec.export_outputs["serving_default"]) is PredictOutput


def test_single_alternative_is_aliased_as_serving_default(graph):
    alternatives = {"only": (ProblemType.LINEAR_REGRESSION, {"scores": _float()})}
    spec = _infer_ops(alternatives).estimator_spec()
    assert set(spec.export_outputs) == {"only", "serving_default"}
    assert spec.export_outputs["serving_default"] is spec.export_outputs["only"]


def test_sparse_predictions_are_rejected_by_estimator_spec(graph):
    sparse = tf.SparseTensor([[0]], [1.0], [2])
    ops = ModelFnOps(INFER, predictions={"s": sparse})
    with pytest.raises(TypeError) as exc:
        ops.estimator_spec()
    assert str(exc.value) == f"predictions[s] must be Tensor, given: {sparse}"


def test_estimator_spec_needs_the_tensors_graph_as_default():
    with tf.Graph().as_default():
        ops = _train_ops()
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="must be from the default graph"):
            ops.estimator_spec()
