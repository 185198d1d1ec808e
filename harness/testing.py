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

Fault injection (RELIABILITY.md), to test that a job survives what production does to it:

- ``kill_task_at_step(role, index, step, marker)``: the ``extra_env`` that makes one task
  SIGKILL itself once the global step reaches ``step``, on its first instance only
  (``harness.faults``); pass it to ``run_local_cluster`` (either backend).
  ``kill_tasks_at_steps([(role, index, step, marker), ...])``: several such kills in one job.
- ``kill_driver_at_step(job_file, step)``: runs ``harness run`` as a subprocess and SIGKILLs
  it at that step; the ``DriverOutcome`` says what the driver had started and how long it
  took after the driver's death until none of it was left.
- ``interrupt_driver_at_step(job_file, step)``: the same with SIGINT, sent to a ``harness
  run`` that inherited SIGINT ignored (as ``harness run ... &`` in a script does); the job
  should stop every task and exit 130.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from harness.faults import FAULT_INJECT_ENV, FAULT_SEPARATOR

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


# ---- fault injection ------------------------------------------------------------------------


def kill_task_at_step(
    role: str, index: int, step: int, marker: str | os.PathLike[str]
) -> dict[str, str]:
    """The ``extra_env`` that makes task ``role:index`` SIGKILL itself once the global step
    reaches ``step`` (a trainer at its first progress report at or past it, a ps or evaluator
    when a checkpoint at or past it exists). ``marker`` (a file that must not exist yet) is
    created just before, so the restarted task does not kill itself again."""
    return {FAULT_INJECT_ENV: f"kill:{role}:{index}:step={step}:{os.fspath(marker)}"}


def kill_tasks_at_steps(
    kills: list[tuple[str, int, int, str | os.PathLike[str]]],
) -> dict[str, str]:
    """The ``extra_env`` for several kills in one job: each ``(role, index, step, marker)`` as
    for ``kill_task_at_step``, with its own marker (the markers must differ). The job's
    ``failure.max_failures`` must allow one restart per kill."""
    markers = [os.fspath(marker) for *_, marker in kills]
    if len(set(markers)) != len(markers):
        raise ValueError(f"kill_tasks_at_steps: each kill needs its own marker, got {markers}")
    values = [kill_task_at_step(*kill)[FAULT_INJECT_ENV] for kill in kills]
    return {FAULT_INJECT_ENV: FAULT_SEPARATOR.join(values)}


def write_job_file(
    path: str | os.PathLike[str],
    model_fn: str,
    input_fn: str,
    model_dir: str | os.PathLike[str],
    **job_fields: Any,
) -> Path:
    """Write a job file for ``harness run`` (``make_job_dict``'s job); returns its path."""
    import yaml

    path = Path(path)
    path.write_text(yaml.safe_dump(make_job_dict(model_fn, input_fn, model_dir, **job_fields)))
    return path


@dataclass(frozen=True)
class DriverOutcome:
    """What a ``harness run`` subprocess did after a fault (``kill_driver_at_step``,
    ``interrupt_driver_at_step``).

    Attributes:
        returncode: the driver's exit status (-9 after SIGKILL; 130 after an interrupt).
        output: what the driver printed (stdout and stderr).
        run: run.json's content once the driver had ended (None when there was none).
        started: the driver's processes just before the fault (its children and theirs:
            tasks, Ray's processes), as ``"pid name"``.
        left: those still running at the cleanup deadline (they were then killed).
        cleanup_secs: from the moment the driver was seen dead (reaped) to the moment none
            of ``started`` was running any more; None when some were ``left``.
    """

    returncode: int
    output: str
    run: dict[str, Any] | None
    started: tuple[str, ...]
    left: tuple[str, ...]
    cleanup_secs: float | None

    @property
    def nothing_left(self) -> bool:
        return not self.left


def kill_driver_at_step(
    job_file: str | os.PathLike[str],
    step: int,
    backend: str = "local",
    **options: Any,
) -> DriverOutcome:
    """Run ``harness run JOB --backend BACKEND`` and SIGKILL it once run.json says the global
    step reached ``step``. ``options``: ``cwd``, ``env`` (the driver's environment; default
    this process's, without RAY_ADDRESS), ``deadline_secs`` (for the step, default 240),
    ``cleanup_deadline_secs`` (for the driver's processes to go, default 30)."""
    return _drive(job_file, step, backend, lambda proc: proc.kill(), None, **options)


def interrupt_driver_at_step(
    job_file: str | os.PathLike[str],
    step: int,
    backend: str = "local",
    signum: int = signal.SIGINT,
    inherited: Any = signal.SIG_IGN,
    **options: Any,
) -> DriverOutcome:
    """Start ``harness run`` with ``signum``'s disposition set to ``inherited`` (set in the
    child before exec: what a shell gives ``cmd &``), send it ``signum`` once the global step
    reached ``step`` and wait for it to exit (expect 130). ``options`` as for
    ``kill_driver_at_step``."""

    def inherit() -> None:
        signal.signal(signum, inherited)

    return _drive(
        job_file, step, backend, lambda proc: proc.send_signal(signum), inherit, **options
    )


def _drive(
    job_file: str | os.PathLike[str],
    step: int,
    backend: str,
    fault: Callable[[subprocess.Popen[str]], None],
    preexec: Callable[[], None] | None,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    deadline_secs: float = 240.0,
    cleanup_deadline_secs: float = 30.0,
) -> DriverOutcome:
    import yaml

    cwd = os.fspath(cwd or os.getcwd())
    model_dir = os.path.join(cwd, yaml.safe_load(Path(job_file).read_text())["model_dir"])
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-m", "harness", "run", os.fspath(job_file), "--backend", backend]
    driver = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(driver.stdout or ()), daemon=True)
    reader.start()
    started: list[psutil.Process] = []
    try:
        _wait_for_step(driver, model_dir, step, deadline_secs, lines)
        started = psutil.Process(driver.pid).children(recursive=True)
        described = tuple(_describe(p) for p in started)
        fault(driver)
        returncode = driver.wait(timeout=deadline_secs)
    finally:
        if driver.poll() is None:  # the test failed: leave nothing behind
            _kill([*psutil.Process(driver.pid).children(recursive=True), *started])
            driver.kill()
            driver.wait()
    dead_at = time.monotonic()
    gone_at = _wait_gone(started, dead_at + cleanup_deadline_secs)
    left = [p for p in started if _running(p)]
    left_described = tuple(_describe(p) for p in left)
    _kill(left)
    reader.join(timeout=10)
    return DriverOutcome(
        returncode=returncode,
        output="".join(lines),
        run=_read_run_json(model_dir),
        started=described,
        left=left_described,
        cleanup_secs=None if left else round(gone_at - dead_at, 3),
    )


def _wait_for_step(
    driver: subprocess.Popen[str], model_dir: str, step: int, deadline_secs: float, lines: list[str]
) -> None:
    deadline = time.monotonic() + deadline_secs
    while True:
        run = _read_run_json(model_dir) or {}
        if run.get("status") == "running" and run.get("final_global_step", 0) >= step:
            return
        if driver.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"harness run did not reach global step {step} within {deadline_secs:g} s "
                f"(exit status {driver.poll()}); its output ends:\n{''.join(lines)[-3000:]}"
            )
        time.sleep(0.2)


def _wait_gone(processes: list[psutil.Process], deadline: float) -> float:
    """Poll until none of ``processes`` runs or ``deadline``; returns when that was seen."""
    while any(_running(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    return time.monotonic()


def _kill(processes: list[psutil.Process]) -> None:
    for proc in processes:
        try:
            proc.kill()
        except psutil.Error:
            pass


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        name = " ".join(proc.cmdline()[:4]) or proc.name()
    except psutil.Error:
        name = "?"
    return f"{proc.pid} {name}"


def _read_run_json(model_dir: str) -> dict[str, Any] | None:
    try:
        return json.loads(Path(model_dir, "run.json").read_text())
    except (OSError, ValueError):
        return None


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
