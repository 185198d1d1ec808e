"""The status board's pure parts: run state, numbered line buffers, the board, the observer's
batching (with a stand-in for Ray), and the text of ``harness status``. No Ray, no processes."""

from __future__ import annotations

import threading
import time
from typing import Any

from cluster.observe import Snapshot
from cluster.status import StatusObserver
from cluster.status_board import LineRing, PendingLines, RunState, StatusBoard
from harness.cli import build_parser
from harness.commands.status import (
    format_duration,
    format_status,
    gap_note,
    logs_command,
    status_command,
)

KEYS = ["chief:0", "worker:0", "ps:0"]


def snapshot(step: int = 40) -> Snapshot:
    return Snapshot(step, 100, 0.25, 12.5, 3.0, "worker:0")


def test_task_states_through_start_address_restart_and_exit():
    state = RunState("lin", KEYS, 100)
    for key in KEYS:
        state.started(key)
    state.address("worker:0", "10.0.0.7:23456")
    state.exited("chief:0", 0, "NOTHING")
    state.exited("ps:0", -9, "RESTART_CLUSTER")
    tasks = state.snapshot()["tasks"]
    assert tasks["worker:0"]["state"] == "running" and tasks["worker:0"]["node"] == "10.0.0.7"
    assert tasks["chief:0"]["state"] == "exited" and tasks["chief:0"]["exit_code"] == 0
    assert tasks["ps:0"]["state"] == "restarting" and tasks["ps:0"]["restarts"] == 0
    state.started("ps:0")
    tasks = state.snapshot()["tasks"]
    assert tasks["ps:0"]["state"] == "starting" and tasks["ps:0"]["restarts"] == 1
    assert tasks["ps:0"]["exit_code"] is None


def test_snapshot_carries_progress_evaluation_outcome_and_a_growing_version():
    state = RunState("lin", KEYS, 100)
    v0 = state.snapshot()["version"]
    state.progress(snapshot())
    state.evaluation(40, {"loss": 0.5})
    state.finished("failed", "worker:0 exited with code 1")
    snap = state.snapshot()
    assert snap["version"] == v0 + 3
    assert snap["progress"]["global_step"] == 40 and snap["progress"]["loss"] == 0.25
    assert snap["evaluation"] == {"global_step": 40, "metrics": {"loss": 0.5}}
    assert snap["state"] == "failed" and snap["error"].startswith("worker:0")


def test_pending_lines_are_numbered_per_task_and_bounded():
    pending = PendingLines(capacity=3)
    for i in range(5):
        pending.add("worker:0", f"w{i}")
    pending.add("chief:0", "c0")
    taken = pending.take()
    assert taken["worker:0"] == [(3, "w2"), (4, "w3"), (5, "w4")]  # 1 and 2 dropped
    assert taken["chief:0"] == [(1, "c0")]
    assert pending.take() == {}
    pending.add("worker:0", "w5")
    assert pending.take() == {"worker:0": [(6, "w5")]}


def test_line_ring_keeps_the_last_lines_and_ignores_old_numbers():
    ring = LineRing(capacity=3)
    ring.extend([(1, "a"), (2, "b"), (3, "c"), (4, "d")])
    ring.extend([(2, "again")])
    assert ring.since(0) == [(2, "b"), (3, "c"), (4, "d")]
    assert ring.since(3) == [(4, "d")]
    assert ring.since(0, limit=1) == [(2, "b")]
    assert ring.last_seq == 4


def board_with(lines: dict[str, list[tuple[int, str]]] | None = None) -> StatusBoard:
    board = StatusBoard("lin", KEYS, 100, capacity=10)
    state = RunState("lin", KEYS, 100)
    state.started("chief:0")
    board.update(state.snapshot(), lines or {})
    return board


def test_board_keeps_the_newest_snapshot_whatever_the_order():
    board = StatusBoard("lin", KEYS, 100, capacity=10)
    state = RunState("lin", KEYS, 100)
    state.started("chief:0")
    old = state.snapshot()
    state.address("chief:0", "127.0.0.1:2222")
    board.update(state.snapshot(), {})
    board.update(old, {})  # late
    board.update({"version": -1}, {"chief:0": [(1, "x")]})  # lines only
    status = board.status()
    assert status["tasks"]["chief:0"]["state"] == "running"
    assert status["elapsed_secs"] >= 0
    assert board.lines("chief:0")["lines"] == [[1, "x"]]


def test_lines_long_poll_wakes_on_new_lines_and_reports_the_first_kept():
    board = board_with({"worker:0": [(5, "five")]})
    reply = board.lines("worker:0", 0)
    assert reply == {"lines": [[5, "five"]], "first": 5, "finished": False}

    def later() -> None:
        time.sleep(0.2)
        board.update({"version": -1}, {"worker:0": [(6, "six")]})

    threading.Thread(target=later).start()
    start = time.monotonic()
    reply = board.lines("worker:0", 5, wait_secs=30)
    assert reply["lines"] == [[6, "six"]]
    assert time.monotonic() - start < 20  # woke on the update, not at the deadline
    assert board.lines("worker:0", 6, wait_secs=0.05)["lines"] == []
    assert board.lines("nosuch:0", 0)["lines"] == []


def test_followers_are_waited_for_until_they_read_the_end():
    board = board_with({"chief:0": [(1, "a"), (2, "b")]})
    board.lines("chief:0", 0, limit=1, follower="f1")
    state = RunState("lin", KEYS, 100)
    state.finished("succeeded", None)
    board.update({**state.snapshot(), "version": 99}, {})
    assert board.wait_followers(0.2) is False  # f1 has read line 1 of 2
    reply = board.lines("chief:0", 1, follower="f1")
    assert reply["lines"] == [[2, "b"]] and reply["finished"] is True
    assert board.wait_followers(5) is True


class FakeRef:
    def __init__(self, value: Any) -> None:
        self.value = value


class FakeMethod:
    def __init__(self, board: FakeBoard, name: str) -> None:
        self.board, self.name = board, name

    def remote(self, *args: Any) -> FakeRef:
        self.board.calls.append((self.name, args))
        return FakeRef(getattr(self.board.real, self.name)(*args))


class FakeBoard:
    """A StatusBoard behind a Ray-like handle: ``board.update.remote(...)``."""

    def __init__(self) -> None:
        self.real = StatusBoard("lin", KEYS, 100, capacity=50)
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.killed = False

    def __getattr__(self, name: str) -> FakeMethod:
        return FakeMethod(self, name)


class FakeRay:
    def get(self, ref: FakeRef, timeout: float | None = None) -> Any:
        return ref.value

    def wait(self, refs: list[FakeRef], timeout: float | None = None) -> tuple[list, list]:
        return refs, []

    def kill(self, board: FakeBoard, no_restart: bool = True) -> None:
        board.killed = True


def test_observer_batches_lines_and_state_into_few_calls_and_removes_the_board():
    board = FakeBoard()
    reports: list[str] = []
    state, pending = RunState("lin", KEYS, 100), PendingLines(50)
    observer = StatusObserver(board, state, pending, reports.append, ray_api=FakeRay())
    for key in KEYS:
        observer.task_started(key)
    for i in range(200):  # a chatty worker, far faster than the flush cadence
        observer.task_line("worker:0", f"line {i}")
    observer.progress(snapshot(40))
    observer.finished({"status": "succeeded", "error": None})
    updates = [args for name, args in board.calls if name == "update"]
    assert 1 <= len(updates) <= 3, len(updates)
    status = board.real.status()
    assert status["state"] == "succeeded" and status["progress"]["global_step"] == 40
    kept = board.real.lines("worker:0", 0)["lines"]
    assert kept[-1] == [200, "line 199"] and len(kept) == 50
    assert board.killed and reports == []
    observer.close()  # idempotent


def status_dict(**overrides: Any) -> dict[str, Any]:
    state = RunState("lin", KEYS, 100)
    for key in KEYS:
        state.started(key)
    state.address("chief:0", "10.0.0.7:2222")
    state.address("worker:0", "10.0.0.8:2223")
    state.exited("ps:0", 0, "NOTHING")
    state.progress(snapshot(40))
    state.evaluation(30, {"accuracy": 0.9125, "loss": 0.5})
    return {**state.snapshot(), "elapsed_secs": 75.2, **overrides}


def test_format_status_shows_the_job_line_the_evaluation_and_the_task_table():
    text = format_status(status_dict())
    lines = text.splitlines()
    assert lines[0] == (
        "job lin: running, global step 40/100, loss 0.25, 12.5 steps/s, elapsed 1m15s"
    )
    assert lines[1] == "  latest evaluation: global step 30: accuracy 0.9125, loss 0.5"
    assert lines[2].split() == ["TASK", "STATE", "NODE", "RESTARTS"]
    assert lines[3].split() == ["chief:0", "running", "10.0.0.7", "0"]
    assert lines[4].split() == ["worker:0", "running", "10.0.0.8", "0"]
    assert lines[5].split() == ["ps:0", "exited", "(code", "0)", "-", "0"]


def test_format_status_before_progress_and_after_a_failure():
    text = format_status(
        status_dict(progress=None, evaluation=None, state="failed", error="boom\nx")
    )
    assert text.splitlines()[0].startswith("job lin: failed, global step 0/100, elapsed")
    assert "  error: boom" in text and "latest evaluation" not in text


def test_durations_and_gap_notes():
    assert [format_duration(s) for s in (5, 65, 3725)] == ["5s", "1m05s", "1h02m"]
    assert gap_note("worker:0", 0, 1) is None
    assert gap_note("worker:0", 4, 5) is None
    assert "3 earlier lines of worker:0" in gap_note("worker:0", 0, 4)
    assert "2 lines of worker:0" in gap_note("worker:0", 10, 13)


def test_the_cli_parses_status_and_logs():
    args = build_parser().parse_args(["status", "lin", "--json", "--address", "h:6379"])
    assert (args.job, args.json, args.address, args.run_command) == (
        "lin",
        True,
        "h:6379",
        status_command,
    )
    args = build_parser().parse_args(["logs", "lin", "worker:1", "-f"])
    assert (args.job, args.task, args.follow, args.address) == ("lin", "worker:1", True, None)
    assert args.run_command is logs_command
