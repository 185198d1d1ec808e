"""``harness evaluate``: evaluate one checkpoint, print a table, write the eval summaries."""

from __future__ import annotations

import sys

import tensorflow as tf

from harness.errors import UserCodeError
from harness.job import JobSpec
from harness.runtime.evaluation import (
    GLOBAL_STEP_KEY,
    CheckpointNotFoundError,
    eval_dir,
    evaluate_checkpoint,
)


def evaluate_command(job: JobSpec, checkpoint: str | None) -> int:
    """``harness evaluate``: evaluates one checkpoint and prints a table; returns the exit code."""
    from rich.console import Console
    from rich.table import Table

    path = checkpoint or tf.train.latest_checkpoint(job.model_dir)
    if path is None:
        return _fail(
            f"no checkpoint in {job.model_dir}: train the model first (harness run), or pass "
            "--checkpoint PATH"
        )
    try:
        results = evaluate_checkpoint(job, path, eval_dir(job))
    except (UserCodeError, CheckpointNotFoundError) as exc:
        return _fail(str(exc))
    step = results.pop(GLOBAL_STEP_KEY)
    print(f"{job.name}: evaluated {path} (global step {step})")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in sorted(results.items()):
        table.add_row(name, f"{value:.6g}" if isinstance(value, float) else str(value))
    Console().print(table)
    print(f"summaries written to {eval_dir(job)}")
    return 0


def _fail(message: str) -> int:
    print(f"harness: error: {message}", file=sys.stderr)
    return 2
