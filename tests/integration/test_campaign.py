"""``python -m bench.campaign`` end to end in its smallest form: one worker kill on the local
backend, in a real job (real task processes and TF servers). The CSV row must say the kill
was recovered, with a positive recovery time, a loadable final checkpoint and nothing left."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.testing import leftover_task_processes

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_the_smallest_campaign_recovers_one_worker_kill(tmp_path):
    command = [sys.executable, "-m", "bench.campaign", "--backend", "local", "--out", tmp_path]
    command += ["--worker-kills", "1", "--chief-kills", "0", "--ps-kills", "0"]
    command += ["--first-step", "30", "--gap-steps", "100", "--checkpoint-steps", "20"]
    command += ["--tail-steps", "300", "--slow-secs", "0.05"]
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    done = subprocess.run(
        [str(part) for part in command], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    with open(tmp_path / "kills.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["backend"], row["kind"], row["recovered"]) == ("local", "worker", "yes"), row
    assert row["target"] in ("worker:0", "worker:1")
    assert int(row["death_step"]) >= int(row["planned_step"])
    assert float(row["recovery_secs"]) > 0
    assert row["steps_lost"] == "0" and row["decision"] == "RESTART_TASK"
    assert (row["checkpoint_loads"], row["leftovers"], row["run_status"]) == (
        "yes",
        "0",
        "succeeded",
    )
    assert "| local | worker | 1/1 |" in (tmp_path / "summary.md").read_text()
    assert "| local | worker | 1/1 |" in done.stdout
    assert not leftover_task_processes(tmp_path / "runs" / "local-01" / "model")
