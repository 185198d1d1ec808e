"""Fault injection's parsing and arming (harness.faults), the running run.json
(cluster.record.RunningRecord) and the embedded Ray's watchdog (cluster.ray_fate)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from cluster.observe import Snapshot
from cluster.ray_fate import RayFate
from cluster.record import RunningRecord
from harness.faults import BindFault, KillFault, checkpoint_step, parse_fault
from harness.testing import kill_task_at_step


def test_parse_fault_reads_each_kind():
    assert parse_fault(None) is None and parse_fault("") is None and parse_fault("x:y") is None
    assert parse_fault("bind:worker:0:/tmp/m") == BindFault("worker:0", "/tmp/m")
    assert parse_fault("kill:ps:0:step=30:/tmp/m") == KillFault("ps:0", 30, "/tmp/m")
    with pytest.raises(ValueError, match="kill:<role>:<index>:step=<N>:<marker>"):
        parse_fault("kill:worker:0:30:/tmp/m")


def test_kill_task_at_step_is_the_variable_the_task_reads(tmp_path):
    env = kill_task_at_step("worker", 1, 25, tmp_path / "m")
    assert parse_fault(env["HARNESS_FAULT_INJECT"]) == KillFault(
        "worker:1", 25, str(tmp_path / "m")
    )


def test_a_kill_fault_is_due_at_its_step_for_its_task_until_the_marker_exists(tmp_path):
    fault = KillFault("worker:0", 10, str(tmp_path / "m"))
    assert not fault.due("worker:0", 9) and not fault.due("worker:1", 10)
    assert fault.due("worker:0", 10) and fault.due("worker:0", 11)
    (tmp_path / "m").touch()
    assert not fault.due("worker:0", 11)


def test_a_kill_fault_leaves_other_tasks_reports_alone(tmp_path):
    report = print
    fault = KillFault("worker:0", 10, str(tmp_path / "m"))
    assert fault.arm("chief:0", "chief", str(tmp_path), report) is report


def test_a_trainer_with_a_kill_fault_dies_by_sigkill_at_its_step(tmp_path):
    code = (
        "import sys; from harness.faults import KillFault\n"
        f"fault = KillFault('worker:0', 10, {str(tmp_path / 'm')!r})\n"
        "report = fault.arm('worker:0', 'worker', '.', lambda e, **f: print(e, f['global_step']))\n"
        "for step in range(0, 20, 3): report('progress', global_step=step)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    assert done.stdout.split()[1::2] == ["0", "3", "6", "9"]  # killed before reporting 12
    assert (tmp_path / "m").exists()


def test_checkpoint_step_reads_the_checkpoint_file(tmp_path):
    assert checkpoint_step(str(tmp_path)) == -1
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "/m/model.ckpt-40"\nall_model_checkpoint_paths: "/m/model.ckpt-20"\n'
    )
    assert checkpoint_step(str(tmp_path)) == 40


def test_running_record_writes_run_json_on_starts_exits_and_throttled_progress(tmp_path):
    now = [0.0]
    step = [0]
    record = RunningRecord(
        str(tmp_path),
        lambda: {"status": "running", "final_global_step": step[0]},
        every_secs=2.0,
        clock=lambda: now[0],
    )

    def written() -> int:
        return json.loads((tmp_path / "run.json").read_text())["final_global_step"]

    record.task_started("chief:0")
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "running"
    step[0] = 5
    record.progress(Snapshot(5, 100, None, None, 1.0, "chief:0"))
    assert written() == 0  # within every_secs of the last write
    now[0] = 2.5
    record.progress(Snapshot(5, 100, None, None, 2.5, "chief:0"))
    assert written() == 5
    step[0] = 6
    record.task_exited("worker:0", -9, "RESTART_TASK")
    assert written() == 6


def test_the_watchdog_kills_the_recorded_processes_when_its_pipe_closes(tmp_path):
    """A stand-in driver whose child runs code under a folder (as Ray's processes run the ray
    package's): closing the pipe makes the watchdog kill the child and the child's child."""
    ray_dir = tmp_path / "fake_ray"
    ray_dir.mkdir()
    (ray_dir / "head.py").write_text(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "time.sleep(600)\n"
    )
    head = subprocess.Popen([sys.executable, str(ray_dir / "head.py")])
    try:
        deadline = time.monotonic() + 30
        while len(psutil.Process(head.pid).children()) < 1:
            assert time.monotonic() < deadline, "the fake head did not start its child"
            time.sleep(0.05)
        grandchild = psutil.Process(head.pid).children()[0]
        fate = RayFate.start(os.getpid(), str(ray_dir))
        fate.close()  # each poll records before it reads the pipe: EOF finds them recorded
        assert fate.process.returncode == 0
        assert head.wait(timeout=10) == -9
        gone, alive = psutil.wait_procs([grandchild], timeout=10)
        assert not alive
    finally:
        head.kill()
        head.wait()
