"""A stand-in task for the simulated scale figure: the task protocol without TensorFlow.

Run as ``python -I -S bench/fake_task.py --role worker --index 3``: the standard library only
(no ``site``, no ``harness`` import), so a thousand of them fit in this machine's memory. It
speaks ``harness.protocol`` as ``harness.task`` does (``tests/unit/test_fake_task.py`` checks
its lines against ``harness.protocol``'s parser, so the two cannot drift):

1. ``address`` {host, port, process_start, t}: a port unique to the role and index, never
   bound (no TF server is started);
2. on the ``cluster`` command: ``server_started`` {t, tf_import_secs: 0};
3. ps: wait for ``stop``, exit 0. Chief: ``session_ready``; a worker first waits for the
   ``ready`` command (``READY_POLL_SECS`` at most, as a real worker polls), then reports
   ``session_ready``. A trainer then sends ``progress`` at once and every
   ``PROGRESS_SECS`` (one "step" each), until ``stop``, when it sends ``done`` and exits 0.

Every trainer event carries ``loss`` = the wall-clock time (``time.time()``) at which it was
written, which the supervisor passes on unchanged in ``Snapshot.loss``: that is how
``bench.scale_sim``'s observer measures the event latency with no hook in the supervisor.
EOF on stdin (the supervisor is gone) ends the process at once with code 4, as in
``harness.task``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

MARKER = "@@harness@@ "  # harness.protocol.MARKER (the unit test checks they are equal)
EXIT_OK = 0
EXIT_SUPERVISOR_LOST = 4
PROGRESS_SECS = 0.5
READY_POLL_SECS = 2.0
PORT_BASE = {"chief": 20000, "ps": 21000, "worker": 22000, "evaluator": 0}

_write_lock = threading.Lock()


def event_line(event: str, **fields: object) -> str:
    """One event as ``harness.protocol.EventWriter`` writes it: on a fresh line, one write."""
    return "\n" + MARKER + json.dumps({"event": event, **fields}) + "\n"


def emit(event: str, **fields: object) -> None:
    line = event_line(event, **fields)
    with _write_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def fake_port(role: str, index: int) -> int:
    """The port this task reports: distinct for every role and index (ps up to 1,000)."""
    return PORT_BASE[role] + index if role != "evaluator" else 0


class Commands:
    """Reads the supervisor's commands (``harness.protocol.encode_command`` lines)."""

    def __init__(self) -> None:
        self.cluster = threading.Event()
        self.ready = threading.Event()
        self.stop = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            if not line.strip():
                continue
            cmd = json.loads(line).get("cmd")
            if cmd in ("cluster", "ready", "stop"):
                getattr(self, cmd).set()
        sys.stdout.flush()
        os._exit(EXIT_SUPERVISOR_LOST)


def train(role: str, commands: Commands) -> None:
    """A trainer's life after its server started: session, progress, done on ``stop``."""
    if role == "worker":
        commands.ready.wait(READY_POLL_SECS)
    emit("session_ready", global_step=0, t=time.time(), loss=time.time())
    steps = 0
    while True:
        steps += 1
        emit("progress", global_step=steps, local_steps=steps, loss=time.time())
        if commands.stop.wait(PROGRESS_SECS):
            break
    emit("done", global_step=steps, local_steps=steps, loss=time.time())


def run(role: str, index: int) -> int:
    """The whole task; returns its exit code."""
    commands = Commands()
    start = time.time()
    emit("address", host="127.0.0.1", port=fake_port(role, index), process_start=start, t=start)
    commands.cluster.wait()
    emit("server_started", t=time.time(), tf_import_secs=0.0)
    if role in ("chief", "worker"):
        train(role, commands)
    else:
        commands.stop.wait()
    return EXIT_OK


def parse_args(argv: list[str]) -> tuple[str, int]:
    """``--role R --index I`` (as ``harness.task``); exits with a usage line otherwise."""
    args = dict(zip(argv[::2], argv[1::2], strict=False))
    role, index = args.get("--role"), args.get("--index", "")
    if role not in PORT_BASE or not index.isdigit():
        sys.exit(f"usage: {sys.argv[0]} --role {{{','.join(PORT_BASE)}}} --index N (got {argv})")
    return role, int(index)


def main() -> None:
    role, index = parse_args(sys.argv[1:])
    code = run(role, index)
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
