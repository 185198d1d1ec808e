"""harness.protocol: the task <-> supervisor wire."""

from __future__ import annotations

import io

import pytest

from harness import protocol


def test_event_round_trip_through_the_writer():
    stream = io.StringIO()
    protocol.EventWriter(stream)("progress", global_step=7, loss=0.5)
    lines = [line for line in stream.getvalue().splitlines() if line]
    assert len(lines) == 1
    assert protocol.split_event(lines[0]) == (
        "",
        {"event": "progress", "global_step": 7, "loss": 0.5},
    )


def test_an_event_behind_another_writers_partial_line_is_still_found():
    line = "Exception in thread " + protocol.encode_event("done", global_step=30)
    text, event = protocol.split_event(line)
    assert text == "Exception in thread "
    assert event == {"event": "done", "global_step": 30}


@pytest.mark.parametrize(
    "line", ["plain output", protocol.MARKER + "{not json", protocol.MARKER + '["no", "event"]']
)
def test_ordinary_and_malformed_lines_are_text(line):
    assert protocol.split_event(line) == (line, None)


def test_commands():
    assert protocol.decode_command(protocol.encode_command("stop")) == {"cmd": "stop"}
    with pytest.raises(ValueError, match="not a supervisor command"):
        protocol.decode_command('{"nope": 1}')
