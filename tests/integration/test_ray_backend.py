"""The Ray backend on real Ray clusters (loopback only, no mocks).

- the example shape (1 chief + 2 workers + 1 ps) trains on a local Ray;
- several simulated nodes with fake GPUs: trainers land on GPU nodes and each task process
  sees exactly its Ray-assigned GPUs in CUDA_VISIBLE_DEVICES (ps sees none);
- the placement group created has exactly the bundles the Ray backend rendered;
- a placement group that cannot fit fails fast with what was requested and what exists;
- killing a worker, ps or chief actor mid-run: the job still completes;
- ``harness run`` with no Ray around starts an embedded one; Ctrl-C ends everything;
- ``ray job submit`` against a real ``ray start --head`` with token authentication.

After every job: no actor, no placement group and no task process of the job remains.
"""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray address is 127.0.0.1

import json
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import ray
from ray.util.state import list_actors, list_placement_groups

from cluster.plan import make_plan
from cluster.ray_launcher import RayBackend, describe_ray_plan
from harness.commands.run import run_job
from harness.job import JobSpec

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RAY_BIN = Path(sys.executable).parent / "ray"

MODEL_MODULE = "raytest_model"
MODEL_SOURCE = '''
"""Linear regression for the Ray backend tests; params choose slow steps or a failure."""
import time

import numpy as np
import tensorflow as tf

from harness import ModelFnOps

v1 = tf.compat.v1


def input_fn(params):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(256, 1)).astype(np.float32)
    y = (2.0 * x + 1.0).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices(({"x": x}, y)).repeat().batch(16)


class SleepHook(v1.train.SessionRunHook):
    def __init__(self, secs):
        self._secs = secs

    def after_run(self, run_context, run_values):
        time.sleep(self._secs)


def model_fn(features, labels, mode, params, config):
    if params.get("fail"):
        raise RuntimeError("boom: this model_fn fails on purpose")
    w = v1.get_variable("w", [1, 1], initializer=v1.zeros_initializer())
    b = v1.get_variable("b", [1], initializer=v1.zeros_initializer())
    predictions = tf.matmul(features["x"], w) + b
    loss = tf.reduce_mean(tf.square(predictions - labels))
    optimizer = v1.train.GradientDescentOptimizer(0.05)
    train_op = optimizer.minimize(loss, global_step=v1.train.get_global_step())
    sleep = params.get("step_sleep_secs")
    print(f"model_fn built the graph of {config.task_type}:{config.task_id}", flush=True)
    return ModelFnOps(
        mode,
        predictions={"y": predictions},
        loss=loss,
        train_op=train_op,
        training_hooks=[SleepHook(sleep)] if sleep else [],
    )
'''


# ---- helpers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_model(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{MODEL_MODULE}.py").write_text(MODEL_SOURCE)
    return directory


def job_spec(
    tmp_path: Path,
    name: str,
    *,
    gpu: float = 0.0,
    max_steps: int = 60,
    params: dict[str, Any] | None = None,
    module: str = MODEL_MODULE,
    **sections: Any,
) -> JobSpec:
    """1 chief + 2 workers + 1 ps at cpu 0.5 each; ``sections`` replace top-level keys."""
    src = write_model(tmp_path / "src")
    data = {
        "name": name,
        "model_fn": f"{module}:model_fn",
        "input_fn": f"{module}:input_fn",
        "model_dir": str(tmp_path / "model"),
        "params": params or {},
        "cluster": {"workers": 2, "ps": 1},
        "resources": {
            "chief": {"cpu": 0.5, "gpu": gpu},
            "worker": {"cpu": 0.5, "gpu": gpu},
            "ps": {"cpu": 0.5},
        },
        "train": {"max_steps": max_steps, "save_checkpoints_steps": 20},
        "failure": {"max_failures": 3, "stall_timeout_secs": 120},
        "source_dirs": [str(src), str(REPO)],
        **sections,
    }
    return JobSpec.from_dict(data)


def job_yaml(
    model_dir: Path,
    name: str,
    params: dict[str, Any],
    *,
    workers: int = 2,
    ps: int = 1,
    cpu: float = 0.5,
    max_steps: int = 60,
) -> str:
    """A job file for ``harness run`` (the test model in the same directory)."""
    return textwrap.dedent(
        f"""\
        name: {name}
        model_fn: {MODEL_MODULE}:model_fn
        input_fn: {MODEL_MODULE}:input_fn
        model_dir: {model_dir}
        params: {json.dumps(params)}
        cluster: {{workers: {workers}, ps: {ps}}}
        resources:
          chief: {{cpu: {cpu}}}
          worker: {{cpu: {cpu}}}
          ps: {{cpu: {cpu}}}
        train: {{max_steps: {max_steps}, save_checkpoints_steps: 20}}
        placement: {{timeout_secs: 20}}
        """
    )


def task_processes(model_dir: str) -> list[psutil.Process]:
    """Live ``harness.task`` processes of the job whose model_dir is ``model_dir``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if "harness.task" in cmdline and model_dir in proc.environ().get("HARNESS_JOB", ""):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def state_api_address() -> str:
    """The dashboard of the Ray this process is connected to.

    Without it the state API looks for a Ray on the machine and fails when it finds several.
    """
    return "http://" + ray._private.worker._global_node.webui_url


def job_actors(job: JobSpec, state: str | None = None) -> list[Any]:
    filters = [("state", "=", state)] if state else None
    actors = list_actors(address=state_api_address(), filters=filters, limit=10000)
    return [a for a in actors if (a.name or "").startswith(f"{job.name}-")]


def assert_nothing_left(job: JobSpec) -> None:
    """No live actor, no placement group and no task process of ``job`` remains."""
    alive = job_actors(job, "ALIVE")
    assert not alive, f"actors left alive: {[(a.name, a.state) for a in alive]}"
    groups = [
        g
        for g in list_placement_groups(address=state_api_address(), limit=10000)
        if g.name.startswith(f"harness-{job.name}-") and g.state != "REMOVED"
    ]
    assert not groups, f"placement groups left: {[(g.name, g.state) for g in groups]}"
    assert not task_processes(job.model_dir), "task processes left running"


def assert_placed_as_rendered(job: JobSpec) -> None:
    """The job's one placement group (removed by now) had exactly the rendered bundles."""
    from ray.util.placement_group import placement_group_table

    groups = [
        g for g in placement_group_table().values() if g["name"].startswith(f"harness-{job.name}-")
    ]
    assert len(groups) == 1, [(g["name"], g["state"]) for g in groups]
    request = RayBackend().render(make_plan(job, "ray"))
    bundles = groups[0]["bundles"]
    assert [bundles[i] for i in sorted(bundles)] == request.bundles
    assert groups[0]["strategy"] == job.placement.strategy


def run_summary(job: JobSpec) -> dict[str, Any]:
    summary = run_job(job, backend="ray", quiet=True)
    on_disk = json.loads(Path(job.model_dir, "run.json").read_text())
    assert on_disk["status"] == summary["status"]
    return summary


def latest_checkpoint_step(model_dir: str) -> int:
    try:
        text = Path(model_dir, "checkpoint").read_text()
    except OSError:
        return -1
    match = re.search(r'model_checkpoint_path: ".*?-(\d+)"', text)
    return int(match.group(1)) if match else -1


# ---- the plan --------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_dry_run_describes_actors_bundles_and_commands(tmp_path):
    job = job_spec(tmp_path, "dry", gpu=1, placement={"strategy": "SPREAD", "timeout_secs": 7})
    text = describe_ray_plan(make_plan(job, "ray"))
    assert "strategy SPREAD" in text and "7 s" in text
    for name in ("dry-chief-0", "dry-worker-0", "dry-worker-1", "dry-ps-0"):
        assert f"actor {name}," in text
    assert "bundle 0 {CPU: 0.5, GPU: 1}" in text
    assert "bundle 3 {CPU: 0.5}" in text  # ps: never a GPU
    assert "-m harness.task --role ps --index 0" in text
    assert not ray.is_initialized()


# ---- training on one local Ray, shared by the tests of this class ------------------------------


@pytest.fixture(scope="class")
def shared_ray():
    """A local Ray with a dashboard (the state API needs it); RayLauncher attaches to it."""
    ray.init(
        address="local",
        num_cpus=4,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=free_port(),
        logging_level="WARNING",
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.usefixtures("shared_ray")
class TestOnALocalRay:
    @pytest.mark.timeout(120)
    def test_example_shape_trains_to_max_steps(self, tmp_path):
        job = job_spec(tmp_path, "example", module="examples.linear.model")
        summary = run_summary(job)
        assert summary["status"] == "succeeded", summary["error"]
        assert summary["backend"] == "ray"
        assert summary["final_global_step"] >= 60
        assert set(summary["tasks"]) == {"chief:0", "worker:0", "worker:1", "ps:0"}
        assert summary["restarts"] == 0
        assert len(job_actors(job)) == 4  # they existed, and are dead now
        assert_nothing_left(job)
        assert_placed_as_rendered(job)

    @pytest.mark.timeout(60)
    def test_unplaceable_job_fails_fast_with_what_was_asked_and_what_exists(self, tmp_path):
        job = job_spec(tmp_path, "toobig", gpu=4, placement={"strategy": "PACK", "timeout_secs": 3})
        summary = run_summary(job)
        assert summary["status"] == "failed"
        error = summary["error"]
        assert "could not be placed within 3 s" in error
        assert "chief 1 x {CPU: 0.5, GPU: 4}" in error
        assert "worker 2 x {CPU: 0.5, GPU: 4}" in error
        assert "ps 1 x {CPU: 0.5}" in error
        assert "the cluster has: {CPU: 4, GPU: 0," in error
        assert job_actors(job) == []  # no actor was ever created
        assert_nothing_left(job)

    @pytest.mark.timeout(120)
    @pytest.mark.parametrize("victim", ["worker:0", "ps:0", "chief:0"])
    def test_killed_actor_is_restarted_and_the_job_completes(self, tmp_path, victim):
        max_steps = 120
        role, index = victim.split(":")
        job_name = f"kill-{role}"
        job = job_spec(tmp_path, job_name, max_steps=max_steps, params={"step_sleep_secs": 0.05})
        name = f"{job_name}-{role}-{index}"
        killed: list[str] = []

        def kill_when_past_step_20() -> None:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and latest_checkpoint_step(job.model_dir) < 20:
                time.sleep(0.1)
            alive = [("name", "=", name), ("state", "=", "ALIVE")]
            for actor in list_actors(address=state_api_address(), filters=alive):
                ray.kill(ray.get_actor(name, namespace=actor.ray_namespace), no_restart=True)
                killed.append(actor.actor_id)

        killer = threading.Thread(target=kill_when_past_step_20, daemon=True)
        killer.start()
        summary = run_summary(job)
        killer.join()
        assert killed, "the actor was never killed"
        assert summary["status"] == "succeeded", summary["error"]
        assert summary["final_global_step"] >= max_steps
        assert summary["restarts"] >= 1
        assert summary["failures"][0]["task"] == victim
        assert summary["failures"][0]["exit_code"] != 0
        assert_nothing_left(job)


# ---- an embedded Ray, and several simulated nodes -----------------------------------------------


@pytest.mark.timeout(120)
def test_ctrl_c_on_an_embedded_ray_leaves_nothing(tmp_path):
    """``harness run`` with no Ray around: an embedded Ray with enough logical CPUs for a
    chief and a ps of 2 CPUs each trains; Ctrl-C ends the job and every process it started."""
    write_model(tmp_path)
    model_dir = tmp_path / "model"
    params = {"step_sleep_secs": 0.02}
    text = job_yaml(model_dir, "ctrl-c", params, workers=0, ps=1, cpu=2, max_steps=10**6)
    (tmp_path / "job.yaml").write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(REPO)
    driver = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "job.yaml"],
        cwd=tmp_path,
        env=env,
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
        deadline = time.monotonic() + 90
        while latest_checkpoint_step(str(model_dir)) < 20:
            assert driver.poll() is None and time.monotonic() < deadline, "".join(output)[-5000:]
            time.sleep(0.2)
        started = psutil.Process(driver.pid).children(recursive=True)  # Ray, actors, tasks
        tasks = [p for p in started if "harness.task" in p.cmdline() and "--role" in p.cmdline()]
        assert len(tasks) == 2  # the chief and the ps (a warm spare may be there too)
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=60) == 130, "".join(output)[-5000:]
    finally:
        if driver.poll() is None:
            driver.kill()
    reader.join(timeout=10)
    run = json.loads((model_dir / "run.json").read_text())
    assert run["status"] == "interrupted", run
    gone, alive = psutil.wait_procs(started, timeout=15)
    assert not alive, f"left running: {[p.cmdline()[:3] for p in alive]}"


@pytest.mark.timeout(180)
def test_trainers_get_their_own_gpus_and_ps_none(tmp_path):
    """A CPU-only head and two nodes with two fake GPUs each (ray.cluster_utils.Cluster)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={
            "num_cpus": 2,
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": free_port(),
        },
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=2, num_gpus=2)
        cluster.wait_for_nodes()
        cluster.connect()
        gpu_nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU")}
        assert len(gpu_nodes) == 2

        job = job_spec(tmp_path, "gpus", gpu=1)
        seen: dict[str, str] = {}
        stop = threading.Event()

        def watch() -> None:  # each task process's own environment, as it was started
            while not stop.is_set():
                for proc in task_processes(job.model_dir):
                    try:
                        args = proc.cmdline()
                        key = f"{args[args.index('--role') + 1]}:{args[args.index('--index') + 1]}"
                        seen[key] = proc.environ().get("CUDA_VISIBLE_DEVICES", "<unset>")
                    except (psutil.Error, ValueError, IndexError):
                        continue
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            summary = run_summary(job)
        finally:
            stop.set()
            watcher.join()
        assert summary["status"] == "succeeded", summary["error"]

        assert set(seen) == {"chief:0", "worker:0", "worker:1", "ps:0"}, seen
        assert seen["ps:0"] == ""
        node_of = {
            a.name.removeprefix("gpus-").replace("-", ":"): a.node_id for a in job_actors(job)
        }
        trainers = ["chief:0", "worker:0", "worker:1"]
        for key in trainers:
            assert seen[key] in ("0", "1"), (key, seen)
            assert node_of[key] in gpu_nodes, (key, node_of)
        for node in gpu_nodes:
            on_node = [seen[k] for k in trainers if node_of[k] == node]
            assert len(on_node) == len(set(on_node)), f"two trainers share a GPU: {seen}"
        assert_nothing_left(job)
        assert_placed_as_rendered(job)  # {CPU: 0.5, GPU: 1} for trainers, the ps without a GPU
    finally:
        ray.shutdown()
        cluster.shutdown()


# ---- ray job submit against a real head ----------------------------------------------------------


class RayHead:
    """``ray start --head --block`` on 127.0.0.1 with token authentication, in its own
    session and temp dir, so that stopping it touches no other Ray on this machine."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.temp_dir = tempfile.mkdtemp(prefix="rh-", dir="/tmp")  # short: socket paths
        token = root / "auth_token"
        token.write_text(secrets.token_hex(32))
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env["PATH"] = f"{RAY_BIN.parent}{os.pathsep}{env.get('PATH', '')}"  # the job's python
        env.update(
            RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN_PATH=str(token),
        )
        self.dashboard = f"http://127.0.0.1:{free_port()}"
        self.env = {**env, "RAY_ADDRESS": self.dashboard}
        ports = {
            "port": free_port(),
            "dashboard-port": self.dashboard.rsplit(":", 1)[1],
            "ray-client-server-port": free_port(),
            "dashboard-agent-listen-port": free_port(),
            "dashboard-agent-grpc-port": free_port(),
            "runtime-env-agent-port": free_port(),
            "metrics-export-port": free_port(),
        }
        command = [str(RAY_BIN), "start", "--head", "--block", "--node-ip-address=127.0.0.1"]
        command += [f"--{flag}={value}" for flag, value in ports.items()]
        command += [
            "--dashboard-host=127.0.0.1",
            "--num-cpus=4",
            f"--temp-dir={self.temp_dir}",
            "--disable-usage-stats",
        ]
        self.log = open(root / "head.log", "w")
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def ray(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RAY_BIN), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def job_status(self, submission_id: str) -> str:
        """The job's status as the Jobs API reports it (``SUCCEEDED``, ``FAILED``, ...)."""
        code = (
            "import os, sys; from ray.job_submission import JobSubmissionClient; "
            "print(JobSubmissionClient(os.environ['RAY_ADDRESS']).get_job_status(sys.argv[1]))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, submission_id],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout.strip().rsplit(".", 1)[-1]

    def list_state(self, kind: str, *filters: str) -> list[dict[str, Any]]:
        """``ray list KIND --filter F ... --format=json`` (what a user checks by hand)."""
        args = ["list", kind, "--format=json"]
        for condition in filters:
            args += ["--filter", condition]
        result = self.ray(*args, timeout=60)
        assert result.returncode == 0, result.stderr[-3000:]
        if result.stdout.strip().startswith("No resource"):
            return []
        return json.loads(result.stdout)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.root / "head.log").read_text()[-3000:]
            if self.ray("job", "list", timeout=30).returncode == 0:
                return
            time.sleep(1)
        raise AssertionError(
            "the Ray head did not come up: " + (self.root / "head.log").read_text()
        )

    def processes(self) -> list[psutil.Process]:
        """Every process of this head: those naming its temp dir, and their descendants."""
        roots = []
        for proc in psutil.process_iter(["cmdline"]):
            if any(self.temp_dir in arg for arg in proc.info["cmdline"] or []):
                roots.append(proc)
        found = {p.pid: p for p in roots}
        for proc in roots:
            try:
                found.update({c.pid: c for c in proc.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        return list(found.values())

    def stop(self) -> None:
        """SIGTERM ``ray start --block`` (it stops its processes), then SIGKILL what is left."""
        survivors = self.processes()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for proc in survivors + self.processes():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture
def ray_head(tmp_path):
    head = RayHead(tmp_path)
    try:
        head.wait_ready()
        yield head
    finally:
        head.stop()
    assert head.processes() == [], "processes of the Ray head are left"


def submit(
    head: RayHead,
    workdir: Path,
    submission_id: str,
    entrypoint: tuple[str, ...] = ("python", "-m", "harness", "run", "job.yaml"),
    env_vars: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start ``ray job submit --working-dir`` (it waits for the job and returns its result).

    harness is shipped with ``py_modules``, as for a cluster where it is not installed.
    """
    runtime_env: dict[str, Any] = {
        "py_modules": [str(REPO / p) for p in ("harness", "cluster", "hooks")],
        "env_vars": env_vars or {},
    }
    command = [str(RAY_BIN), "job", "submit", f"--submission-id={submission_id}"]
    command += [f"--working-dir={workdir}", f"--runtime-env-json={json.dumps(runtime_env)}"]
    command += ["--", *entrypoint]
    return subprocess.Popen(
        command, env=head.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.timeout(300)
def test_ray_job_submit_to_a_head_with_token_auth(tmp_path, ray_head):
    """Two job files side by side, then the Python API's example driver (harness.fit)."""
    submitted = {}
    jobs = {  # the example's shape, and a failing chief alone
        "submit-ok": {"params": {}},
        "submit-fails": {"params": {"fail": True}, "workers": 0, "ps": 0},
    }
    for name, job in jobs.items():
        workdir = write_model(tmp_path / name)
        (workdir / "job.yaml").write_text(job_yaml(tmp_path / f"{name}-model", name, **job))
        submitted[name] = submit(ray_head, workdir, name)  # both jobs run side by side
    results = {}
    for name, process in submitted.items():
        output, _ = process.communicate(timeout=180)
        logs = ray_head.ray("job", "logs", name, timeout=60)
        assert logs.returncode == 0, logs.stderr[-3000:]
        results[name] = (process.returncode, output, ray_head.job_status(name), logs.stdout)

    code, output, status, logs = results["submit-ok"]
    assert code == 0, output[-5000:]
    assert status == "SUCCEEDED"
    assert "[chief:0] model_fn built the graph of chief:0" in logs
    assert "[worker:1] model_fn built the graph of worker:1" in logs
    assert "[harness] chief finished training" in logs
    assert "harness: job submit-ok succeeded" in logs
    run = json.loads((tmp_path / "submit-ok-model" / "run.json").read_text())
    assert run["status"] == "succeeded" and run["final_global_step"] >= 60

    code, output, status, logs = results["submit-fails"]
    assert code != 0, output[-5000:]
    assert status == "FAILED"
    assert "boom: this model_fn fails on purpose" in logs
    assert "harness: job submit-fails failed" in logs

    alive = ray_head.list_state("actors", "state=ALIVE")
    assert not [a for a in alive if (a.get("name") or "").startswith("submit-")], alive
    groups = ray_head.list_state("placement-groups")
    assert [g for g in groups if g["state"] != "REMOVED"] == [], groups

    # the Python API: examples/python_api/train.py calls harness.fit on the job's cluster
    api_dir = tmp_path / "api-model"
    env = {"MODEL_DIR": str(api_dir), "MAX_STEPS": "60"}
    driver = ("python", "python_api/train.py")
    process = submit(ray_head, REPO / "examples", "submit-api", driver, env)
    output, _ = process.communicate(timeout=180)
    assert process.returncode == 0, output[-5000:]
    assert ray_head.job_status("submit-api") == "SUCCEEDED"
    assert "loss " in output and "at global step" in output
    run = json.loads((api_dir / "run.json").read_text())
    assert run["status"] == "succeeded" and run["backend"] == "ray"
    assert f"checkpoint {api_dir}/model.ckpt-" in output
    alive = ray_head.list_state("actors", "state=ALIVE")
    assert not [a for a in alive if (a.get("name") or "").startswith("linear-api")], alive
