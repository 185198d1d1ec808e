"""``harness status`` and ``harness logs`` against jobs running on a real local Ray.

The test process is the Ray driver (an embedded Ray on 127.0.0.1, token authentication on);
the commands run as subprocesses against its address, as a user's shell would. The model's
trainers hold after a few steps while a hold file exists, so every check happens while the
job is certainly running, however loaded the machine is; removing the file lets it finish.

- while a job runs: ``harness status`` shows its tasks, their node and a global step > 0
  (text and ``--json``); ``harness logs`` prints a worker's lines; an unknown job name and an
  unknown task get their errors (exit 2); a second run of the same job name is not registered;
- ``harness logs --follow`` prints the lines that come later and exits 0 when the job ends;
- after the run, and after Ctrl-C of a ``harness run`` attached to the cluster, the status
  board actor is gone.
"""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray address is 127.0.0.1

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import ray

from cluster.status import NAMESPACE, board_name, register_status
from harness.commands.run import run_job
from harness.job import JobSpec

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MODULE = "statustest_model"
MODEL_SOURCE = '''
"""Linear regression whose trainers hold after a few steps while params["hold"] exists."""
import os
import time

import numpy as np
import tensorflow as tf

from harness import ModelFnOps

v1 = tf.compat.v1


def input_fn(params):
    x = np.random.default_rng(0).uniform(-1, 1, size=(64, 1)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(({"x": x}, 2.0 * x)).repeat().batch(16)


class HoldHook(v1.train.SessionRunHook):
    def __init__(self, path, after_steps, name):
        self._path, self._after, self._name, self._steps = path, after_steps, name, 0

    def after_run(self, run_context, run_values):
        self._steps += 1
        time.sleep(0.1)  # progress is reported every 0.5 s: let some steps be seen
        if self._steps == self._after:
            print(f"{self._name} holds at local step {self._steps}", flush=True)
            while os.path.exists(self._path):
                time.sleep(0.1)
            print(f"{self._name} released", flush=True)


def model_fn(features, labels, mode, params, config):
    w = v1.get_variable("w", [1, 1], initializer=v1.zeros_initializer())
    loss = tf.reduce_mean(tf.square(tf.matmul(features["x"], w) - labels))
    train_op = v1.train.GradientDescentOptimizer(0.05).minimize(
        loss, global_step=v1.train.get_global_step()
    )
    name = f"{config.task_type}:{config.task_id}"
    print(f"model_fn built the graph of {name}", flush=True)
    hooks = [HoldHook(params["hold"], 15, name)] if params.get("hold") else []
    return ModelFnOps(mode, loss=loss, train_op=train_op, training_hooks=hooks)
'''


def job_data(tmp_path: Path, name: str, hold: Path, workers: int, ps: int) -> dict[str, Any]:
    (tmp_path / f"{MODULE}.py").write_text(MODEL_SOURCE)
    return {
        "name": name,
        "model_fn": f"{MODULE}:model_fn",
        "input_fn": f"{MODULE}:input_fn",
        "model_dir": str(tmp_path / "model"),
        "params": {"hold": str(hold)},
        "cluster": {"workers": workers, "ps": ps},
        "resources": {"chief": {"cpu": 0.5}, "worker": {"cpu": 0.5}, "ps": {"cpu": 0.5}},
        "train": {"max_steps": 40, "save_checkpoints_steps": 1000},
        "failure": {"max_failures": 0, "stall_timeout_secs": 600},
        "placement": {"timeout_secs": 60},
        "source_dirs": [str(tmp_path), str(REPO)],
    }


@pytest.fixture(scope="module")
def address():
    """An embedded Ray driven by this process; its GCS address for the commands."""
    ray.init(address="local", num_cpus=4, include_dashboard=False, logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def client_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    env["PYTHONPATH"] = str(REPO)
    return env


def harness(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        env=client_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def board_status(job: str) -> dict[str, Any] | None:
    """The job's board status, read in this process; None while there is no board."""
    try:
        board = ray.get_actor(board_name(job), namespace=NAMESPACE)
        return ray.get(board.status.remote(), timeout=30)
    except (ValueError, ray.exceptions.RayActorError):
        return None


def wait_until_held(job: str, keys: set[str], done: Any, deadline_secs: float = 240) -> None:
    """Until the board shows every task running and a global step > 0 (trainers hold)."""
    deadline = time.monotonic() + deadline_secs
    status = None
    while time.monotonic() < deadline:
        assert not done(), "the job ended before the checks"
        status = board_status(job)
        if status and set(status["tasks"]) == keys:
            running = all(t["state"] == "running" for t in status["tasks"].values())
            if running and (status["progress"] or {}).get("global_step", 0) > 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the job never got going: {status}")


def board_gone(job: str, deadline_secs: float = 60) -> bool:
    deadline = time.monotonic() + deadline_secs
    while time.monotonic() < deadline:
        names = ray.util.list_named_actors(all_namespaces=True)
        if {"name": board_name(job), "namespace": NAMESPACE} not in names:
            return True
        time.sleep(0.5)
    return False


@pytest.mark.timeout(420)
def test_status_and_logs_of_a_running_job(tmp_path, address):
    hold = tmp_path / "hold"
    hold.write_text("")
    job = JobSpec.from_dict(job_data(tmp_path, "statusjob", hold, workers=1, ps=1))
    keys = {"chief:0", "worker:0", "ps:0"}
    result: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: result.update(run_job(job, backend="ray", quiet=True)), daemon=True
    )
    runner.start()
    follower = None
    try:
        wait_until_held(job.name, keys, lambda: not runner.is_alive())

        shown = harness("status", job.name, "--address", address)
        assert shown.returncode == 0, shown.stderr[-3000:]
        lines = shown.stdout.splitlines()
        assert lines[0].startswith(f"job {job.name}: running, global step "), shown.stdout
        step = int(lines[0].split("global step ")[1].split("/")[0])
        assert step > 0 and "/40" in lines[0]
        rows = {line.split()[0]: line.split() for line in lines[2:]}
        assert set(rows) == keys, shown.stdout
        for key in keys:
            assert rows[key][1:] == ["running", "127.0.0.1", "0"], shown.stdout

        as_json = harness("status", job.name, "--address", address, "--json")
        assert as_json.returncode == 0, as_json.stderr[-3000:]
        status = json.loads(as_json.stdout)
        assert status["job"] == job.name and status["state"] == "running"
        assert status["progress"]["global_step"] > 0 and status["max_steps"] == 40
        assert status["tasks"]["worker:0"]["node"] == "127.0.0.1"

        logs = harness("logs", job.name, "worker:0", "--address", address)
        assert logs.returncode == 0, logs.stderr[-3000:]
        assert "model_fn built the graph of worker:0" in logs.stdout
        assert "worker:0 holds at local step 15" in logs.stdout
        assert "chief:0" not in logs.stdout

        unknown = harness("status", "nosuchjob", "--address", address)
        assert unknown.returncode == 2
        assert (
            f"harness: error: job nosuchjob is not running on this Ray cluster "
            f"(jobs running: {job.name})" in unknown.stderr
        ), unknown.stderr
        no_task = harness("logs", job.name, "worker:7", "--address", address)
        assert no_task.returncode == 2
        assert f"job {job.name} has no task worker:7; its tasks: chief:0, worker:0, ps:0" in (
            no_task.stderr
        ), no_task.stderr

        reports: list[str] = []
        assert register_status(job.name, sorted(keys), 40, reports.append) is None
        assert "another run of a job named statusjob is already on this Ray cluster" in reports[0]

        follower = subprocess.Popen(
            [sys.executable, "-m", "harness", "logs", job.name, "chief:0", "-f"],
            env={**client_env(), "RAY_ADDRESS": address},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(follower.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while not any("model_fn built the graph of chief:0" in line for line in output):
            assert follower.poll() is None, follower.stderr.read()
            assert time.monotonic() < deadline, "--follow printed nothing"
            time.sleep(0.2)
        assert follower.poll() is None  # still following
    finally:
        hold.unlink(missing_ok=True)  # the trainers go on to max_steps
        runner.join(timeout=240)
    assert result.get("status") == "succeeded", result.get("error")
    assert follower is not None
    assert follower.wait(timeout=60) == 0, follower.stderr.read()
    reader.join(timeout=10)
    assert any("chief:0 released" in line for line in output), output[-20:]
    assert board_gone(job.name), "the status board actor is still there"


@pytest.mark.timeout(300)
def test_ctrl_c_of_harness_run_removes_the_status_board(tmp_path, address):
    hold = tmp_path / "hold"
    hold.write_text("")
    data = job_data(tmp_path, "statusint", hold, workers=0, ps=0)
    data.pop("source_dirs")  # harness run adds the directory it was started from
    (tmp_path / "job.yaml").write_text(json.dumps(data))  # JSON is YAML
    driver = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "job.yaml", "--address", address, "--quiet"],
        cwd=tmp_path,
        env=client_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(driver.stdout), daemon=True)
    reader.start()
    try:
        wait_until_held("statusint", {"chief:0"}, lambda: driver.poll() is not None)
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=90) == 130, "".join(output)[-5000:]
    finally:
        hold.unlink(missing_ok=True)
        if driver.poll() is None:
            driver.kill()
    reader.join(timeout=10)
    assert board_gone("statusint"), "the status board actor is still there"
    gone = harness("status", "statusint", "--address", address)
    assert gone.returncode == 2 and "job statusint is not running" in gone.stderr
