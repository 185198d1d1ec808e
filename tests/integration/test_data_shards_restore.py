"""harness.data across restores, on the local backend: no shard is lost or read twice since
the checkpoint the model was restored from (docs/data.md, "The guarantee").

The model (``data_models``) counts, in a variable saved with every checkpoint (``seen``),
how many times its history trained on each example: the step that trains on a shard adds 1
per example. An epoch of 30 shards (one per step) ends the training, with a checkpoint every
5 steps. Whatever fault, the final checkpoint must count every example exactly once. For a
fault that rolls the variables back to checkpoint S (the one the chief restores, which it
records), S's counts must be exactly the shards of ``shards-S.json``: what was read before
S is not read again after the restore, and what was read after S is read again.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import pytest

from cluster.shards import read_snapshot
from harness.testing import (
    ClusterResult,
    kill_task_at_step,
    leftover_task_processes,
    run_local_cluster,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLES, SHARD, SAVE_EVERY = 120, 4, 5
KILL_AT = 12  # after the checkpoints at 0, 5 and 10 exist; the epoch has 30 steps


def run_with_a_kill(tmp_path: Path, role: str, **failure: Any) -> ClusterResult:
    record, marker, model_dir = tmp_path / "ids.jsonl", tmp_path / "killed", tmp_path / "model"
    result = run_local_cluster(
        "tests.integration.data_models:model_fn",
        "tests.integration.data_models:input_fn",
        model_dir=model_dir,
        name=f"data-{role}",
        workers=1,
        max_steps=10**6,
        train={"save_checkpoints_steps": SAVE_EVERY, "keep_checkpoint_max": 100},
        params={
            "record": str(record),
            "slow_secs": 0.1,
            "examples": EXAMPLES,
            "model_dir": str(model_dir),
        },
        data={"examples": EXAMPLES, "shard_size": SHARD},
        failure={"max_failures": 3, "stall_timeout_secs": 120, **failure},
        source_dirs=(str(REPO),),
        extra_env=kill_task_at_step(role, 0, KILL_AT, marker),
    )
    assert marker.exists(), "the fault was never injected"
    assert result.succeeded, result.error
    assert result.summary["restarts"] == 1, result.summary["failures"]
    assert not leftover_task_processes(result.model_dir)
    assert_each_example_once(seen_in(result.checkpoints()[-1]))
    return result


def seen_in(checkpoint: str) -> dict[int, int]:
    """How many times the model's history in ``checkpoint`` trained on each example."""
    import tensorflow as tf

    seen = tf.train.load_checkpoint(checkpoint).get_tensor("seen")
    return {i: int(n) for i, n in enumerate(seen)}


def assert_each_example_once(seen: dict[int, int]) -> None:
    assert {i: n for i, n in seen.items() if n != 1} == {}, "example: times trained (not 1)"


def restored_checkpoint(record: Path) -> int:
    """The checkpoint the chief's last session restored (there was one restart)."""
    begins = [json.loads(line) for line in record.read_text().splitlines() if '"begin"' in line]
    assert len(begins) == 2, begins
    return begins[-1]["checkpoint"]


def assert_the_queue_restored_is_the_checkpoints(result: ClusterResult, tmp_path: Path) -> None:
    step = restored_checkpoint(tmp_path / "ids.jsonl")
    assert step >= SAVE_EVERY, f"restored checkpoint {step}: the test needs one with data in it"
    done = read_snapshot(str(result.model_dir), step)
    assert done is not None, f"no shards-{step}.json beside the restored checkpoint {step}"
    checkpoint = next(c for c in result.checkpoints() if c.endswith(f"-{step}"))
    in_checkpoint = {i for i, n in seen_in(checkpoint).items() if n}
    assert set(seen_in(checkpoint).values()) <= {0, 1}
    shards = {i for s in done.get(0, set()) for i in range(s * SHARD, (s + 1) * SHARD)}
    assert sorted(shards ^ in_checkpoint) == [], "examples in one of shards-S.json, checkpoint S"


@pytest.mark.timeout(300)
def test_a_ps_kill_restores_the_queue_of_the_checkpoint_the_chief_restores(tmp_path):
    """The whole cluster restarts and the chief restores the latest checkpoint."""
    result = run_with_a_kill(tmp_path, "ps")
    assert [f["decision"] for f in result.summary["failures"]] == ["RESTART_CLUSTER"]
    assert_the_queue_restored_is_the_checkpoints(result, tmp_path)


@pytest.mark.timeout(300)
def test_a_chief_restart_from_the_checkpoint_rolls_the_queue_back_with_it(tmp_path):
    """``chief_restart: checkpoint`` with a live ps: the worker goes on while the chief is
    down, and the restore overwrites what it did meanwhile; those shards are read again."""
    result = run_with_a_kill(tmp_path, "chief", chief_restart="checkpoint")
    assert [f["decision"] for f in result.summary["failures"]] == ["RESTART_TASK"]
    assert_the_queue_restored_is_the_checkpoints(result, tmp_path)


@pytest.mark.timeout(300)
def test_a_chief_joining_the_live_variables_reads_the_epoch_exactly_once(tmp_path):
    """``chief_restart: live`` (the default): nothing is rolled back, so over the whole
    epoch every shard is read exactly once, by the trainers' records too."""
    result = run_with_a_kill(tmp_path, "chief")
    assert [f["decision"] for f in result.summary["failures"]] == ["RESTART_TASK"]
    lines = (tmp_path / "ids.jsonl").read_text().splitlines()
    read = Counter(i for line in lines for i in json.loads(line).get("ids", []))
    assert sorted(read) == list(range(EXAMPLES))
    assert {i: n for i, n in read.items() if n != 1} == {}
