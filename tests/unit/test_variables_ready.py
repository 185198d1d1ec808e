"""The chief's ``on_ready`` (its ``variables_ready`` report): once per session, right after
the Scaffold's init_fn when it initializes, after the restore when it restores, and before
any hook's ``after_create_session``."""

from __future__ import annotations

import tensorflow as tf

from harness.runtime.chief_session import ChiefSessionCreator

v1 = tf.compat.v1


def run_chief(model_dir: str, calls: list[str]) -> None:
    graph = tf.Graph()
    with graph.as_default():
        step = v1.train.get_or_create_global_step()
        train_op = v1.assign_add(step, 1)
        scaffold = v1.train.Scaffold(init_fn=lambda scaffold, sess: calls.append("init_fn"))

        class Hook(v1.train.SessionRunHook):
            def after_create_session(self, session, coord):
                calls.append("after_create_session")

        creator = ChiefSessionCreator(
            scaffold,
            master="",
            config=None,
            checkpoint_dir=model_dir,
            join_live=False,
            on_ready=lambda: calls.append("on_ready"),
        )
        hooks = [
            Hook(),
            v1.train.StopAtStepHook(num_steps=2),
            v1.train.CheckpointSaverHook(model_dir, save_steps=1000, scaffold=scaffold),
        ]
        with v1.train.MonitoredSession(session_creator=creator, hooks=hooks) as sess:
            while not sess.should_stop():
                sess.run(train_op)


def test_on_ready_follows_init_fn_and_precedes_the_hooks(tmp_path):
    calls: list[str] = []
    run_chief(str(tmp_path), calls)
    assert calls == ["init_fn", "on_ready", "after_create_session"]


def test_a_restoring_chief_is_ready_once_the_restore_is_done(tmp_path):
    run_chief(str(tmp_path), [])
    calls: list[str] = []
    run_chief(str(tmp_path), calls)  # restores: no init_fn
    assert calls == ["on_ready", "after_create_session"]
