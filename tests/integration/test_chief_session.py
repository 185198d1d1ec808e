"""The chief's session creator against a real ps server in this process.

The variables live on ``/job:ps/task:0`` of an in-process server, which keeps them between
sessions as a ps task does, so a second creator is a restarted chief of the same cluster,
and a new server is a restarted ps (a fresh cluster).
"""

from __future__ import annotations

import socket

import pytest
import tensorflow as tf

from harness.runtime.chief_session import ChiefSessionCreator, ChiefStart

v1 = tf.compat.v1

pytestmark = pytest.mark.timeout(120)


def _ps_server() -> tf.distribute.Server:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cluster = tf.train.ClusterSpec({"ps": [f"127.0.0.1:{port}"]})
    return tf.distribute.Server(cluster, job_name="ps", task_index=0, start=True)


class Chief:
    """One chief incarnation: a fresh graph with the same variables, on ``server``."""

    def __init__(self, server, model_dir, join_live: bool):
        self.init_fn_calls = 0
        self.graph = tf.Graph()
        with self.graph.as_default(), tf.device("/job:ps/task:0"):
            self.global_step = v1.train.get_or_create_global_step()
            self.w = v1.get_variable("w", [], initializer=v1.zeros_initializer())
            self.local = v1.get_variable(
                "local", [], initializer=v1.ones_initializer(), collections=["local_variables"]
            )
            self.step = tf.group(v1.assign_add(self.global_step, 1), v1.assign_add(self.w, 1.0))
            set_w = v1.assign(self.w, 100.0)

            def init_fn(scaffold, session):
                self.init_fn_calls += 1
                session.run(set_w)

            self.scaffold = v1.train.Scaffold(
                init_fn=init_fn, saver=v1.train.Saver(sharded=True, max_to_keep=2)
            )
            self.creator = ChiefSessionCreator(
                self.scaffold, server.target, None, str(model_dir), join_live=join_live
            )

    def open(self):
        with self.graph.as_default():
            return self.creator.create_session()

    def train(self, sess, steps: int) -> None:
        for _ in range(steps):
            sess.run(self.step)

    def save(self, sess, model_dir) -> None:
        step = int(sess.run(self.global_step))
        with self.graph.as_default():
            self.scaffold.saver.save(sess, str(model_dir / "model.ckpt"), global_step=step)


def _values(chief, sess):
    return tuple(float(v) for v in sess.run([chief.global_step, chief.w, chief.local]))


def test_a_restarted_chief_joins_the_live_variables(tmp_path):
    server = _ps_server()
    first = Chief(server, tmp_path, join_live=True)
    sess = first.open()
    assert first.creator.last_start is ChiefStart.PREPARE and first.init_fn_calls == 1
    first.train(sess, 3)
    first.save(sess, tmp_path)  # checkpoint at step 3
    first.train(sess, 4)  # step 7, w 107: what the workers made since
    sess.close()

    second = Chief(server, tmp_path, join_live=True)
    sess = second.open()
    assert second.creator.last_start is ChiefStart.JOIN
    assert second.init_fn_calls == 0
    assert _values(second, sess) == (7.0, 107.0, 1.0)  # local_init_op ran
    # The saver knows the checkpoints already there: keep_checkpoint_max still holds.
    assert second.scaffold.saver.last_checkpoints == [str(tmp_path / "model.ckpt-3")]


def test_with_checkpoint_mode_a_restarted_chief_rolls_back(tmp_path):
    server = _ps_server()
    first = Chief(server, tmp_path, join_live=False)
    sess = first.open()
    first.train(sess, 3)
    first.save(sess, tmp_path)
    first.train(sess, 4)
    sess.close()

    second = Chief(server, tmp_path, join_live=False)
    sess = second.open()
    assert second.creator.last_start is ChiefStart.PREPARE
    assert second.init_fn_calls == 0  # restored
    assert _values(second, sess) == (3.0, 103.0, 1.0)


def test_a_fresh_ps_with_a_checkpoint_is_restored_not_joined(tmp_path):
    old = _ps_server()
    first = Chief(old, tmp_path, join_live=True)
    sess = first.open()
    first.train(sess, 3)
    first.save(sess, tmp_path)
    first.train(sess, 4)
    sess.close()

    fresh = Chief(_ps_server(), tmp_path, join_live=True)  # the cluster restarted
    sess = fresh.open()
    assert fresh.creator.last_start is ChiefStart.PREPARE
    assert fresh.init_fn_calls == 0
    assert _values(fresh, sess) == (3.0, 103.0, 1.0)


def test_the_first_start_initializes(tmp_path):
    chief = Chief(_ps_server(), tmp_path, join_live=True)
    sess = chief.open()
    assert chief.creator.last_start is ChiefStart.PREPARE
    assert chief.init_fn_calls == 1
    assert _values(chief, sess) == (0.0, 100.0, 1.0)
