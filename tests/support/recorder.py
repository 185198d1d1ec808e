"""LifecycleRecorderHook: appends every lifecycle call it receives to a JSON-lines file.

For tests and debugging of hook semantics. Each line is
``{"hook": NAME, "task": "worker:1", "call": "before_run", "pid": ...}``; ``task`` comes from
TF_CONFIG, so one file can be shared by every task of a local cluster (lines are written with
one ``write`` each, in append mode).
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf


def current_task() -> str:
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    return f"{task.get('type', 'local')}:{task.get('index', 0)}"


class LifecycleRecorderHook(tf.compat.v1.train.SessionRunHook):
    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path

    def _record(self, call: str, **extra: Any) -> None:
        line = json.dumps({"hook": self.name, "task": current_task(), "call": call, **extra})
        with open(self.path, "a") as f:
            f.write(line + "\n")

    def begin(self) -> None:
        self._record("begin")

    def after_create_session(self, session: Any, coord: Any) -> None:
        self._record("after_create_session")

    def before_run(self, run_context: Any) -> None:
        self._record("before_run")

    def after_run(self, run_context: Any, run_values: Any) -> None:
        self._record("after_run")

    def end(self, session: Any) -> None:
        self._record("end")
