"""Test your own model_fn on a real local multi-process cluster, from your test suite.

Plain function::

    from harness.testing import run_local_cluster

    def test_my_model_trains(tmp_path):
        result = run_local_cluster(
            "mypkg.model:model_fn", "mypkg.model:input_fn",
            model_dir=tmp_path, workers=2, ps=1, max_steps=50,
        )
        assert result.succeeded, result.error
        assert result.final_global_step >= 50

or the pytest fixture (add ``pytest_plugins = ["harness.testing"]`` to your conftest.py)::

    def test_my_model(local_cluster):
        result = local_cluster("mypkg.model:model_fn", "mypkg.model:input_fn", max_steps=50)

Each task is a real OS process with a real TensorFlow gRPC server on 127.0.0.1, run by the
same supervisor as ``harness run --backend local``. When the call returns, no task process
is left: ``leftover_task_processes`` lets a test check that.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

try:
    import pytest
except ImportError:  # the fixture needs pytest; run_local_cluster does not
    pytest = None


@dataclass(frozen=True)
class ClusterResult:
    summary: dict[str, Any]
    model_dir: Path

    @property
    def succeeded(self) -> bool:
        return self.summary["status"] == "succeeded"

    @property
    def error(self) -> str | None:
        return self.summary.get("error")

    @property
    def final_global_step(self) -> int:
        return int(self.summary["final_global_step"])

    def checkpoints(self) -> list[str]:
        """Checkpoint prefixes in model_dir, oldest first (as the ``checkpoint`` file lists them)."""
        import tensorflow as tf

        state = tf.train.get_checkpoint_state(str(self.model_dir))
        return list(state.all_model_checkpoint_paths) if state else []


def make_job_dict(
    model_fn: str,
    input_fn: str,
    model_dir: str | os.PathLike[str],
    *,
    name: str = "test",
    workers: int = 1,
    ps: int = 1,
    max_steps: int = 50,
    params: dict[str, Any] | None = None,
    source_dirs: tuple[str, ...] = (),
    **sections: Any,
) -> dict[str, Any]:
    """A job description for a small local test cluster; ``sections`` override YAML sections."""
    job: dict[str, Any] = {
        "name": name,
        "model_fn": model_fn,
        "input_fn": input_fn,
        "model_dir": str(model_dir),
        "params": params,
        "cluster": {"workers": workers, "ps": ps},
        "resources": {r: {"cpu": 0.5} for r in ("chief", "worker", "ps")},
        "train": {"max_steps": max_steps, "save_checkpoints_steps": max(1, max_steps // 5)},
        "timeouts": {"startup_secs": 120, "stop_grace_secs": 5},
        "source_dirs": list(source_dirs or (os.getcwd(),)),
    }
    for key, value in sections.items():
        job[key] = {**job.get(key, {}), **value} if isinstance(value, dict) else value
    return job


def run_local_cluster(
    model_fn: str,
    input_fn: str,
    model_dir: str | os.PathLike[str],
    extra_env: dict[str, str] | None = None,
    quiet: bool = True,
    backend: str = "local",
    **job_fields: Any,
) -> ClusterResult:
    """Run a job to the end and return its run summary.

    ``backend="local"`` (default) runs OS processes; ``backend="ray"`` runs the same tasks as
    Ray actors (on the Ray this process is connected to, or an embedded one).
    """
    from harness.commands.run import run_job
    from harness.job import JobSpec

    job = JobSpec.from_dict(make_job_dict(model_fn, input_fn, model_dir, **job_fields))
    summary = run_job(job, backend=backend, quiet=quiet, extra_env=extra_env)
    return ClusterResult(summary=summary, model_dir=Path(job.model_dir))


def leftover_task_processes(model_dir: str | os.PathLike[str]) -> list[psutil.Process]:
    """Task processes (``python -m harness.task``) of the job whose model_dir this is."""
    marker = json.dumps(str(model_dir))[1:-1]
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "harness.task" in " ".join(
                proc.info["cmdline"] or ()
            ) and marker in proc.environ().get("HARNESS_JOB", ""):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _local_cluster(tmp_path: Path) -> Any:
    """``local_cluster(model_fn, input_fn, **job_fields)`` runs a cluster in ``tmp_path/model``."""

    def run(model_fn: str, input_fn: str, **job_fields: Any) -> ClusterResult:
        job_fields.setdefault("model_dir", tmp_path / "model")
        return run_local_cluster(model_fn, input_fn, **job_fields)

    yield run
    left = leftover_task_processes(tmp_path / "model")
    for proc in left:
        proc.kill()
    assert not left, f"task processes left running: {[p.pid for p in left]}"


if pytest is not None:
    local_cluster = pytest.fixture(name="local_cluster")(_local_cluster)
