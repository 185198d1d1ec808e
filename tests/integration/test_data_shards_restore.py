"""harness.data across restores, on the local backend: no shard is lost or read twice since
the checkpoint the model was restored from (docs/data.md, "The guarantee").

The model (``data_models``) records the ids each applied step trained on, when the update
was applied and when its process started, and the chief records the step it restored. An
epoch of 30 shards (one per step) with a checkpoint every 5 steps ends the training. For a
fault that rolls the variables back to checkpoint S, the model's history is checkpoint S
plus every step applied after the restore, so the ids of ``shards-S.json`` and the ids
recorded after the restore are, together, every id of the epoch exactly once; the steps
applied before the fault and after S were lost with their variables, and are read again.
A restart that joins the live variables rolls nothing back: every record counts, each id
exactly once over the epoch.
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


def run_with_a_kill(tmp_path: Path, role: str, **failure: Any) -> tuple[ClusterResult, Path]:
    record, marker = tmp_path / "ids.jsonl", tmp_path / "killed"
    result = run_local_cluster(
        "tests.integration.data_models:model_fn",
        "tests.integration.data_models:input_fn",
        model_dir=tmp_path / "model",
        name=f"data-{role}",
        workers=1,
        max_steps=10**6,
        train={"save_checkpoints_steps": SAVE_EVERY},
        params={"record": str(record), "slow_secs": 0.1},
        data={"examples": EXAMPLES, "shard_size": SHARD},
        failure={"max_failures": 3, "stall_timeout_secs": 120, **failure},
        source_dirs=(str(REPO),),
        extra_env=kill_task_at_step(role, 0, KILL_AT, marker),
    )
    assert marker.exists(), "the fault was never injected"
    assert result.succeeded, result.error
    assert result.summary["restarts"] == 1, result.summary["failures"]
    assert not leftover_task_processes(result.model_dir)
    return result, record


def lines(record: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def ids_of(steps: list[dict[str, Any]]) -> Counter[int]:
    return Counter(i for step in steps for i in step["ids"])


def ids_of_shards(indices: set[int]) -> Counter[int]:
    return Counter(i for s in indices for i in range(s * SHARD, min((s + 1) * SHARD, EXAMPLES)))


def restore_after(record: Path, moment: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The chief's ``begin`` and ``restored`` records of its first session after ``moment``."""
    chief = [r for r in lines(record) if r["task"] == "chief:0" and "ids" not in r]
    begin = next(r for r in chief if "begin" in r and r["begin"] > moment)
    return begin, next(r for r in chief if "restored" in r and r["restored"] > begin["begin"])


def assert_exactly_once(done_at_s: Counter[int], since_s: Counter[int]) -> None:
    """Checkpoint S's shards and the steps after the restore: every id once, none lost."""
    together = done_at_s + since_s
    assert sorted(together) == list(range(EXAMPLES)), sorted(set(range(EXAMPLES)) - set(together))
    assert {i: n for i, n in together.items() if n != 1} == {}


def assert_exactly_once_since_the_restore(
    result: ClusterResult, record: Path, died: float, boundary: Any
) -> None:
    """``boundary(step, begin)``: whether that step was applied after the restore."""
    begin, restored = restore_after(record, died)
    step = restored["step"]
    done = read_snapshot(str(result.model_dir), step)
    assert done is not None, f"no shards-{step}.json beside the restored checkpoint {step}"
    assert step >= SAVE_EVERY, f"restored checkpoint {step}: the test needs one with data in it"
    steps = [r for r in lines(record) if "ids" in r]
    before = [r for r in steps if not boundary(r, begin)]
    after = [r for r in steps if boundary(r, begin)]
    done_ids = ids_of_shards(done.get(0, set()))
    assert set(done_ids) <= set(ids_of(before)), "checkpoint S's shards were read before S"
    assert not set(done_ids) & set(ids_of(after)), "a shard of checkpoint S was read again"
    assert_exactly_once(done_ids, ids_of(after))


@pytest.mark.timeout(300)
def test_a_ps_kill_restores_the_queue_of_the_checkpoint_the_chief_restores(tmp_path):
    """The whole cluster restarts: the steps after the restore are those of the processes
    started after the ps died."""
    result, record = run_with_a_kill(tmp_path, "ps")
    assert [f["decision"] for f in result.summary["failures"]] == ["RESTART_CLUSTER"]
    died = (tmp_path / "killed").stat().st_mtime
    after = lambda r, _: r["started"] > died  # noqa: E731
    assert_exactly_once_since_the_restore(result, record, died, after)


@pytest.mark.timeout(300)
def test_a_chief_restart_from_the_checkpoint_rolls_the_queue_back_with_it(tmp_path):
    """``chief_restart: checkpoint`` with a live ps: the worker goes on while the chief is
    down, and the restore overwrites what it did meanwhile. The worker gets no shard until
    the new chief has restored, and its step in flight at the chief's death (0.1 s) is over
    long before the new chief's session begins (a new process), so the steps after the
    restore are those applied after that begin."""
    result, record = run_with_a_kill(tmp_path, "chief", chief_restart="checkpoint")
    assert [f["decision"] for f in result.summary["failures"]] == ["RESTART_TASK"]
    died = (tmp_path / "killed").stat().st_mtime
    after = lambda r, begin: r["t"] > begin["begin"]  # noqa: E731
    assert_exactly_once_since_the_restore(result, record, died, after)


@pytest.mark.timeout(300)
def test_a_chief_joining_the_live_variables_reads_the_epoch_exactly_once(tmp_path):
    """``chief_restart: live`` (the default): nothing is rolled back, every step counts."""
    result, record = run_with_a_kill(tmp_path, "chief")
    assert [f["decision"] for f in result.summary["failures"]] == ["RESTART_TASK"]
    assert_exactly_once(Counter(), ids_of([r for r in lines(record) if "ids" in r]))
