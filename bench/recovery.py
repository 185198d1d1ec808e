"""Kill-to-first-step: how long a killed task's replacement takes to make its first step.

One run is a cluster (chief, 1 worker, 1 ps) of this module's tiny ``model_fn`` through
``run_job``, with ``failure.warm_spares`` on (the candidate) or off (the baseline, a cold
restart); the variants are interleaved run by run, local and Ray. In each run the driver
SIGKILLs the worker, waits for its replacement's first step, then does the same to the
chief (its ps is alive: it joins the live variables), then stops the job through a stop
file. With spares on, each kill waits until a spare is there and idle (its imports done).

Kill-to-first-step = from ``time.time()`` just before the driver's SIGKILL to the
replacement's first ``session.run`` returning, as the replacement itself recorded it
(``FirstStepHook``: wall clock, with its pid, in ``<run_dir>/steps.jsonl``). Targets (the
recovery issue): a worker <= 3 s, a chief <= 5 s.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import psutil

from bench.stats import Comparison, Target

ROLES = ("worker", "chief")
BACKENDS = ("local", "ray")
TARGET_SECS = {"worker": 3.0, "chief": 5.0}
STEP_SECS = 0.05  # each step sleeps this long: the cluster leaves the CPUs to the restarts
WAIT_SECS = 180.0

Figures = dict[str, list[float | None]]  # "<backend>-<role>-<warm|cold>" -> one per run


# ---- the tasks' side: the model ----------------------------------------------------------------


def input_fn(params: dict[str, Any]) -> Any:
    import tensorflow as tf

    return tf.data.Dataset.from_tensors(({"x": [[1.0]]}, [[2.0]])).repeat()


def model_fn(features: Any, labels: Any, mode: str, params: dict[str, Any]) -> Any:
    import tensorflow as tf

    from harness import ModelFnOps

    v1 = tf.compat.v1
    w = v1.get_variable("w", [1, 1], initializer=v1.zeros_initializer())
    loss = tf.reduce_mean(tf.square(tf.matmul(features["x"], w) - labels))
    train_op = v1.train.GradientDescentOptimizer(0.01).minimize(
        loss, global_step=v1.train.get_global_step()
    )
    hooks = [_hook(params)]
    return ModelFnOps(mode, loss=loss, train_op=train_op, training_hooks=hooks)


def _hook(params: dict[str, Any]) -> Any:
    import tensorflow as tf

    class FirstStepHook(tf.compat.v1.train.SessionRunHook):
        """Records this process's first step (wall clock, pid, task); slows every step;
        the chief stops when the driver's stop file exists."""

        def __init__(self) -> None:
            self._stepped = False
            self._task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})

        def after_run(self, run_context: Any, run_values: Any) -> None:
            if not self._stepped:
                self._stepped = True
                line = {"t": time.time(), "pid": os.getpid(), "role": self._task.get("type")}
                with open(params["steps"], "a") as f:
                    f.write(json.dumps(line) + "\n")
            time.sleep(STEP_SECS)
            if self._task.get("type") == "chief" and os.path.exists(params["stop"]):
                run_context.request_stop()

    return FirstStepHook()


# ---- the driver's side -------------------------------------------------------------------------


def first_steps(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT_SECS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"recovery run: timed out waiting for {what}")


def idle_spare(model_dir: str) -> bool:
    """Whether a spare of this job is there and idle (its imports done)."""
    from harness.testing import leftover_task_processes

    for proc in leftover_task_processes(model_dir):
        try:
            if "--spare" not in " ".join(proc.cmdline()):
                continue
            before = sum(proc.cpu_times()[:2])
            time.sleep(0.5)
            if sum(proc.cpu_times()[:2]) - before < 0.02:
                return True
        except psutil.NoSuchProcess:
            continue
    return False


def kill_and_time(role: str, steps: str, model_dir: str, warm: bool) -> float:
    """SIGKILL ``role``'s current process; seconds until its replacement's first step."""
    wait_for(f"{role} stepping", lambda: [s for s in first_steps(steps) if s["role"] == role])
    current = [s for s in first_steps(steps) if s["role"] == role]
    if warm:
        wait_for("an idle warm spare", lambda: idle_spare(model_dir))
    else:
        time.sleep(1.0)
    victim = psutil.Process(current[-1]["pid"])
    killed_at = time.time()
    victim.kill()
    seen = len(current)

    def replaced() -> list[dict[str, Any]]:
        return [s for s in first_steps(steps) if s["role"] == role][seen:]

    return float(wait_for(f"{role}'s replacement", replaced)[0]["t"]) - killed_at


def measure_run(backend: str, run_dir: str, warm: bool) -> dict[str, float]:
    """One run: kill the worker, then the chief; each kill-to-first-step in seconds."""
    import contextlib
    import threading

    from harness.commands.run import run_job
    from harness.job import JobSpec
    from harness.testing import leftover_task_processes, make_job_dict

    os.makedirs(run_dir, exist_ok=True)
    steps, stop = os.path.join(run_dir, "steps.jsonl"), os.path.join(run_dir, "stop")
    model_dir = os.path.join(run_dir, "model")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    job = JobSpec.from_dict(
        make_job_dict(
            "bench.recovery:model_fn",
            "bench.recovery:input_fn",
            model_dir,
            name=f"recovery-{backend}-{'warm' if warm else 'cold'}",
            workers=1,
            ps=1,
            max_steps=10**9,
            params={"steps": steps, "stop": stop},
            source_dirs=(repo,),
            resources={"chief": {"cpu": 0.5}, "worker": {"cpu": 0.5}, "ps": {"cpu": 0.5}},
            failure={"max_failures": 5, "stall_timeout_secs": 120, "warm_spares": warm},
            timeouts={"startup_secs": 180, "stop_grace_secs": 5},
        )
    )
    figures: dict[str, float] = {}
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            for role in ROLES:
                figures[role] = kill_and_time(role, steps, job.model_dir, warm)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
        finally:
            open(stop, "w").close()

    driver = threading.Thread(target=drive, daemon=True)
    with open(os.path.join(run_dir, "driver.log"), "w") as log:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            driver.start()
            summary = run_job(job, backend=backend, quiet=True)
            driver.join(timeout=30)
    if errors:
        raise errors[0]
    if summary.get("status") != "succeeded":
        raise RuntimeError(f"recovery {backend} run failed: {summary.get('error')} ({run_dir})")
    records = {f["task"]: f.get("warm") for f in summary.get("failures", [])}
    if warm and records != {"worker:0": True, "chief:0": True}:
        raise RuntimeError(f"recovery {backend}: a restart was not warm: {records}")
    if leftover_task_processes(job.model_dir):
        raise RuntimeError(f"recovery {backend}: task processes left after the run")
    return figures


def measure(attempt: Callable[[str, Callable[[str], Any]], Any], runs: int, log: Any) -> Figures:
    """``runs`` repetitions of every variant, interleaved (rotated by one each repetition);
    ``attempt(label, job)`` runs one (the suite's: a failure is logged and is None)."""
    variants = [(b, w) for b in BACKENDS for w in (True, False)]
    figures: Figures = {
        f"{b}-{r}-{k}": [] for b in BACKENDS for r in ROLES for k in ("warm", "cold")
    }
    log(f"recovery: {runs} x {len(variants)} runs (a worker kill, then a chief kill, each)")
    for i in range(runs):
        shift = i % len(variants)
        for backend, warm in variants[shift:] + variants[:shift]:
            kind = "warm" if warm else "cold"
            label = f"recovery-{backend}-{kind}"
            result = attempt(label, lambda d, b=backend, w=warm: measure_run(b, d, w))
            for role in ROLES:
                value = None if result is None else result.get(role)
                figures[f"{backend}-{role}-{kind}"].append(value)
    return figures


def rows(figures: Figures) -> list[Comparison]:
    """One row per backend and role: cold restart (baseline) vs warm spare (candidate)."""
    return [
        Comparison(
            f"{role} kill-to-first-step, {backend}",
            "s",
            "cold restart",
            figures.get(f"{backend}-{role}-cold", []),
            "warm spare",
            figures.get(f"{backend}-{role}-warm", []),
            Target("value", "<=", TARGET_SECS[role]),
        )
        for backend in BACKENDS
        for role in ROLES
    ]


SETUP = (
    "From the SIGKILL of a task (the driver's clock, just before the kill) to its "
    "replacement's first `session.run` returning (the replacement's own wall clock), on a "
    "cluster of chief, 1 worker and 1 ps (`bench/recovery.py`): the worker is killed, then "
    "the chief (which joins the variables its live ps kept). Candidate: `failure.warm_spares: "
    "true`, where a spare process with TensorFlow imported becomes the task (the kill waits "
    "until the spare is idle); baseline: spares off, a cold restart, in the same run "
    "interleaved. A spare costs one idle task process's memory (see Memory)."
)
