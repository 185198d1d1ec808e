"""A model_dir's latest checkpoint, read one way everywhere (``harness.Result.checkpoint``,
``harness run``'s max_steps check, the estimator driver, Tune's reports)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_CKPT_STEP = re.compile(r"-(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint in model_dir: its prefix (``.../model.ckpt-1000``) and global step."""

    path: str
    step: int


def latest_checkpoint(model_dir: str) -> Checkpoint | None:
    """The latest checkpoint in ``model_dir`` (TF's ``checkpoint`` file), or None.

    Its step is the ``-<global step>`` suffix the Saver gives the prefix, or, for a prefix
    without one, the ``global_step`` tensor read from the checkpoint.
    """
    if not os.path.isfile(os.path.join(model_dir, "checkpoint")):
        return None
    import tensorflow as tf

    path = tf.train.latest_checkpoint(model_dir)
    if path is None:
        return None
    match = _CKPT_STEP.search(path)
    if match:
        return Checkpoint(path, int(match.group(1)))
    return Checkpoint(path, int(tf.train.load_checkpoint(path).get_tensor("global_step")))
