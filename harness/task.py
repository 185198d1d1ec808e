"""Run one task of the cluster: ``python -m harness.task --role worker --index 1``.

The job arrives as JSON in the ``HARNESS_JOB`` environment variable; the supervisor talks to
the task over stdin/stdout (see ``harness.protocol``). The same module runs under every
launcher (a local process, or a process owned by a Ray actor), so no role logic lives anywhere
else.

Lifecycle of a task:

1. hold a TCP port outside the kernel's ephemeral range and report ``address``;
2. receive the whole cluster, set ``TF_CONFIG``, release the port and start the
   ``tf.distribute.Server`` on it at once (``bind_failed`` if that fails, and the supervisor
   re-runs the rendezvous);
3. by role:
   - ps: host variables until the ``stop`` command;
   - evaluator (optional; outside the TF cluster as in TF, so no port and no server):
     evaluate each new checkpoint until ``stop``, then the final one (``harness.runtime.evaluation``);
   - chief / worker: build the TRAIN graph (``harness.runtime.graph``), open the MonitoredSession
     (``harness.runtime.session``), loop ``run([train_op, loss])`` until it should stop, report
     ``done``; the chief of a cluster without ps then keeps hosting the variables until
     ``stop``.

Exit codes are in ``harness.protocol``. The process ends with ``os._exit`` so that gRPC server
threads can never keep it alive.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import queue
import random
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from harness import protocol
from harness.job import JobSpec, JobSpecError

# Fault injection for tests: "bind:<role>:<index>:<marker file>" makes that task's TF server
# fail to bind once (the marker file records that it happened).
FAULT_INJECT_ENV = "HARNESS_FAULT_INJECT"


# ---- ports -------------------------------------------------------------------------------


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def hold_port(host: str = "0.0.0.0", attempts: int = 200) -> socket.socket:
    """Bind and listen on a random port below the ephemeral range; the caller keeps it held.

    Ports the kernel hands out for outgoing connections come from the ephemeral range, so a
    port picked below it is not taken by some unrelated connect() between our release and the
    TF server's bind.
    """
    low, _ = _ephemeral_range()
    candidates = (10000, max(10001, min(low, 32768)))
    for _ in range(attempts):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((host, random.randrange(*candidates)))
            sock.listen(1)
            return sock
        except OSError:
            sock.close()
    raise RuntimeError(f"no free TCP port found in {candidates} after {attempts} attempts")


# ---- supervisor commands -----------------------------------------------------------------


class Commands:
    """Reads supervisor commands from stdin on a daemon thread.

    ``cluster`` commands are queued for ``wait_for_cluster``; ``stop`` sets ``stop_event``;
    ``dump_stacks`` prints every thread's stack to stderr, then calls each of
    ``dump_listeners`` (a trainer reports its latest step there); EOF (the supervisor is gone)
    ends the process immediately.
    """

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stdin
        self.stop_event = threading.Event()
        self._clusters: queue.Queue[dict[str, list[str]]] = queue.Queue()
        self.dump_listeners: list[Callable[[], None]] = []
        threading.Thread(target=self._read, name="harness-commands", daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            if not line.strip():
                continue
            command = protocol.decode_command(line)
            if command["cmd"] == "cluster":
                self._clusters.put(command["cluster"])
            elif command["cmd"] == "stop":
                self.stop_event.set()
            elif command["cmd"] == "dump_stacks":
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
                sys.stderr.flush()
                for listener in list(self.dump_listeners):
                    listener()
        _exit(protocol.EXIT_SUPERVISOR_LOST)

    def wait_for_cluster(self) -> dict[str, list[str]]:
        return self._clusters.get()


# ---- the task ----------------------------------------------------------------------------


def run_task(job: JobSpec, role: str, index: int, report: Any, commands: Commands) -> int:
    """Run the task to the end; returns the exit code."""
    node_ip = os.environ.get("HARNESS_NODE_IP", "127.0.0.1")
    if role == "evaluator":
        return run_evaluator_task(job, node_ip, report, commands)
    holder = hold_port()
    report("address", host=node_ip, port=holder.getsockname()[1])
    cluster = commands.wait_for_cluster()
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": cluster, "task": {"type": role, "index": index}}
    )
    holder.close()
    server = _start_server(job, role, index, cluster, report)
    if server is None:
        return protocol.EXIT_BIND_FAILED
    report("server_started")
    if role == "ps":
        commands.stop_event.wait()
        return protocol.EXIT_OK
    from harness.runtime.trainer import train  # imports TensorFlow graph code only on trainers

    finish = _export_on_finish(job) if job.train.export_on_finish else None
    train(job, report, commands.stop_event, commands.dump_listeners, after_training=finish)
    if role == "chief" and job.cluster.ps == 0:
        commands.stop_event.wait()  # the chief hosts the variables until every worker is done
    return protocol.EXIT_OK


def run_evaluator_task(job: JobSpec, node_ip: str, report: Any, commands: Commands) -> int:
    """The evaluator is outside the TF cluster (as in TF): no port, no server."""
    report("address", host=node_ip, port=0)
    cluster = commands.wait_for_cluster()
    tf_config = {"cluster": cluster, "task": {"type": "evaluator", "index": 0}}
    os.environ["TF_CONFIG"] = json.dumps(tf_config)
    report("server_started")
    from harness.runtime.evaluation import run_evaluator

    run_evaluator(job, report, commands.stop_event)
    return protocol.EXIT_OK


def _export_on_finish(job: JobSpec) -> Any:
    """The chief's ``train.export_on_finish`` step, run after its training loop."""

    def export() -> None:
        from harness.errors import UserCodeError
        from harness.export.saved_model import ExportError, export_on_finish

        try:
            path = export_on_finish(job)
        except ExportError as exc:  # a configuration problem: retrying cannot help
            raise UserCodeError(f"train.export_on_finish: {exc}") from exc
        print(f"exported a SavedModel to {path}", flush=True)

    return export


def _start_server(job: JobSpec, role: str, index: int, cluster: dict, report: Any) -> Any:
    import tensorflow as tf

    from harness.config import RunConfig

    config = RunConfig.from_tf_config(gpu_memory_growth=job.resources.gpu_memory_growth)
    blocker = _injected_bind_conflict(role, index, cluster)
    try:
        return tf.distribute.Server(
            tf.train.ClusterSpec(cluster),
            job_name=role,
            task_index=index,
            config=config.session_config,
            start=True,
        )
    except (
        Exception
    ) as exc:  # TF raises UnknownError/InternalError for "Could not start gRPC server"
        report("bind_failed", port=cluster[role][index], error=str(exc).strip().splitlines()[-1])
        return None
    finally:
        if blocker is not None:
            blocker.close()


def _injected_bind_conflict(role: str, index: int, cluster: dict) -> socket.socket | None:
    """Fault injection for tests: occupy our own port so the server's bind really fails."""
    kind, _, rest = os.environ.get(FAULT_INJECT_ENV, "").partition(":")
    target, _, marker = rest.rpartition(":")
    if kind != "bind" or target != f"{role}:{index}" or os.path.exists(marker):
        return None
    open(marker, "w").close()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("0.0.0.0", int(cluster[role][index].rsplit(":", 1)[1])))
    sock.listen(1)
    return sock


def _exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.task", description=__doc__)
    parser.add_argument("--role", required=True, choices=["chief", "worker", "ps", "evaluator"])
    parser.add_argument("--index", required=True, type=int)
    args = parser.parse_args(argv)
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    report = protocol.EventWriter()
    commands = Commands()
    code = protocol.EXIT_ERROR
    try:
        job = JobSpec.from_json(os.environ["HARNESS_JOB"])
        code = run_task(job, args.role, args.index, report, commands)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the supervisor
        code = _report_failure(exc, report)
    _exit(code)


def _report_failure(exc: BaseException, report: Any) -> int:
    """Report ``exc`` as ``user_error`` (exit 2) or ``error`` (exit 1). The event's message is
    ``harness.errors.describe(exc)``: type, text and the user's frame on one line."""
    from harness.errors import describe
    from harness.runtime.trainer import is_user_error

    tb = traceback.format_exc()
    sys.stderr.write(tb)
    message = describe(exc)
    if isinstance(exc, JobSpecError) or is_user_error(exc):
        report("user_error", message=message, traceback=tb)
        return protocol.EXIT_USER_ERROR
    report("error", message=message, traceback=tb)
    return protocol.EXIT_ERROR


if __name__ == "__main__":
    main()
