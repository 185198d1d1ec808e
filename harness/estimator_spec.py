"""`EstimatorSpec`: what a core-style `model_fn` returns, validated by TF 1.x core rules.

The class reproduces `tf.estimator.EstimatorSpec` as TensorFlow 1.x core defined it
(`tensorflow/python/estimator/model_fn.py`, the class `ModelFnOps.estimator_spec()` built),
plus what tensorflow_estimator 2.x accepted from the code TF 2.x produces (marked "TF 2.x" below;
none of it relaxes a TF 1.x check). The one class serves both eras: `tf.estimator.EstimatorSpec`
of a TF 2.x program is this class too. `__new__` checks its arguments in this order, with these
exception types and messages:

1. train_op: None in TRAIN -> `ValueError('Missing train_op.')`; otherwise it must be a
   `tf.Operation` or `tf.Tensor` -> `TypeError('train_op must be Operation or Tensor, given: ...')`.
   TF 2.x: a `tf.Variable` is accepted and replaced by its `.op` (what
   `SyncReplicasOptimizer(...).minimize()` returns on resource variables is an unread variable
   whose `.op` is the assign op that runs the step).
2. loss: None in TRAIN or EVAL -> `ValueError('Missing loss.')`; otherwise a `tf.Tensor`
   (`TypeError('loss must be Tensor, given: ...')`) with one element or an unknown count
   (`ValueError('Loss must be scalar, given: ...')`); a `[1]`-like shape is reshaped to `[]`.
   TF 2.x: a `tf.Variable` is accepted; after the default-graph check (6) it is read into a
   Tensor (`tf.convert_to_tensor`, reshaped to `[]` if needed), so `spec.loss` is a Tensor.
3. predictions: None in PREDICT -> `ValueError('Missing predictions.')`, None otherwise -> `{}`;
   a dict needs Tensor values (`TypeError('predictions[k] must be Tensor, given: ...')`), anything
   else must be a Tensor (`TypeError('predictions must be Tensor, given: ...')`).
4. eval_metric_ops: None -> `{}`; a dict (`TypeError('eval_metric_ops must be a dict, given:
   ...')`) of `(metric_value, update_op)` tuples (`TypeError('Values of eval_metric_ops must be
   (metric_value, update_op) tuples, given: ... for key: ...')`) whose flattened members are
   Tensors, Variables or Operations (`TypeError('eval_metric_ops[k] must be Operation or
   Tensor, given: ...')`). TF 2.x: a value may also be a legacy Keras `Metric` object
   (`tf.keras.metrics.*` under `TF_USE_LEGACY_KERAS=1`, i.e. `tf_keras`) on which
   `update_state` was called (else `ValueError('Please call update_state(...) on the "<name>"
   metric')`); see 7.
5. export_outputs, in every mode when not None (TF 1.x; tensorflow_estimator looked at them in
   PREDICT only, a looser rule not taken): a dict (`TypeError('export_outputs must be dict,
   given: ...')`) of `ExportOutput` values (`TypeError('Values in export_outputs must be
   ExportOutput objects. Given: ...')`). An empty dict is allowed. A single entry under another
   key is also added under 'serving_default' (the caller's dict is changed in place, as in TF);
   several entries without 'serving_default' -> `ValueError('Multiple export_outputs were
   provided, but none of them is specified as the default. ...')`. None stays None in TRAIN and
   EVAL; TF 2.x (and late TF 1.x): in PREDICT, None becomes
   `{'serving_default': PredictOutput(predictions)}`.
6. Every prediction value, the loss, the train_op and every eval_metric_ops member must belong to
   the current default graph, else a `ValueError` naming the object and the two likely causes.
7. TF 2.x: each Keras `Metric` value must have its update ops and its `result()` in the default
   graph (same ValueError), and is then replaced, in the caller's dict as tensorflow_estimator
   did, by `(metric.result(), update_op)`; its variables join the LOCAL_VARIABLES collection
   (so the Scaffold's local_init_op initializes them) and METRIC_VARIABLES
   (`convert_keras_metrics`).
8. Hooks: each of the four hook arguments becomes a tuple (None -> `()`); every element must be a
   `tf.compat.v1.train.SessionRunHook` -> `TypeError('All hooks must be SessionRunHook
   instances, given: ...')`.
9. scaffold: None -> a new `tf.compat.v1.train.Scaffold()`; anything else must be a Scaffold ->
   `TypeError('scaffold must be tf.train.Scaffold. Given: ...')`.

`mode` itself is not validated. `_replace(**fields)` refuses a different mode with
`ValueError('mode of EstimatorSpec cannot be changed.')` and otherwise builds a new, fully
re-validated EstimatorSpec.

Choices where TensorFlow versions differ:
- Messages are the TF 1.x core ones (tensorflow_estimator kept them; TF 2.21's own
  `export_utils` rewords the export_outputs errors, e.g. '`export_outputs` must be dict,
  received: ...'; those are not used).
- The checks keep the TF 1.x order (eval_metric_ops before export_outputs, graphs after types);
  tensorflow_estimator checked export_outputs and hooks before eval_metric_ops.
- tensorflow_estimator skipped the graph checks when executing eagerly; here `tf.Tensor` in
  TF 2.21 also covers eager tensors, and one that reaches the default-graph check fails it like a
  tensor from another graph. Predictions must still be Tensors (not Variables).
- A Keras metric whose `update_state` ran several times gets all its updates grouped as its
  update op (tensorflow_estimator kept only the first).
- Keras 3 metric objects (no `TF_USE_LEGACY_KERAS`) are not recognized and fail check 4.
- `_replace` with a field name the class does not have raises `ValueError('Got unexpected field
  names: [...]')` like a plain namedtuple; TF 1.x silently ignored such names.
"""

from __future__ import annotations

import collections
import sys
from typing import Any

import tensorflow as tf

from harness.export_output import DEFAULT_SERVING_SIGNATURE_DEF_KEY, ExportOutput, PredictOutput

# Core mode strings (tf.estimator.ModeKeys); `harness.model_fn.ModeKeys` holds the same values.
_TRAIN = "train"
_EVAL = "eval"
_PREDICT = "infer"

_GRAPH_ERROR_TEMPLATE = (
    '{0} with "{1}" must be from the default graph. '
    "Possible causes of this error include: \n\n"
    "1) {0} was created outside the context of the default graph."
    "\n\n"
    "2) The object passed through to EstimatorSpec was not created "
    'in the most recent call to "model_fn".'
)

_FIELDS = [
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
]


class EstimatorSpec(collections.namedtuple("EstimatorSpec", _FIELDS)):
    """Ops and objects returned from a `model_fn`, validated as TF 1.x core did.

    Required per mode: TRAIN needs `loss` and `train_op`, EVAL needs `loss`, PREDICT ('infer')
    needs `predictions`. See the module docstring for every rule and message.
    """

    __slots__ = ()

    def __new__(
        cls,
        mode: str,
        predictions: Any = None,
        loss: Any = None,
        train_op: Any = None,
        eval_metric_ops: Any = None,
        export_outputs: Any = None,
        training_chief_hooks: Any = None,
        training_hooks: Any = None,
        scaffold: Any = None,
        evaluation_hooks: Any = None,
        prediction_hooks: Any = None,
    ) -> EstimatorSpec:
        """Creates a validated `EstimatorSpec`.

        Raises:
            ValueError: a required field is missing for `mode`, the loss is not scalar, several
                export outputs lack a default, or a tensor is not from the default graph.
            TypeError: a field has the wrong type.
        """
        train_op = _check_train_op(train_op, mode)
        loss = _check_loss(loss, mode)
        predictions = _check_predictions(predictions, mode)
        eval_metric_ops = _check_eval_metric_ops(eval_metric_ops)
        export_outputs = _check_export_outputs(export_outputs, predictions, mode)
        _check_default_graph(predictions, loss, train_op, eval_metric_ops)
        convert_keras_metrics(eval_metric_ops, check_graph=True)
        loss = _read_variable_loss(loss)

        training_chief_hooks = tuple(training_chief_hooks or [])
        training_hooks = tuple(training_hooks or [])
        evaluation_hooks = tuple(evaluation_hooks or [])
        prediction_hooks = tuple(prediction_hooks or [])
        for hook in training_hooks + training_chief_hooks + evaluation_hooks + prediction_hooks:
            if not isinstance(hook, tf.compat.v1.train.SessionRunHook):
                raise TypeError(f"All hooks must be SessionRunHook instances, given: {hook}")

        scaffold = scaffold or tf.compat.v1.train.Scaffold()
        if not isinstance(scaffold, tf.compat.v1.train.Scaffold):
            raise TypeError(f"scaffold must be tf.train.Scaffold. Given: {scaffold}")

        return super().__new__(
            cls,
            mode=mode,
            predictions=predictions,
            loss=loss,
            train_op=train_op,
            eval_metric_ops=eval_metric_ops,
            export_outputs=export_outputs,
            training_chief_hooks=training_chief_hooks,
            training_hooks=training_hooks,
            scaffold=scaffold,
            evaluation_hooks=evaluation_hooks,
            prediction_hooks=prediction_hooks,
        )

    def _replace(self, **kwds: Any) -> EstimatorSpec:
        """Returns a new, re-validated EstimatorSpec with the given fields replaced.

        Raises:
            ValueError: `mode` is given and differs from this spec's mode, or a name is not a
                field.
        """
        if "mode" in kwds and self.mode != kwds["mode"]:
            raise ValueError("mode of EstimatorSpec cannot be changed.")
        new_fields = [kwds.pop(name, value) for name, value in zip(self._fields, self, strict=True)]
        if kwds:
            raise ValueError(f"Got unexpected field names: {list(kwds)!r}")
        return EstimatorSpec(*new_fields)


def _check_is_tensor_or_operation(x: Any, name: str) -> None:
    if not isinstance(x, (tf.Operation, tf.Tensor, tf.Variable)):
        raise TypeError(f"{name} must be Operation or Tensor, given: {x}")


def _check_is_tensor(x: Any, name: str) -> Any:
    if not isinstance(x, tf.Tensor):
        raise TypeError(f"{name} must be Tensor, given: {x}")
    return x


def _check_train_op(train_op: Any, mode: str) -> Any:
    if train_op is None:
        if mode == _TRAIN:
            raise ValueError("Missing train_op.")
        return None
    _check_is_tensor_or_operation(train_op, "train_op")
    if isinstance(train_op, tf.Variable):
        # E.g. SyncReplicasOptimizer.minimize() on resource variables: an unread variable
        # whose `.op` is the assign op that runs the whole step.
        train_op = train_op.op
    return train_op


def _check_loss(loss: Any, mode: str) -> Any:
    if loss is None:
        if mode in (_TRAIN, _EVAL):
            raise ValueError("Missing loss.")
        return None
    if not isinstance(loss, tf.Variable):
        loss = _check_is_tensor(loss, "loss")
    shape = loss.get_shape()
    if shape.num_elements() not in (None, 1):
        raise ValueError(f"Loss must be scalar, given: {loss}")
    if isinstance(loss, tf.Variable):
        return loss  # Read (and reshaped) after the default-graph check.
    if not shape.is_compatible_with(tf.TensorShape([])):
        loss = tf.reshape(loss, [])
    return loss


def _read_variable_loss(loss: Any) -> Any:
    """A Variable loss becomes a scalar Tensor reading it; anything else is returned as is."""
    if not isinstance(loss, tf.Variable):
        return loss
    value = tf.convert_to_tensor(loss)
    if not value.shape.is_compatible_with(tf.TensorShape([])):
        value = tf.reshape(value, [])
    return value


def _check_predictions(predictions: Any, mode: str) -> Any:
    if predictions is None:
        if mode == _PREDICT:
            raise ValueError("Missing predictions.")
        return {}
    if isinstance(predictions, dict):
        return {k: _check_is_tensor(v, f"predictions[{k}]") for k, v in predictions.items()}
    return _check_is_tensor(predictions, "predictions")


def _check_eval_metric_ops(eval_metric_ops: Any) -> dict:
    if eval_metric_ops is None:
        return {}
    if not isinstance(eval_metric_ops, dict):
        raise TypeError(f"eval_metric_ops must be a dict, given: {eval_metric_ops}")
    for key, value_and_update in eval_metric_ops.items():
        if is_keras_metric(value_and_update):
            _check_metric_has_updates(value_and_update)
            continue
        if not isinstance(value_and_update, tuple) or len(value_and_update) != 2:
            raise TypeError(
                "Values of eval_metric_ops must be (metric_value, update_op) tuples, "
                f"given: {value_and_update} for key: {key}"
            )
        metric_value, metric_update = value_and_update
        for member in tf.nest.flatten(metric_value):
            _check_is_tensor_or_operation(member, f"eval_metric_ops[{key}]")
        _check_is_tensor_or_operation(metric_update, f"eval_metric_ops[{key}]")
    return eval_metric_ops


def _check_export_outputs(export_outputs: Any, predictions: Any, mode: str) -> Any:
    """Validates export_outputs, adds the single-entry 'serving_default' alias in place.

    None becomes `{'serving_default': PredictOutput(predictions)}` in PREDICT mode and stays None
    in the other modes.
    """
    if export_outputs is None:
        if mode != _PREDICT:
            return None
        export_outputs = {DEFAULT_SERVING_SIGNATURE_DEF_KEY: PredictOutput(predictions)}
    if not isinstance(export_outputs, dict):
        raise TypeError(f"export_outputs must be dict, given: {export_outputs}")
    for value in export_outputs.values():
        if not isinstance(value, ExportOutput):
            raise TypeError(
                f"Values in export_outputs must be ExportOutput objects. Given: {export_outputs}"
            )
    if len(export_outputs) == 1:
        ((key, value),) = export_outputs.items()
        if key != DEFAULT_SERVING_SIGNATURE_DEF_KEY:
            export_outputs[DEFAULT_SERVING_SIGNATURE_DEF_KEY] = value
    if len(export_outputs) > 1 and DEFAULT_SERVING_SIGNATURE_DEF_KEY not in export_outputs:
        raise ValueError(
            "Multiple export_outputs were provided, but none of them is "
            "specified as the default.  Do this by naming one of them with "
            "signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY."
        )
    return export_outputs


def _check_default_graph(predictions: Any, loss: Any, train_op: Any, eval_metric_ops: dict):
    """Raises ValueError if any tensor or op is not from `tf.compat.v1.get_default_graph()`."""
    default_graph = tf.compat.v1.get_default_graph()

    def check(value: Any, what: str, label: str) -> None:
        # An eager tensor has no graph (its `.graph` raises AttributeError).
        if getattr(value, "graph", None) is not default_graph:
            raise ValueError(_GRAPH_ERROR_TEMPLATE.format(what, label))

    if isinstance(predictions, dict):
        for key, value in predictions.items():
            check(value, "prediction values", f"{key}: {_name(value)}")
    elif predictions is not None:
        check(predictions, "prediction values", _name(predictions))
    if loss is not None:
        check(loss, "loss", _name(loss))
    if train_op is not None:
        check(train_op, "train_op", _name(train_op))
    for key, value in eval_metric_ops.items():
        if is_keras_metric(value):
            continue  # Checked by `convert_keras_metrics`.
        for member in tf.nest.flatten(value):
            check(member, "eval_metric_ops", f"{key}: {_name(member)}")


def _name(value: Any) -> str:
    """The graph name of a tensor or op (an eager tensor has none: its repr is used)."""
    return getattr(value, "name", None) or repr(value)


def is_keras_metric(value: Any) -> bool:
    """Whether `value` is a legacy Keras (`tf_keras`, i.e. `tf.keras` under
    `TF_USE_LEGACY_KERAS=1`) `Metric` object.

    Only an already imported `tf_keras` is consulted: a metric object cannot exist without it.
    """
    tf_keras = sys.modules.get("tf_keras")
    metric_class = getattr(getattr(tf_keras, "metrics", None), "Metric", None)
    return metric_class is not None and isinstance(value, metric_class)


def _check_metric_has_updates(metric: Any) -> None:
    if not metric.updates:
        raise ValueError(f'Please call update_state(...) on the "{metric.name}" metric')


def convert_keras_metrics(eval_metric_ops: dict, *, check_graph: bool) -> dict:
    """Replaces each Keras `Metric` value of `eval_metric_ops`, in place, by a pair.

    The pair is `(metric.result(), update_op)`, where update_op is the metric's single update
    op (`metric.updates[0]`) or, when `update_state` was called several times, all of them
    grouped. Every metric variable is added to the LOCAL_VARIABLES collection (so the
    Scaffold's local_init_op initializes it) and to METRIC_VARIABLES, unless it is already
    there. Other values are left as they are.

    Args:
        eval_metric_ops: the dict to convert.
        check_graph: also require every update op and the result to belong to the default
            graph (EstimatorSpec's rule; ModelFnOps checks no graphs).

    Returns:
        `eval_metric_ops` itself.

    Raises:
        ValueError: a metric has no updates (`'Please call update_state(...) on the "<name>"
            metric'`) or, with `check_graph`, an op is not from the default graph.
    """
    default_graph = tf.compat.v1.get_default_graph()
    variables: list = []
    for key, metric in list(eval_metric_ops.items()):
        if not is_keras_metric(metric):
            continue
        _check_metric_has_updates(metric)
        updates = list(metric.updates)
        if check_graph:
            for update in updates:
                if getattr(update, "graph", None) is not default_graph:
                    raise ValueError(
                        _GRAPH_ERROR_TEMPLATE.format("eval_metric_ops", f"{key}: {_name(update)}")
                    )
        result = metric.result()
        if check_graph and getattr(result, "graph", None) is not default_graph:
            raise ValueError(
                _GRAPH_ERROR_TEMPLATE.format("eval_metric_ops", f"{key}: {_name(result)}")
            )
        update_op = updates[0] if len(updates) == 1 else tf.group(*updates)
        eval_metric_ops[key] = (result, update_op)
        variables.extend(v for v in metric.variables if all(v is not w for w in variables))
    for collection in (
        tf.compat.v1.GraphKeys.LOCAL_VARIABLES,
        tf.compat.v1.GraphKeys.METRIC_VARIABLES,
    ):
        present = tf.compat.v1.get_collection(collection)
        for variable in variables:
            if not any(variable is v for v in present):
                tf.compat.v1.add_to_collection(collection, variable)
    return eval_metric_ops
