"""Run the benchmark workload through tf-harness (``run_job``, local or ray backend).

The job is what ``harness run`` would get from a YAML file: ``bench.harness_model`` with 1
chief, N workers and 1 ps at 0.5 CPU each, ``max_steps`` out of reach (the recorder ends the
run after its time window), no restarts allowed (a failure is a failed benchmark). Besides the
recorder's figures, a run keeps run.json's bring-up breakdown (``timings.bring_up``,
``cluster.bringup``) and its longest ``join_delay_secs.<worker>``.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import psutil

from bench import procwatch
from bench.cpu_use import CpuUse
from bench.records import ClusterRun, analyze

REPO = str(Path(__file__).resolve().parents[1])
MAX_STEPS = 10**9


class RunFailed(RuntimeError):
    """A benchmark cluster run did not succeed."""


def job_dict(
    name: str, run_dir: str, params: dict[str, Any], workers: int, gpu: float = 0.0
) -> dict[str, Any]:
    """The job of one harness run, as ``harness.testing.make_job_dict`` builds test jobs."""
    from harness.testing import make_job_dict

    resources = {
        "chief": {"cpu": 0.5, "gpu": gpu},
        "worker": {"cpu": 0.5, "gpu": gpu},
        "ps": {"cpu": 0.5},
        "gpu_memory_growth": gpu > 0,
    }
    return make_job_dict(
        "bench.harness_model:model_fn",
        "bench.harness_model:input_fn",
        os.path.join(run_dir, "model"),
        name=name,
        workers=workers,
        ps=1,
        max_steps=MAX_STEPS,
        params=params,
        source_dirs=(REPO,),
        resources=resources,
        # no restarts, so no spare: its imports would load the measured window
        failure={"max_failures": 0, "stall_timeout_secs": 120, "warm_spares": False},
        timeouts={"startup_secs": 180, "stop_grace_secs": 5},
    )


def _ray_finder(model_dir: str) -> procwatch.Finder:
    """Task processes of this run under Ray, and their parents (the Ray actor processes)."""
    tasks = procwatch.processes_with_env("harness.task", "HARNESS_JOB", model_dir)

    def find() -> dict[str, psutil.Process]:
        found = tasks()
        for label, proc in list(found.items()):
            parent = proc.parent()
            if parent is not None:
                found[f"actor {label}"] = parent
        return found

    return find


def run_harness(
    backend: str,
    run_dir: str,
    params: dict[str, Any],
    workers: int,
    warmup_secs: float,
    gpu: float = 0.0,
) -> ClusterRun:
    """One cluster run of the workload through ``run_job``; returns its figures."""
    from harness.commands.run import run_job
    from harness.job import JobSpec

    record_dir = os.path.join(run_dir, "records")
    os.makedirs(record_dir, exist_ok=True)
    params = {**params, "record_dir": record_dir, "num_trainers": 1 + workers}
    name = f"bench-{backend}-{os.path.basename(run_dir)}"[:40].rstrip("-")
    job = JobSpec.from_dict(job_dict(name, run_dir, params, workers, gpu))
    tasks = workers + 2
    if backend == "ray":
        find, expected = _ray_finder(job.model_dir), 2 * tasks
    else:
        find, expected = procwatch.children_matching("harness.task"), tasks
    log_path = os.path.join(run_dir, "driver.log")
    with (
        open(log_path, "w") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        with procwatch.PeakRss(find, expected) as rss, CpuUse() as cpu:
            t_launch = time.monotonic()
            summary = run_job(job, backend=backend, quiet=True)
            t_gone = _wait_gone(list(rss.pids.values()))
    if summary.get("status") != "succeeded":
        raise RunFailed(f"harness {backend} run failed: {summary.get('error')} (see {run_dir})")
    result = analyze(record_dir, t_launch, t_gone, warmup_secs, rss.gone_at)
    result.cpu_cores = cpu.cores(*result.window_span) if result.window_span else None
    peaks = rss.peaks_mb()
    result.peak_rss_mb = {k: v for k, v in peaks.items() if not k.startswith("actor ")}
    actors = {k.removeprefix("actor "): v for k, v in peaks.items() if k.startswith("actor ")}
    result.actor_rss_mb = actors or None
    timings = summary.get("timings") or {}
    result.bring_up = timings.get("bring_up") or None
    joins = [v for k, v in timings.items() if k.startswith("join_delay_secs.")]
    result.relay_join_secs = max(joins) if joins else None
    return result


def _wait_gone(pids: list[int], timeout: float = 30.0) -> float:
    """When the last of ``pids`` was gone (``run_job`` has returned; this checks it)."""
    deadline = time.monotonic() + timeout
    while not procwatch.all_gone(pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return time.monotonic()
