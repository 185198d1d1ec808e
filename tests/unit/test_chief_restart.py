"""failure.chief_restart: the job field, the pure decisions, and the chief's session hooks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from harness import ModelFnOps
from harness.job import JobSpec, JobSpecError
from harness.runtime.chief_session import ChiefSessionCreator, ChiefStart, tries_to_join
from harness.runtime.graph import build_train_graph
from harness.runtime.run_config import local_run_config
from harness.runtime.session import chief_hooks
from harness.testing import make_job_dict
from hooks import roles

v1 = tf.compat.v1
ROOT = Path(__file__).resolve().parents[2]


class ChiefHook(v1.train.SessionRunHook):
    pass


def input_fn(params):
    x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(-1, 1)
    return tf.data.Dataset.from_tensor_slices(({"x": x}, 2 * x)).repeat().batch(8)


def model_fn(features, labels, mode, params):
    w = v1.get_variable("w", [1, 1], initializer=v1.zeros_initializer())
    loss = tf.reduce_mean(tf.square(tf.matmul(features["x"], w) - labels))
    train_op = v1.train.GradientDescentOptimizer(0.1).minimize(loss, v1.train.get_global_step())
    return ModelFnOps(mode, loss=loss, train_op=train_op, training_chief_hooks=[ChiefHook()])


def _job(tmp_path, **failure) -> JobSpec:
    data = make_job_dict(
        f"{__name__}:model_fn",
        f"{__name__}:input_fn",
        tmp_path / "model",
        workers=0,
        ps=0,
        max_steps=30,
        source_dirs=(str(ROOT),),
        train={"log_step_count_steps": 7, "save_summary_steps": 11},
        failure=failure,
    )
    return JobSpec.from_dict(data)


# ---- the job field ---------------------------------------------------------------------------


def test_chief_restart_defaults_to_live_and_takes_checkpoint(tmp_path):
    assert _job(tmp_path).failure.chief_restart == "live"
    assert _job(tmp_path, chief_restart="checkpoint").failure.chief_restart == "checkpoint"


def test_another_chief_restart_value_names_the_field(tmp_path):
    with pytest.raises(JobSpecError) as caught:
        _job(tmp_path, chief_restart="rollback")
    assert caught.value.field == "failure.chief_restart"
    assert "failure.chief_restart" in str(caught.value)
    assert "'live' or 'checkpoint'" in str(caught.value)
    assert "rollback" in str(caught.value)


# ---- the decisions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chief_restart", "num_ps", "joins"),
    [
        ("live", 1, True),
        ("live", 3, True),
        ("live", 0, False),  # the variables lived on the chief: nothing to join
        ("checkpoint", 1, False),  # TF 1.x: restore the latest checkpoint
        ("checkpoint", 0, False),
    ],
)
def test_who_tries_to_join_the_live_variables(chief_restart, num_ps, joins):
    assert tries_to_join(chief_restart, num_ps) is joins


@pytest.mark.parametrize(
    ("start", "joined_step", "runs_no_step"),
    [
        (None, None, False),  # no session yet
        (ChiefStart.PREPARE, None, False),  # initialized or restored: StopAtStepHook's rule
        (ChiefStart.JOIN, 29, False),
        (ChiefStart.JOIN, 30, True),  # the workers reached max_steps while the chief was down
        (ChiefStart.JOIN, 31, True),
    ],
)
def test_a_chief_joining_at_max_steps_runs_no_step(start, joined_step, runs_no_step):
    creator = ChiefSessionCreator(v1.train.Scaffold(), "", None, "/tmp", join_live=True)
    creator.last_start, creator.joined_step = start, joined_step
    assert creator.joined_at(30) is runs_no_step


# ---- the chief's hooks are MonitoredTrainingSession's ----------------------------------------


def _describe(hook):
    """A hook's class and the settings MonitoredTrainingSession gives the hooks it builds."""
    timer = getattr(hook, "_timer", None)
    every = getattr(timer, "_every_steps", None)
    return type(hook).__name__, every, getattr(hook, "_output_dir", None)


def test_chief_hooks_are_what_monitored_training_session_builds(tmp_path):
    job = _job(tmp_path)
    graph = build_train_graph(job, local_run_config(job), model_fn, input_fn)
    role_hooks = graph.role_hooks
    ours = chief_hooks(job, graph.scaffold, role_hooks)
    with graph.graph.as_default():
        with v1.train.MonitoredTrainingSession(
            is_chief=True,
            checkpoint_dir=job.model_dir,
            scaffold=graph.scaffold,
            hooks=role_hooks.hook_objects,
            chief_only_hooks=role_hooks.chief_only_hook_objects,
            **roles.session_hook_arguments(job),
        ) as session:
            theirs = list(session._hooks)
    assert [_describe(h) for h in ours] == [_describe(h) for h in theirs]
    built_by_mts = {"StepCounterHook", "SummarySaverHook"}
    for mine, its in zip(ours, theirs, strict=True):
        if type(mine).__name__ not in built_by_mts:
            assert mine is its
    assert ("StepCounterHook", 7, job.model_dir) in [_describe(h) for h in ours]
    assert ("SummarySaverHook", 11, job.model_dir) in [_describe(h) for h in ours]
