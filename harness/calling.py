"""Calling a user's `model_fn` and `input_fn` the way TF 1.x Estimator did.

Arguments are matched by name. The declared names of a function are found like TF's
`function_utils.fn_args`: for a `functools.partial`, the wrapped function's names minus the ones
the partial binds (positionally from the left, or by keyword); for a callable object, its
`__call__`; for a bound method, everything after `self`/`cls`. Two deliberate extensions, which
only affect functions TF could not call at all: keyword-only parameters count as declared, and a
`functools.wraps` decorator is seen through (`inspect.signature` follows `__wrapped__`).
`*args`/`**kwargs` declare nothing.

`call_model_fn` rules (core Estimator's `_verify_model_fn_args` + `_call_model_fn`, in order):

1. `features` must be declared -> `ValueError('model_fn (%s) must include features argument.')`.
2. `params` is not None but not declared -> `ValueError('model_fn (%s) does not include params
   argument, but params (%s) is passed to Estimator.')`. Declared but None: a warning, and
   `params={}` is passed (core Estimator kept `copy.deepcopy(params or {})`).
3. Any declared name outside (features, labels, mode, params, config) -> `ValueError('model_fn
   (%s) has following not expected args: [...]')`. (TF also tolerated a stray `self`; here it is
   reported, since it could never be filled.)
4. `labels` is passed when declared (even when None); not declared and labels is not None ->
   `ValueError('model_fn does not take labels, but input_fn returns labels.')`.
5. `mode`, `params` and `config` are passed when declared; every argument goes by keyword.

The result may be a `ModelFnOps` or an `EstimatorSpec` (returned as they are) or the legacy
`(predictions, loss, train_op)` tuple (a list of three is accepted too, as contrib's length check
did), wrapped as `ModelFnOps(mode, predictions, loss, train_op)`. Anything else ->
`ValueError('Unrecognized value returned by model_fn, please return ModelFnOps.')`.

`call_input_fn` passes the declared names among (mode, params, config), by keyword, inside
`tf.device('/cpu:0')` as Estimator did, and returns `(features, labels)`. See its docstring.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from harness.estimator_spec import EstimatorSpec
from harness.model_fn import ModelFnOps

logger = logging.getLogger(__name__)

_VALID_MODEL_FN_ARGS = frozenset(["features", "labels", "mode", "params", "config"])
_DECLARED_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def fn_args(fn: Callable) -> tuple[str, ...]:
    """Returns the parameter names `fn` can be called with by keyword, in order.

    Args:
        fn: a function, bound method, callable object or `functools.partial` of one.
    """
    if isinstance(fn, functools.partial):
        names = fn_args(fn.func)[len(fn.args) :]
        return tuple(name for name in names if name not in (fn.keywords or {}))
    if not inspect.isroutine(fn) and not inspect.isclass(fn) and callable(fn):
        fn = fn.__call__  # A callable object: its bound __call__ (self is dropped below).
    parameters = inspect.signature(fn).parameters.values()
    return tuple(p.name for p in parameters if p.kind in _DECLARED_KINDS)


def call_model_fn(
    model_fn: Callable,
    features: Any,
    labels: Any,
    mode: str,
    params: Any,
    config: Any,
) -> ModelFnOps | EstimatorSpec:
    """Calls `model_fn` with the arguments it declares and normalizes what it returns.

    Args:
        model_fn: the user's model function (rules in the module docstring).
        features: what input_fn returned as features.
        labels: what input_fn returned as labels (None when it returned none).
        mode: a `ModeKeys` value.
        params: hyperparameters, or None.
        config: the `RunConfig` of this task.

    Returns:
        A `ModelFnOps` or an `EstimatorSpec`.

    Raises:
        ValueError: model_fn's signature does not fit the arguments, or it returned something
            other than ModelFnOps, EstimatorSpec or a (predictions, loss, train_op) tuple.
    """
    declared = fn_args(model_fn)
    if "features" not in declared:
        raise ValueError(f"model_fn ({model_fn}) must include features argument.")
    if params is not None and "params" not in declared:
        raise ValueError(
            f"model_fn ({model_fn}) does not include params argument, "
            f"but params ({params}) is passed to Estimator."
        )
    if params is None and "params" in declared:
        logger.warning(
            "Estimator's model_fn (%s) includes params argument, but params are not passed "
            "to Estimator.",
            model_fn,
        )
    unexpected = [name for name in declared if name not in _VALID_MODEL_FN_ARGS]
    if unexpected:
        raise ValueError(f"model_fn ({model_fn}) has following not expected args: {unexpected}")

    kwargs: dict[str, Any] = {}
    if "labels" in declared:
        kwargs["labels"] = labels
    elif labels is not None:
        raise ValueError("model_fn does not take labels, but input_fn returns labels.")
    if "mode" in declared:
        kwargs["mode"] = mode
    if "params" in declared:
        kwargs["params"] = {} if params is None else params
    if "config" in declared:
        kwargs["config"] = config

    result = model_fn(features=features, **kwargs)

    if isinstance(result, (ModelFnOps, EstimatorSpec)):
        return result
    if isinstance(result, (tuple, list)) and len(result) == 3:
        predictions, loss, train_op = result
        return ModelFnOps(mode, predictions=predictions, loss=loss, train_op=train_op)
    raise ValueError("Unrecognized value returned by model_fn, please return ModelFnOps.")


def call_input_fn(input_fn: Callable, mode: str, params: Any, config: Any) -> tuple[Any, Any]:
    """Calls `input_fn` with the arguments it declares and returns `(features, labels)`.

    input_fn may return:
    - a `(features, labels)` tuple (or list) of length 2;
    - features alone: a dict, a Tensor, a SparseTensor or a RaggedTensor (labels are None);
    - a `tf.data.Dataset` whose elements are either of the above; its next element is read
      through `tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()`.

    Args:
        input_fn: the user's input function; it may declare any of mode, params, config.
        mode: a `ModeKeys` value.
        params: hyperparameters, or None.
        config: the `RunConfig` of this task.

    Returns:
        `(features, labels)`, labels None when input_fn gave none.

    Raises:
        ValueError: input_fn returned something else.
    """
    declared = fn_args(input_fn)
    kwargs: dict[str, Any] = {}
    if "mode" in declared:
        kwargs["mode"] = mode
    if "params" in declared:
        kwargs["params"] = {} if params is None else params
    if "config" in declared:
        kwargs["config"] = config
    with tf.device("/cpu:0"):
        result = input_fn(**kwargs)
        if isinstance(result, tf.data.Dataset):
            result = tf.compat.v1.data.make_one_shot_iterator(result).get_next()
    if isinstance(result, (tuple, list)):
        if len(result) == 2:
            return result[0], result[1]
    elif isinstance(result, dict) or tf.is_tensor(result):
        return result, None
    raise ValueError(
        f"input_fn ({_describe(input_fn)}) returned {_short_repr(result)}; it must return "
        "(features, labels) as a len 2 tuple, features alone (a Tensor or a dict of Tensors), "
        "or a tf.data.Dataset whose elements are either."
    )


def _describe(fn: Callable) -> str:
    name = getattr(fn, "__qualname__", None)
    module = getattr(fn, "__module__", None)
    if name and module:
        return f"{module}.{name}"
    return repr(fn)


def _short_repr(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
