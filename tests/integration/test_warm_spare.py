"""Warm spares (``failure.warm_spares``) on a real cluster, local processes and Ray.

Once every trainer steps, a spare (``python -m harness.task --spare``) waits with TensorFlow
imported. A killer thread SIGKILLs the worker's or the chief's task process once a spare is
there; the job must succeed, the replacement must be that spare (its records carry the
spare's pid, and run.json's failure record says ``warm``), and after teardown no process of
the job is left, the spare that replaced the used one included. With spares off the
restart is cold and the job still succeeds.
"""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray address is 127.0.0.1

import json
import threading
import time
from pathlib import Path

import psutil
import pytest

from harness.testing import leftover_task_processes, run_local_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = str(Path(__file__).resolve().parents[2])
MODEL_FN = "tests.integration.models:model_fn"
INPUT_FN = "tests.integration.models:input_fn"


def job_processes(model_dir: Path) -> list[psutil.Process]:
    return leftover_task_processes(model_dir)


def cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


class Killer(threading.Thread):
    """SIGKILLs ``role``'s task process (or, with ``wait_spare``, once a spare is there);
    keeps the killed ``pid`` and every spare pid seen (``spares``)."""

    def __init__(self, model_dir: Path, role: str, wait_spare: bool, after_steps: int) -> None:
        super().__init__(daemon=True)
        self.model_dir, self.role, self.wait_spare = model_dir, role, wait_spare
        self.after_steps = after_steps
        self.record = model_dir.parent / "record.jsonl"
        self.stop = threading.Event()
        self.pid: int | None = None
        self.spares: set[int] = set()

    def stepped(self) -> int:
        if not self.record.exists():
            return 0
        return sum('"call": "step"' in line for line in self.record.read_text().splitlines())

    def run(self) -> None:
        while not self.stop.is_set() and self.pid is None:
            procs = job_processes(self.model_dir)
            self.spares |= {p.pid for p in procs if "--spare" in cmdline(p)}
            ready = self.stepped() >= self.after_steps and (self.spares or not self.wait_spare)
            target = [p for p in procs if f"--role {self.role}" in cmdline(p)]
            if ready and target:
                time.sleep(1.0 if self.wait_spare else 0.0)  # let the spare import a little
                target[0].kill()
                self.pid = target[0].pid
            time.sleep(0.2)
        while not self.stop.is_set():  # the spare started after the restart, too
            procs = job_processes(self.model_dir)
            self.spares |= {p.pid for p in procs if "--spare" in cmdline(p)}
            time.sleep(0.3)


def run_with_a_kill(tmp_path: Path, backend: str, role: str, warm_spares: bool):
    model_dir, record = tmp_path / "model", tmp_path / "record.jsonl"
    killer = Killer(model_dir, role, wait_spare=warm_spares, after_steps=10)
    killer.start()
    try:
        result = run_local_cluster(
            MODEL_FN,
            INPUT_FN,
            model_dir=model_dir,
            backend=backend,
            name=f"spare-{role}",
            workers=1,
            ps=1,
            max_steps=300,
            params={"slow_secs": 0.1, "record": str(record)},
            failure={"max_failures": 3, "stall_timeout_secs": 120, "warm_spares": warm_spares},
            placement={"timeout_secs": 60},
            source_dirs=(REPO,),
        )
    finally:
        killer.stop.set()
        killer.join(timeout=10)
    assert killer.pid is not None, f"{role} was never killed"
    assert result.succeeded, result.error
    records = [json.loads(line) for line in record.read_text().splitlines() if line]
    key = f"{role}:0"
    after = {
        r["pid"] for r in records if r["task"] == key and r.get("pid") not in (None, killer.pid)
    }
    failures = [f for f in result.summary["failures"] if f["task"] == key]
    assert failures and failures[0]["decision"] == "RESTART_TASK", result.summary["failures"]
    gone = [p for p in [*map(safe_process, killer.spares)] if p is not None and p.is_running()]
    assert not gone, f"spares left running: {gone}"
    assert not leftover_task_processes(model_dir), "task processes left running"
    return failures[0], after, killer


def safe_process(pid: int) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc
    except psutil.NoSuchProcess:
        return None


@pytest.mark.parametrize("backend", ["local", "ray"])
@pytest.mark.parametrize("role", ["worker", "chief"])
def test_the_replacement_is_the_warm_spare(tmp_path, backend, role):
    failure, after, killer = run_with_a_kill(tmp_path, backend, role, warm_spares=True)
    assert failure["warm"] is True, failure
    assert after and after <= killer.spares, (after, killer.spares)


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_with_spares_off_the_restart_is_cold(tmp_path, backend):
    failure, after, killer = run_with_a_kill(tmp_path, backend, "worker", warm_spares=False)
    assert failure["warm"] is False, failure
    assert not killer.spares, killer.spares
    assert after, "the restarted worker made no step"
