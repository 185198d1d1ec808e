"""The shard queue's bookkeeping (cluster.shards) and the data: section (harness.data_spec)."""

from __future__ import annotations

import pytest

from cluster.shards import ShardQueue, ShardService, read_snapshot, rolls_back, write_snapshot
from harness.data_spec import DataConfig, ranges
from harness.job import JobSpec


def job(tmp_path, **fields):
    return JobSpec.from_dict(
        {
            "name": "t",
            "model_fn": "m:f",
            "input_fn": "m:g",
            "model_dir": str(tmp_path),
            "train": {"max_steps": 10},
            "data": {"examples": 10, "shard_size": 4},
            **fields,
        }
    )


def test_ranges_cover_every_example_once():
    assert [(d["start"], d["stop"]) for d in ranges(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    assert [d["index"] for d in ranges(10, 4)] == [0, 1, 2]


def test_the_data_section_takes_one_form(tmp_path):
    (tmp_path / "b.rec").write_text("")
    (tmp_path / "a.rec").write_text("")
    found = DataConfig(files=[str(tmp_path / "*.rec")]).descriptors()
    assert [d["path"].rsplit("/", 1)[1] for d in found] == ["a.rec", "b.rec"]
    for bad in ({}, {"examples": 3}, {"files": ["x"], "examples": 3, "shard_size": 1}):
        with pytest.raises(ValueError):
            DataConfig(**bad)
    with pytest.raises(ValueError, match="no file matches"):
        DataConfig(files=[str(tmp_path / "*.none")]).descriptors()


def test_each_shard_goes_to_one_task_and_is_done_once_acknowledged():
    q = ShardQueue(3)
    assert [q.request("chief:0", 0), q.request("worker:0", 0)] == [0, 1]
    q.ack("worker:0", [(0, 1)])
    assert q.request("worker:0", 0) == 2
    assert q.request("worker:0", 0) == "end"  # it holds shard 2 itself: no waiting on itself
    assert q.request("worker:1", 0) == "wait"  # others hold shards that may come back
    assert q.snapshot() == {0: [1]}


def test_an_exited_holder_gives_its_unfinished_shards_back_first():
    q = ShardQueue(4)
    taken = [q.request("worker:0", 0) for _ in range(2)]
    q.ack("worker:0", [(0, taken[0])])
    assert q.release("worker:0") == [(0, 1)]
    assert q.request("chief:0", 0) == 1
    q.ack("worker:0", [(0, 1)])  # a late acknowledgement of the dead instance is ignored
    assert q.snapshot() == {0: [0]}


def test_epochs_have_their_own_queues():
    q = ShardQueue(2, done={0: {0, 1}})
    assert q.request("chief:0", 0) == "end"
    assert q.request("chief:0", 1) == 0


def test_a_snapshot_restores_the_queue(tmp_path):
    write_snapshot(str(tmp_path), 8, {0: [0, 2]})
    assert read_snapshot(str(tmp_path), 8) == {0: {0, 2}}
    assert read_snapshot(str(tmp_path), 9) is None
    q = ShardQueue(3, read_snapshot(str(tmp_path), 8))
    assert [q.request("chief:0", 0), q.request("chief:0", 0)] == [1, "end"]


class FakeHandle:
    def __init__(self):
        self.sent = []

    def send(self, line):
        self.sent.append(line)


def test_the_service_snapshots_before_the_save_and_restores_the_latest(tmp_path):
    service = ShardService(job(tmp_path), info=lambda line: None)
    service.rollback()  # no checkpoint: a fresh queue
    handle = FakeHandle()
    service.on_event("chief:0", handle, {"event": "shard_request", "epoch": 0})
    service.on_event("chief:0", handle, {"event": "shards_done", "shards": [[0, 0]]})
    service.on_event("chief:0", handle, {"event": "checkpoint_saving", "step": 5})
    service.on_event("chief:0", handle, {"event": "shard_request", "epoch": 0})
    service.on_event("chief:0", handle, {"event": "shards_done", "shards": [[0, 1]]})
    service.on_event("chief:0", handle, {"event": "checkpoint_saved", "step": 5})
    assert '"status": "shard"' in handle.sent[0] and "checkpoint_go" in handle.sent[1]
    assert read_snapshot(str(tmp_path), 5) == {0: {0}}  # shard 1 was done after the snapshot
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-5"\n')
    service.rollback()
    assert service.queue.request("worker:0", 0) == 1


def test_which_restarts_roll_the_queue_back(tmp_path):
    live = job(tmp_path, cluster={"ps": 1})
    assert not rolls_back(live, "chief:0") and not rolls_back(live, "worker:0")
    assert rolls_back(job(tmp_path, cluster={"ps": 0}), "chief:0")
    assert rolls_back(
        job(tmp_path, cluster={"ps": 1}, failure={"chief_restart": "checkpoint"}), "chief:0"
    )


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def sent(handle, what):
    return [line for line in handle.sent if what in line]


def test_the_chief_saves_once_the_other_steps_in_flight_are_done(tmp_path):
    service = ShardService(job(tmp_path), info=lambda line: None)
    chief, worker = FakeHandle(), FakeHandle()
    service.on_event("worker:0", worker, {"event": "shard_request", "epoch": 0})  # shard 0
    service.on_event("chief:0", chief, {"event": "checkpoint_saving", "step": 3})
    assert not sent(chief, "checkpoint_go")  # worker:0's step with shard 0 is in flight
    service.on_event("worker:0", worker, {"event": "shards_done", "shards": [[0, 0]]})
    assert len(sent(chief, "checkpoint_go")) == 1
    service.on_event("worker:0", worker, {"event": "shard_request", "epoch": 0})
    assert '"status": "wait"' in worker.sent[-1]  # no new step while the chief saves
    service.on_event("chief:0", chief, {"event": "checkpoint_saved", "step": 3})
    assert read_snapshot(str(tmp_path), 3) == {0: {0}}  # the step in flight is in it
    service.on_event("worker:0", worker, {"event": "shard_request", "epoch": 0})
    assert '"status": "shard"' in worker.sent[-1]


def test_a_stuck_step_is_not_waited_for_past_the_barrier(tmp_path):
    clock = Clock()
    service = ShardService(job(tmp_path), info=lambda line: None, clock=clock)
    chief, stuck, other = FakeHandle(), FakeHandle(), FakeHandle()
    service.on_event("worker:0", stuck, {"event": "shard_request", "epoch": 0})
    service.on_event("chief:0", chief, {"event": "checkpoint_saving", "step": 3})
    clock.now = 1000.0
    service.on_event("worker:1", other, {"event": "shard_request", "epoch": 0})
    assert len(sent(chief, "checkpoint_go")) == 1
    service.on_event("chief:0", chief, {"event": "checkpoint_saved", "step": 3})
    assert read_snapshot(str(tmp_path), 3) == {}  # the snapshot of before the save


def test_an_exited_worker_is_not_waited_for(tmp_path):
    service = ShardService(job(tmp_path), info=lambda line: None)
    chief, worker = FakeHandle(), FakeHandle()
    service.on_event("worker:0", worker, {"event": "shard_request", "epoch": 0})
    service.on_event("chief:0", chief, {"event": "checkpoint_saving", "step": 3})
    service.exited("worker:0")
    assert len(sent(chief, "checkpoint_go")) == 1


def test_a_rollback_right_after_a_save_uses_the_snapshot_taken_for_it(tmp_path):
    """The chief (or a ps) died after writing checkpoint 4 but before checkpoint_saved."""
    service = ShardService(job(tmp_path), info=lambda line: None)
    chief = FakeHandle()
    service.on_event("chief:0", chief, {"event": "shard_request", "epoch": 0})
    service.on_event("chief:0", chief, {"event": "shards_done", "shards": [[0, 0]]})
    service.on_event("chief:0", chief, {"event": "checkpoint_saving", "step": 4})
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-4"\n')
    service.rollback()
    assert read_snapshot(str(tmp_path), 4) == {0: {0}}
    assert service.queue.request("chief:0", 0) == 1


def test_after_a_restoring_chief_restart_the_others_wait_for_the_new_chief(tmp_path):
    service = ShardService(
        job(tmp_path, cluster={"ps": 1}, failure={"chief_restart": "checkpoint"}),
        info=lambda line: None,
    )
    chief, worker = FakeHandle(), FakeHandle()
    service.rollback()
    service.task_restarting("chief:0")
    service.on_event("worker:0", worker, {"event": "shard_request", "epoch": 0})
    assert '"status": "wait"' in worker.sent[-1]  # its step would be overwritten
    service.on_event("chief:0", chief, {"event": "shard_request", "epoch": 0})
    service.on_event("worker:0", worker, {"event": "shard_request", "epoch": 0})
    assert '"status": "shard"' in worker.sent[-1]
