"""Import TensorFlow in the driver without its native start-up chatter on the console.

TensorFlow's C++ side prints notices (absl's pre-init warning, oneDNN and CUDA probes) to file
descriptor 2 while it loads, before TF_CPP_MIN_LOG_LEVEL can apply. The driver imports it with
fd 2 pointed at /dev/null; Python exceptions are unaffected (they are raised after fd 2 is
restored). Task processes keep every line in their log files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules:
        return
    with native_stderr_silenced():
        import tensorflow  # noqa: F401


class _UnusedObjectFilter(logging.Filter):
    """Drops TensorFlow's "Object was never used" reports (``tf_should_use``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Object was never used" not in record.getMessage()


def drop_unused_object_reports() -> None:
    """For commands that build graphs without running all of them (validate, evaluate, export).

    TensorFlow logs an ERROR with a stack when an op such as ``SyncReplicasOptimizer``'s
    ``report_uninitialized_variables`` is garbage-collected unrun. In a graph that is only
    built to be checked, or built in EVAL/INFER mode by a model_fn that also builds its
    train_op, that is expected, not a problem.
    """
    logging.getLogger("tensorflow").addFilter(_UnusedObjectFilter())


@contextlib.contextmanager
def tensorflow_notices_quiet() -> Iterator[None]:
    """TensorFlow's Python logger at ERROR for the block: TF's v1 signature builders log
    deprecation notices that say nothing about the user's job."""
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_logger.setLevel(level)
