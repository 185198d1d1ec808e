"""Run the benchmark's measurements, baselines and candidates interleaved, and collect them.

Every repetition runs each variant once (bare TF, bare TF with tf.estimator's default hooks,
harness local, harness ray on the small and the large model; on the peer model, the harness
with SyncReplicasOptimizer on Ray and Ray Train), in an order rotated by one at each
repetition, so that all variants see the same background load over the run (ABAB... rather
than AAA...BBB...).
Scaling runs (1, 2, 4 trainers) are interleaved the same way. A failed run is logged and
counted as missing; it does not stop the benchmark.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench import bare_tf, hook_cost, procwatch, recovery, scale_suite
from bench.cpu_use import CpuUse
from bench.environment import Environment
from bench.harness_runs import REPO, run_harness
from bench.records import ClusterRun, analyze
from bench.workload import SIZES

FIGURES = (
    "throughput",
    "bringup",
    "teardown",
    "memory",
    "hooks",
    "scaling",
    "recovery",
    "scale",
)
SCALING_TRAINERS = (1, 2, 4)
SIZES_MEASURED = ("small", "large")
PEER_SIZE = "large"  # the model of the Ray Train / SyncReplicas comparison


@dataclass
class Settings:
    """What to measure and how long; ``quick()`` is the smoke-test setting."""

    runs: int = 5
    window_secs: float = 20.0
    warmup_secs: float = 2.0
    warmup_steps: int = 250  # bench.workload: past two cadences of the 100-step hooks
    scaling_window_secs: float = 3.0
    pause_secs: float = 1.0  # between runs, so one run's exit does not load the next
    hook_steps: int = 10_000
    figures: tuple[str, ...] = FIGURES
    skip: tuple[str, ...] = ()  # runs left out (``variant-size``), for --quick's time budget
    bare_chief_first: bool = False  # every bare-TF run starts its workers after the chief's init
    gpu: bool = False
    work_dir: str = ""
    keep: bool = False
    quick_mode: bool = False  # set by quick(): the scale figure's smaller sizes
    report_path: str = "BENCHMARKS.md"  # the scale figure's plots are linked from there

    @classmethod
    def quick(cls, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "runs": 1,
            "window_secs": 2.0,
            "warmup_secs": 0.5,
            "warmup_steps": 110,
            # Under 5 minutes on 2 cores: one run of each figure's variants, without the
            # large-model bare-TF runs (the join-delay baseline waits 30 s) and no 30 s waits.
            "skip": ("bare-large", "bare_est-large", "local-large"),
            "bare_chief_first": True,
            "scaling_window_secs": 1.0,
            "pause_secs": 0.0,
            "hook_steps": 500,
            "quick_mode": True,
        }
        return cls(**{**values, **overrides})


@dataclass
class Results:
    """Per-repetition results (``None`` for a failed run), keyed by variant."""

    settings: Settings
    clusters: dict[str, list[ClusterRun | None]] = field(default_factory=dict)
    ray_train: list[Any] = field(default_factory=list)
    hooks: list[hook_cost.HookCostRun] = field(default_factory=list)
    scaling: dict[int, list[ClusterRun | None]] = field(default_factory=dict)
    gpu_scaling: dict[int, list[ClusterRun | None]] = field(default_factory=dict)
    gpu_note: str | None = None
    recovery: dict[str, list[float | None]] = field(default_factory=dict)
    scale: scale_suite.ScaleResults | None = None
    failures: list[str] = field(default_factory=list)
    driver_tf_import_secs: float | None = None
    started: float = field(default_factory=time.time)
    environment: Environment = field(default_factory=Environment.capture)
    finished: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- one cluster run of each kind -----------------------------------------------------------


def run_bare(
    run_dir: str,
    params: dict[str, Any],
    workers: int,
    warmup_secs: float,
    chief_last: bool = False,
    chief_first: bool = False,
) -> ClusterRun:
    """The bare-TF baseline, with its task processes' peak RSS."""
    record_dir = os.path.join(run_dir, "records")
    os.makedirs(record_dir, exist_ok=True)
    params = {**params, "record_dir": record_dir}
    finder = procwatch.children_matching("bench.bare_tf", "--task")
    with procwatch.PeakRss(finder, expected=workers + 2) as rss, CpuUse() as cpu:
        launch, procs = bare_tf.start_cluster(
            params,
            os.path.join(run_dir, "model"),
            workers,
            chief_last=chief_last,
            chief_first=chief_first,
        )
        bare_tf.wait_cluster(launch, procs)
    failed = {k: c for k, c in launch.exit_codes.items() if c != 0}
    if failed:
        raise RuntimeError(f"bare TF tasks failed: {failed} (logs in {run_dir}/model)")
    result = analyze(record_dir, launch.t_launch, launch.t_gone, warmup_secs, launch.exit_times)
    result.peak_rss_mb = rss.peaks_mb()
    result.cpu_cores = cpu.cores(*result.window_span) if result.window_span else None
    return result


def gpu_count() -> tuple[int, str]:
    """How many GPUs this machine shows, and how that was found out (or why none)."""
    if shutil.which("nvidia-smi") is None:
        return 0, "no GPU visible: nvidia-smi is not installed"
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return 0, f"no GPU visible: nvidia-smi failed ({exc})"
    gpus = [line for line in out.stdout.splitlines() if line.startswith("GPU ")]
    if not gpus:
        return 0, "no GPU visible: nvidia-smi lists none"
    return len(gpus), f"{len(gpus)} GPU(s): " + "; ".join(g.split(" (UUID")[0] for g in gpus)


# ---- the whole benchmark ---------------------------------------------------------------------


class Suite:
    """Runs the selected figures' measurements (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.results = Results(settings)
        self.ray_started = False
        self._counter = 0

    def run(self) -> Results:
        r = self.results
        r.load_before = os.getloadavg()
        os.makedirs(self.s.work_dir, exist_ok=True)
        try:
            if "hooks" in self.s.figures:
                self._hooks()
            if self._needs_clusters():
                self._clusters()
            if "scaling" in self.s.figures:
                self._scaling(r.scaling, gpu=0.0)
            if "recovery" in self.s.figures:
                self._ensure_ray("ray")
                r.recovery = recovery.measure(self._attempt, self.s.runs, log)
            if "scale" in self.s.figures:
                scale_dir = os.path.join(self.s.work_dir, "scale")
                r.scale = scale_suite.measure(scale_dir, self.s.quick_mode, log)
                r.failures += r.scale.failures
            if self.s.gpu:
                self._gpu()
        finally:
            self.close()
        r.load_after = os.getloadavg()
        r.finished = time.time()
        return r

    # ---- figures -------------------------------------------------------------------------

    def _hooks(self) -> None:
        log(f"hook cost: {self.s.runs} x {self.s.hook_steps} steps with and without the hooks")
        for i in range(self.s.runs):
            run = hook_cost.measure_once(self.s.hook_steps)
            self.results.hooks.append(run)
            log(f"  hooks {i + 1}/{self.s.runs}: {run.cost_secs * 1e6:+.1f} µs/step")

    def _needs_clusters(self) -> bool:
        return bool({"throughput", "bringup", "teardown", "memory"} & set(self.s.figures))

    def _cluster_jobs(self) -> list[tuple[str, Callable[[str], Any]]]:
        figures = set(self.s.figures)
        both = {"throughput", "bringup"} & figures  # bringup: the join baseline
        sizes = SIZES_MEASURED if both else ("small",)
        jobs: list[tuple[str, Callable[[str], Any]]] = []
        for size in sizes:
            variants = ["bare", "local", "ray"]
            if "throughput" in figures:
                variants.insert(1, "bare_est")
                variants += ["ray_sync"] if size == PEER_SIZE else []
            for variant in variants:
                if f"{variant}-{size}" not in self.s.skip:
                    jobs.append((f"{variant}-{size}", self._cluster_job(variant, size)))
        if {"throughput", "bringup"} & figures:
            jobs.append(("raytrain", self._ray_train_job))
        return jobs

    def _cluster_job(self, variant: str, size: str) -> Callable[[str], ClusterRun]:
        def job(run_dir: str) -> ClusterRun:
            params = self._window_params(size)
            if variant == "bare":
                # Large-model runs also give the join-delay baseline: workers up before the chief.
                late = size == "large"
                first = self.s.bare_chief_first
                return run_bare(
                    run_dir, params, 2, self.s.warmup_secs, chief_last=late, chief_first=first
                )
            if variant == "bare_est":  # throughput only: workers start after the chief's init
                params["estimator_hooks"] = True
                return run_bare(run_dir, params, 2, self.s.warmup_secs, chief_first=True)
            backend = variant.removesuffix("_sync")
            params["sync_replicas"] = variant.endswith("_sync")
            self._ensure_ray(backend)
            return run_harness(backend, run_dir, params, workers=2, warmup_secs=self.s.warmup_secs)

        return job

    def _window_params(self, size: str) -> dict[str, Any]:
        return {
            "size": size,
            "window_secs": self.s.window_secs,
            "warmup_secs": self.s.warmup_secs,
            "warmup_steps": self.s.warmup_steps,
        }

    def _ray_train_job(self, run_dir: str) -> Any:
        from bench.ray_train_baseline import run_ray_train

        self._ensure_ray("ray")
        return run_ray_train(run_dir, self._window_params(PEER_SIZE))

    def _clusters(self) -> None:
        r = self.results
        if "bringup" in self.s.figures:
            r.driver_tf_import_secs = driver_tf_import_secs()
        jobs = self._cluster_jobs()
        for rep in range(self.s.runs):
            shift = rep % len(jobs)
            for name, job in jobs[shift:] + jobs[:shift]:
                result = self._attempt(f"{rep + 1}/{self.s.runs} {name}", job)
                if name == "raytrain":
                    r.ray_train.append(result)
                else:
                    r.clusters.setdefault(name, []).append(result)

    def _scaling(self, into: dict[int, list[ClusterRun | None]], gpu: float) -> None:
        trainers = SCALING_TRAINERS
        backend = "ray" if gpu else "local"
        for rep in range(self.s.runs):
            shift = rep % len(trainers)
            for n in trainers[shift:] + trainers[:shift]:
                job = self._scaling_job(n, backend, gpu)
                label = f"{rep + 1}/{self.s.runs} scaling{'-gpu' if gpu else ''}-{n}"
                into.setdefault(n, []).append(self._attempt(label, job))

    def _scaling_job(self, trainers: int, backend: str, gpu: float) -> Callable[[str], ClusterRun]:
        def job(run_dir: str) -> ClusterRun:
            params = {**self._window_params("large"), "window_secs": self.s.scaling_window_secs}
            if backend == "ray":
                self._ensure_ray(backend)
            per_trainer_gpu = min(1.0, gpu / trainers) if gpu else 0.0
            return run_harness(
                backend, run_dir, params, trainers - 1, self.s.warmup_secs, per_trainer_gpu
            )

        return job

    def _gpu(self) -> None:
        count, note = gpu_count()
        self.results.gpu_note = note
        if not count:
            log(f"--gpu: skipped, {note}")
            return
        log(f"--gpu: {note}; scaling on the Ray backend with GPUs shared by the trainers")
        self._scaling(self.results.gpu_scaling, gpu=float(count))

    # ---- plumbing ------------------------------------------------------------------------

    def _attempt(self, label: str, job: Callable[[str], Any]) -> Any:
        self._counter += 1
        time.sleep(self.s.pause_secs)
        run_dir = os.path.join(self.s.work_dir, f"run{self._counter:03d}")
        start = time.monotonic()
        try:
            result = job(run_dir)
        except Exception as exc:  # noqa: BLE001 - a failed run is reported, not fatal
            self.results.failures.append(f"{label}: {type(exc).__name__}: {exc}")
            log(f"  {label}: FAILED after {time.monotonic() - start:.0f} s: {exc}")
            traceback.print_exc(file=sys.stderr)
            kill_descendants(keep_ray=self.ray_started)
            return None
        log(f"  {label}: {describe(result)} ({time.monotonic() - start:.0f} s)")
        if not self.s.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        return result

    def _ensure_ray(self, backend: str) -> None:
        """One embedded local Ray for every Ray run (the harness's and Ray Train's)."""
        if backend != "ray" or self.ray_started:
            return
        import ray

        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray address on 127.0.0.1
        os.environ.pop("RAY_ADDRESS", None)
        # Ray workers inherit this: Ray Train's workers import bench.ray_train_baseline.
        paths = [REPO, os.environ.get("PYTHONPATH", "")]
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        log("starting an embedded local Ray for the Ray runs")
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        ray.init(
            address="local",
            num_cpus=max(4, os.cpu_count() or 1),
            include_dashboard=False,
            log_to_driver=False,
            logging_level="WARNING",
            _temp_dir=os.path.join("/tmp", f"bench-ray-{os.getpid()}"),
        )
        for sig, handler in handlers.items():  # ray.init replaces them
            if callable(handler):
                signal.signal(sig, handler)
        self.ray_started = True

    def close(self) -> None:
        """Stop Ray if this suite started it, then end every process it left behind."""
        if self.ray_started:
            import ray

            ray.shutdown()
            self.ray_started = False
            shutil.rmtree(os.path.join("/tmp", f"bench-ray-{os.getpid()}"), ignore_errors=True)
        kill_descendants(keep_ray=False)
        if not self.s.keep:
            shutil.rmtree(self.s.work_dir, ignore_errors=True)


def describe(result: Any) -> str:
    if isinstance(result, ClusterRun):
        return (
            f"{result.steps_per_sec:.1f} steps/s, first step {result.first_step_secs:.1f} s, "
            f"all stepping {result.all_stepping_secs:.1f} s, join delay "
            f"{result.join_delay_secs if result.join_delay_secs is None else round(result.join_delay_secs, 2)} s, "
            f"teardown {result.teardown_secs:.2f} s"
        )
    return str(result)


def driver_tf_import_secs() -> float:
    """How long ``import tensorflow`` takes in a fresh interpreter on this machine."""
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import tensorflow"],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        check=False,
    )
    return time.monotonic() - start


def kill_descendants(keep_ray: bool) -> None:
    """SIGKILL this process's descendants (all of them, or all but Ray's own processes)."""
    for proc in psutil.Process().children(recursive=True):
        try:
            if keep_ray and "ray" in " ".join(proc.cmdline()).lower():
                continue
            proc.kill()
        except psutil.Error:
            continue


def batch_size(size: str) -> int:
    return SIZES[size][0]
