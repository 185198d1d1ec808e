"""Calling a user's `model_fn` and `input_fn` the way TF 1.x Estimator did.

The declared names of a function are found like TF's
`function_utils.fn_args`: for a `functools.partial`, the wrapped function's names minus the ones
the partial binds (positionally from the left, or by keyword); for a callable object, its
`__call__`; for a bound method, everything after `self`/`cls`. Two deliberate extensions, which
only affect functions TF could not call at all: keyword-only parameters count as declared, and a
`functools.wraps` decorator is seen through (`inspect.signature` follows `__wrapped__`).
`*args`/`**kwargs` declare nothing.

`call_model_fn` follows one of two conventions, chosen from the declared names:

- **core** (tf.estimator's `_verify_model_fn_args` + `_call_model_fn`) when `features` is
  declared and every declared name is one of (features, labels, mode, params, config): e.g.
  `(features, labels, mode, params, config)`, `(features, mode)`, `(mode, features, labels)`;
- **contrib** (tf.contrib.learn Estimator's `_call_model_fn`) otherwise: e.g.
  `(features, targets)`, `(x, y, mode)`, `(features, labels, mode, model_dir)`, `(*args)`.

On a signature both could call the two pass the same arguments, except a declared `params`
when params is None ({} in core, None in contrib); they differ in what they reject and how. The
usual case, first two parameters named `features` and `labels` and nothing but
mode/params/config after them, is the core convention; `model_dir` is only known to contrib, so
declaring it selects the contrib convention.

Core rules, in order:

1. `features` must be declared (it is, by the choice above).
2. `params` is not None but not declared -> `ValueError('model_fn (%s) does not include params
   argument, but params (%s) is passed to Estimator.')`. Declared but None: a warning, and
   `params={}` is passed (core Estimator kept `copy.deepcopy(params or {})`).
3. `labels` is passed when declared (even when None); not declared and labels is not None ->
   `ValueError('model_fn does not take labels, but input_fn returns labels.')`.
4. `mode`, `params` and `config` are passed when declared; every argument goes by keyword.

Contrib rules, in order:

1. Features go to the first positional parameter, labels to the second, whatever their names
   (`target`, `targets`, `x, y`), as contrib's `self._model_fn(features, labels, **kwargs)`
   did; a `*args` parameter takes what no named positional parameter does. The first
   positional parameter must not be named labels, mode, params, config or model_dir, and some
   positional parameter (or `*args`) must exist -> `ValueError('model_fn (%s) must include
   features argument.')`.
2. `params` is not None but not declared -> contrib's `ValueError("Estimator's model_fn (%s)
   does not have a params argument, but params (%s) were passed to the Estimator's
   constructor.")`. Declared but None: the same warning as core, and None is passed (contrib
   passed its `params`, None).
3. A model_fn whose second positional parameter is missing, or is named mode, params, config or
   model_dir, takes features only (and labels by keyword if it declares a keyword-only
   `labels`); otherwise labels must be None -> `ValueError('model_fn does not take labels, but
   input_fn returns labels.')`. (contrib itself always passed two positional
   arguments, so such a model_fn failed with Python's TypeError even when labels were None.)
4. `mode`, `params`, `config` and `model_dir` are passed by keyword when declared; `model_dir`
   is `config.model_dir` (the job's model_dir on `harness.RunConfig`).
5. Any other parameter without a default, which could not be filled, ->
   `ValueError('model_fn (%s) has following not expected args: [...]')` before the call
   (contrib failed with Python's TypeError at the call). Other parameters with defaults keep
   their defaults.

In both conventions the model_fn is not called when its signature does not fit. The result may
be a `ModelFnOps` or an `EstimatorSpec` (returned as they are) or the legacy
`(predictions, loss, train_op)` tuple (a list of three is accepted too, as contrib's length check
did), wrapped as `ModelFnOps(mode, predictions, loss, train_op)`. Anything else ->
`ValueError('Unrecognized value returned by model_fn, please return ModelFnOps.')`.

`call_logit_fn(logit_fn, features, mode, params, config)` is tf.estimator's
`experimental.call_logit_fn`: features by keyword, and each of mode, params, config by keyword
when declared (passed as given, params included); the result must be a `tf.Tensor` or a dict
of str to `tf.Tensor` -> otherwise `ValueError('logit_fn should return a Tensor or a dictionary
mapping strings to Tensors.  logit_fn returned: %s')`.

`call_input_fn` passes the declared names among (mode, params, config), by keyword, inside
`tf.device('/cpu:0')` as Estimator did, and returns `(features, labels)`. See its docstring.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Collection
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


def declared_kwargs(declared: Collection[str], /, **values: Any) -> dict[str, Any]:
    """The keyword arguments of a call to a function that declares ``declared``.

    Args:
        declared: the names the function declares, usually ``fn_args(fn)``.
        **values: every argument the caller could pass, by name.

    Returns:
        The ``values`` whose names are in ``declared``, in the order given; the others are
        dropped (the function did not ask for them).
    """
    return {name: value for name, value in values.items() if name in declared}


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
        config: the `RunConfig` of this task (its `model_dir` is passed as `model_dir`).

    Returns:
        A `ModelFnOps` or an `EstimatorSpec`.

    Raises:
        ValueError: model_fn's signature does not fit the arguments, or it returned something
            other than ModelFnOps, EstimatorSpec or a (predictions, loss, train_op) tuple.
    """
    declared = fn_args(model_fn)
    if "features" in declared and set(declared) <= _VALID_MODEL_FN_ARGS:
        args, kwargs = _core_arguments(model_fn, declared, features, labels, mode, params, config)
    else:
        args, kwargs = _contrib_arguments(
            model_fn, declared, features, labels, mode, params, config
        )
    result = model_fn(*args, **kwargs)

    from harness.compat.tpu import to_estimator_spec

    result = to_estimator_spec(result)  # a tf.contrib.tpu.TPUEstimatorSpec, as TF converted it
    if isinstance(result, (ModelFnOps, EstimatorSpec)):
        return result
    if isinstance(result, (tuple, list)) and len(result) == 3:
        predictions, loss, train_op = result
        return ModelFnOps(mode, predictions=predictions, loss=loss, train_op=train_op)
    raise ValueError("Unrecognized value returned by model_fn, please return ModelFnOps.")


def _warn_params_not_passed(model_fn: Callable) -> None:
    logger.warning(
        "Estimator's model_fn (%s) includes params argument, but params are not passed "
        "to Estimator.",
        model_fn,
    )


def _core_arguments(
    model_fn: Callable,
    declared: tuple[str, ...],
    features: Any,
    labels: Any,
    mode: str,
    params: Any,
    config: Any,
) -> tuple[tuple, dict[str, Any]]:
    """`((), keyword arguments)` of the core convention: every argument goes by name."""
    if params is not None and "params" not in declared:
        raise ValueError(
            f"model_fn ({model_fn}) does not include params argument, "
            f"but params ({params}) is passed to Estimator."
        )
    if params is None and "params" in declared:
        _warn_params_not_passed(model_fn)
    kwargs: dict[str, Any] = {"features": features}
    if "labels" in declared:
        kwargs["labels"] = labels
    elif labels is not None:
        raise ValueError("model_fn does not take labels, but input_fn returns labels.")
    kwargs |= declared_kwargs(
        declared, mode=mode, params={} if params is None else params, config=config
    )
    return (), kwargs


_CONTRIB_BY_NAME = ("mode", "params", "config", "model_dir")
_POSITIONAL_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _contrib_arguments(
    model_fn: Callable,
    declared: tuple[str, ...],
    features: Any,
    labels: Any,
    mode: str,
    params: Any,
    config: Any,
) -> tuple[tuple, dict[str, Any]]:
    """`(positional arguments, keyword arguments)` of the contrib convention."""
    parameters = list(inspect.signature(model_fn).parameters.values())
    positional = [p for p in parameters if p.kind in _POSITIONAL_KINDS]
    var_positional = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in parameters)
    if positional:
        if positional[0].name in ("labels", *_CONTRIB_BY_NAME):
            raise ValueError(f"model_fn ({model_fn}) must include features argument.")
    elif not var_positional:
        raise ValueError(f"model_fn ({model_fn}) must include features argument.")
    if params is not None and "params" not in declared:
        raise ValueError(
            f"Estimator's model_fn ({model_fn}) does not have a params argument, but params "
            f"({params}) were passed to the Estimator's constructor."
        )
    if params is None and "params" in declared:
        _warn_params_not_passed(model_fn)

    takes_labels = (len(positional) >= 2 and positional[1].name not in _CONTRIB_BY_NAME) or (
        len(positional) < 2 and var_positional
    )
    by_name: dict[str, Any] = {}
    if takes_labels:
        args: tuple = (features, labels)
    elif "labels" in declared:
        args, by_name = (features,), {"labels": labels}
    elif labels is not None:
        raise ValueError("model_fn does not take labels, but input_fn returns labels.")
    else:
        args = (features,)
    filled = {p.name for p in positional[: len(args)]} | set(by_name)

    values = {
        "mode": mode,
        "params": params,
        "config": config,
        "model_dir": getattr(config, "model_dir", None),
    }
    kwargs = by_name | declared_kwargs(declared, **values)
    filled.update(kwargs)
    missing = [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name not in filled
    ]
    if missing:
        raise ValueError(f"model_fn ({model_fn}) has following not expected args: {missing}")
    return args, kwargs


def call_logit_fn(logit_fn: Callable, features: Any, mode: str, params: Any, config: Any) -> Any:
    """Calls `logit_fn` with features and the declared names among (mode, params, config).

    tf.estimator's `experimental.call_logit_fn`: every argument goes by keyword; params is
    passed as given (None included).

    Args:
        logit_fn: a function of `features` and optionally `mode`, `params`, `config`.
        features: the features (a Tensor or a dict of them).
        mode: a `ModeKeys` value.
        params: hyperparameters.
        config: the configuration object.

    Returns:
        What logit_fn returned: a `tf.Tensor` or a dict of str to `tf.Tensor`.

    Raises:
        ValueError: logit_fn returned anything else.
    """
    kwargs = declared_kwargs(fn_args(logit_fn), mode=mode, params=params, config=config)
    result = logit_fn(features=features, **kwargs)
    valid_dict = isinstance(result, dict) and all(
        isinstance(key, str) and isinstance(value, tf.Tensor) for key, value in result.items()
    )
    if not (valid_dict or isinstance(result, tf.Tensor)):
        raise ValueError(
            "logit_fn should return a Tensor or a dictionary mapping strings to Tensors.  "
            f"logit_fn returned: {result}"
        )
    return result


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
    kwargs = declared_kwargs(
        fn_args(input_fn), mode=mode, params={} if params is None else params, config=config
    )
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
