"""TensorBoard during a real run (``harness run --tensorboard``), on local processes and Ray.

The chief-only job of ``tests/integration/tensorboard_model.py`` holds at step 10 until the
test releases it, so TensorBoard is looked at while the run is certainly still going: the
test waits for the ``[harness] TensorBoard: URL`` line, reads the ``loss`` scalar over
TensorBoard's HTTP API (``/data/plugin/scalars/tags``, ``/data/plugin/scalars/scalars``),
then releases the job. After the run, TensorBoard's port is closed and no TensorBoard process
of the job is left, after success and after SIGTERM; a port in use gives a warning and the
job goes on. Every wait polls with a generous deadline: the tests assert what happens, not
how fast.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from harness.commands.run import run_job
from harness.job import JobSpec
from harness.testing import leftover_task_processes, make_job_dict

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[2]
MODEL = "tests.integration.tensorboard_model:model_fn"
INPUT = "tests.integration.tensorboard_model:input_fn"
URL_LINE = re.compile(r"\[harness\] TensorBoard: (http://\S+)")
WAIT_SECS = 240.0


class Output(io.StringIO):
    """sys.stdout for a run: everything the console printed so far, readable at any time."""

    def isatty(self) -> bool:
        return False

    def wait_for(self, pattern: re.Pattern[str], timeout: float = WAIT_SECS) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = pattern.search(self.getvalue())
            if match:
                return match
            time.sleep(0.2)
        raise AssertionError(f"no {pattern.pattern!r} within {timeout:g} s:\n{self.getvalue()}")


def job_spec(tmp_path: Path, name: str, tensorboard: Any, hold: bool = True) -> JobSpec:
    """A chief-only job that holds at step 10 until ``tmp_path/release`` exists."""
    params = {"release": str(tmp_path / "release"), "hold_from_step": 10} if hold else {}
    data = make_job_dict(
        MODEL,
        INPUT,
        tmp_path / "model",
        name=name,
        workers=0,
        ps=0,
        max_steps=20,
        params=params,
        source_dirs=(str(REPO),),
        train={"save_summary_steps": 2, "log_step_count_steps": 5},
        failure={"stall_timeout_secs": 600},
        tensorboard=tensorboard,
    )
    return JobSpec.from_dict(data)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def poll_loss(base: str, timeout: float = WAIT_SECS) -> list[list[float]]:
    """The ``loss`` scalar of run ``.`` (the chief's events in model_dir), once it has values."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = get_json(base + "data/plugin/scalars/tags")
            if "loss" in last.get(".", {}):
                values = get_json(base + "data/plugin/scalars/scalars?run=.&tag=loss")
                if values:
                    return values
        except (OSError, ValueError) as exc:  # not serving yet, or reloading
            last = exc
        time.sleep(1.0)
    raise AssertionError(f"no loss scalar at {base} within {timeout:g} s (last: {last!r})")


class Watcher(threading.Thread):
    """While the job runs: wait for TensorBoard's URL, read the loss, release the job."""

    def __init__(self, output: Output, release: Path) -> None:
        super().__init__(daemon=True)
        self.output = output
        self.release = release
        self.url: str | None = None
        self.loss: list[list[float]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.url = self.output.wait_for(URL_LINE).group(1)
            self.loss = poll_loss(self.url)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.release.touch()  # the job never waits longer than the watcher


def tensorboard_processes(model_dir: Path) -> list[psutil.Process]:
    """Live ``python -m cluster.tensorboard`` processes serving ``model_dir``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if "cluster.tensorboard" in cmdline and str(model_dir) in cmdline:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def port_open(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return True
    except OSError:
        return False


def assert_tensorboard_gone(url: str | None, model_dir: Path, timeout: float = 30.0) -> None:
    """No TensorBoard process of the job, and its port closed (polled: a kill takes a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = tensorboard_processes(model_dir)
        if not left and not (url and port_open(url)):
            return
        time.sleep(0.5)
    left = [(p.pid, p.status()) for p in tensorboard_processes(model_dir)]
    raise AssertionError(f"TensorBoard left: processes {left}, port open: {url and port_open(url)}")


def run_watched(tmp_path: Path, monkeypatch: Any, job: JobSpec, backend: str):
    output = Output()
    monkeypatch.setattr(sys, "stdout", output)
    watcher = Watcher(output, tmp_path / "release")
    watcher.start()
    try:
        summary = run_job(job, backend=backend, quiet=True)
    finally:
        (tmp_path / "release").touch()
    watcher.join(timeout=30)
    return summary, watcher, output


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_tensorboard_serves_the_loss_during_the_run_and_stops_with_it(
    tmp_path, monkeypatch, backend
):
    job = job_spec(tmp_path, f"tb-{backend}", tensorboard=0)
    summary, watcher, output = run_watched(tmp_path, monkeypatch, job, backend)
    assert watcher.error is None, watcher.error
    assert summary["status"] == "succeeded", summary["error"]
    steps = [step for _, step, _ in watcher.loss]
    values = [value for _, _, value in watcher.loss]
    assert steps and all(isinstance(v, float) and v == v for v in values), watcher.loss
    assert max(steps) < job.train.max_steps  # read while the run was going
    assert summary["tensorboard"] == watcher.url
    assert json.loads((tmp_path / "model" / "run.json").read_text())["tensorboard"] == watcher.url
    assert watcher.url.startswith("http://127.0.0.1:")  # Ray: the chief's node, loopback here
    assert_tensorboard_gone(watcher.url, Path(job.model_dir))
    assert not leftover_task_processes(job.model_dir)


def test_a_port_in_use_warns_and_the_job_goes_on(tmp_path, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        job = job_spec(tmp_path, "tb-busy", tensorboard=port)
        output = Output()
        monkeypatch.setattr(sys, "stdout", output)
        warning = re.compile(rf"\[harness\] warning: TensorBoard did not start on port {port}: ")

        def release_after_warning() -> None:
            try:
                output.wait_for(warning)
            finally:
                (tmp_path / "release").touch()

        threading.Thread(target=release_after_warning, daemon=True).start()
        summary = run_job(job, backend="local", quiet=True)
        (tmp_path / "release").touch()
    text = output.getvalue()
    assert summary["status"] == "succeeded", summary["error"]
    match = warning.search(text)
    assert match and "already in use" in text[match.end() :].splitlines()[0], text
    assert summary["tensorboard"] is None
    assert_tensorboard_gone(None, Path(job.model_dir))


def test_sigterm_to_harness_run_stops_tensorboard_too(tmp_path):
    """``harness run JOB.yaml --tensorboard 0`` until TensorBoard serves, then SIGTERM."""
    model_dir = tmp_path / "model"
    job_file = tmp_path / "job.yaml"
    job_file.write_text(
        textwrap.dedent(
            f"""\
            name: tb-sigterm
            model_fn: {MODEL}
            input_fn: {INPUT}
            model_dir: {model_dir}
            params: {{release: {tmp_path / "never"}, hold_from_step: 5}}
            resources: {{chief: {{cpu: 0.5}}}}
            train: {{max_steps: 20, save_summary_steps: 2}}
            failure: {{stall_timeout_secs: 600}}
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "harness", "run", str(job_file), "--backend", "local"]
    proc = subprocess.Popen(
        [*command, "--quiet", "--tensorboard", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + WAIT_SECS
        while not any(URL_LINE.search(line) for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        url = next(URL_LINE.search(line) for line in lines if URL_LINE.search(line)).group(1)
        poll_loss(url)  # serving and reading the run's events
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 130, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = json.loads((model_dir / "run.json").read_text())
    assert summary["status"] == "interrupted" and summary["tensorboard"] == url
    assert_tensorboard_gone(url, model_dir)
    assert not leftover_task_processes(model_dir)
