"""harness.runtime.join: a worker's wait for the chief's variables (no TensorFlow)."""

from __future__ import annotations

import threading
import time

import pytest

from harness.runtime.join import ReadyTimeout, wait_for_ready


def test_a_ready_event_makes_the_next_try_immediate():
    ready = threading.Event()
    tries: list[float] = []

    def try_once():
        tries.append(time.monotonic())
        if len(tries) == 1:
            threading.Timer(0.05, ready.set).start()  # the chief becomes ready meanwhile
            return None
        return "session"

    start = time.monotonic()
    assert wait_for_ready(try_once, ready, poll_secs=30.0, max_wait_secs=60.0) == "session"
    assert time.monotonic() - start < 5.0, "woken by the event, not by the 30 s poll"
    assert not ready.is_set(), "a wake-up clears the event"


def test_without_a_ready_it_polls_and_a_used_ready_is_not_a_busy_loop():
    ready = threading.Event()
    ready.set()  # an early or stale ready: one immediate retry, then the poll again
    tries: list[float] = []

    def try_once():
        tries.append(time.monotonic())
        return "session" if len(tries) == 4 else None

    assert wait_for_ready(try_once, ready, poll_secs=0.4, max_wait_secs=10.0) == "session"
    gaps = [b - a for a, b in zip(tries, tries[1:], strict=False)]
    assert gaps[0] < 0.3 and all(g >= 0.39 for g in gaps[1:])


def test_no_event_is_a_plain_poll():
    tries: list[int] = []

    def try_once():
        tries.append(1)
        return None if len(tries) < 3 else 42

    assert wait_for_ready(try_once, None, poll_secs=0.01, max_wait_secs=5.0) == 42


def test_it_gives_up_once_the_next_wait_would_pass_max_wait_secs():
    now = [0.0]

    def try_once():
        now[0] += 1.0  # each try takes a second of the fake clock
        return None

    ready = threading.Event()
    with pytest.raises(ReadyTimeout):
        wait_for_ready(try_once, ready, 0.001, max_wait_secs=3.5, clock=lambda: now[0])
    assert now[0] == 4.0
