"""TensorBoard beside a run (cluster/tensorboard.py): the job field, the dry-run text, the CLI
flag, ``serving``'s contract with fake launchers, and the TensorBoard process with stand-ins
for TensorBoard (the real one is tests/integration/test_tensorboard_live.py's)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from cluster.console import Console
from cluster.local import LocalBackend
from cluster.plan import make_plan
from cluster.ray_launcher import RayBackend
from cluster.tensorboard import (
    TensorBoardFailed,
    TensorBoardProcess,
    TensorBoardRequest,
    serving,
    tensorboard_request,
)
from harness import cli
from harness.job import JobSpec, JobSpecError

REPO = Path(__file__).resolve().parents[2]
JOB = """
name: tb
model_fn: m:model_fn
input_fn: m:input_fn
model_dir: /tmp/tb-model
cluster: {workers: 1, ps: 1}
train: {max_steps: 10}
"""


def job_with(tmp_path: Path, line: str = "") -> JobSpec:
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(JOB) + line + "\n")
    return JobSpec.from_yaml(path)


# ---- the job field -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "port"),
    [("", None), ("tensorboard: false", None), ("tensorboard: true", 6006), ("tensorboard: 0", 0)]
    + [("tensorboard: 7007", 7007)],
)
def test_the_tensorboard_field_takes_true_false_or_a_port(tmp_path, line, port):
    job = job_with(tmp_path, line)
    request = tensorboard_request(job, host="127.0.0.1")
    assert (request.port if request else None) == port
    if request:
        assert request.logdir == job.model_dir == "/tmp/tb-model"
    assert JobSpec.from_json(job.to_json()) == job  # tasks get the same job


@pytest.mark.parametrize(
    "value", ["maybe", "'true'", "'6006'", "70000", "-1", "1.5", "null", "[6006]"]
)
def test_other_tensorboard_values_are_refused_naming_the_field(tmp_path, value):
    with pytest.raises(JobSpecError) as info:
        job_with(tmp_path, f"tensorboard: {value}")
    assert info.value.field == "tensorboard"
    assert "tensorboard: must be true, false or a port from 0 to 65535" in str(info.value)


# ---- the dry-run text --------------------------------------------------------------------------


def test_the_ray_dry_run_shows_the_tensorboard_actor_in_the_chiefs_bundle(tmp_path):
    job = job_with(tmp_path, "tensorboard: true")
    request = RayBackend().render(make_plan(job, "ray"))
    text = request.describe()
    assert "[tensorboard] actor tb-tensorboard, in the chief's bundle 0 with 0 CPUs" in text
    assert "-m cluster.tensorboard --logdir /tmp/tb-model --port 6006 --host <node IP>" in text
    assert "URL: http://<the chief node IP>:6006/" in text
    # no bundle of its own: the placement group is the one without TensorBoard
    plain = RayBackend().render(make_plan(job.with_overrides(tensorboard=False), "ray"))
    assert request.bundles == plain.bundles and "[tensorboard]" not in plain.describe()
    assert request == RayBackend().render(make_plan(job, "ray"))  # pure


def test_the_local_dry_run_shows_the_tensorboard_process(tmp_path):
    job = job_with(tmp_path, "tensorboard: 0")
    text = LocalBackend().render(make_plan(job, "local", visible_gpus=[])).describe()
    assert "[tensorboard] a process on this machine, CPU only" in text
    assert "--port 0 --host 127.0.0.1 --load_fast false" in text
    assert "URL: http://127.0.0.1:<free port>/" in text


def test_the_cli_flag_overrides_the_job_and_shows_in_the_dry_run(tmp_path, capsys):
    (tmp_path / "job.yaml").write_text(textwrap.dedent(JOB) + "tensorboard: 7007\n")
    args = ["run", str(tmp_path / "job.yaml"), "--dry-run", "--backend", "local"]
    for flag, port in ([], 7007), (["--tensorboard"], 6006), (["--tensorboard", "0"], 0):
        with pytest.raises(SystemExit) as exited:
            cli.main([*args, *flag])
        assert exited.value.code == 0
        assert f"--port {port} --host 127.0.0.1" in capsys.readouterr().out


def test_the_cli_refuses_a_port_that_is_not_one(capsys):
    parser = cli.build_parser()
    assert parser.parse_args(["run", "j.yaml"]).tensorboard is None
    assert parser.parse_args(["run", "j.yaml", "--tensorboard"]).tensorboard is True
    for bad in ("70000", "abc"):
        with pytest.raises(SystemExit):
            parser.parse_args(["run", "j.yaml", "--tensorboard", bad])
        assert "is not a port" in capsys.readouterr().err


# ---- serving: start, URL, warning, stop ------------------------------------------------------


class FakeServer:
    def __init__(self, url: str | None = None, error: str | None = None) -> None:
        self.url, self.error, self.stopped = url, error, 0

    def wait_url(self, timeout: float) -> str:
        if self.error:
            raise TensorBoardFailed(self.error)
        return self.url

    def stop(self) -> None:
        self.stopped += 1


class FakeLauncher:
    def __init__(self, server: FakeServer | Exception) -> None:
        self.server = server
        self.asked: list[TensorBoardRequest] = []

    def start_tensorboard(self, request: TensorBoardRequest) -> FakeServer:
        self.asked.append(request)
        if isinstance(self.server, Exception):
            raise self.server
        return self.server


class Requested:
    def __init__(self, tensorboard: TensorBoardRequest | None) -> None:
        self.tensorboard = tensorboard


def console(tmp_path: Path) -> tuple[Console, io.StringIO]:
    stream = io.StringIO()
    return Console(str(tmp_path / "logs"), 10, stream=stream), stream


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_serving_prints_the_url_records_it_and_stops_tensorboard(tmp_path):
    out, stream = console(tmp_path)
    server = FakeServer(url="http://127.0.0.1:7007/")
    request = TensorBoardRequest(str(tmp_path), 7007, "127.0.0.1")
    with serving(Requested(request), FakeLauncher(server), out) as board:
        wait_for(lambda: board.url is not None)
        summary = board.record({"status": "succeeded"})
        assert server.stopped == 0
    assert server.stopped >= 1
    assert "[harness] TensorBoard: http://127.0.0.1:7007/\n" in stream.getvalue()
    assert summary == {"status": "succeeded", "tensorboard": "http://127.0.0.1:7007/"}
    assert json.loads((tmp_path / "run.json").read_text()) == summary


def test_serving_stops_tensorboard_when_the_job_raises(tmp_path):
    out, _ = console(tmp_path)
    server = FakeServer(url="http://127.0.0.1:7007/")
    with pytest.raises(KeyboardInterrupt):
        with serving(Requested(TensorBoardRequest(str(tmp_path), 7007)), FakeLauncher(server), out):
            raise KeyboardInterrupt("SIGTERM")
    assert server.stopped >= 1


@pytest.mark.parametrize("failure", ["exits", "cannot start"])
def test_a_tensorboard_that_fails_is_a_warning_and_the_job_goes_on(tmp_path, failure):
    out, stream = console(tmp_path)
    server = FakeServer(error="it exited (1): could not bind to port 7007")
    launcher = FakeLauncher(server if failure == "exits" else OSError("no such file"))
    with serving(Requested(TensorBoardRequest(str(tmp_path), 7007)), launcher, out) as board:
        wait_for(lambda: "warning" in stream.getvalue())
        assert board.record({"status": "succeeded"})["tensorboard"] is None
    line = stream.getvalue().strip()
    assert line.startswith("[harness] warning: TensorBoard did not start on port 7007: ")
    assert line.endswith("; the job goes on without it") and "\n" not in line


def test_serving_starts_nothing_when_the_job_asks_for_no_tensorboard(tmp_path):
    out, stream = console(tmp_path)
    launcher = FakeLauncher(FakeServer())
    with serving(Requested(None), launcher, out) as board:
        assert board.record({"status": "succeeded"}) == {"status": "succeeded"}
    assert launcher.asked == [] and stream.getvalue() == ""
    assert not (tmp_path / "run.json").exists()


# ---- the process, with stand-ins for TensorBoard ----------------------------------------------


def fake_process(tmp_path: Path, script: str) -> TensorBoardProcess:
    process = TensorBoardProcess(TensorBoardRequest(str(tmp_path), 0), "127.0.0.1")
    process._command = [sys.executable, "-c", textwrap.dedent(script)]
    return process.start()


def test_the_url_comes_from_tensorboards_serving_line_and_stop_kills_it(tmp_path):
    process = fake_process(
        tmp_path,
        """
        import sys, time
        print("some start-up chatter", file=sys.stderr, flush=True)
        print("TensorBoard 2.21.0 at http://127.0.0.1:41234/ (Press CTRL+C to quit)",
              file=sys.stderr, flush=True)
        time.sleep(600)
        """,
    )
    assert process.wait_url(timeout=60) == "http://127.0.0.1:41234/"
    pid = process.pid
    process.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "Press CTRL+C" in (tmp_path / "logs" / "tensorboard.log").read_text()


def test_a_tensorboard_that_exits_fails_with_its_last_line(tmp_path):
    process = fake_process(
        tmp_path,
        """
        import sys
        print("ERROR: TensorBoard could not bind to port 6006, it was already in use")
        sys.exit(255)
        """,
    )
    with pytest.raises(TensorBoardFailed, match=r"it exited \(255\): ERROR: .*already in use"):
        process.wait_url(timeout=60)
    process.stop()


def fake_tensorboard_package(tmp_path: Path, main_body: str) -> dict[str, str]:
    package = tmp_path / "fake" / "tensorboard"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text(textwrap.dedent(main_body))
    return {"PYTHONPATH": f"{tmp_path / 'fake'}:{REPO}", "PATH": "/usr/bin:/bin"}


def test_the_tensorboard_process_exits_when_its_stdin_closes(tmp_path):
    """When its parent dies, the pipe closes: TensorBoard must not outlive ``harness run``."""
    env = fake_tensorboard_package(tmp_path, "import time\ndef run_main():\n    time.sleep(600)\n")
    child = subprocess.Popen(
        [sys.executable, "-m", "cluster.tensorboard", "--port", "0"], stdin=subprocess.PIPE, env=env
    )
    time.sleep(0.5)
    assert child.poll() is None
    child.stdin.close()
    assert child.wait(timeout=30) == 0


def test_a_missing_tensorboard_package_is_one_clear_line(tmp_path):
    env = fake_tensorboard_package(tmp_path, "raise ImportError('no tensorboard here')\n")
    child = subprocess.Popen(  # stdin stays open: at EOF the process would exit 0 at once
        [sys.executable, "-m", "cluster.tensorboard"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    output = child.stdout.read()
    assert child.wait(timeout=60) == 1
    child.stdin.close()
    assert "the tensorboard package is not installed" in output
