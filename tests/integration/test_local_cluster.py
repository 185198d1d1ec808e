"""Real local clusters: one OS process and one TF gRPC server per task, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import tensorflow as tf

from harness.testing import leftover_task_processes, run_local_cluster

MODEL = "tests.integration.models:model_fn"
INPUT = "tests.integration.models:input_fn"
REPO = str(Path(__file__).resolve().parents[2])

pytestmark = pytest.mark.timeout(240)


def run(tmp_path, expect_restarts=0, **fields):
    """Run a local cluster; unless a test injects faults, no task may have been restarted."""
    fields.setdefault("model_dir", tmp_path / "model")
    fields.setdefault("source_dirs", (REPO,))
    result = run_local_cluster(fields.pop("model_fn", MODEL), INPUT, **fields)
    assert not leftover_task_processes(result.model_dir), "task processes left running"
    if expect_restarts is not None and "restarts" in result.summary:
        assert result.summary["restarts"] == expect_restarts, result.summary["failures"]
    return result


def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def checkpoint_step(model_dir: Path) -> int:
    reader = tf.train.load_checkpoint(str(model_dir))
    return int(reader.get_tensor("global_step"))


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_hooks_run_only_where_their_role_says(tmp_path, backend):
    record = tmp_path / "record.jsonl"
    result = run(
        tmp_path, workers=2, ps=1, max_steps=30, params={"record": str(record)}, backend=backend
    )
    assert result.succeeded, result.error
    records = read_records(record)
    calls = Counter((r["hook"], r["task"], r["call"]) for r in records if "hook" in r)

    chief_hook_tasks = {task for hook, task, _ in calls if hook == "chief_hook"}
    training_hook_tasks = {task for hook, task, _ in calls if hook == "training_hook"}
    assert chief_hook_tasks == {"chief:0"}
    assert training_hook_tasks == {"chief:0", "worker:0", "worker:1"}
    assert not any(r["task"].startswith("ps") for r in records)
    for hook, tasks in (
        ("chief_hook", ["chief:0"]),
        ("training_hook", ["chief:0", "worker:0", "worker:1"]),
    ):
        for task in tasks:
            assert calls[(hook, task, "begin")] == 1
            assert calls[(hook, task, "end")] == 1, (hook, task)
            assert calls[(hook, task, "after_create_session")] >= 1
            assert calls[(hook, task, "before_run")] == calls[(hook, task, "after_run")] >= 1

    # Scaffold: init_fn runs on the chief only, and every trainer sees the value it set.
    init_calls = [r for r in records if r.get("call") == "init_fn"]
    assert [r["task"] for r in init_calls] == ["chief:0"]
    seen = {r["task"]: r["value"] for r in records if r.get("call") == "seen_marker"}
    assert seen == {"chief:0": 42.0, "worker:0": 42.0, "worker:1": 42.0}
    assert result.summary["tasks"]["ps:0"]["local_steps"] == 0
    # run.json counts every trainer's steps: together they made the 30 global steps
    assert result.summary["final_global_step"] >= 30
    assert sum(result.summary["tasks"][t]["local_steps"] for t in training_hook_tasks) >= 30


def test_custom_saver_keeps_two_checkpoints_and_a_second_run_restores(tmp_path):
    record = tmp_path / "record.jsonl"
    params = {"record": str(record), "keep": 2}
    first = run(
        tmp_path, workers=1, ps=1, max_steps=40, params=params, train={"save_checkpoints_steps": 8}
    )
    assert first.succeeded, first.error
    assert len(list(first.model_dir.glob("model.ckpt-*.index"))) == 2
    assert checkpoint_step(first.model_dir) >= 40

    second = run(
        tmp_path, workers=1, ps=1, max_steps=70, params=params, train={"save_checkpoints_steps": 8}
    )
    assert second.succeeded, second.error
    records = read_records(record)
    assert sum(r.get("call") == "init_fn" for r in records) == 1, "restore must not run init_fn"
    assert checkpoint_step(second.model_dir) >= 70
    assert second.final_global_step >= 70
    assert len(list(second.model_dir.glob("model.ckpt-*.index"))) == 2

    # As Estimator: max_steps already saved -> no cluster is started at all.
    third = run(tmp_path, workers=1, ps=1, max_steps=70, params=params)
    assert third.succeeded and third.summary["skipped"]
    assert third.final_global_step >= 70


def test_without_ps_the_chief_hosts_the_variables(tmp_path):
    result = run(tmp_path, workers=2, ps=0, max_steps=40)
    assert result.succeeded, result.error
    assert checkpoint_step(result.model_dir) >= 40
    graph = (result.model_dir / "graph.pbtxt").read_text()
    assert '"/job:chief/task:0"' in graph and "/job:ps" not in graph


def test_two_ps_tasks_share_the_variables(tmp_path):
    result = run(tmp_path, workers=1, ps=2, max_steps=40)
    assert result.succeeded, result.error
    graph = (result.model_dir / "graph.pbtxt").read_text()
    assert "/job:ps/task:0" in graph and "/job:ps/task:1" in graph
    assert checkpoint_step(result.model_dir) >= 40


def test_sync_replicas_training_reaches_max_steps(tmp_path):
    result = run(tmp_path, workers=1, ps=1, max_steps=30, params={"sync": True})
    assert result.succeeded, result.error
    assert checkpoint_step(result.model_dir) == 30


def test_a_chief_blocked_at_the_end_is_stopped_and_still_saves(tmp_path):
    """The last replica waiting for tokens that never come (sync training's end) cannot hang."""
    result = run(
        tmp_path,
        workers=1,
        ps=1,
        max_steps=40,
        params={"token_trap": True},
        timeouts={"stop_grace_secs": 6},
        failure={"stall_timeout_secs": 60},
    )
    assert result.succeeded, result.error
    assert checkpoint_step(result.model_dir) >= 40
    chief_log = (result.model_dir / "logs" / "chief-0.log").read_text()
    assert "closing the graph's 1 queue(s)" in chief_log


def _kill_when_checkpointed(
    model_dir: Path, role: str, min_step: int, done: threading.Event
) -> None:
    """SIGKILL the task process of ``role`` once a checkpoint at >= min_step exists."""
    while not done.is_set():
        state = tf.train.get_checkpoint_state(str(model_dir))
        if state and int(state.model_checkpoint_path.rsplit("-", 1)[1]) >= min_step:
            for proc in leftover_task_processes(model_dir):
                if f"--role {role} " in " ".join(proc.cmdline()) + " ":
                    os.kill(proc.pid, signal.SIGKILL)
                    return
        time.sleep(0.2)


@pytest.mark.parametrize("role", ["worker", "chief", "ps"])
def test_a_killed_task_is_recovered_and_the_job_completes(tmp_path, role):
    model_dir = tmp_path / "model"
    done = threading.Event()
    killer = threading.Thread(
        target=_kill_when_checkpointed, args=(model_dir, role, 20, done), daemon=True
    )
    killer.start()
    try:
        result = run(
            tmp_path,
            expect_restarts=1,
            workers=1,
            ps=1,
            max_steps=300,
            params={"slow_chief_secs": 0.02},
            train={"save_checkpoints_steps": 10},
        )
    finally:
        done.set()
    assert result.succeeded, result.error
    assert result.summary["restarts"] == 1
    assert result.summary["failures"][0]["task"] == f"{role}:0"
    assert checkpoint_step(model_dir) >= 300


def test_a_server_that_cannot_bind_reruns_the_rendezvous(tmp_path, capsys):
    marker = tmp_path / "bind-failed-once"
    result = run(
        tmp_path,
        workers=1,
        ps=1,
        max_steps=20,
        extra_env={"HARNESS_FAULT_INJECT": f"bind:worker:0:{marker}"},
    )
    assert marker.exists(), "the fault was not injected"
    assert result.succeeded, result.error
    assert result.summary["restarts"] == 0
    out = capsys.readouterr().out
    assert "worker:0: TF server could not bind" in out
    assert "re-running the rendezvous with fresh ports" in out
    assert checkpoint_step(result.model_dir) >= 20


def test_a_stalled_global_step_fails_with_every_tasks_stack(tmp_path):
    result = run(
        tmp_path,
        None,
        workers=1,
        ps=1,
        max_steps=100000,
        params={"slow_secs": 3600},
        failure={"stall_timeout_secs": 8},
        train={"save_checkpoints_steps": 1000},
    )
    assert not result.succeeded
    assert "has not advanced for 8 s" in result.error
    assert "chief:0" in result.error
    chief_log = (result.model_dir / "logs" / "chief-0.log").read_text()
    assert "in before_run" in chief_log  # faulthandler's dump of the chief's main thread


def test_the_stall_message_names_the_step_the_trainer_reached(tmp_path):
    # The trainer makes 300 steps of about 10 ms and blocks: its last timed progress report
    # (every 0.5 s) lies up to 50 steps before step 300; the stall message names the step it
    # really reached.
    result = run(
        tmp_path,
        None,
        workers=0,
        ps=0,
        max_steps=100000,
        params={"stall_at_step": 300, "slow_secs": 0.01},
        failure={"stall_timeout_secs": 4},
        train={"save_checkpoints_steps": 100000},
    )
    assert not result.succeeded
    assert re.search(r"stuck at step (299|300)\. Stalled tasks: chief:0\.", result.error), (
        result.error
    )


def test_tasks_missing_at_the_startup_deadline_are_named(tmp_path):
    """No task can import TensorFlow and start its server in 0.5 s: the job must fail at the
    deadline, naming the tasks still missing and where to look.

    How far each task got by then depends on the machine's load, so the message may name one,
    two or all three tasks, at either step; every one it names must be a task of this job.
    """
    result = run(tmp_path, None, workers=1, ps=1, max_steps=10, timeouts={"startup_secs": 0.5})
    assert not result.succeeded
    assert result.summary["restarts"] == 0  # the deadline fails a starting cluster at once
    match = re.search(
        r"(\S+(?:, \S+)*) did not (report its address|start its TF server) within 0\.5 s "
        r"\(timeouts\.startup_secs\)\. Check (\S+)/ for its output",
        result.error,
    )
    assert match, result.error
    named = match.group(1).split(", ")
    assert named and len(set(named)) == len(named), result.error
    assert set(named) <= {"chief:0", "worker:0", "ps:0"}, result.error
    assert Path(match.group(3)) == result.model_dir / "logs", result.error


def test_chief_writes_tensorboard_events_with_the_loss(tmp_path):
    """The chief is the only trainer, so it runs every one of the 30 steps whatever the load:
    its SummarySaverHook writes ``loss`` at its first step and its StepCounterHook writes
    ``global_step/sec`` every 5 steps after the first (steps 6, 11, ...)."""
    result = run(
        tmp_path,
        workers=0,
        ps=0,
        max_steps=30,
        train={"save_summary_steps": 5, "log_step_count_steps": 5},
    )
    assert result.succeeded, result.error
    tags = set()
    for events in result.model_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            tags.update(value.tag for value in event.summary.value)
    assert {"loss", "global_step/sec"} <= tags
    summary = json.loads((result.model_dir / "run.json").read_text())
    assert summary["status"] == "succeeded" and summary["final_global_step"] >= 30
    assert set(summary["tasks"]) == {"chief:0"}
    assert summary["tasks"]["chief:0"]["local_steps"] >= 30
    assert summary["timings"]["first_step_secs"] <= summary["timings"]["training_secs"]


def test_an_evaluator_follows_the_checkpoints_without_blocking_training(tmp_path):
    result = run(
        tmp_path,
        workers=1,
        ps=1,
        max_steps=60,
        params={"slow_secs": 0.02},
        train={"save_checkpoints_steps": 15},
        cluster={"evaluator": 1},
        eval={"steps": 4},
    )
    assert result.succeeded, result.error
    final_step = checkpoint_step(result.model_dir)
    assert result.summary["eval"]["global_step"] == final_step, "the final checkpoint is evaluated"
    assert "loss" in result.summary["eval"]["metrics"]
    steps_with_loss = set()
    for events in (result.model_dir / "eval").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            if any(value.tag == "loss" for value in event.summary.value):
                steps_with_loss.add(event.step)
    assert final_step in steps_with_loss and len(steps_with_loss) >= 2
    assert result.summary["tasks"]["evaluator:0"]["exit_code"] == 0


def test_an_evaluator_whose_model_fails_once_is_restarted_and_evaluates_on(tmp_path):
    marker = tmp_path / "failed-once"
    result = run(
        tmp_path,
        workers=1,
        ps=1,
        max_steps=60,
        params={"slow_secs": 0.02, "fail_eval_once_marker": str(marker)},
        train={"save_checkpoints_steps": 15},
        cluster={"evaluator": 1},
        eval={"steps": 4},
    )
    assert result.succeeded, result.error
    assert marker.exists(), "the first evaluation failed"
    evaluator = result.summary["tasks"]["evaluator:0"]
    assert evaluator["restarts"] == 1 and evaluator["exit_code"] == 0
    assert result.summary["eval"]["global_step"] == checkpoint_step(result.model_dir)
    assert [t["restarts"] for k, t in result.summary["tasks"].items() if k != "evaluator:0"] == [
        0,
        0,
        0,
    ]


@pytest.mark.parametrize("keras", ["legacy", "keras3"])
def test_keras_layers_survive_graphs_rebuilt_in_one_process(tmp_path, keras):
    """The evaluator rebuilds its graph per checkpoint and the chief exports after training:
    with Keras 3 layers, a second graph once named its seed generator differently."""
    result = run(
        tmp_path,
        model_fn="tests.integration.models:keras3_model_fn",
        workers=1,
        ps=0,
        max_steps=40,
        keras=keras,
        params={"slow_secs": 0.02},
        train={"save_checkpoints_steps": 10, "export_on_finish": True},
        cluster={"evaluator": 1},
        eval={"steps": 2},
    )
    assert result.succeeded, result.error
    assert result.summary["tasks"]["evaluator:0"]["restarts"] == 0
    steps = set()
    for events in (result.model_dir / "eval").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            if any(value.tag == "loss" for value in event.summary.value):
                steps.add(event.step)
    assert len(steps) >= 2, f"several checkpoints evaluated in one evaluator process: {steps}"
    assert len(list((result.model_dir / "export").iterdir())) == 1
    reader = tf.train.load_checkpoint(str(result.model_dir))
    seed_vars = [name for name in reader.get_variable_to_shape_map() if "seed_generator" in name]
    assert bool(seed_vars) == (keras == "keras3"), seed_vars


def test_the_chief_exports_a_saved_model_after_training(tmp_path):
    result = run(tmp_path, workers=1, ps=1, max_steps=20, train={"export_on_finish": True})
    assert result.succeeded, result.error
    exports = list((result.model_dir / "export").iterdir())
    assert len(exports) == 1 and (exports[0] / "saved_model.pb").exists()
    chief_log = (result.model_dir / "logs" / "chief-0.log").read_text()
    assert f"exported a SavedModel to {exports[0]}" in chief_log
