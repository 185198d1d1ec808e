"""Import TensorFlow in the driver without its native start-up chatter on the console.

TensorFlow's C++ side prints notices (absl's pre-init warning, oneDNN and CUDA probes) to file
descriptor 2 while it loads, before TF_CPP_MIN_LOG_LEVEL can apply. The driver imports it with
fd 2 pointed at /dev/null; Python exceptions are unaffected (they are raised after fd 2 is
restored). Task processes keep every line in their log files.
"""

from __future__ import annotations

import contextlib
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
