"""``harness run`` stopped by SIGTERM (as a scheduler or ``kill`` sends it): every task is
stopped, run.json says ``interrupted`` and the exit status is 130. Python's default for
SIGTERM ends the process at once, with no teardown and no run.json; the harness installs
its own handler (``harness.cli.install_interrupt_handlers``). SIGINT inherited ignored and
SIGHUP are in tests/integration/test_cli.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.testing import leftover_task_processes, make_job_dict

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_stops_every_task_and_records_the_interruption(tmp_path):
    model_dir = tmp_path / "model"
    job = make_job_dict(
        "tests.integration.models:model_fn",
        "tests.integration.models:input_fn",
        model_dir,
        ps=0,
        max_steps=100000,
        params={"slow_secs": 0.05},
    )
    job.pop("source_dirs")
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(path), "--backend", "local"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:  # wait until training runs
            if "[harness] step" in line and "step 0/" not in line:
                break
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out[-3000:]
    assert "interrupted by the user (SIGTERM)" in out
    assert not leftover_task_processes(model_dir)
    assert json.loads((model_dir / "run.json").read_text())["status"] == "interrupted"
