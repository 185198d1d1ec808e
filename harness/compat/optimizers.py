"""``tf.contrib.layers.optimize_loss`` for TF 2.21 graphs (tf.compat.v1 optimizers).

Behaviour of contrib's ``optimize_loss`` (tensorflow/contrib/layers/python/layers/optimizers.py),
in its order:

1. ``loss`` is converted to a tensor and must be a scalar; ``global_step`` None -> the graph's
   global step (``tf.compat.v1.train.get_global_step()``, may be None), otherwise it is checked
   with ``assert_global_step``.
2. Everything is built in ``variable_scope(name, 'OptimizeLoss')``. ``update_ops`` None -> the
   graph's ``UPDATE_OPS``; the loss then depends on them.
3. ``learning_rate``: a 0-d Tensor is used as is; a float must be >= 0 (``ValueError('Invalid
   learning_rate %s.')``) and becomes a non-trainable variable ``learning_rate``; None is
   allowed; anything else -> ``ValueError('Learning rate should be 0d Tensor or float. Got ...')``.
4. ``summaries`` None -> ``['loss', 'learning_rate', 'global_gradient_norm']``; each name must be
   in `OPTIMIZER_SUMMARIES` (``ValueError('Summaries should be one of [...], you provided X.')``).
5. ``learning_rate_decay_fn(lr, global_step)`` (needs a global step: ``ValueError('global_step
   is required for learning_rate_decay_fn.')``) replaces the rate; a ``learning_rate`` summary
   is written for the decayed rate.
6. ``optimizer``: a name in `OPTIMIZER_CLS_NAMES` ('Adagrad', 'Adam', 'Ftrl', 'Momentum' (0.9),
   'RMSProp', 'SGD'; another -> ``ValueError('Optimizer name should be one of [...], you provided
   X.')``; needs a rate), an ``Optimizer`` subclass (called with ``learning_rate=``), an
   ``Optimizer`` instance, or a callable taking the rate (no argument when ``learning_rate`` is
   None) that returns an Optimizer.
7. Gradients of ``variables`` (default: trainable variables), with
   ``colocate_gradients_with_ops``; then ``gradient_noise_scale`` (truncated-normal noise times
   the scale), ``gradient_multipliers`` (``{variable or variable name: factor}``), the
   ``global_norm/gradient_norm`` summary, ``clip_gradients`` (a float: clip by global norm; a
   callable on ``[(grad, var)]``; anything else -> ``ValueError('Unknown type ... for
   clip_gradients')``), the ``loss`` summary, per-variable ``gradients/<var>`` histograms and
   ``gradient_norm/<var>`` scalars, ``global_norm/clipped_gradient_norm`` when clipping.
8. ``apply_gradients(..., name='train')``, incrementing ``global_step`` when
   ``increment_global_step``. Returns the loss tensor that depends on that update (running it
   trains one step), as contrib did.

`adaptive_clipping_fn` is contrib's adaptive clipping (moving mean/std of the log gradient norm).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

v1 = tf.compat.v1

#: Optimizer names accepted as ``optimizer=`` strings.
OPTIMIZER_CLS_NAMES: dict[str, Callable[..., Any]] = {
    "Adagrad": v1.train.AdagradOptimizer,
    "Adam": v1.train.AdamOptimizer,
    "Ftrl": v1.train.FtrlOptimizer,
    "Momentum": lambda learning_rate: v1.train.MomentumOptimizer(learning_rate, momentum=0.9),
    "RMSProp": v1.train.RMSPropOptimizer,
    "SGD": v1.train.GradientDescentOptimizer,
}

#: Summary names accepted in ``summaries=``.
OPTIMIZER_SUMMARIES = [
    "learning_rate",
    "loss",
    "gradients",
    "gradient_norm",
    "global_gradient_norm",
]

GradsAndVars = list[tuple[Any, Any]]


def _learning_rate(learning_rate: Any) -> Any:
    if learning_rate is None:
        return None
    if isinstance(learning_rate, tf.Tensor) and learning_rate.get_shape().ndims == 0:
        return learning_rate
    if isinstance(learning_rate, float):
        if learning_rate < 0.0:
            raise ValueError(f"Invalid learning_rate {learning_rate}.")
        return v1.get_variable(
            "learning_rate",
            [],
            trainable=False,
            initializer=v1.constant_initializer(learning_rate),
        )
    raise ValueError(
        "Learning rate should be 0d Tensor or float. "
        f"Got {learning_rate} of type {type(learning_rate)}"
    )


def _make_optimizer(optimizer: Any, lr: Any, learning_rate: Any) -> Any:
    if isinstance(optimizer, str):
        if lr is None:
            raise ValueError(
                f"Learning rate is None, but should be specified if optimizer is string "
                f"({optimizer})."
            )
        if optimizer not in OPTIMIZER_CLS_NAMES:
            raise ValueError(
                f"Optimizer name should be one of [{', '.join(OPTIMIZER_CLS_NAMES)}], "
                f"you provided {optimizer}."
            )
        return OPTIMIZER_CLS_NAMES[optimizer](learning_rate=lr)
    if isinstance(optimizer, type) and issubclass(optimizer, v1.train.Optimizer):
        if lr is None:
            raise ValueError(
                f"Learning rate is None, but should be specified if optimizer is class "
                f"({optimizer})."
            )
        return optimizer(learning_rate=lr)
    if isinstance(optimizer, v1.train.Optimizer):
        return optimizer
    if callable(optimizer):
        opt = optimizer(lr) if learning_rate is not None else optimizer()
        if not isinstance(opt, v1.train.Optimizer):
            raise ValueError(
                f"Unrecognized optimizer: function should return subclass of Optimizer. Got {opt}."
            )
        return opt
    raise ValueError(
        "Unrecognized optimizer: should be string, subclass of Optimizer, instance of "
        f"subclass of Optimizer or function with one argument. Got {optimizer}."
    )


def _grad_values(gradient: Any) -> Any:
    return gradient.values if isinstance(gradient, tf.IndexedSlices) else gradient


def _add_noise(grads_and_vars: GradsAndVars, scale: float) -> GradsAndVars:
    noisy = []
    for gradient, variable in grads_and_vars:
        if gradient is None:
            noisy.append((None, variable))
            continue
        if isinstance(gradient, tf.IndexedSlices):
            shape = gradient.dense_shape
        else:
            shape = gradient.get_shape()
        noisy.append((gradient + v1.truncated_normal(shape) * scale, variable))
    return noisy


def _multiplier_for(variable: Any, multipliers: dict[Any, Any]) -> Any:
    for key, value in multipliers.items():
        if key is variable or (isinstance(key, str) and key == variable.name):
            return value
    return None


def _multiply(grads_and_vars: GradsAndVars, multipliers: dict[Any, Any]) -> GradsAndVars:
    result = []
    for gradient, variable in grads_and_vars:
        factor = None if gradient is None else _multiplier_for(variable, multipliers)
        if factor is not None:
            if isinstance(gradient, tf.IndexedSlices):
                gradient = tf.IndexedSlices(
                    gradient.values * factor, gradient.indices, gradient.dense_shape
                )
            else:
                gradient = gradient * tf.cast(factor, gradient.dtype)
        result.append((gradient, variable))
    return result


def _clip_by_global_norm(grads_and_vars: GradsAndVars, clip_norm: float) -> GradsAndVars:
    gradients, variables = zip(*grads_and_vars, strict=True)
    clipped, _ = tf.clip_by_global_norm(gradients, clip_norm)
    return list(zip(clipped, variables, strict=True))


def _global_norm(grads_and_vars: GradsAndVars) -> tf.Tensor:
    return tf.linalg.global_norm([g for g, _ in grads_and_vars])


def optimize_loss(
    loss: Any,
    global_step: Any,
    learning_rate: Any,
    optimizer: Any,
    gradient_noise_scale: float | None = None,
    gradient_multipliers: dict[Any, Any] | None = None,
    clip_gradients: float | Callable[[GradsAndVars], GradsAndVars] | None = None,
    learning_rate_decay_fn: Callable[[Any, Any], Any] | None = None,
    update_ops: Sequence[Any] | None = None,
    variables: Sequence[Any] | None = None,
    name: str | None = None,
    summaries: Sequence[str] | None = None,
    colocate_gradients_with_ops: bool = False,
    increment_global_step: bool = True,
) -> tf.Tensor:
    """Builds the training op for ``loss`` (contract in the module docstring).

    Returns:
        The loss, with a control dependency on the gradient update: running it trains one step.

    Raises:
        ValueError: for the invalid arguments listed in the module docstring.
    """
    loss = tf.convert_to_tensor(loss)
    v1.assert_scalar(loss)
    if global_step is None:
        global_step = v1.train.get_global_step()
    else:
        v1.train.assert_global_step(global_step)
    with v1.variable_scope(name, "OptimizeLoss", [loss, global_step]):
        if update_ops is None:
            update_ops = set(v1.get_collection(v1.GraphKeys.UPDATE_OPS))
        if update_ops:
            with tf.control_dependencies(list(update_ops)):
                loss = tf.identity(loss)

        lr = _learning_rate(learning_rate)
        if summaries is None:
            summaries = ["loss", "learning_rate", "global_gradient_norm"]
        else:
            for summary in summaries:
                if summary not in OPTIMIZER_SUMMARIES:
                    raise ValueError(
                        f"Summaries should be one of [{', '.join(OPTIMIZER_SUMMARIES)}], "
                        f"you provided {summary}."
                    )
        if learning_rate is not None and learning_rate_decay_fn is not None:
            if global_step is None:
                raise ValueError("global_step is required for learning_rate_decay_fn.")
            lr = learning_rate_decay_fn(lr, global_step)
            if "learning_rate" in summaries:
                v1.summary.scalar("learning_rate", lr)

        opt = _make_optimizer(optimizer, lr, learning_rate)
        if variables is None:
            variables = v1.trainable_variables()
        gradients = opt.compute_gradients(
            loss, variables, colocate_gradients_with_ops=colocate_gradients_with_ops
        )
        if gradient_noise_scale is not None:
            gradients = _add_noise(gradients, gradient_noise_scale)
        if gradient_multipliers is not None:
            gradients = _multiply(gradients, gradient_multipliers)
            if not gradients:
                raise ValueError(
                    "Empty list of (gradient, var) pairs encountered. This is most likely to be "
                    "caused by an improper value of gradient_multipliers."
                )
        norm_summaries = "global_gradient_norm" in summaries or "gradient_norm" in summaries
        if norm_summaries:
            v1.summary.scalar("global_norm/gradient_norm", _global_norm(gradients))

        if isinstance(clip_gradients, float):
            gradients = _clip_by_global_norm(gradients, clip_gradients)
        elif callable(clip_gradients):
            gradients = clip_gradients(gradients)
        elif clip_gradients is not None:
            raise ValueError(f"Unknown type {type(clip_gradients)} for clip_gradients")

        if "loss" in summaries:
            v1.summary.scalar("loss", loss)
        for gradient, variable in gradients:
            values = _grad_values(gradient)
            if values is None:
                continue
            var_name = variable.name.replace(":", "_")
            if "gradients" in summaries:
                v1.summary.histogram(f"gradients/{var_name}", values)
            if "gradient_norm" in summaries:
                v1.summary.scalar(f"gradient_norm/{var_name}", tf.linalg.global_norm([values]))
        if clip_gradients is not None and norm_summaries:
            v1.summary.scalar("global_norm/clipped_gradient_norm", _global_norm(gradients))

        update = opt.apply_gradients(
            gradients,
            global_step=global_step if increment_global_step else None,
            name="train",
        )
        with tf.control_dependencies([update]):
            return tf.identity(loss)


def _adaptive_max_norm(
    norm: Any, std_factor: float, decay: float, global_step: Any, epsilon: float, name: Any
) -> tuple[Any, Any]:
    with v1.variable_scope(name, "AdaptiveMaxNorm", [norm]):
        log_norm = tf.math.log(norm + epsilon)

        def moving_average(var_name: str, value: Any, decay_: Any) -> Any:
            average = v1.get_variable(
                var_name,
                shape=value.get_shape(),
                dtype=value.dtype,
                initializer=v1.zeros_initializer(),
                trainable=False,
            )
            return v1.assign_sub(average, (average - value) * (1.0 - decay_))

        if global_step is not None:
            steps = tf.cast(global_step, tf.float32)
            decay = tf.minimum(decay, steps / (steps + 1.0))
        mean = moving_average("mean", log_norm, decay)
        sq_mean = moving_average("sq_mean", tf.square(log_norm), decay)
        variance = sq_mean - tf.square(mean)
        std = tf.sqrt(tf.maximum(epsilon, variance))
        return tf.exp(mean + std_factor * std), mean


def adaptive_clipping_fn(
    std_factor: float = 2.0,
    decay: float = 0.95,
    static_max_norm: float | None = None,
    global_step: Any = None,
    report_summary: bool = False,
    epsilon: float = 1e-8,
    name: str | None = None,
) -> Callable[[GradsAndVars], GradsAndVars]:
    """A ``clip_gradients`` function rescaling gradients whose global norm is unusually large.

    Keeps moving averages of the mean and variance of ``log(global norm)``; when the norm
    exceeds ``exp(mean + std_factor * std)`` every gradient is scaled so that the norm becomes
    ``exp(mean)``. ``static_max_norm`` caps the norm as well; ``report_summary`` adds a
    ``global_norm/adaptive_max_gradient_norm`` scalar.
    """

    def gradient_clipping(grads_and_vars: GradsAndVars) -> GradsAndVars:
        grads, variables = zip(*grads_and_vars, strict=True)
        norm = tf.linalg.global_norm(grads)
        max_norm, log_mean = _adaptive_max_norm(norm, std_factor, decay, global_step, epsilon, name)
        if report_summary:
            v1.summary.scalar("global_norm/adaptive_max_gradient_norm", max_norm)
        factor = tf.where(norm < max_norm, tf.ones_like(norm), tf.exp(log_mean) / norm)
        if static_max_norm is not None:
            factor = tf.minimum(static_max_norm / norm, factor)
        clipped = []
        for grad in grads:
            if grad is None:
                clipped.append(None)
            elif isinstance(grad, tf.IndexedSlices):
                clipped.append(
                    tf.IndexedSlices(grad.values * factor, grad.indices, grad.dense_shape)
                )
            else:
                clipped.append(grad * factor)
        return list(zip(clipped, variables, strict=True))

    return gradient_clipping


__all__ = [
    "OPTIMIZER_CLS_NAMES",
    "OPTIMIZER_SUMMARIES",
    "adaptive_clipping_fn",
    "optimize_loss",
]
