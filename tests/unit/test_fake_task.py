"""bench/fake_task.py against harness.protocol: the simulated scale cannot drift from the wire.

The fake task runs as the simulated scale runs it (``python -I -S``, a real process); its
output goes through the parser the supervisor's inbox uses (``harness.protocol.split_event``,
via ``cluster.handles.Inbox.line``) and it is driven by ``harness.protocol.encode_command``
lines. The fields of its events are checked against the ``report(...)`` calls of
``harness.task`` (read from the source), so a field the real task adds shows up here.
"""

from __future__ import annotations

import ast
import io
import queue
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import fake_task
from cluster.console import Console
from cluster.handles import Inbox
from harness import protocol

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECS = 60.0  # a generous bound for one line on a loaded machine (never a measured time)


class FakeTaskProcess:
    """The fake task in a real process; its stdout lines are read on a thread into a queue."""

    def __init__(self, role: str, index: int) -> None:
        command = [sys.executable, "-I", "-S", fake_task.__file__, "--role", role]
        self.proc = subprocess.Popen(
            [*command, "--index", str(index)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def next_event(self, inbox: Inbox) -> dict:
        """The next event, parsed by the supervisor's inbox (blank lines are skipped)."""
        handle = SimpleNamespace(plan=SimpleNamespace(key="task:0"))
        while True:
            line = self.lines.get(timeout=WAIT_SECS)
            assert line is not None, "the fake task closed its stdout before the next event"
            inbox.line(handle, line.rstrip("\n"))
            message = inbox.get(timeout=0)
            if message is not None:
                assert message.kind == "event"
                return message.data

    def wait(self) -> int:
        return self.proc.wait(timeout=WAIT_SECS)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    stream = io.StringIO()
    return Inbox(Console(str(tmp_path / "logs"), 10, stream=stream, show_progress=False))


@pytest.fixture
def spawn():
    started: list[FakeTaskProcess] = []

    def start(role: str, index: int) -> FakeTaskProcess:
        started.append(FakeTaskProcess(role, index))
        return started[-1]

    yield start
    for task in started:
        task.kill()


CLUSTER = {"chief": ["127.0.0.1:20000"], "worker": ["127.0.0.1:22000"], "ps": ["127.0.0.1:21000"]}


def test_the_constants_are_the_protocols() -> None:
    assert fake_task.MARKER == protocol.MARKER
    assert fake_task.EXIT_OK == protocol.EXIT_OK
    assert fake_task.EXIT_SUPERVISOR_LOST == protocol.EXIT_SUPERVISOR_LOST


def test_an_event_line_is_what_the_event_writer_writes() -> None:
    stream = io.StringIO()
    protocol.EventWriter(stream)("progress", global_step=3, local_steps=2, loss=1.5)
    assert fake_task.event_line("progress", global_step=3, local_steps=2, loss=1.5) == (
        stream.getvalue()
    )


def test_a_worker_goes_through_the_whole_protocol(spawn, inbox: Inbox) -> None:
    task = spawn("worker", 3)
    address = task.next_event(inbox)
    assert address["event"] == "address"
    assert (address["host"], address["port"]) == ("127.0.0.1", fake_task.fake_port("worker", 3))
    assert address["process_start"] <= address["t"]
    task.send(protocol.encode_command("cluster", cluster=CLUSTER))
    started = task.next_event(inbox)
    assert started["event"] == "server_started" and started["tf_import_secs"] == 0
    task.send(protocol.encode_command("ready"))
    task.send(protocol.encode_command("dump_stacks"))  # a command it has no use for: ignored
    assert task.next_event(inbox)["event"] == "session_ready"
    first, second = task.next_event(inbox), task.next_event(inbox)
    assert [first["event"], second["event"]] == ["progress", "progress"]
    assert (first["local_steps"], second["local_steps"]) == (1, 2)
    assert second["loss"] >= first["loss"] > 0  # the time it was written (scale_sim's latency)
    task.send(protocol.encode_command("stop"))
    event = task.next_event(inbox)
    while event["event"] == "progress":  # one may have been on its way
        event = task.next_event(inbox)
    assert event["event"] == "done" and event["local_steps"] >= 2
    assert task.wait() == protocol.EXIT_OK


def test_a_ps_serves_until_stop(spawn, inbox: Inbox) -> None:
    task = spawn("ps", 1)
    assert task.next_event(inbox)["port"] == fake_task.fake_port("ps", 1)
    task.send(protocol.encode_command("cluster", cluster=CLUSTER))
    assert task.next_event(inbox)["event"] == "server_started"
    task.send(protocol.encode_command("stop"))
    assert task.wait() == protocol.EXIT_OK


def test_stdin_eof_ends_the_task_as_a_lost_supervisor(spawn, inbox: Inbox) -> None:
    task = spawn("chief", 0)
    assert task.next_event(inbox)["event"] == "address"
    assert task.proc.stdin is not None
    task.proc.stdin.close()
    assert task.wait() == protocol.EXIT_SUPERVISOR_LOST


def test_bad_arguments_name_the_usage() -> None:
    done = subprocess.run(
        [sys.executable, "-I", "-S", fake_task.__file__, "--role", "boss", "--index", "1"],
        capture_output=True,
        text=True,
        timeout=WAIT_SECS,
    )
    assert done.returncode != 0 and "usage" in done.stderr and "--role" in done.stderr


def test_ports_differ_for_every_task() -> None:
    ports = [fake_task.fake_port(r, i) for r in ("chief", "worker", "ps") for i in range(1000)]
    assert len(set(ports)) == len(ports)


def _reported_fields(path: Path) -> dict[str, set[str]]:
    """``{event: keyword names}`` of every ``report("event", ...)`` call in ``path``."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "report"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.setdefault(node.args[0].value, set()).update(k.arg for k in node.keywords)
    return found


def test_the_fake_events_carry_every_field_the_real_task_reports(spawn, inbox: Inbox) -> None:
    real: dict[str, set[str]] = {}
    for path in (ROOT / "harness" / "task.py", ROOT / "harness" / "runtime" / "trainer.py"):
        for event, fields in _reported_fields(path).items():
            real.setdefault(event, set()).update(fields)
    assert {"address", "server_started", "done"} <= set(real)  # the source reading works
    chief = spawn("chief", 0)
    seen = {"address": chief.next_event(inbox)}
    chief.send(protocol.encode_command("cluster", cluster={"chief": ["127.0.0.1:20000"]}))
    while "progress" not in seen:
        event = chief.next_event(inbox)
        seen[event["event"]] = event
    chief.send(protocol.encode_command("stop"))
    while "done" not in seen:
        event = chief.next_event(inbox)
        seen[event["event"]] = event
    assert chief.wait() == protocol.EXIT_OK
    for event in ("address", "server_started", "done"):
        assert real[event] <= set(seen[event]) - {"event"}, event
