"""Which Keras a job's model code gets: legacy graph-mode Keras (the default) or Keras 3.

TF 1.x-era code calls ``tf.compat.v1.layers.dense``, ``conv2d``, ``batch_normalization`` and
``tf.compat.v1.nn.rnn_cell.*``. On TensorFlow 2.16+ these work only with the ``tf_keras``
package and ``TF_USE_LEGACY_KERAS=1``; with Keras 3 they raise "`dense` is not available with
Keras 3". Keras 3 layers inside a model_fn also break the second graph built in one process
(the evaluator's next evaluation, an export after training: "Key
seed_generator_1/seed_generator_state not found in checkpoint").

So every process that imports user code sets ``TF_USE_LEGACY_KERAS`` from the job's ``keras``
field before TensorFlow resolves ``tf.keras`` (TensorFlow reads the variable lazily, at the
first use of Keras, not at ``import tensorflow``):

- ``keras: legacy`` (default): ``TF_USE_LEGACY_KERAS=1``; ``tf.keras`` is tf_keras 2.x;
- ``keras: keras3``: ``TF_USE_LEGACY_KERAS=0``; ``tf.keras`` is Keras 3, for code written
  for it. The harness then resets Keras 3's global state before each graph it builds (see
  ``reset_keras_state``).

``import harness`` sets ``TF_USE_LEGACY_KERAS=1`` unless the variable is already set, so a
user's own script or test that imports harness gets the legacy route too. The job's choice,
applied by the CLI and carried into every task's environment, wins over an inherited value.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

ENV = "TF_USE_LEGACY_KERAS"
LEGACY = "legacy"
KERAS3 = "keras3"
MODES = (LEGACY, KERAS3)


def env_value(mode: str) -> str:
    """The ``TF_USE_LEGACY_KERAS`` value of a job's ``keras`` mode."""
    if mode not in MODES:
        raise ValueError(f"keras: must be one of {', '.join(MODES)}, got {mode!r}")
    return "1" if mode == LEGACY else "0"


def set_default() -> None:
    """Legacy Keras unless the environment already chose (``import harness`` calls this)."""
    os.environ.setdefault(ENV, "1")


def apply(mode: str) -> None:
    """Route ``tf.keras`` of this process to ``mode``; call it before the model code runs.

    If Keras was already resolved in this process the other way, a warning says so: the
    choice can no longer change here (task processes are not affected, they start fresh).
    """
    value = env_value(mode)
    os.environ[ENV] = value
    loaded = current_mode()
    if loaded is not None and loaded != mode:
        log.warning(
            "keras: %s was asked for, but this process already uses %s; set %s=%s before "
            "TensorFlow loads Keras",
            mode,
            loaded,
            ENV,
            value,
        )


def current_mode() -> str | None:
    """The Keras this process has loaded: 'legacy', 'keras3', or None when none is loaded."""
    if "tf_keras" in sys.modules:
        return LEGACY
    if "keras" in sys.modules and hasattr(sys.modules["keras"], "version"):
        return KERAS3
    return None


def describe(mode: str) -> str:
    """One line for ``harness validate``: which Keras the job's code gets, with its version."""
    from importlib import metadata

    if mode == LEGACY:
        try:
            version = metadata.version("tf_keras")
        except metadata.PackageNotFoundError:
            return (
                f"keras: legacy ({ENV}=1), but tf_keras is not installed: "
                "pip install 'tf_keras==<your TensorFlow minor>.*'"
            )
        return f"keras: legacy graph-mode Keras, tf_keras {version} ({ENV}=1)"
    try:
        version = metadata.version("keras")
    except metadata.PackageNotFoundError:
        version = "not installed"
    return f"keras: Keras 3 ({version}, {ENV}=0); tf.compat.v1.layers need keras: legacy"


def hint(exc: BaseException) -> str:
    """A sentence to add to an error that Keras 3 raised for a TF 1.x layer, else ''."""
    if "is not available with Keras 3" in str(exc):
        return (
            " tf.compat.v1.layers and rnn_cell need legacy Keras: remove `keras: keras3` from "
            "the job file (the default is `keras: legacy`)."
        )
    return ""


def reset_keras_state() -> None:
    """Before building another graph in this process: clear Keras 3's global state.

    Keras 3 numbers its layers and seed generators process-wide, so a second graph gets
    ``seed_generator_1`` where the checkpoint has ``seed_generator``. ``clear_session`` resets
    those counters. Legacy Keras names variables per graph and needs nothing; Keras that was
    never loaded needs nothing either.

    Call it outside any ``graph.as_default()`` block: Keras 3's ``clear_session`` also resets
    TensorFlow's default graph, which TensorFlow refuses inside a nested graph (then nothing
    is reset, and a debug line says so).
    """
    if current_mode() != KERAS3:
        return
    import keras

    try:
        keras.backend.clear_session()
    except AssertionError as exc:  # "Do not use tf.reset_default_graph() to clear nested graphs"
        log.debug("Keras 3 state not reset inside a graph: %s", exc)
