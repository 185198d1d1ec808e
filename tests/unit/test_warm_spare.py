"""Warm spares: the ``become`` protocol, the pre-import comparison, the job field, and the
spare's wait (``harness.task.become``) with a fake stdin."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.processes import WarmSpare, first_step
from harness import protocol
from harness.identity import TaskId
from harness.job import JobSpec, JobSpecError
from harness.runtime import spare
from harness.testing import make_job_dict

ROOT = Path(__file__).resolve().parents[2]


def test_become_round_trips_the_task_and_the_identity_env():
    env = {"HARNESS_JOB": "{}", "HARNESS_NODE_IP": "10.0.0.2", "PATH": "/bin"}
    task_id, identity = spare.parse_become(spare.become_command(TaskId("worker", 3), env))
    assert task_id == TaskId("worker", 3)
    assert identity == {"HARNESS_JOB": "{}", "HARNESS_NODE_IP": "10.0.0.2",
                        "HARNESS_FAULT_INJECT": None}  # fmt: skip


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        json.dumps({"cmd": "stop"}),
        json.dumps({"cmd": "become", "role": "boss", "index": 0}),
        json.dumps({"cmd": "become", "role": "worker", "index": -1}),
        json.dumps({"cmd": "become", "role": "worker", "index": 0, "env": {"PATH": "/x"}}),
    ],
)
def test_a_bad_become_line_is_refused(line):
    with pytest.raises(spare.BecomeError, match="become"):
        spare.parse_become(line)


def test_the_pre_import_key_ignores_only_what_a_task_reads_after_its_imports():
    base = {"CUDA_VISIBLE_DEVICES": "", "TF_USE_LEGACY_KERAS": "1", "HARNESS_JOB": "a"}
    other_identity = {**base, "HARNESS_JOB": "b", "HARNESS_FAULT_INJECT": "x", "TF_CONFIG": "{}"}
    assert spare.pre_import_key(base) == spare.pre_import_key(other_identity)
    assert spare.pre_import_key(base) != spare.pre_import_key({**base, "CUDA_VISIBLE_DEVICES": "0"})
    assert spare.pre_import_key(base) != spare.pre_import_key({**base, "TF_XLA_FLAGS": "x"})


def test_first_step_is_a_progress_or_done_event():
    assert first_step(protocol.encode_event("progress", global_step=1) + "\n")
    assert first_step(protocol.encode_event("done", global_step=9))
    assert not first_step(protocol.encode_event("session_ready", t=1.0))
    assert not first_step("progress of something")


class FakeSpareProcess:
    """What ``WarmSpare.become`` touches of a Popen."""

    def __init__(self, alive: bool = True) -> None:
        self.stdin = io.StringIO()
        self.pid, self._alive = 4242, alive

    def poll(self):
        return None if self._alive else -9


def fake_spare(env: dict[str, str], alive: bool = True) -> WarmSpare:
    made = WarmSpare.__new__(WarmSpare)
    made.key, made.process = spare.pre_import_key(env), FakeSpareProcess(alive)
    return made


def test_a_spare_becomes_a_task_of_its_environment_only():
    env = {"PATH": "/bin", "HARNESS_JOB": "{}"}
    assert fake_spare(env).become(TaskId("chief", 0), {**env, "PATH": "/usr/bin"}) is None
    assert fake_spare(env, alive=False).become(TaskId("chief", 0), env) is None
    made = fake_spare(env)
    assert made.become(TaskId("chief", 0), {**env, "HARNESS_FAULT_INJECT": "f"}) is made.process
    task_id, identity = spare.parse_become(made.process.stdin.getvalue())
    assert task_id == TaskId("chief", 0) and identity["HARNESS_FAULT_INJECT"] == "f"


def test_become_sets_and_unsets_the_identity_env(monkeypatch):
    import harness.task

    monkeypatch.setattr(spare, "warm_up", lambda: None)
    for name in ("HARNESS_JOB", "HARNESS_NODE_IP"):  # restored after the test
        monkeypatch.setenv(name, "before")
    monkeypatch.setenv("HARNESS_FAULT_INJECT", "left over")
    line = spare.become_command(TaskId("ps", 1), {"HARNESS_JOB": "{}", "HARNESS_NODE_IP": "1.2"})
    assert harness.task.become(io.StringIO(line)) == TaskId("ps", 1)
    assert os.environ["HARNESS_JOB"] == "{}" and os.environ["HARNESS_NODE_IP"] == "1.2"
    assert "HARNESS_FAULT_INJECT" not in os.environ


def test_a_spare_exits_when_its_stdin_closes():
    """The real process: EOF while it waits ends it with EXIT_SUPERVISOR_LOST."""
    proc = subprocess.run(
        spare.spare_command(sys.executable),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == protocol.EXIT_SUPERVISOR_LOST, proc.stderr


def _job(tmp_path, **failure):
    data = make_job_dict(
        "tests.integration.models:model_fn",
        "tests.integration.models:input_fn",
        tmp_path / "model",
        source_dirs=(str(ROOT),),
        failure=failure,
    )
    return JobSpec.from_dict(data)


def test_warm_spares_default_on_and_can_be_turned_off(tmp_path):
    assert _job(tmp_path).failure.warm_spares is True
    assert _job(tmp_path, warm_spares=False).failure.warm_spares is False


def test_a_bad_warm_spares_value_names_the_field(tmp_path):
    with pytest.raises(JobSpecError) as caught:
        _job(tmp_path, warm_spares="sometimes")
    assert caught.value.field == "failure.warm_spares"
    assert "sometimes" in str(caught.value) or "bool" in str(caught.value)


def test_the_dry_run_says_whether_spares_are_on(tmp_path):
    from cluster.local import LocalBackend

    backend = LocalBackend()
    on = backend.render(backend.plan(_job(tmp_path))).describe()
    off = backend.render(backend.plan(_job(tmp_path, warm_spares=False))).describe()
    assert "warm spares: on" in on and "--spare" in on
    assert "warm spares: off (failure.warm_spares: false)" in off
