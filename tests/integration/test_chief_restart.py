"""A chief killed while the workers train: ``failure.chief_restart`` on a real local cluster.

With a live ps, ``live`` (the default) makes the restarted chief join the variables the ps
kept, so no global step is lost; ``checkpoint`` is TF 1.x's rollback to the last checkpoint.
Without ps the variables lived on the chief, so the restarted chief restores.

Each test SIGKILLs the chief's task process (``python -m harness.task --role chief``) once
the recorded steps say so. The records (``tests.integration.models``, ``record``) carry each
trainer's pid: the restarted chief is the chief with another pid.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import tensorflow as tf

from harness.testing import leftover_task_processes, run_local_cluster

MODEL = "tests.integration.models:model_fn"
INPUT = "tests.integration.models:input_fn"
REPO = str(Path(__file__).resolve().parents[2])

pytestmark = pytest.mark.timeout(240)

Records = list[dict]


def read_records(path: Path) -> Records:
    """Every complete line so far (the tasks are appending to the file)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def latest_checkpoint_step(model_dir: Path) -> int | None:
    state = tf.train.get_checkpoint_state(str(model_dir))
    return int(state.model_checkpoint_path.rsplit("-", 1)[1]) if state else None


def checkpointed_global_step(model_dir: Path) -> int:
    """The global step inside the latest checkpoint (its name has the step the chief read
    before saving; the workers may have made steps before the save ran)."""
    return int(tf.train.load_checkpoint(str(model_dir)).get_tensor("global_step"))


def highest_step(records: Records) -> int:
    return max((r["global_step"] for r in records if r.get("call") == "step"), default=0)


class ChiefKiller(threading.Thread):
    """SIGKILLs the chief's task process once ``when(records, model_dir)`` holds; keeps the
    highest global step recorded before the kill (``reached``), the killed ``pid`` and the
    global step in the last checkpoint once the chief was dead (``checkpoint``)."""

    def __init__(self, model_dir: Path, record: Path, when: Callable[[Records, Path], bool]):
        super().__init__(daemon=True)
        self.model_dir, self.record, self.when = model_dir, record, when
        self.stop = threading.Event()
        self.reached: int | None = None
        self.pid: int | None = None
        self.checkpoint: int | None = None
        self.before_restart: int | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            if self.when(read_records(self.record), self.model_dir):
                chief = [
                    p
                    for p in leftover_task_processes(self.model_dir)
                    if "--role chief" in " ".join(p.cmdline())
                ]
                if chief:
                    self.reached = highest_step(read_records(self.record))
                    chief[0].kill()
                    chief[0].wait(timeout=60)
                    self.pid = chief[0].pid
                    self.checkpoint = checkpointed_global_step(self.model_dir)
                    return
            time.sleep(0.2)


def run_with_a_chief_kill(tmp_path, when, chief_restart="live", **fields):
    model_dir, record = tmp_path / "model", tmp_path / "record.jsonl"
    fields["params"] = {"record": str(record), **fields.get("params", {})}
    killer = ChiefKiller(model_dir, record, when)
    killer.start()
    try:
        result = run_local_cluster(
            MODEL,
            INPUT,
            model_dir=model_dir,
            source_dirs=(REPO,),
            failure={"chief_restart": chief_restart},
            **fields,
        )
    finally:
        killer.stop.set()
    assert killer.pid is not None, "the chief was never killed"
    assert result.succeeded, result.error
    assert not leftover_task_processes(model_dir), "task processes left running"
    assert "chief:0" in [f["task"] for f in result.summary["failures"]]
    records = read_records(record)
    restarted = [  # the lifecycle recorder's lines carry no pid
        r for r in records if r["task"] == "chief:0" and r.get("pid", killer.pid) != killer.pid
    ]
    first = next(r["global_step"] for r in restarted if r["call"] == "seen_marker")
    at = records.index(next(r for r in restarted if r["call"] == "seen_marker"))
    killer.before_restart = highest_step(records[:at])  # what the workers had reached by then
    chief_log = (model_dir / "logs" / "chief-0.log").read_text()
    return result, killer, records, restarted, first, chief_log


def trained_on_after_a_checkpoint(records: Records, model_dir: Path) -> bool:
    """A checkpoint at >= 150 exists and the trainers made 60 steps since (each step takes
    0.2 s or more: the next checkpoint is 90 steps away, and after a rollback the global step
    stays below the step reached for some seconds)."""
    step = latest_checkpoint_step(model_dir)
    return step is not None and step >= 150 and highest_step(records) >= step + 60


MID_TRAINING = {
    "workers": 2,
    "ps": 1,
    "max_steps": 400,
    "params": {"slow_secs": 0.2, "keep": 2},
    "train": {"save_checkpoints_steps": 150},
}


def test_live_a_restarted_chief_joins_the_live_variables_and_loses_no_step(tmp_path):
    result, killer, records, restarted, first, log = run_with_a_chief_kill(
        tmp_path, trained_on_after_a_checkpoint, "live", **MID_TRAINING
    )
    lost = max(0, killer.before_restart - first)
    print(f"live: killed at {killer.reached}, restarted at {first}: {lost} steps lost")
    assert first >= killer.reached
    assert "chief:0 joined the live variables at global step" in log
    assert [r["pid"] for r in records if r["call"] == "init_fn"] == [killer.pid]
    assert all(r["value"] == 42.0 for r in restarted if r["call"] == "seen_marker")
    assert latest_checkpoint_step(result.model_dir) >= 400
    # The joined chief's saver knew the checkpoints already there: keep=2 still holds.
    assert len(list(result.model_dir.glob("model.ckpt-*.index"))) <= 2


def test_checkpoint_a_restarted_chief_rolls_back_to_the_last_checkpoint(tmp_path):
    result, killer, records, restarted, first, log = run_with_a_chief_kill(
        tmp_path, trained_on_after_a_checkpoint, "checkpoint", **MID_TRAINING
    )
    lost = killer.before_restart - first
    print(f"checkpoint: killed at {killer.reached}, restarted at {first}: {lost} steps lost")
    # Rolled back: the restarted chief restored the last checkpoint, so its first global
    # step is below the one reached before the kill (the workers may have made a few steps
    # between the restore and its first read of the global step).
    assert killer.checkpoint <= first < killer.reached
    assert "joined the live variables" not in log
    assert [r["pid"] for r in records if r["call"] == "init_fn"] == [killer.pid]
    assert latest_checkpoint_step(result.model_dir) >= 400


def workers_finished(records: Records, model_dir: Path) -> bool:
    return {r["task"] for r in records if r.get("call") == "end_step"} >= {"worker:0", "worker:1"}


def test_live_a_chief_back_after_the_workers_finished_only_writes_the_final_checkpoint(tmp_path):
    """The chief sleeps before its first step; the workers train to max_steps meanwhile."""
    result, killer, records, restarted, first, log = run_with_a_chief_kill(
        tmp_path,
        workers_finished,
        "live",
        workers=2,
        ps=1,
        max_steps=60,
        params={"slow_chief_secs": 60},
        timeouts={"stop_grace_secs": 30},
    )
    reached = max(r["global_step"] for r in records if r["call"] == "end_step")
    print(f"live, workers done: reached {reached}, restarted at {first}")
    assert first == reached >= 60
    assert not [r for r in restarted if r["call"] == "step"], "the restarted chief ran a step"
    assert latest_checkpoint_step(result.model_dir) == reached
    assert result.final_global_step == reached


def test_without_ps_a_restarted_chief_restores_the_checkpoint(tmp_path):
    def checkpointed(records: Records, model_dir: Path) -> bool:
        step = latest_checkpoint_step(model_dir)
        return step is not None and step >= 40 and highest_step(records) >= step + 30

    result, killer, records, restarted, first, log = run_with_a_chief_kill(
        tmp_path,
        checkpointed,
        "live",
        workers=1,
        ps=0,
        max_steps=200,
        params={"slow_secs": 0.1},
        train={"save_checkpoints_steps": 40},
    )
    assert killer.checkpoint <= first < killer.reached  # restored, not the steps reached
    assert "joined the live variables" not in log
    assert [r["pid"] for r in records if r["call"] == "init_fn"] == [killer.pid]
    assert latest_checkpoint_step(result.model_dir) >= 200
