"""hooks.roles.DEFAULT_HOOKS: the one table of default hooks, the real hooks built from it,
MonitoredTrainingSession's own hooks, and the table ``harness validate`` prints."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from harness import ModelFnOps
from harness.commands.validate import validate_job
from harness.identity import TaskId, TaskSpec
from harness.job import JobSpec
from harness.runtime.graph import build_train_graph
from harness.runtime.run_config import local_run_config, run_config
from harness.runtime.session import monitored_training_session
from harness.runtime.trainer import build_task_graph
from harness.testing import make_job_dict
from hooks import roles

v1 = tf.compat.v1
ROOT = Path(__file__).resolve().parents[2]

CHIEF_ROWS = [
    "CheckpointSaverHook",
    "StepCounterHook",
    "SummarySaverHook",
    "StopAtStepHook",
    "NanTensorHook",
    "LoggingTensorHook",
    "ProgressHook",
    "StopSignalHook",
    "UserHookGuard",
]
WORKER_ROWS = [
    "StopAtStepHook",
    "NanTensorHook",
    "LoggingTensorHook",
    "ProgressHook",
    "StopSignalHook",
    "UserHookGuard",
]


class TrainHook(v1.train.SessionRunHook):
    pass


class ChiefHook(v1.train.SessionRunHook):
    pass


def input_fn(params):
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(-1, 1)
    return tf.data.Dataset.from_tensor_slices(({"x": x}, 2 * x)).repeat().batch(8)


def model_fn(features, labels, mode, params):
    w = v1.get_variable("w", [1, 1], initializer=v1.zeros_initializer())
    predictions = tf.matmul(features["x"], w)
    if mode == "infer":
        return ModelFnOps(mode, predictions={"y": predictions})
    loss = tf.reduce_mean(tf.square(predictions - labels))
    train_op = v1.train.GradientDescentOptimizer(0.1).minimize(
        loss, global_step=v1.train.get_global_step()
    )
    return ModelFnOps(
        mode,
        predictions={"y": predictions},
        loss=loss,
        train_op=train_op,
        training_hooks=[TrainHook()],
        training_chief_hooks=[ChiefHook()],
    )


def _job(tmp_path, workers=1, ps=1, **train) -> JobSpec:
    data = make_job_dict(
        f"{__name__}:model_fn",
        f"{__name__}:input_fn",
        tmp_path / "model",
        workers=workers,
        ps=ps,
        max_steps=30,
        source_dirs=(str(ROOT),),
        train={"log_step_count_steps": 7, "save_summary_steps": 11, **train},
    )
    return JobSpec.from_dict(data)


def _names(rows):
    return [row.name for row in rows]


# ---- the table's rows ------------------------------------------------------------------------


def test_rows_of_the_chief_the_worker_and_the_other_roles(tmp_path):
    job = _job(tmp_path)
    assert _names(roles.rows_for("chief", job)) == CHIEF_ROWS
    assert _names(roles.rows_for("worker", job)) == WORKER_ROWS
    assert all(
        row.slot == "hooks" or row.slot == "wrapper" for row in roles.rows_for("worker", job)
    )
    for role in ("ps", "evaluator"):
        assert roles.rows_for(role, job) == ()
        assert role in roles.ROLE_NOTES


def test_who_adds_each_default_hook(tmp_path):
    added_by = {row.name: row.added_by for row in roles.DEFAULT_HOOKS}
    assert added_by == {
        "CheckpointSaverHook": "Estimator",
        "StepCounterHook": "MonitoredTrainingSession",
        "SummarySaverHook": "MonitoredTrainingSession",
        "StopAtStepHook": "Estimator",
        "NanTensorHook": "Estimator",
        "LoggingTensorHook": "Estimator",
        "ShardAckHook": "harness",
        "ProgressHook": "harness",
        "StopSignalHook": "harness",
        "UserHookGuard": "harness",
    }
    session_rows = [row for row in roles.DEFAULT_HOOKS if row.slot == "session"]
    assert all(row.build is None and row.roles == ("chief",) for row in session_rows)


def test_outside_a_task_there_are_no_task_only_rows(tmp_path):
    job = _job(tmp_path)
    assert _names(roles.rows_for("chief", job, in_task=False)) == CHIEF_ROWS[:6]
    assert _names(roles.rows_for("worker", job, in_task=False)) == WORKER_ROWS[:3]


def test_cadences_come_from_the_job(tmp_path):
    job = _job(tmp_path, save_checkpoints_steps=5)
    cadence = {row.name: row.cadence(job) for row in roles.rows_for("chief", job)}
    assert "every 7 steps" in cadence["LoggingTensorHook"]
    assert "every 7 steps" in cadence["StepCounterHook"]
    assert "every 11 steps" in cadence["SummarySaverHook"]
    assert "every 5 steps" in cadence["CheckpointSaverHook"]
    assert "30" in cadence["StopAtStepHook"]
    seconds = _job(tmp_path, save_checkpoints_steps=None)
    assert "every 600 s" in roles.rows_for("chief", seconds)[0].cadence(seconds)


def test_no_summary_saver_when_summaries_are_off(tmp_path):
    job = _job(tmp_path, save_summary_steps=0)
    assert "SummarySaverHook" not in _names(roles.rows_for("chief", job))
    assert roles.session_hook_arguments(job) == {
        "save_checkpoint_secs": 0,
        "save_summaries_steps": 0,
        "log_step_count_steps": 7,
    }


# ---- the real hooks are built from the table -------------------------------------------------


def _task_graph(job, role):
    cluster = {
        "chief": ["localhost:2222"],
        "worker": ["localhost:2223"],
        "ps": ["localhost:2224"],
    }
    task = TaskSpec(TaskId(role, 0), job, cluster=cluster)
    return build_task_graph(job, run_config(task), lambda *a, **k: None, threading.Event())


@pytest.mark.parametrize("role", ["chief", "worker"])
def test_a_tasks_real_hooks_are_the_tables_rows(tmp_path, role):
    job = _job(tmp_path)
    graph, progress = _task_graph(job, role)
    entries = graph.role_hooks.entries_in_call_order()
    built = [e for e in entries if e.row is not None]
    expected = [r for r in roles.rows_for(role, job) if r.slot in ("chief_only_hooks", "hooks")]
    assert [e.row for e in built] == expected
    assert all(type(e.hook).__name__ == e.row.name for e in built)
    assert progress in graph.role_hooks.hook_objects
    user = [(type(e.hook).__name__, e.origin) for e in entries if e.row is None]
    if role == "chief":
        assert user == [("ChiefHook", "training_chief_hooks"), ("TrainHook", "training_hooks")]
    else:
        assert user == [("TrainHook", "training_hooks")]
        assert graph.role_hooks.chief_only_hooks == ()


def test_estimator_train_gets_the_rows_without_task_hooks_then_its_own(tmp_path):
    job = _job(tmp_path, workers=0, ps=0)
    mine = TrainHook()
    graph = build_train_graph(job, local_run_config(job), model_fn, input_fn, lambda _: [mine])
    names = [type(e.hook).__name__ for e in graph.role_hooks.hooks]
    assert names == [
        "StopAtStepHook",
        "NanTensorHook",
        "LoggingTensorHook",
        "TrainHook",
        "TrainHook",
    ]
    assert graph.role_hooks.hooks[3].hook is mine


def test_monitored_training_session_adds_exactly_the_session_rows(tmp_path):
    """The chief's session, opened as the task opens it, calls the hooks ``describe`` lists."""
    job = _job(tmp_path, workers=0, ps=0)
    graph = build_train_graph(job, local_run_config(job), model_fn, input_fn)
    with graph.graph.as_default():
        session = monitored_training_session(
            job, local_run_config(job), graph.scaffold, graph.role_hooks
        )
        with session:
            called = [type(h).__name__ for h in session._hooks]
    described = roles.describe(graph.role_hooks, "chief", job, in_task=False)
    assert called == [line.hook for line in described]
    assert "StepCounterHook" in called and "SummarySaverHook" in called


# ---- what `harness validate` prints ----------------------------------------------------------


def test_validate_prints_the_tables_rows_per_role(tmp_path, capsys):
    job = _job(tmp_path, workers=1, ps=1)
    assert validate_job(job, "job.yaml") == 0
    out = capsys.readouterr().out
    lines = {role: [ln for ln in out.splitlines() if f"{role}:0" in ln] for role in roles.TRAINERS}
    for role in roles.TRAINERS:
        for row in roles.rows_for(role, job):
            cadence = row.cadence(job)
            assert any(
                row.name in ln and row.added_by in ln and cadence in ln for ln in lines[role]
            ), (role, row.name, cadence)
    chief_only = {r.name for r in roles.DEFAULT_HOOKS} - set(WORKER_ROWS)
    assert not any(name in ln for name in chief_only for ln in lines["worker"])
    assert any("ChiefHook" in ln and "training_chief_hooks" in ln for ln in lines["chief"])
    assert not any("ChiefHook" in ln for ln in lines["worker"])
    ps_lines = [ln for ln in out.splitlines() if "ps:*" in ln]
    assert ps_lines and roles.ROLE_NOTES["ps"] in ps_lines[0]
    assert "Also on the chief" not in out


# ---- one set of fetches per step -------------------------------------------------------------


def _fetched_names(fetches):
    """The names of the tensors and ops in a (nested) fetch structure; dict keys may be hooks."""
    if isinstance(fetches, dict):
        return [n for value in fetches.values() for n in _fetched_names(value)]
    if isinstance(fetches, list | tuple):
        return [n for value in fetches for n in _fetched_names(value)]
    return [fetches.name] if isinstance(fetches, tf.Tensor | tf.Operation) else []


def _fetch_sets(job, monkeypatch, steps):
    """The distinct sets of fetches of the training steps of a local chief with the table's
    hooks and a ProgressHook (as a task adds it); each set is the sorted fetched names."""
    from tensorflow.python.client import session as tf_session

    from hooks.progress import ProgressHook

    seen: list[tuple[str, ...]] = []
    real_run = tf_session.BaseSession.run

    def recording_run(self, fetches, *args, **kwargs):
        names = tuple(sorted(_fetched_names(fetches)))
        if any(name.startswith("GradientDescent") for name in names):  # a training step
            seen.append(names)
        return real_run(self, fetches, *args, **kwargs)

    graph = build_train_graph(job, local_run_config(job), model_fn, input_fn)
    with graph.graph.as_default():
        progress = ProgressHook(lambda *a, **k: None, graph.loss)
        hooks = roles.RoleHooks(
            graph.role_hooks.hooks + (roles.HookEntry(progress, "harness default"),),
            graph.role_hooks.chief_only_hooks,
        )
        session = monitored_training_session(job, local_run_config(job), graph.scaffold, hooks)
        monkeypatch.setattr(tf_session.BaseSession, "run", recording_run)
        with session:
            for _ in range(steps):
                session.run(graph.train_op)
    return seen


def test_the_default_hooks_fetch_the_same_set_on_every_step(tmp_path, monkeypatch):
    job = _job(tmp_path, workers=0, ps=0, save_summary_steps=0, log_step_count_steps=7)
    seen = _fetch_sets(job, monkeypatch, 25)
    assert len(seen) == 25 and len(set(seen)) == 1, set(seen)


def test_only_the_summary_saver_adds_a_second_fetch_set(tmp_path, monkeypatch):
    job = _job(tmp_path, workers=0, ps=0, save_summary_steps=11, log_step_count_steps=7)
    seen = _fetch_sets(job, monkeypatch, 25)
    assert len(set(seen)) == 2, set(seen)
    rows = {row.name: row.fetches for row in roles.DEFAULT_HOOKS}
    assert "(+summaries)" in rows["SummarySaverHook"]
    assert all("(+" not in f for name, f in rows.items() if name != "SummarySaverHook")


def test_the_shard_hook_is_a_row_only_with_a_data_section(tmp_path):
    assert "ShardAckHook" not in _names(roles.rows_for("worker", _job(tmp_path)))
    job = _job(tmp_path).model_copy(update={"data": {"examples": 8, "shard_size": 2}})
    assert "ShardAckHook" in _names(roles.rows_for("worker", job))
    assert "ShardAckHook" not in _names(roles.rows_for("worker", job, in_task=False))
