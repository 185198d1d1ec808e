"""The wire between a task process and its supervisor: JSON lines, one per message.

Task -> supervisor: events, written to the task's stdout as one line each, starting with
``MARKER`` (``split_event`` also finds an event that another writer's partial line ended up
in front of). Every other stdout/stderr line is ordinary output (prefixed and logged by the
launcher).

Supervisor -> task: commands, written to the task's stdin as one JSON object per line.
A task whose stdin reaches EOF has lost its supervisor and exits at once: this is what
guarantees that no task outlives a killed ``harness run``.

Events (``{"event": NAME, ...}``):

- ``address``      {host, port, process_start, t}: the port this task holds for its TF server;
  when the process started and when it reported (wall clock, ``time.time()``).
- ``bind_failed``  {port, error}: the TF server could not bind; the supervisor re-runs the
  rendezvous with fresh ports (exit code ``EXIT_BIND_FAILED``).
- ``server_started`` {t, tf_import_secs}: the TF server is up (at ``t``; importing
  TensorFlow took ``tf_import_secs`` of the time since the cluster came).
- ``variables_ready`` {t}: the chief's variables hold their values (right after
  ``init_fn``, or the restore, or the join); sent before its hooks' ``after_create_session``
  (the first checkpoint), so that the workers are told (``ready``) without waiting for that.
- ``session_ready`` {global_step, t}: a trainer's session exists (chief: initialized,
  restored or joined the live variables; worker: the chief's init is visible).
  The times are for run.json's bring-up breakdown (``cluster.bringup``); every one is
  optional for the supervisor.
- ``progress``     {global_step, local_steps, loss}: sent about twice a second by trainers;
  once more with ``finishing: true`` when the training loop ended, before the final
  checkpoint and the session's close (the chief is then not "lingering").
- ``done``         {global_step, local_steps, loss}: the trainer's training loop ended normally.
- ``user_error``   {message, traceback}: model_fn/input_fn/ModelFnOps are wrong, a user hook
  raised, an op of the user's failed at the first step, the checkpoint does not fit the
  graph, a NaN loss; never retried (exit code ``EXIT_USER_ERROR``).
- ``error``        {message, traceback}: anything else; the failure policy decides.
  In both, ``message`` is one line: the exception's type and text and the user's frame.
- ``shard_request`` {epoch}, ``shards_done`` {shards: [[epoch, index], ...]},
  ``checkpoint_saving`` {step}, ``checkpoint_saved`` {step}: the shard queue of the job's
  ``data:`` (``harness.data_client``, ``cluster.shards``).

Commands (``{"cmd": NAME, ...}``):

- ``cluster``  {cluster}: the full TF cluster (``{"chief": ["host:port"], ...}``); the task
  binds the address listed for itself and starts its server.
- ``stop``     {}: finish now: trainers stop after the current step, variable hosts exit.
- ``ready``    {}: the chief reported ``variables_ready`` or ``session_ready`` (relayed to the
  workers): a worker
  waiting for the chief's variables tries to create its session at once instead of at its
  next poll (polling stays the fallback: a lost or early ``ready`` costs one poll interval).
- ``dump_stacks`` {}: print every thread's Python stack to stderr (stall diagnosis); a trainer
  then sends a ``progress`` event with the latest step it finished.
- ``shard`` {status: shard|wait|end, shard}: the answer to ``shard_request``;
  ``checkpoint_go`` {}: the answer to ``checkpoint_saving`` (the chief may save now).
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, TextIO

MARKER = "@@harness@@ "

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USER_ERROR = 2
EXIT_BIND_FAILED = 3
EXIT_SUPERVISOR_LOST = 4


def encode_event(event: str, **fields: Any) -> str:
    return MARKER + json.dumps({"event": event, **fields}, default=str)


def split_event(line: str) -> tuple[str, dict[str, Any] | None]:
    """Split an output line into ordinary text and the event it carries (None if none).

    The task's stderr shares the pipe with its stdout, so another thread's partial line
    (say, "Exception in thread ...") can end up in front of an event on the same line; the
    event is found wherever its marker starts.
    """
    start = line.find(MARKER)
    if start < 0:
        return line, None
    try:
        message = json.loads(line[start + len(MARKER) :])
    except json.JSONDecodeError:
        return line, None
    if not isinstance(message, dict) or "event" not in message:
        return line, None
    return line[:start], message


def encode_command(cmd: str, **fields: Any) -> str:
    return json.dumps({"cmd": cmd, **fields}) + "\n"


def decode_command(line: str) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict) or "cmd" not in message:
        raise ValueError(f"not a supervisor command: {line!r}")
    return message


class EventWriter:
    """Writes events to the task's real stdout, whatever the user code did to sys.stdout."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.__stdout__
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields: Any) -> None:
        """Write one event; safe to call from several threads."""
        # One write, starting on a fresh line: a pipe write of this size is atomic, so no
        # other output can cut the event in two.
        line = "\n" + encode_event(event, **fields) + "\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()
