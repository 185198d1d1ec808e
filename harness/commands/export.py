"""``harness export``: export a job's checkpoint as a SavedModel and list its signatures."""

from __future__ import annotations

import sys

from harness.commands.quiet import tensorflow_notices_quiet
from harness.errors import UserCodeError
from harness.export.saved_model import export_with_signatures
from harness.export.serving_inputs import ExportError
from harness.export.signatures import describe_signatures
from harness.job import JobSpec
from harness.runtime.evaluation import CheckpointNotFoundError


def export_command(
    job: JobSpec, export_dir: str, checkpoint: str | None, default_output: str | None
) -> int:
    """``harness export``: exports, prints the SavedModel path and its signatures; exit code."""
    try:
        with tensorflow_notices_quiet():
            path, signatures = export_with_signatures(job, export_dir, checkpoint, default_output)
    except (ExportError, UserCodeError, CheckpointNotFoundError) as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    print(f"harness: exported a SavedModel to {path}")
    print("signatures:")
    for line in describe_signatures(signatures):
        print(f"  {line}")
    return 0
