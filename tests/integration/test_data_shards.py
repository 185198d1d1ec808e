"""harness.data on both backends (local processes, an embedded Ray): every example is trained on exactly once in an epoch,
whatever task dies (docs/data.md).

The model (``data_models``) records, in each step after its update was applied, the ids of
the examples it trained on. With workers killed (between two steps by HARNESS_FAULT_INJECT,
and while holding an unread shard), no rollback happens (the ps keep the live variables),
so the records of every task instance together are the model's history: each id exactly
once; the final checkpoint's ``seen`` (how many times the model trained on each example)
says the same. The epoch ends the training (max_steps is out of reach).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import pytest
import tensorflow as tf

from harness.testing import kill_task_at_step, leftover_task_processes, run_local_cluster

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLES, SHARD = 120, 4


def ids_seen(record: Path) -> Counter[int]:
    lines = record.read_text().splitlines() if record.exists() else []
    return Counter(i for line in lines for i in json.loads(line).get("ids", []))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["local", "ray"])
def test_an_epoch_is_read_exactly_once_with_workers_killed(tmp_path, backend):
    record, killed, died = tmp_path / "ids.jsonl", tmp_path / "killed", tmp_path / "died"
    result = run_local_cluster(
        "tests.integration.data_models:model_fn",
        "tests.integration.data_models:input_fn",
        model_dir=tmp_path / "model",
        backend=backend,
        name="data-once",
        workers=2,
        max_steps=10**6,
        params={
            "record": str(record),
            "slow_secs": 0.1,
            "examples": EXAMPLES,
            "die_reading": ["worker:1", 4, str(died)],
        },
        data={"examples": EXAMPLES, "shard_size": SHARD},
        failure={"max_failures": 4, "stall_timeout_secs": 120},
        placement={"timeout_secs": 60},
        source_dirs=(str(REPO),),
        extra_env=kill_task_at_step("worker", 0, 6, killed),
    )
    assert result.succeeded, result.error
    assert killed.exists() and died.exists(), "a fault was never injected"
    assert result.summary["restarts"] == 2, result.summary["failures"]
    seen = ids_seen(record)
    assert sorted(seen) == list(range(EXAMPLES)), sorted(set(range(EXAMPLES)) - set(seen))
    assert {i: n for i, n in seen.items() if n != 1} == {}
    assert sorted(p.name for p in (tmp_path / "model").glob("shards-*.json"))
    seen = tf.train.load_checkpoint(result.checkpoints()[-1]).get_tensor("seen")
    assert {i: int(n) for i, n in enumerate(seen) if n != 1} == {}
    assert not leftover_task_processes(result.model_dir)
