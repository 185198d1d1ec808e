"""BoundedClose: a session close that hangs after every hook ended is not waited for; one
that fails, or a loop that failed, behaves as the plain ``with`` would."""

from __future__ import annotations

import threading
import time

import pytest
import tensorflow as tf

from harness.runtime.closing import BoundedClose, EndMarker


class FakeSession:
    """A MonitoredSession's ``with`` protocol: exit runs the hooks' end(), then closes."""

    def __init__(self, marker: EndMarker, close_secs: float = 0.0, error: Exception | None = None):
        self.marker = marker
        self.close_secs = close_secs
        self.error = error
        self.exits: list[type | None] = []
        self.graph_in_exit: tf.Graph | None = None
        self.closed = threading.Event()

    def __enter__(self) -> FakeSession:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.exits.append(exc_type)
        self.graph_in_exit = tf.compat.v1.get_default_graph()
        if exc_type is None:
            self.marker.end(None)
        time.sleep(self.close_secs)
        self.closed.set()
        if self.error is not None:
            raise self.error
        return exc_type is None


def test_a_prompt_close_is_waited_for_inside_the_trainers_graph():
    marker, graph = EndMarker(), tf.Graph()
    session = FakeSession(marker, close_secs=0.1)
    bounded = BoundedClose(session, marker, graph, after_end_secs=5.0)
    with bounded:
        pass
    assert session.closed.is_set() and not bounded.abandoned
    assert session.graph_in_exit is graph


def test_a_close_that_hangs_after_the_hooks_ended_is_left_behind():
    marker = EndMarker()
    session = FakeSession(marker, close_secs=30.0)
    bounded = BoundedClose(session, marker, tf.Graph(), after_end_secs=0.2)
    began = time.monotonic()
    with bounded:
        pass
    assert bounded.abandoned and marker.ended.is_set()
    assert not session.closed.is_set()
    assert time.monotonic() - began < 20.0


def test_an_error_of_the_close_reaches_the_caller():
    marker = EndMarker()
    session = FakeSession(marker, error=RuntimeError("queue closed"))
    with pytest.raises(RuntimeError, match="queue closed"):
        with BoundedClose(session, marker, tf.Graph(), after_end_secs=5.0):
            pass


def test_an_error_of_the_loop_closes_the_session_in_the_callers_thread():
    marker = EndMarker()
    session = FakeSession(marker)
    with pytest.raises(ValueError, match="bad step"):
        with BoundedClose(session, marker, tf.Graph()):
            raise ValueError("bad step")
    assert session.exits == [ValueError]
    assert not marker.ended.is_set()  # a failed loop runs no hook's end()


def test_the_marker_is_the_last_hook_of_a_real_session():
    """In a real MonitoredSession the marker's end() comes after every other hook's."""
    order: list[str] = []

    class Recording(tf.compat.v1.train.SessionRunHook):
        def end(self, session):
            order.append("user hook")

    class Marker(EndMarker):
        def end(self, session):
            order.append("marker")
            super().end(session)

    graph = tf.Graph()
    with graph.as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        train_op = tf.compat.v1.assign_add(step, 1)
        marker = Marker()
        session = tf.compat.v1.train.MonitoredSession(
            hooks=[tf.compat.v1.train.StopAtStepHook(last_step=3), Recording(), marker]
        )
        bounded = BoundedClose(session, marker, graph)
        with bounded as sess:
            while not sess.should_stop():
                sess.run(train_op)
    assert order == ["user hook", "marker"] and not bounded.abandoned
