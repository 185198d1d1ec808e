"""What ``harness.Estimator``'s methods do with their arguments, as tf.estimator did.

Type checks of hooks and saving listeners (TF's messages), the model_dir rule of the
constructor, RunConfig copies, the JobSpec ``train`` settings of a RunConfig, and letting the
user's own exception reach the caller.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import tensorflow as tf

from harness.config import RunConfig
from harness.errors import UserCodeError

v1 = tf.compat.v1
log = logging.getLogger("harness.estimator")


def train_settings(config: Any) -> dict[str, Any]:
    """The JobSpec ``train`` settings of a RunConfig (one checkpoint trigger: steps wins)."""
    steps = getattr(config, "save_checkpoints_steps", None)
    keep = getattr(config, "keep_checkpoint_max", 5)
    return {
        "save_checkpoints_steps": steps,
        "save_checkpoints_secs": None if steps else getattr(config, "save_checkpoints_secs", None),
        "keep_checkpoint_max": 0 if keep is None else keep,
        "keep_checkpoint_every_n_hours": getattr(config, "keep_checkpoint_every_n_hours", None)
        or 10000.0,
        "save_summary_steps": getattr(config, "save_summary_steps", None) or 0,
        "log_step_count_steps": getattr(config, "log_step_count_steps", None) or 100,
        "tf_random_seed": getattr(config, "tf_random_seed", None),
    }


def resolve_model_dir(model_dir: Any, config: RunConfig) -> str:
    config_dir = getattr(config, "model_dir", None)
    if model_dir is not None and config_dir is not None and os.fspath(model_dir) != config_dir:
        raise ValueError(
            "`model_dir` are set both in constructor and `RunConfig`, but with different "
            f"values. In constructor: '{os.fspath(model_dir)}', in `RunConfig`: '{config_dir}'."
        )
    chosen = model_dir if model_dir is not None else config_dir
    if chosen is None:
        chosen = tempfile.mkdtemp()
        log.warning("Using temporary folder as model directory: %s", chosen)
    return os.fspath(chosen)


def replace(config: RunConfig, **changes: Any) -> RunConfig:
    if dataclasses.is_dataclass(config):
        return dataclasses.replace(config, **changes)
    return config.replace(**changes)


def check_hooks_type(hooks: Any) -> list[Any]:
    hooks = list(hooks or [])
    for hook in hooks:
        if not isinstance(hook, v1.train.SessionRunHook):
            raise TypeError(f"Hooks must be a SessionRunHook, given: {hook}")
    return hooks


def check_listeners_type(listeners: Any) -> list[Any]:
    listeners = list(listeners or [])
    for listener in listeners:
        if not isinstance(listener, v1.train.CheckpointSaverListener):
            raise TypeError(
                f"saving_listeners must be a list of CheckpointSaverListener, given: {listener}"
            )
    return listeners


def attach_listeners(entries: Any, listeners: list[Any]) -> None:
    """Adds the listeners to the session's CheckpointSaverHook, as Estimator.train did."""
    if not listeners:
        return
    for entry in entries:
        if isinstance(entry.hook, v1.train.CheckpointSaverHook):
            entry.hook._listeners.extend(listeners)
            return
    raise ValueError(
        "There should be a CheckpointSaverHook to use saving_listeners. Please set one of the "
        "RunConfig.save_checkpoints_steps or RunConfig.save_checkpoints_secs."
    )


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Lets the user's own exception (the cause of a UserCodeError) reach the caller."""
    try:
        yield
    except UserCodeError as exc:
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise
