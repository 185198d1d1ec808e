"""How a worker waits for the chief's variables: woken by the supervisor, polling as fallback.

The chief reports ``session_ready`` once its variables are initialized or restored; the
supervisor relays it to the workers as the ``ready`` command, which sets the worker's
``ready`` event (``harness.task.Commands``). ``wait_for_ready`` tries to create the session,
and between tries waits on that event with the poll interval as timeout: a relayed ``ready``
makes the next try immediate, and without one (a lost command; a restarted worker joining a
chief that reported long ago; no supervisor in a test) it is the plain 0.2 s poll.

No TensorFlow here: ``try_once`` is the session creator's single attempt
(``harness.runtime.session.FastWorkerSessionCreator``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ReadyTimeout(Exception):
    """``max_wait_secs`` passed and no try succeeded."""


def wait_for_ready(
    try_once: Callable[[], T | None],
    ready: threading.Event | None,
    poll_secs: float,
    max_wait_secs: float,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``try_once`` until it returns something other than None; returns that.

    Between tries it waits up to ``poll_secs`` on ``ready`` (a plain sleep when None); a
    wake-up by ``ready`` clears the event, so one ``ready`` buys one immediate retry and the
    poll interval applies again after it. Raises ``ReadyTimeout`` once the next wait would
    end after ``max_wait_secs`` from the first try (TF's ``SessionManager`` rule).
    """
    deadline = clock() + max_wait_secs
    while True:
        result = try_once()
        if result is not None:
            return result
        if clock() + poll_secs > deadline:
            raise ReadyTimeout
        if ready is None:
            time.sleep(poll_secs)
        elif ready.wait(timeout=poll_secs):
            ready.clear()
