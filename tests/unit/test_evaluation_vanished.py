"""A checkpoint the chief's Saver deletes (keep_checkpoint_max) between the evaluator's check
and its restore is skipped, not a crash: Saver.restore then raises a plain ValueError."""

from __future__ import annotations

import pytest
import tensorflow as tf

from harness.runtime import evaluation
from harness.runtime.evaluation import CheckpointNotFoundError, EvalGraph


def an_eval_graph() -> EvalGraph:
    graph = tf.Graph()
    with graph.as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        update = tf.no_op()
    return EvalGraph(graph, step, update, {}, tf.compat.v1.train.Scaffold(), [])


def restore_fails(*args, **kwargs):
    raise ValueError("The passed save_path is not a valid checkpoint: /m/model.ckpt-0")


def test_a_checkpoint_deleted_before_its_restore_is_reported_as_vanished(monkeypatch):
    monkeypatch.setattr(evaluation.v1.train, "MonitoredSession", restore_fails)
    monkeypatch.setattr(evaluation, "checkpoint_exists", lambda path: False)
    with pytest.raises(CheckpointNotFoundError, match="vanished"):
        evaluation._run_evaluation(an_eval_graph(), "/m/model.ckpt-0", steps=1)


def test_a_value_error_with_the_checkpoint_still_there_is_raised_as_is(monkeypatch):
    monkeypatch.setattr(evaluation.v1.train, "MonitoredSession", restore_fails)
    monkeypatch.setattr(evaluation, "checkpoint_exists", lambda path: True)
    with pytest.raises(ValueError, match="not a valid checkpoint") as info:
        evaluation._run_evaluation(an_eval_graph(), "/m/model.ckpt-0", steps=1)
    assert not isinstance(info.value, CheckpointNotFoundError)
