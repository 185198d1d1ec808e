"""The real-cluster part of the scale figure: 1 chief + N workers + M ps of real TF tasks.

``python -m bench.scale_real --workers 7 --ps 2 --work-dir DIR --out result.json`` runs one job
of the benchmark workload's small model (``bench.harness_model``, the ``RecorderHook``
ending it after its time window) through ``harness.commands.run.run_job`` on the local
backend, with ``CPU_PER_TASK`` logical CPUs per task so that even the largest size plans on
this machine's 2 cores. Each size runs in a fresh driver process (``measure``), so the
driver's CPU seconds and peak RSS (VmHWM) are its own.

Measured, from ``bench.records.analyze`` and ``bench.procwatch.PeakRss``:

- bring-up: launch -> the last trainer's first step;
- teardown: the chief's last step -> the last task process gone;
- the driver's CPU seconds (launch to gone) and peak RSS; every task's peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from bench import procwatch
from bench.harness_runs import REPO, RunFailed, job_dict
from bench.records import analyze

REAL_SIZES: tuple[tuple[int, int], ...] = ((1, 1), (3, 1), (7, 2), (15, 2), (31, 4))
QUICK_REAL_SIZES: tuple[tuple[int, int], ...] = ((1, 1), (3, 1))
CPU_PER_TASK = 0.05  # 36 tasks x 0.05 = 1.8 CPUs: the largest size plans on 2 cores
STARTUP_SECS = 900.0  # 36 TensorFlow imports on 2 cores take minutes


def scale_job_dict(workers: int, ps: int, run_dir: str, params: dict[str, Any]) -> dict[str, Any]:
    """``bench.harness_runs.job_dict`` with ``ps`` ps, small CPU shares and a long startup."""
    name = f"scale-real-{workers}w{ps}ps"
    job = job_dict(name, run_dir, params, workers)
    job["cluster"] = {**job["cluster"], "ps": ps}
    job["resources"] = {r: {"cpu": CPU_PER_TASK} for r in ("chief", "worker", "ps")}
    job["timeouts"] = {**job["timeouts"], "startup_secs": STARTUP_SECS}
    return job


def run_once(
    workers: int, ps: int, work_dir: str, window_secs: float, warmup_secs: float, warmup_steps: int
) -> dict[str, Any]:
    """One real job of 1 chief, ``workers`` workers and ``ps`` ps, in this process."""
    from harness.commands.run import run_job
    from harness.job import JobSpec

    record_dir = os.path.join(work_dir, "records")
    os.makedirs(record_dir, exist_ok=True)
    params = {
        "size": "small",
        "window_secs": window_secs,
        "warmup_secs": warmup_secs,
        "warmup_steps": warmup_steps,
        "record_dir": record_dir,
        "num_trainers": 1 + workers,
    }
    job = JobSpec.from_dict(scale_job_dict(workers, ps, work_dir, params))
    tasks = 1 + workers + ps
    me = psutil.Process()
    cpu0 = time.process_time()  # every thread of the driver
    with procwatch.PeakRss(procwatch.children_matching("harness.task"), tasks) as rss:
        t_launch = time.monotonic()
        summary = run_job(job, backend="local", quiet=True)
        pids = list(rss.pids.values())
        while not procwatch.all_gone(pids):
            time.sleep(0.02)
        t_gone = time.monotonic()
    if summary.get("status") != "succeeded":
        raise RunFailed(f"{workers} workers + {ps} ps failed: {summary.get('error')}")
    run = analyze(record_dir, t_launch, t_gone, warmup_secs, rss.gone_at)
    peaks = rss.peaks_mb()
    return {
        "workers": workers,
        "ps": ps,
        "tasks": tasks,
        "bring_up_secs": round(run.all_stepping_secs, 2),
        "first_step_secs": round(run.first_step_secs, 2),
        "teardown_secs": round(run.teardown_secs, 3),
        "steps_per_sec": round(run.steps_per_sec, 1),
        "driver_cpu_secs": round(time.process_time() - cpu0, 2),
        "driver_peak_rss_mb": round(procwatch.peak_rss_bytes(me) / procwatch.MIB, 1),
        "task_peak_rss_mb": peaks,
        "task_rss_max_mb": max(peaks.values(), default=0.0),
        "task_rss_mean_mb": round(sum(peaks.values()) / max(1, len(peaks)), 1),
    }


def measure(
    workers: int,
    ps: int,
    work_dir: str,
    window_secs: float,
    warmup_secs: float,
    warmup_steps: int,
) -> dict[str, Any]:
    """``run_once`` in a fresh driver process (``python -m bench.scale_real``)."""
    os.makedirs(work_dir, exist_ok=True)
    out = os.path.join(work_dir, "result.json")
    command = [sys.executable, "-m", "bench.scale_real", "--workers", str(workers)]
    command += ["--ps", str(ps), "--work-dir", work_dir, "--out", out]
    command += ["--window-secs", str(window_secs), "--warmup-secs", str(warmup_secs)]
    command += ["--warmup-steps", str(warmup_steps)]
    log_path = os.path.join(work_dir, "driver.log")
    with open(log_path, "w") as log:
        done = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = Path(log_path).read_text().strip().splitlines()[-5:]
        raise RunFailed(
            f"scale_real {workers} workers + {ps} ps exited {done.returncode}: "
            f"{' | '.join(tail)} (see {log_path})"
        )
    return json.loads(Path(out).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_real", description=__doc__)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--ps", type=int, required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--window-secs", type=float, default=3.0)
    parser.add_argument("--warmup-secs", type=float, default=1.0)
    parser.add_argument("--warmup-steps", type=int, default=110)
    args = parser.parse_args(argv)
    if args.workers < 0 or args.ps < 1:
        raise SystemExit("--workers: 0 or more; --ps: at least 1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log_path = os.path.join(args.work_dir, "job.log")
    os.makedirs(args.work_dir, exist_ok=True)
    with open(log_path, "w") as log, contextlib.redirect_stdout(log):
        result = run_once(
            args.workers,
            args.ps,
            args.work_dir,
            args.window_secs,
            args.warmup_secs,
            args.warmup_steps,
        )
    Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
