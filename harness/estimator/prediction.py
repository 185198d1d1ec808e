"""Predictions from a checkpoint: Estimator.predict's INFER graph fed by input_fn.

``predict`` builds a new graph (``harness.runtime.graph.user_graph``: Keras state reset, the
job's seed, the global step), calls ``input_fn`` in INFER mode, then ``model_fn`` in INFER
mode with ``labels=None`` (labels input_fn returns are dropped, as Estimator did), restores
``checkpoint_path`` with the model's Scaffold, and yields the predictions batch by batch until
the input ends (``OutOfRangeError``/``StopIteration``). Like TF's, it is a generator: the
graph is built on the first ``next()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import tensorflow as tf

from harness.config import RunConfig
from harness.job import JobSpec
from harness.model_fn import ModeKeys
from harness.runtime.graph import UserCodeError, call_user_fns, user_graph

v1 = tf.compat.v1


def predict(
    job: JobSpec,
    config: RunConfig,
    model_fn: Callable[..., Any],
    input_fn: Callable[..., Any],
    checkpoint_path: str,
    predict_keys: str | Sequence[str] | None = None,
    hooks: Sequence[Any] = (),
    yield_single_examples: bool = True,
) -> Iterator[Any]:
    """Yields predictions: one example at a time (a dict when predictions are a dict), or
    whole batches with ``yield_single_examples=False``.

    Raises:
        ValueError: ``predict_keys`` names no prediction, is given for non-dict predictions,
            or the predictions' batch lengths differ.
        UserCodeError: model_fn/input_fn fail, or model_fn returns another mode.
    """
    with user_graph(job):
        _, ops = call_user_fns(job, config, model_fn, input_fn, ModeKeys.INFER, with_labels=False)
        if ops.mode != ModeKeys.INFER:
            raise UserCodeError(f"model_fn returned mode={ops.mode!r} when called with 'infer'")
        predictions = _extract_keys(ops.predictions, predict_keys)
        creator = v1.train.ChiefSessionCreator(
            scaffold=ops.scaffold or v1.train.Scaffold(),
            checkpoint_filename_with_path=checkpoint_path,
            config=config.session_config,
        )
        all_hooks = [*hooks, *(getattr(ops, "prediction_hooks", None) or ())]
        with v1.train.MonitoredSession(creator, hooks=all_hooks) as session:
            while not session.should_stop():
                values = session.run(predictions)
                if not yield_single_examples:
                    yield values
                elif not isinstance(values, dict):
                    yield from values
                else:
                    for i in range(_batch_length(values)):
                        yield {key: value[i] for key, value in values.items()}


def _extract_keys(predictions: Any, predict_keys: str | Sequence[str] | None) -> Any:
    """TF's ``Estimator._extract_keys``: the requested subset of dict predictions."""
    if not predict_keys:
        return predictions
    if isinstance(predict_keys, str):
        predict_keys = [predict_keys]
    if not isinstance(predictions, dict):
        raise ValueError("predict_keys argument is not valid in case of non-dict predictions.")
    existing = list(predictions)
    chosen = {key: value for key, value in predictions.items() if key in predict_keys}
    if not chosen:
        raise ValueError(
            f"Expected to run at least one output from {existing}, provided {list(predict_keys)}."
        )
    return chosen


def _batch_length(values: dict[str, Any]) -> int:
    length = None
    for key, value in values.items():
        length = length or value.shape[0]
        if value.shape[0] != length:
            raise ValueError(
                f"Batch length of predictions should be same. {key} has different batch "
                "length than others."
            )
    return length or 0
