"""``TPUEstimatorSpec`` and ``CrossShardOptimizer`` for TPU-era model_fns run on CPU/GPU.

`TPUEstimatorSpec` keeps TF's fields (mode, predictions, loss, train_op, eval_metrics,
export_outputs, scaffold_fn, host_call, training_hooks, evaluation_hooks, prediction_hooks) and
checks, as TF's ``__new__`` did:

- ``eval_metrics`` and ``host_call`` are each None or ``(fn, tensors)``: not a tuple/list ->
  ``ValueError('eval_metrics should be tuple or list')``; not two elements -> ``ValueError(
  'eval_metrics should have two elements.')``; ``fn`` not callable -> ``TypeError('eval_metrics[0]
  should be callable.')``; ``tensors`` not a tuple/list/dict -> ``ValueError('eval_metrics[1]
  should be tuple or list, or dict.')``; a list whose length differs from ``fn``'s arguments (and
  ``fn`` has no ``*args``) -> ``RuntimeError('In TPUEstimatorSpec.eval_metrics, length of tensors
  2 does not match method args of the function, which takes 3.')``.
- every hook must be a ``tf.compat.v1.train.SessionRunHook`` -> ``TypeError('All hooks must be
  SessionRunHook instances, given: ...')``.

`TPUEstimatorSpec.as_estimator_spec` is TF's CPU conversion: ``scaffold_fn()`` builds the
Scaffold; ``eval_metric_ops = fn(*tensors)`` (a list) or ``fn(**tensors)`` (a dict); a
``host_call`` is run every step by a hook added to the training, evaluation and prediction hooks
(its outputs are fetched; TF 2 summary writers created inside it are initialized once the
session exists). The result is a `harness.estimator_spec.EstimatorSpec`.

`to_estimator_spec(result)` is the hook for the harness's model_fn normalization: a
TPUEstimatorSpec becomes ``result.as_estimator_spec()``; anything else is returned unchanged.

`CrossShardOptimizer(opt, ...)` returns ``opt`` itself: without TPU shards there is nothing to
aggregate across (BERT's optimization.py wraps its optimizer only when ``use_tpu``).
"""

from __future__ import annotations

import collections
import inspect
from typing import Any

import tensorflow as tf

_SUMMARY_WRITER_COLLECTION = "_SUMMARY_WRITER_V2"

_FIELDS = [
    "mode",
    "predictions",
    "loss",
    "train_op",
    "eval_metrics",
    "export_outputs",
    "scaffold_fn",
    "host_call",
    "training_hooks",
    "evaluation_hooks",
    "prediction_hooks",
]


def _positional_args(fn: Any) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(fn).parameters.values() if p.kind in kinds]


def _has_varargs(fn: Any) -> bool:
    return any(
        p.kind is inspect.Parameter.VAR_POSITIONAL
        for p in inspect.signature(fn).parameters.values()
    )


def _validate_host_call(name: str, host_call: Any) -> None:
    if not isinstance(host_call, (tuple, list)):
        raise ValueError(f"{name} should be tuple or list")
    if len(host_call) != 2:
        raise ValueError(f"{name} should have two elements.")
    fn, tensors = host_call
    if not callable(fn):
        raise TypeError(f"{name}[0] should be callable.")
    if not isinstance(tensors, (tuple, list, dict)):
        raise ValueError(f"{name}[1] should be tuple or list, or dict.")
    if isinstance(tensors, (tuple, list)) and not _has_varargs(fn):
        expected = len(_positional_args(fn))
        if len(tensors) != expected:
            raise RuntimeError(
                f"In TPUEstimatorSpec.{name}, length of tensors {len(tensors)} does not match "
                f"method args of the function, which takes {expected}."
            )


def _call_host_fn(host_call: Any) -> Any:
    fn, tensors = host_call
    if isinstance(tensors, dict):
        return fn(**tensors)
    return fn(*tensors)


class _HostCallHook(tf.compat.v1.train.SessionRunHook):
    """Runs a host_call's outputs with every step, as TF's CPU path did."""

    def __init__(self, outputs: Any) -> None:
        self._outputs = outputs
        self._writer_init_ops: list[Any] = []

    def begin(self) -> None:
        # The initializers of the TF 2 summary writers created in this graph (TF's own
        # collection; the CPU path of TPUEstimator ran the same ops).
        self._writer_init_ops = tf.compat.v1.get_collection(_SUMMARY_WRITER_COLLECTION)

    def after_create_session(self, session: Any, coord: Any) -> None:
        if self._writer_init_ops:
            session.run(self._writer_init_ops)

    def before_run(self, run_context: Any) -> Any:
        return tf.compat.v1.train.SessionRunArgs(self._outputs)


class TPUEstimatorSpec(collections.namedtuple("TPUEstimatorSpec", _FIELDS)):
    """What a TPUEstimator model_fn returns (contract in the module docstring)."""

    def __new__(
        cls,
        mode: str,
        predictions: Any = None,
        loss: Any = None,
        train_op: Any = None,
        eval_metrics: Any = None,
        export_outputs: Any = None,
        scaffold_fn: Any = None,
        host_call: Any = None,
        training_hooks: Any = None,
        evaluation_hooks: Any = None,
        prediction_hooks: Any = None,
    ) -> TPUEstimatorSpec:
        if eval_metrics is not None:
            _validate_host_call("eval_metrics", eval_metrics)
        if host_call is not None:
            _validate_host_call("host_call", host_call)
        training_hooks = tuple(training_hooks or [])
        evaluation_hooks = tuple(evaluation_hooks or [])
        prediction_hooks = tuple(prediction_hooks or [])
        for hook in training_hooks + evaluation_hooks + prediction_hooks:
            if not isinstance(hook, tf.compat.v1.train.SessionRunHook):
                raise TypeError(f"All hooks must be SessionRunHook instances, given: {hook}")
        return super().__new__(
            cls,
            mode,
            predictions,
            loss,
            train_op,
            eval_metrics,
            export_outputs,
            scaffold_fn,
            host_call,
            training_hooks,
            evaluation_hooks,
            prediction_hooks,
        )

    def as_estimator_spec(self) -> Any:
        """The equivalent `harness.estimator_spec.EstimatorSpec` (TF's CPU conversion)."""
        from harness.estimator_spec import EstimatorSpec

        eval_metric_ops = None
        if self.eval_metrics is not None:
            eval_metric_ops = _call_host_fn(self.eval_metrics)
        hooks: tuple[Any, ...] = ()
        if self.host_call is not None:
            hooks = (_HostCallHook(_call_host_fn(self.host_call)),)
        scaffold = self.scaffold_fn() if self.scaffold_fn else None
        return EstimatorSpec(
            mode=self.mode,
            predictions=self.predictions,
            loss=self.loss,
            train_op=self.train_op,
            eval_metric_ops=eval_metric_ops,
            export_outputs=self.export_outputs,
            scaffold=scaffold,
            training_hooks=self.training_hooks + hooks,
            evaluation_hooks=self.evaluation_hooks + hooks,
            prediction_hooks=self.prediction_hooks + hooks,
        )


def to_estimator_spec(result: Any) -> Any:
    """``result.as_estimator_spec()`` for a `TPUEstimatorSpec`, else ``result`` unchanged."""
    if isinstance(result, TPUEstimatorSpec):
        return result.as_estimator_spec()
    return result


class CrossShardOptimizer:
    """``tf.contrib.tpu.CrossShardOptimizer``: constructing one returns the wrapped optimizer."""

    def __new__(
        cls,
        opt: Any,
        reduction: Any = None,
        name: str = "CrossShardOptimizer",
        group_assignment: Any = None,
    ) -> Any:
        return opt


__all__ = ["CrossShardOptimizer", "TPUEstimatorSpec", "to_estimator_spec"]
