"""The `model_fn` contract of tf.contrib.learn: mode keys, constants and `ModelFnOps`.

`ModelFnOps` reproduces `tf.contrib.learn.ModelFnOps` (TF 1.x,
`tensorflow/contrib/learn/python/learn/estimators/model_fn.py`): the same fields in the same
order (`mode` last), the same `__new__` defaults, and the same checks in the same order with the
same exception types and messages:

1. `ModeKeys.validate(mode)` -> `ValueError('Invalid mode %s.')`.
2. predictions, loss and train_op that are graph elements must share one graph ->
   `ValueError('%s must be from the same graph as %s.')` (TF 1.x wording; a dict of predictions
   is not checked).
3. train_op: None in TRAIN -> `ValueError('Missing train_op.')`; a non-Operation is converted
   with `tf.convert_to_tensor` and replaced by its producing op. For a `tf.Variable` (e.g. what
   `SyncReplicasOptimizer(...).minimize()` returns on resource variables: an unread variable
   standing for its assign op) that op is a read of the variable with a control dependency on
   the assign, so running the train_op runs the training step.
4. loss: None in TRAIN or EVAL -> `ValueError('Missing loss.')`; otherwise converted to a
   tensor; more than one element -> `ValueError('Loss must be scalar: %s.')`; a `[1]`-like shape
   is reshaped to `[]`.
5. predictions: None in INFER or EVAL -> `ValueError('Missing predictions.')`; otherwise each
   value (or the single value) is converted to a Tensor or SparseTensor.
6. eval_metric_ops: None -> `{}`; not a dict -> `ValueError('eval_metric_ops must be a dict.')`.
   Other values are not checked, with one addition for the code TF 2.x produces: a legacy
   Keras `Metric` object (`tf.keras.metrics.*` under `TF_USE_LEGACY_KERAS=1`) is converted in
   place to `(metric.result(), update_op)` and its variables are added to the LOCAL_VARIABLES
   and METRIC_VARIABLES collections, as tensorflow_estimator's EstimatorSpec did (a metric
   whose `update_state` was never called -> `ValueError('Please call update_state(...) on the
   "<name>" metric')`). See `harness.estimator_spec.convert_keras_metrics`.
7. hooks: None -> `[]`; every element of `training_hooks + training_chief_hooks` must be a
   `tf.compat.v1.train.SessionRunHook` -> `TypeError('All hooks returned from model_fn must be
   SessionRunHook instances, got instance of %s: %s')`. (The two are concatenated with `+`, so a
   tuple and a list together raise Python's own TypeError, as in TF.)
8. output_alternatives and scaffold are stored as given (scaffold may stay None).

`_replace` is the plain namedtuple one and does not re-validate. `estimator_spec()` converts to
`harness.estimator_spec.EstimatorSpec` exactly as TF 1.x did (see its docstring).

One addition: `copy.copy` and pickling work (TF's class passed the fields to `__new__` in field
order, which put `predictions` in the `mode` slot).
"""

from __future__ import annotations

import collections
import logging
from typing import Any

import tensorflow as tf

from harness.estimator_spec import EstimatorSpec, convert_keras_metrics
from harness.export_output import (
    DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    ClassificationOutput,
    ExportOutput,
    PredictOutput,
    RegressionOutput,
)

logger = logging.getLogger(__name__)


class ModeKeys:
    """Standard names for model modes (contrib values; `PREDICT` is the core name of INFER)."""

    TRAIN = "train"
    EVAL = "eval"
    INFER = "infer"
    PREDICT = INFER

    @classmethod
    def validate(cls, key: Any) -> None:
        """Raises `ValueError('Invalid mode %s.')` unless `key` is 'train', 'eval' or 'infer'."""
        if key not in (cls.TRAIN, cls.EVAL, cls.INFER):
            raise ValueError(f"Invalid mode {key}.")


class ProblemType:
    """Problem types of `output_alternatives` entries; they choose the export output class."""

    UNSPECIFIED = 0
    CLASSIFICATION = 1
    LINEAR_REGRESSION = 2
    LOGISTIC_REGRESSION = 3


class PredictionKey:
    """Standard keys of a predictions dict."""

    CLASSES = "classes"
    PROBABILITIES = "probabilities"
    LOGITS = "logits"
    LOGISTIC = "logistic"
    SCORES = "scores"
    TOP_K = "top_k"
    GENERIC = "output"


class MetricKey:
    """Standard metric names (the `%f` ones take a threshold)."""

    LOSS = "loss"
    AUC = "auc"
    PREDICTION_MEAN = "labels/prediction_mean"
    LABEL_MEAN = "labels/actual_label_mean"
    ACCURACY = "accuracy"
    ACCURACY_BASELINE = "accuracy/baseline_label_mean"
    ACCURACY_MEAN = "accuracy/threshold_%f_mean"
    PRECISION_MEAN = "precision/positive_threshold_%f_mean"
    RECALL_MEAN = "recall/positive_threshold_%f_mean"


_FIELDS = [
    "predictions",
    "loss",
    "train_op",
    "eval_metric_ops",
    "output_alternatives",
    "training_chief_hooks",
    "training_hooks",
    "scaffold",
    "mode",
]


class ModelFnOps(collections.namedtuple("ModelFnOps", _FIELDS)):
    """Ops returned from a `model_fn`, validated as tf.contrib.learn did.

    `output_alternatives` maps a head name to `(problem_type, {tensor_name: Tensor})`.
    """

    __slots__ = ()

    def __new__(
        cls,
        mode: str,
        predictions: Any = None,
        loss: Any = None,
        train_op: Any = None,
        eval_metric_ops: dict | None = None,
        output_alternatives: dict | None = None,
        training_chief_hooks: list | None = None,
        training_hooks: list | None = None,
        scaffold: tf.compat.v1.train.Scaffold | None = None,
    ) -> ModelFnOps:
        """Creates a validated `ModelFnOps` (rules and messages in the module docstring).

        Raises:
            ValueError: invalid mode, mixed graphs, a missing field, non-scalar loss, or
                eval_metric_ops not a dict.
            TypeError: a hook is not a SessionRunHook, or a value cannot become a tensor.
        """
        ModeKeys.validate(mode)
        _assert_same_graph((predictions, loss, train_op))

        if train_op is None:
            if mode == ModeKeys.TRAIN:
                raise ValueError("Missing train_op.")
        elif not isinstance(train_op, tf.Operation):
            train_op = tf.convert_to_tensor(train_op).op

        if loss is None:
            if mode in (ModeKeys.TRAIN, ModeKeys.EVAL):
                raise ValueError("Missing loss.")
        else:
            loss = tf.convert_to_tensor(loss)
            shape = loss.get_shape()
            if shape.num_elements() not in (None, 1):
                raise ValueError(f"Loss must be scalar: {loss}.")
            if not shape.is_compatible_with(tf.TensorShape([])):
                loss = tf.reshape(loss, [])

        if predictions is None:
            if mode in (ModeKeys.INFER, ModeKeys.EVAL):
                raise ValueError("Missing predictions.")
        elif isinstance(predictions, dict):
            predictions = {k: _to_tensor_or_sparse(v) for k, v in predictions.items()}
        else:
            predictions = _to_tensor_or_sparse(predictions)

        if eval_metric_ops is None:
            eval_metric_ops = {}
        elif not isinstance(eval_metric_ops, dict):
            raise ValueError("eval_metric_ops must be a dict.")
        else:
            convert_keras_metrics(eval_metric_ops, check_graph=False)

        if training_chief_hooks is None:
            training_chief_hooks = []
        if training_hooks is None:
            training_hooks = []
        for hook in training_hooks + training_chief_hooks:
            if not isinstance(hook, tf.compat.v1.train.SessionRunHook):
                raise TypeError(
                    "All hooks returned from model_fn must be SessionRunHook instances, "
                    f"got instance of {type(hook)}: {hook}"
                )

        return super().__new__(
            cls,
            predictions=predictions,
            loss=loss,
            train_op=train_op,
            eval_metric_ops=eval_metric_ops,
            output_alternatives=output_alternatives,
            training_chief_hooks=training_chief_hooks,
            training_hooks=training_hooks,
            scaffold=scaffold,
            mode=mode,
        )

    def __getnewargs__(self) -> tuple:
        # `__new__` takes mode first; the field order has it last.
        return (self.mode, *self[:-1])

    def estimator_spec(
        self, default_serving_output_alternative_key: str | None = None
    ) -> EstimatorSpec:
        """Creates the equivalent `EstimatorSpec`, as TF 1.x `ModelFnOps.estimator_spec` did.

        Each `output_alternatives` entry `(problem_type, tensors)` becomes an export output:
        LINEAR_REGRESSION -> `RegressionOutput(scores)`; CLASSIFICATION and LOGISTIC_REGRESSION ->
        `ClassificationOutput(scores, classes)`; UNSPECIFIED -> `PredictOutput(tensors)`. Scores
        are `tensors['scores']`, else `tensors['probabilities']`. Classes are `tensors['classes']`
        only when it is a string tensor; otherwise a warning is logged and classes are None.
        With more than one alternative and none named 'serving_default', the alternative under
        `default_serving_output_alternative_key` is also exported as 'serving_default' (a missing
        or None key raises a bare KeyError, as in TF); with exactly one, EstimatorSpec adds the
        alias. The conversion runs in every mode. The 'loss' metric is dropped from
        eval_metric_ops, and INFER becomes PREDICT (the same string, 'infer').

        Must be called with the tensors' graph as the default graph (EstimatorSpec checks it).

        Raises:
            ValueError: unknown problem type (`'Unknown problem_type=%s'`), an export output
                class rejects its tensors, or EstimatorSpec validation fails.
            KeyError: several alternatives, no 'serving_default' entry, and
                `default_serving_output_alternative_key` is not one of their keys.
            TypeError: EstimatorSpec rejects a field (e.g. SparseTensor predictions).
        """
        export_outputs = None
        if self.output_alternatives:
            alternatives = self.output_alternatives
            if len(alternatives) > 1 and DEFAULT_SERVING_SIGNATURE_DEF_KEY not in alternatives:
                alternatives = alternatives.copy()
                alternatives[DEFAULT_SERVING_SIGNATURE_DEF_KEY] = alternatives[
                    default_serving_output_alternative_key
                ]
            export_outputs = {key: _export_output(*value) for key, value in alternatives.items()}

        eval_metric_ops = {
            key: value for key, value in self.eval_metric_ops.items() if key != MetricKey.LOSS
        }
        ModeKeys.validate(self.mode)  # Only reachable through `_replace`.
        return EstimatorSpec(
            mode=self.mode,  # contrib TRAIN/EVAL/INFER == core TRAIN/EVAL/PREDICT.
            predictions=self.predictions,
            loss=self.loss,
            train_op=self.train_op,
            eval_metric_ops=eval_metric_ops,
            export_outputs=export_outputs,
            training_chief_hooks=self.training_chief_hooks,
            training_hooks=self.training_hooks,
            scaffold=self.scaffold,
        )


def _assert_same_graph(items: tuple) -> None:
    """Raises ValueError if two graph elements among `items` come from different graphs."""
    if tf.compat.v1.get_default_graph().building_function:
        return
    original = None
    for item in items:
        element = _graph_element(item)
        if element is None:
            continue
        if original is None:
            original = element
        elif element.graph is not original.graph:
            raise ValueError(f"{element} must be from the same graph as {original}.")


def _graph_element(item: Any) -> Any:
    """`item` if it lives in a graph (tensor, op, sparse tensor), its graph tensor, or None."""
    if isinstance(item, (tf.Operation, tf.SparseTensor, tf.IndexedSlices)):
        return item
    if isinstance(item, tf.Tensor):
        # An eager tensor has no graph: it is converted into the default graph later.
        return item if getattr(item, "graph", None) is not None else None
    as_graph_element = getattr(item, "_as_graph_element", None)
    if callable(as_graph_element):  # tf.Variable
        return as_graph_element()
    return None


def _to_tensor_or_sparse(value: Any) -> tf.Tensor | tf.SparseTensor:
    if isinstance(value, tf.compat.v1.SparseTensorValue):
        value = tf.SparseTensor.from_value(value)
    if isinstance(value, tf.SparseTensor):
        return value
    return tf.convert_to_tensor(value)


def _scores(tensors: dict) -> Any:
    scores = tensors.get(PredictionKey.SCORES)
    if scores is None:
        scores = tensors.get(PredictionKey.PROBABILITIES)
    return scores


def _classes(tensors: dict) -> Any:
    classes = tensors.get(PredictionKey.CLASSES)
    if classes is None:
        logger.warning("classes is None, Servo inference will not have class ids.")
        return None
    if classes.dtype != tf.string:
        # Servo classification can only serve string classes.
        logger.warning("classes is not string, Servo inference will not have class ids.")
        return None
    return classes


def _export_output(problem_type: Any, tensors: dict) -> ExportOutput:
    if problem_type == ProblemType.LINEAR_REGRESSION:
        return RegressionOutput(_scores(tensors))
    if problem_type in (ProblemType.CLASSIFICATION, ProblemType.LOGISTIC_REGRESSION):
        return ClassificationOutput(scores=_scores(tensors), classes=_classes(tensors))
    if problem_type == ProblemType.UNSPECIFIED:
        return PredictOutput(tensors)
    raise ValueError(f"Unknown problem_type={problem_type}")
