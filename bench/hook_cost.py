"""Hook cost: per-step time of the harness's own hooks on a trivial train_op.

One local ``MonitoredSession`` (no cluster), a train_op that only increments the global step,
``run([train_op, loss])`` as the harness's training loop does. Two sessions,
one without and one with the harness's hooks, run alternating blocks of steps; the median
difference in per-step time between neighbouring blocks is the hook cost. The hooks:

- ``ProgressHook`` (hooks/progress.py) reporting to a real ``EventWriter`` on ``os.devnull``,
  with its default report interval;
- ``StopSignalHook`` (hooks/stop.py) with an event that is never set during the run.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass


@dataclass
class HookCostRun:
    """One repetition: median seconds per step without and with the hooks, and the median of
    the paired block differences (the hook cost)."""

    without_secs: float
    with_secs: float
    cost_secs: float


class _Session:
    """A fresh graph with a trivial train_op and its MonitoredSession, with or without hooks."""

    def __init__(self, with_hooks: bool, devnull: object) -> None:
        import tensorflow as tf

        from harness.protocol import EventWriter
        from hooks.progress import ProgressHook
        from hooks.stop import StopSignalHook

        v1 = tf.compat.v1
        self.stop_event = threading.Event()
        with tf.Graph().as_default():
            global_step = v1.train.get_or_create_global_step()
            loss = tf.constant(0.5) * tf.cast(global_step, tf.float32)
            self.fetches = [global_step.assign_add(1).op, loss]
            hooks = []
            if with_hooks:
                report = EventWriter(devnull)  # type: ignore[arg-type]
                hooks = [ProgressHook(report, loss), StopSignalHook(self.stop_event)]
            self.session = v1.train.MonitoredSession(
                session_creator=v1.train.ChiefSessionCreator(), hooks=hooks
            )

    def time_block(self, steps: int) -> float:
        """Seconds per step over ``steps`` steps."""
        run, fetches = self.session.run, self.fetches
        start = time.perf_counter()
        for _ in range(steps):
            run(fetches)
        return (time.perf_counter() - start) / steps

    def close(self) -> None:
        self.session.close()
        self.stop_event.set()  # lets StopSignalHook's watcher thread end


def measure_once(steps: int, block: int = 250) -> HookCostRun:
    """``steps`` steps with and ``steps`` without the hooks, in alternating blocks.

    Both sessions are open at once and blocks alternate (the order flips every block), so
    that both see the same background load; the cost is the median over block pairs.
    """
    block = max(1, min(block, steps))
    with open(os.devnull, "w") as devnull:
        sessions = {False: _Session(False, devnull), True: _Session(True, devnull)}
        try:
            for session in sessions.values():
                session.time_block(min(50, block))  # warm up both call paths
            pairs = []
            for i in range(max(1, steps // block)):
                order = (False, True) if i % 2 == 0 else (True, False)
                times = {hooks: sessions[hooks].time_block(block) for hooks in order}
                pairs.append((times[False], times[True]))
        finally:
            for session in sessions.values():
                session.close()
    return HookCostRun(
        without_secs=statistics.median(p[0] for p in pairs),
        with_secs=statistics.median(p[1] for p in pairs),
        cost_secs=statistics.median(p[1] - p[0] for p in pairs),
    )


def measure(steps: int, repeats: int) -> list[HookCostRun]:
    """``repeats`` independent measurements of ``steps`` steps each way."""
    return [measure_once(steps) for _ in range(repeats)]
