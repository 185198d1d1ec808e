"""``TrainSpec`` and ``EvalSpec``: tf.estimator's namedtuples, with TF's validation and messages.

What each field does under ``harness.train_and_evaluate`` is in docs/estimator.md.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import Any

import tensorflow as tf

v1 = tf.compat.v1


def _validate_input_fn(input_fn: Any) -> None:
    if not callable(input_fn):
        raise TypeError(f"`input_fn` must be callable, given: {input_fn}")


def _validate_hooks(hooks: Iterable[Any] | None) -> tuple[Any, ...]:
    hooks = tuple(hooks or [])
    for hook in hooks:
        if not isinstance(hook, v1.train.SessionRunHook):
            raise TypeError(f"All hooks must be `SessionRunHook` instances, given: {hook}")
    return hooks


def _validate_saving_listeners(listeners: Iterable[Any] | None) -> tuple[Any, ...]:
    listeners = tuple(listeners or [])
    for listener in listeners:
        if not isinstance(listener, v1.train.CheckpointSaverListener):
            raise TypeError(
                "All saving_listeners must be `CheckpointSaverListener` instances, "
                f"given: {listener}"
            )
    return listeners


def _is_exporter(value: Any) -> bool:
    from harness.estimator.exporters import Exporter

    return isinstance(value, Exporter) or (
        callable(getattr(value, "export", None)) and hasattr(value, "name")
    )


def _validate_exporters(exporters: Any) -> tuple[Any, ...]:
    """TF's ``_validate_exporters``: an Exporter or an iterable of them, unique string names."""
    if not exporters:
        return ()
    if _is_exporter(exporters):
        exporters = [exporters]
    names: list[str] = []
    try:
        for exporter in exporters:
            if not _is_exporter(exporter):
                raise TypeError
            if not exporter.name:
                raise ValueError(
                    "An Exporter cannot have a name that is `None` or empty. All exporter "
                    f"names: {[e.name for e in exporters]}"
                )
            if not isinstance(exporter.name, str):
                raise ValueError(
                    f"An Exporter must have a string name. Given: {type(exporter.name)}"
                )
            if exporter.name in names:
                raise ValueError(
                    "`exporters` must have unique names. Such a name cannot be `None`. All "
                    f"exporter names: {[e.name for e in exporters]}"
                )
            names.append(exporter.name)
    except TypeError:
        raise TypeError(
            f"`exporters` must be an Exporter, an iterable of Exporter, or `None`, found {exporters}."
        ) from None
    return tuple(exporters)


class TrainSpec(
    collections.namedtuple("TrainSpec", ["input_fn", "max_steps", "hooks", "saving_listeners"])
):
    """The training half of ``train_and_evaluate``.

    ``input_fn`` is called as a job's input_fn (declared names among mode, params, config);
    ``max_steps`` None trains until the input ends (in-process only: a cluster needs it);
    ``hooks`` are SessionRunHooks and ``saving_listeners`` CheckpointSaverListeners, stored
    as tuples.
    """

    def __new__(
        cls,
        input_fn: Callable[..., Any],
        max_steps: int | None = None,
        hooks: Iterable[Any] | None = None,
        saving_listeners: Iterable[Any] | None = None,
    ) -> TrainSpec:
        _validate_input_fn(input_fn)
        if max_steps is not None and max_steps <= 0:
            raise ValueError(f"Must specify max_steps > 0, given: {max_steps}")
        return super().__new__(
            cls,
            input_fn=input_fn,
            max_steps=max_steps,
            hooks=_validate_hooks(hooks),
            saving_listeners=_validate_saving_listeners(saving_listeners),
        )


class EvalSpec(
    collections.namedtuple(
        "EvalSpec",
        ["input_fn", "steps", "name", "hooks", "exporters", "start_delay_secs", "throttle_secs"],
    )
):
    """The evaluation half of ``train_and_evaluate``.

    ``steps`` batches per evaluation (None: until the input ends); ``name`` puts the
    in-process evaluations' summaries in ``<model_dir>/eval_<name>``; ``hooks`` run in each
    evaluation; ``exporters`` (an Exporter or several, unique names) export after
    evaluations; ``start_delay_secs`` and ``throttle_secs`` must be >= 0.
    """

    def __new__(
        cls,
        input_fn: Callable[..., Any],
        steps: int | None = 100,
        name: str | None = None,
        hooks: Iterable[Any] | None = None,
        exporters: Any = None,
        start_delay_secs: float = 120,
        throttle_secs: float = 600,
    ) -> EvalSpec:
        _validate_input_fn(input_fn)
        if steps is not None and steps <= 0:
            raise ValueError(f"Must specify steps > 0, given: {steps}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be string, given: {name}")
        hooks = _validate_hooks(hooks)
        exporters = _validate_exporters(exporters)
        if start_delay_secs < 0:
            raise ValueError(f"Must specify start_delay_secs >= 0, given: {start_delay_secs}")
        if throttle_secs < 0:
            raise ValueError(f"Must specify throttle_secs >= 0, given: {throttle_secs}")
        return super().__new__(
            cls,
            input_fn=input_fn,
            steps=steps,
            name=name,
            hooks=hooks,
            exporters=exporters,
            start_delay_secs=start_delay_secs,
            throttle_secs=throttle_secs,
        )


class WarmStartSettings(
    collections.namedtuple(
        "WarmStartSettings",
        [
            "ckpt_to_initialize_from",
            "vars_to_warm_start",
            "var_name_to_vocab_info",
            "var_name_to_prev_var_name",
        ],
    )
):
    """``tf.estimator.WarmStartSettings``: what ``Estimator(warm_start_from=...)`` restores.

    The fields are ``tf.compat.v1.train.warm_start``'s arguments; the Estimator applies them
    after model_fn built the TRAIN graph's variables, as TF did.
    """

    __slots__ = ()

    def __new__(
        cls,
        ckpt_to_initialize_from: str,
        vars_to_warm_start: Any = ".*",
        var_name_to_vocab_info: dict[str, Any] | None = None,
        var_name_to_prev_var_name: dict[str, str] | None = None,
    ) -> WarmStartSettings:
        if not ckpt_to_initialize_from:
            raise ValueError("`ckpt_to_initialize_from` MUST be set in WarmStartSettings")
        return super().__new__(
            cls,
            ckpt_to_initialize_from,
            vars_to_warm_start,
            var_name_to_vocab_info or {},
            var_name_to_prev_var_name or {},
        )
