"""Run one task of the cluster: ``python -m harness.task --role worker --index 1``.

The job arrives as JSON in the ``HARNESS_JOB`` environment variable; the supervisor talks to
the task over stdin/stdout (see ``harness.protocol``). The same module runs under every
launcher (a local process, or a process owned by a Ray actor), so no role logic lives anywhere
else.

``main`` is the process's edge: it reads the command line and the environment once
(``HARNESS_JOB``; ``HARNESS_NODE_IP``, the address to report, 127.0.0.1 by default;
``HARNESS_FAULT_INJECT``, a fault to inject for tests, ``harness.faults``) into a ``TaskSpec``
(``harness.identity``) and the fault, and everything below gets them as arguments: a bind
fault goes to the server, a kill fault wraps the task's ``report``.
The port is held by ``harness.runtime.ports``, the server started by ``harness.runtime.server``.
``python -m harness.task --spare`` is a warm spare (``harness.runtime.spare``): it imports
first, then ``become`` reads which task it is and sets the ``IDENTITY_ENV`` values, and
``run_main`` runs it as it runs a task started with ``--role/--index``.

Lifecycle of a task:

1. start importing TensorFlow on a thread (``TensorFlowImport``), hold a TCP port outside
   the kernel's ephemeral range and report ``address``;
2. receive the whole cluster (``join_cluster``: the ``TaskSpec`` gets it, and ``TF_CONFIG`` is
   set once, for the user's code and TensorFlow), wait for the import, release the port and
   start the ``tf.distribute.Server`` on it at once (``bind_failed`` if that fails, and the
   supervisor re-runs the rendezvous);
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
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from harness import data_client, protocol
from harness.faults import FAULT_INJECT_ENV, BindFault, KillFault, parse_fault
from harness.identity import DEFAULT_NODE_IP, ROLES, TaskId, TaskSpec
from harness.job import JobSpec, JobSpecError
from harness.runtime import spare
from harness.runtime.ports import hold_port
from harness.runtime.server import start_server

# ---- supervisor commands -----------------------------------------------------------------


class Commands:
    """Reads supervisor commands from stdin on a daemon thread.

    ``cluster`` commands are queued for ``wait_for_cluster``; ``stop`` sets ``stop_event``;
    ``ready`` (the chief's variables are ready) sets ``ready_event``, on which a waiting
    worker's session creator wakes up (``harness.runtime.join``); ``dump_stacks`` prints every
    thread's stack to stderr, then calls each of ``dump_listeners`` (a trainer reports its
    latest step there); ``shard`` and ``checkpoint_go`` go to ``harness.data_client``; EOF
    (the supervisor is gone)
    ends the process immediately.
    """

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream or sys.stdin
        self.stop_event = threading.Event()
        self.ready_event = threading.Event()
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
            elif command["cmd"] == "ready":
                self.ready_event.set()
            elif command["cmd"] in data_client.COMMANDS:
                data_client.deliver(command)
            elif command["cmd"] == "dump_stacks":
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
                sys.stderr.flush()
                for listener in list(self.dump_listeners):
                    listener()
        _exit(protocol.EXIT_SUPERVISOR_LOST)

    def wait_for_cluster(self) -> dict[str, list[str]]:
        return self._clusters.get()


# ---- the task ----------------------------------------------------------------------------


def run_task(
    task: TaskSpec, report: Any, commands: Commands, fault: BindFault | None = None
) -> int:
    """Run the task to the end; returns the exit code.

    Events carry the wall-clock times of the bring-up (``cluster.bringup``): ``address`` the
    process's start and ``t``; ``server_started`` ``t`` and ``tf_import_secs``.
    """
    if task.role == "evaluator":
        return run_evaluator_task(task, report, commands)
    tensorflow = TensorFlowImport()  # beside the rendezvous, not after it
    holder = hold_port()
    port = holder.getsockname()[1]
    report("address", host=task.node_ip, port=port, process_start=process_start(), t=time.time())
    task = join_cluster(task, commands.wait_for_cluster())
    tf_import_secs = tensorflow.wait()  # before the port is released, not after
    holder.close()
    server = start_server(task, report, fault)
    if server is None:
        return protocol.EXIT_BIND_FAILED
    report("server_started", t=time.time(), tf_import_secs=tf_import_secs)
    if task.role == "ps":
        commands.stop_event.wait()
        return protocol.EXIT_OK
    from harness.runtime.trainer import train  # imports TensorFlow graph code only on trainers

    job = task.job
    finish = _export_on_finish(job) if job.train.export_on_finish else None
    train(
        task,
        report,
        commands.stop_event,
        commands.dump_listeners,
        after_training=finish,
        ready=commands.ready_event,
    )
    if task.role == "chief" and job.cluster.ps == 0:
        commands.stop_event.wait()  # the chief hosts the variables until every worker is done
    return protocol.EXIT_OK


def run_evaluator_task(task: TaskSpec, report: Any, commands: Commands) -> int:
    """The evaluator is outside the TF cluster (as in TF): no port, no server."""
    tensorflow = TensorFlowImport()
    report("address", host=task.node_ip, port=0, process_start=process_start(), t=time.time())
    task = join_cluster(task, commands.wait_for_cluster())
    tf_import_secs = tensorflow.wait()
    report("server_started", t=time.time(), tf_import_secs=tf_import_secs)
    from harness.runtime.evaluation import run_evaluator

    run_evaluator(task.job, report, commands.stop_event, task=task)
    return protocol.EXIT_OK


def join_cluster(task: TaskSpec, cluster: dict[str, list[str]]) -> TaskSpec:
    """``task`` with the cluster; sets ``TF_CONFIG`` for the user's code and TensorFlow (the
    harness itself goes on with the returned spec and never reads the variable back)."""
    task = task.with_cluster(cluster)
    os.environ["TF_CONFIG"] = json.dumps(task.tf_config())
    return task


def process_start() -> float:
    """When this process started (wall clock, ``time.time()``'s scale, to 10 ms).

    On Linux from its start in clock ticks since boot (``/proc/self/stat``) and the time
    since boot now: psutil's ``create_time`` adds a boot time rounded to the second.
    """
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        import psutil

        return psutil.Process().create_time()


class TensorFlowImport:
    """``import tensorflow`` on a thread of its own, started at once, so that the 2-10 s it
    takes overlap the rendezvous (under Ray the tasks' actors start one after another, and
    the first ones would otherwise wait for the last before importing anything).

    ``wait`` joins it and returns the seconds it still waited (about 0 when the import was
    done before the cluster came, or when a warm spare had imported it already); an error
    of the import is raised there, in the task's main thread.
    """

    def __init__(self) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._import, name="harness-tf-import", daemon=True)
        self._thread.start()

    def _import(self) -> None:
        try:
            import tensorflow  # noqa: F401
        except BaseException as exc:  # noqa: BLE001 - re-raised by wait()
            self._error = exc

    def wait(self) -> float:
        start = time.perf_counter()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return round(time.perf_counter() - start, 3)


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


def _exit(code: int) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    """``--role R --index I``: run that task. ``--spare``: import first, then wait on stdin
    for the task to become (``harness.runtime.spare``); from there both are one path."""
    parser = argparse.ArgumentParser(prog="python -m harness.task", description=__doc__)
    parser.add_argument("--role", choices=list(ROLES))
    parser.add_argument("--index", type=int)
    parser.add_argument(spare.SPARE_FLAG, action="store_true", help="start as a warm spare")
    args = parser.parse_args(argv)
    if args.spare:
        task_id, process_began = become(sys.stdin), time.time()
    elif args.role is None or args.index is None:
        parser.error("--role and --index are required (or --spare)")
    else:
        task_id, process_began = TaskId(args.role, args.index), None
    run_main(task_id, process_began)


def become(stream: Any) -> TaskId:
    """A spare's wait: import, read the ``become`` line, take its ``IDENTITY_ENV`` values.
    The line is read beside the imports, so EOF (the launcher is gone) ends the process at
    once, also mid-import; so does a bad line."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_become, args=(stream, lines), daemon=True).start()
    spare.warm_up()
    try:
        task_id, env = spare.parse_become(lines.get())
    except spare.BecomeError as exc:
        sys.stderr.write(f"{exc}\n")
        _exit(protocol.EXIT_ERROR)
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return task_id


def _read_become(stream: Any, lines: queue.Queue[str]) -> None:
    line = stream.readline()
    if not line:
        _exit(protocol.EXIT_SUPERVISOR_LOST)
    lines.put(line)


def run_main(task_id: TaskId, process_began: float | None = None) -> None:
    """Run ``task_id`` from the environment (a task's edge, see the module docstring).
    ``process_began``: when a spare became this task (its ``address`` event says ``warm``)."""
    node_ip = os.environ.get("HARNESS_NODE_IP", DEFAULT_NODE_IP)
    fault = parse_fault(os.environ.get(FAULT_INJECT_ENV))
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    report = protocol.EventWriter()
    if process_began is not None:
        report = _warm_address(report, process_began)
    commands = Commands()
    code = protocol.EXIT_ERROR
    try:
        job = JobSpec.from_json(os.environ["HARNESS_JOB"])
        task = TaskSpec(task_id, job, node_ip=node_ip)
        if isinstance(fault, KillFault):
            report = fault.arm(task_id.key, task_id.role, job.model_dir, report)
        data_client.connect(report)  # harness.data's requests go out the same way
        bind_fault = fault if isinstance(fault, BindFault) else None
        code = run_task(task, report, commands, bind_fault)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the supervisor
        code = _report_failure(exc, report)
    _exit(code)


def _warm_address(report: Any, began: float) -> Any:
    """A spare's ``address`` event says ``warm`` and starts the process when it became the
    task (the bring-up's ``process_start``), not when it was spawned."""

    def reporting(event: str, **fields: Any) -> None:
        if event == "address":
            fields.update(process_start=began, warm=True)
        report(event, **fields)

    return reporting


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
