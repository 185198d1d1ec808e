"""The simulated scale: the real supervisor and local launcher driving ``bench.fake_task``.

``python -m bench.scale_sim --tasks 1024 --out result.json`` runs one job of 1 chief,
``ps_for(tasks)`` ps and the rest workers through ``harness.commands.run.run_supervised``
(the code path of ``harness run``, run.json writes and all), with ``FakeTaskBackend``: the
local backend whose processes run ``python -I -S bench/fake_task.py`` instead of
``python -m harness.task``. Each size runs in a fresh driver process (``measure``), so its
CPU time and peak RSS are its own. ``--profile FILE`` writes a cProfile of the
supervisor's thread.

Measured (``ScaleObserver``, a ``RunObserver``; times on the driver's clocks):

- bring-up: launch -> every trainer has sent its first ``progress`` after ``session_ready``;
- event latency: a trainer's ``time.time()`` when it wrote the event (its ``loss``, see
  ``bench.fake_task``) -> the supervisor's observer call for it, over the steady window
  (which starts ``settle_secs`` after bring-up; the worst latency before it is kept too);
- driver CPU per event: the driver process's CPU seconds (``time.process_time()``, all
  threads: the supervisor and the launcher's reader threads; nanosecond clock, where
  ``/proc``'s 10 ms ticks would round a short window to 0) over the window / the events
  handled in it;
- driver RSS: peak (VmHWM) and at the end of the window; per-task RSS then;
- teardown: ``stop`` sent to the chief -> the last task process gone.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import os
import pstats
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench import procwatch
from bench.scale_stats import latency_summary
from cluster.local import LocalBackend, LocalRequest
from cluster.observe import RunObserver, Snapshot
from harness import protocol

FAKE_TASK = str(Path(__file__).with_name("fake_task.py"))
REPO = str(Path(__file__).resolve().parents[1])
MAX_WORKERS = 256  # harness.job's cap on cluster.workers


def ps_for(tasks: int) -> int:
    """How many of ``tasks`` are ps: one per 64 tasks, at least one."""
    return max(1, tasks // 64)


class FakeTaskBackend(LocalBackend):
    """The local backend, with every task's command replaced by ``bench/fake_task.py``."""

    def render(self, plan: Any) -> LocalRequest:
        request = super().render(plan)
        processes = tuple(
            dataclasses.replace(p, command=fake_command(p.key)) for p in request.processes
        )
        return dataclasses.replace(request, processes=processes)


def fake_command(key: str) -> tuple[str, ...]:
    role, index = key.split(":")
    return (sys.executable, "-I", "-S", FAKE_TASK, "--role", role, "--index", index)


class ScaleObserver(RunObserver):
    """Times the bring-up, the steady window and the event latencies (module docstring).

    Once every one of ``trainers`` stepped (its second report), ``settle_secs`` pass (the
    backlog of the bring-up drains; its worst latency is kept as ``settle_max``), then the
    window of ``window_secs`` is measured; ``end_run()`` is then called once: it tells the
    chief to stop, which ends the job the normal way (STOPPING). O(1) per report.
    """

    def __init__(
        self, trainers: int, window_secs: float, end_run: Any, settle_secs: float = 2.0
    ) -> None:
        self.trainers, self.window_secs, self._end_run = trainers, window_secs, end_run
        self.settle_secs = settle_secs
        self.me = psutil.Process()
        self.reports: dict[str, int] = {}
        self.stepping = 0  # trainers with two reports (session_ready, first progress)
        self.latencies: list[float] = []
        self.all_stepping: float | None = None  # time.monotonic()
        self.window_start: float | None = None
        self.window_events = 0
        self.cpu_at_start = self.cpu_window = 0.0
        self.stop_sent: float | None = None
        self.settle_max = 0.0
        self.driver_rss_window = 0
        self.task_rss: list[int] = []

    def progress(self, snapshot: Snapshot) -> None:
        now_wall, now = time.time(), time.monotonic()
        latency = None if snapshot.loss is None else now_wall - snapshot.loss
        if self.all_stepping is None:
            count = self.reports[snapshot.reporter] = self.reports.get(snapshot.reporter, 0) + 1
            self.stepping += count == 2
            if self.stepping == self.trainers:
                self.all_stepping = now
            return
        if self.stop_sent is not None:
            return
        if self.window_start is None:
            if now - self.all_stepping < self.settle_secs:
                self.settle_max = max(self.settle_max, latency or 0.0)
                return
            self.window_start, self.cpu_at_start = now, time.process_time()
        if latency is not None:
            self.latencies.append(latency)
        self.window_events += 1
        if now - self.window_start >= self.window_secs:
            self.cpu_window = time.process_time() - self.cpu_at_start
            self._sample_rss()  # after the window: it takes ~1 ms a task, on this thread
            self.stop_sent = time.monotonic()
            self._end_run()

    def _sample_rss(self) -> None:
        self.driver_rss_window = self.me.memory_info().rss
        for child in self.me.children():
            try:
                self.task_rss.append(child.memory_info().rss)
            except psutil.Error:
                continue


def run_once(tasks: int, work_dir: str, window_secs: float, profile: str | None) -> dict:
    """One simulated job of ``tasks`` tasks, in this process; returns its figures."""
    from harness.commands.run import run_supervised
    from harness.job import JobSpec
    from harness.testing import make_job_dict

    ps = ps_for(tasks)
    workers = tasks - 1 - ps
    job = JobSpec.from_dict(
        make_job_dict(
            "bench.fake_task:model_fn",
            "bench.fake_task:input_fn",
            os.path.join(work_dir, "model"),
            name=f"scale-sim-{tasks}",
            workers=min(workers, MAX_WORKERS),
            ps=ps,
            max_steps=10**9,
            source_dirs=(REPO,),
            resources={r: {"cpu": 0.001} for r in ("chief", "worker", "ps")},
            failure={"max_failures": 0, "stall_timeout_secs": 600, "warm_spares": False},
            timeouts={"startup_secs": 900, "stop_grace_secs": 60},
        )
    )
    if workers > MAX_WORKERS:  # past the job schema's cap, to see the driver's cost beyond it
        cluster = job.cluster.model_copy(update={"workers": workers})
        job = job.model_copy(update={"cluster": cluster})
    backend = FakeTaskBackend()
    launched: list[Any] = []
    original_launch = backend.launch

    def launch(request: LocalRequest) -> Any:
        launched.append(original_launch(request))
        return launched[0]

    backend.launch = launch  # type: ignore[method-assign]

    def end_run() -> None:
        chief = next(h for h in launched[0].started if h.plan.key == "chief:0")
        chief.send(protocol.encode_command("stop"))

    observer = ScaleObserver(1 + workers, window_secs, end_run)
    me = psutil.Process()
    cpu0, rss0 = time.process_time(), me.memory_info().rss
    profiler = cProfile.Profile() if profile else None
    t_launch = time.monotonic()
    if profiler:
        profiler.enable()
    summary, _ = run_supervised(job, backend, quiet=True, observers=[observer], show_progress=False)
    if profiler:
        profiler.disable()
        with open(profile, "w") as f:
            pstats.Stats(profiler, stream=f).sort_stats("cumulative").print_stats(40)
    pids = [h.pid for h in launched[0].started] if launched else []
    while not procwatch.all_gone(pids):
        time.sleep(0.01)
    t_gone = time.monotonic()
    if summary.get("status") != "succeeded" or observer.stop_sent is None:
        raise RuntimeError(f"simulated run of {tasks} tasks failed: {summary.get('error')}")
    return {
        "tasks": tasks,
        "workers": workers,
        "ps": ps,
        "bring_up_secs": round(observer.all_stepping - t_launch, 3),
        "teardown_secs": round(t_gone - (observer.stop_sent or t_gone), 3),
        "latency": latency_summary(observer.latencies),
        "settle_max_ms": round(1000 * observer.settle_max, 1),
        "window_events": observer.window_events,
        "events_per_sec": round(observer.window_events / window_secs, 1),
        "cpu_per_event_us": round(1e6 * observer.cpu_window / max(1, observer.window_events), 1),
        "driver_cpu_secs": round(time.process_time() - cpu0, 2),
        "driver_rss_start_mb": round(rss0 / procwatch.MIB, 1),
        "driver_rss_window_mb": round(observer.driver_rss_window / procwatch.MIB, 1),
        "driver_peak_rss_mb": round(procwatch.peak_rss_bytes(me) / procwatch.MIB, 1),
        "task_rss_mean_mb": round(
            sum(observer.task_rss) / max(1, len(observer.task_rss)) / procwatch.MIB, 1
        ),
        "task_rss_max_mb": round(max(observer.task_rss, default=0) / procwatch.MIB, 1),
    }


def measure(
    tasks: int, work_dir: str, window_secs: float, profile: str | None = None
) -> dict[str, Any]:
    """``run_once`` in a fresh driver process (``python -m bench.scale_sim``)."""
    os.makedirs(work_dir, exist_ok=True)
    out = os.path.join(work_dir, "result.json")
    command = [sys.executable, "-m", "bench.scale_sim", "--tasks", str(tasks)]
    command += ["--work-dir", work_dir, "--window-secs", str(window_secs), "--out", out]
    if profile:
        command += ["--profile", profile]
    with open(os.path.join(work_dir, "driver.log"), "w") as log:
        done = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = Path(work_dir, "driver.log").read_text().strip().splitlines()[-5:]
        raise RuntimeError(f"scale_sim {tasks} tasks exited {done.returncode}: {' | '.join(tail)}")
    return json.loads(Path(out).read_text())


def raise_fd_limit(tasks: int) -> None:
    """Each task holds two pipes and may hold a log file: raise the soft limit to fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * tasks + 256))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    threading.stack_size(512 * 1024)  # the launcher's reader threads: 1 per task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_sim", description=__doc__)
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--window-secs", type=float, default=10.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    if args.tasks < 3:
        raise SystemExit("--tasks: at least 3 (a chief, a worker and a ps)")
    raise_fd_limit(args.tasks)
    result = run_once(args.tasks, args.work_dir, args.window_secs, args.profile)
    Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
