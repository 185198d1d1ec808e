"""Baseline: the benchmark workload as a bare TensorFlow cluster, written as a user would.

One chief, N workers and one ps, each a separate Python process with ``TF_CONFIG`` in its
environment and a ``tf.distribute.Server``; trainers use stock
``tf.compat.v1.train.MonitoredTrainingSession``; with ``params["estimator_hooks"]`` the
trainers also run tf.estimator's default hooks (``workload.estimator_hooks``). Nothing of tf-harness is used: the launcher
picks free ports itself (bind to port 0, read the port, close), and the ps stops through a
shared ``FIFOQueue`` on the ps: each trainer enqueues a token when its loop is over and the ps
dequeues one per trainer instead of calling ``server.join()`` (which never returns).

Stock MonitoredTrainingSession makes a worker that comes up before the chief has initialized
the model wait ``SessionManager.recovery_wait_secs`` (30 s) before it checks again; the
benchmark reports that as the baseline join delay.

Run it on its own::

    python -m bench.bare_tf --size small --workers 2 --window-secs 10 --dir /tmp/bare

Each task is ``python -m bench.bare_tf --task ROLE:INDEX --params JSON --model-dir DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = str(Path(__file__).resolve().parents[1])
MAX_STEPS = 10**9  # the run ends through the recorder's time window (bench.workload)


# ---- the launcher ------------------------------------------------------------------------


@dataclass
class Launch:
    """What the launcher saw: when it started, when the last process was gone, exit codes."""

    t_launch: float
    t_gone: float = 0.0
    pids: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    exit_times: dict[str, float] = field(default_factory=dict)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1 (all held until every one is chosen)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


def start_cluster(
    params: dict[str, Any],
    model_dir: str,
    workers: int,
    ps: int = 1,
    env: dict[str, str] | None = None,
    chief_last: bool = False,
    chief_first: bool = False,
) -> tuple[Launch, dict[str, subprocess.Popen[bytes]]]:
    """Start every task process; returns the launch record and the processes by task.

    With ``chief_last`` the chief starts only once every worker has begun creating its
    session (they record ``begin`` in ``params["record_dir"]``): workers that come up before
    the chief, which stock MonitoredTrainingSession makes wait for its 30 s re-check. With
    ``chief_first`` the workers start once the chief has initialized the model (its ``init``
    record), so that none of them waits for that re-check (throughput-only runs).
    """
    tasks = (
        [("chief", 0)] + [("worker", i) for i in range(workers)] + [("ps", i) for i in range(ps)]
    )
    ports = iter(free_ports(len(tasks)))
    cluster: dict[str, list[str]] = {}
    for role, _ in tasks:
        cluster.setdefault(role, []).append(f"127.0.0.1:{next(ports)}")
    params = {**params, "num_trainers": 1 + workers}
    os.makedirs(model_dir, exist_ok=True)
    launch = Launch(t_launch=time.monotonic())
    procs: dict[str, subprocess.Popen[bytes]] = {}
    if chief_last:
        first = [t for t in tasks if t[0] != "chief"]
    elif chief_first:
        first = [t for t in tasks if t[0] != "worker"]
    else:
        first = tasks
    for role, index in first:
        procs[f"{role}:{index}"] = _start_task(role, index, cluster, params, model_dir, env)
    if chief_last or chief_first:
        waited = [f"worker-{i}" for i in range(workers)] if chief_last else ["chief-0"]
        try:
            event = "begin" if chief_last else "init"
            _wait_for_records(params["record_dir"], event, waited, procs)
        except BaseException:
            for proc in procs.values():
                proc.kill()
                proc.wait()
            raise
        for role, index in [t for t in tasks if t not in first]:
            procs[f"{role}:{index}"] = _start_task(role, index, cluster, params, model_dir, env)
    launch.pids = {key: proc.pid for key, proc in procs.items()}
    return launch, procs


def _start_task(
    role: str,
    index: int,
    cluster: dict[str, list[str]],
    params: dict[str, Any],
    model_dir: str,
    env: dict[str, str] | None,
) -> subprocess.Popen[bytes]:
    """Start one task: ``python -m bench.bare_tf --task ROLE:INDEX`` with its TF_CONFIG."""
    task_env = {
        **os.environ,
        **(env or {}),
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": role, "index": index}}),
        "PYTHONPATH": os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p),
    }
    task_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [sys.executable, "-m", "bench.bare_tf", "--task", f"{role}:{index}"]
    command += ["--params", json.dumps(params), "--model-dir", model_dir]
    with open(os.path.join(model_dir, f"{role}-{index}.log"), "wb") as log:
        return subprocess.Popen(command, env=task_env, stdout=log, stderr=subprocess.STDOUT)


def _wait_for_records(
    record_dir: str,
    event: str,
    tasks: list[str],
    procs: dict[str, subprocess.Popen[bytes]],
    timeout: float = 300,
) -> None:
    """Wait until every one of ``tasks`` (record file stems: ``worker-0``, ...) has recorded
    ``event`` (and fail if a task exits first)."""
    paths = [os.path.join(record_dir, f"{task}.jsonl") for task in tasks]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(os.path.exists(p) and f'"{event}"' in Path(p).read_text() for p in paths):
            return
        exited = {k: p.poll() for k, p in procs.items() if p.poll() is not None}
        if exited:
            raise RuntimeError(f"tasks exited before {tasks} recorded {event!r}: {exited}")
        time.sleep(0.05)
    raise RuntimeError(f"{tasks} did not record {event!r} within {timeout:g} s")


def wait_cluster(
    launch: Launch, procs: dict[str, subprocess.Popen[bytes]], timeout: float = 300.0
) -> Launch:
    """Wait until every task has exited (killing all of them after ``timeout``)."""
    deadline = time.monotonic() + timeout
    try:
        while len(launch.exit_codes) < len(procs) and time.monotonic() < deadline:
            for key, proc in procs.items():
                if key not in launch.exit_codes and proc.poll() is not None:
                    launch.exit_codes[key] = proc.returncode
                    launch.exit_times[key] = time.monotonic()
            time.sleep(0.02)
    finally:
        for key, proc in procs.items():
            if proc.poll() is None:
                proc.kill()
                launch.exit_codes[key] = proc.wait()
                launch.exit_times[key] = time.monotonic()
    launch.t_gone = max(launch.exit_times.values())
    return launch


# ---- one task ----------------------------------------------------------------------------


def session_config(role: str, index: int) -> Any:
    """Between-graph replication's usual device filters: the ps tasks and this task only."""
    import tensorflow as tf

    filters = ["/job:ps"] if role == "ps" else ["/job:ps", f"/job:{role}/task:{index}"]
    return tf.compat.v1.ConfigProto(allow_soft_placement=True, device_filters=filters)


def done_queue(num_trainers: int) -> Any:
    """The queue on ps 0 that trainers put a token in when they are done."""
    import tensorflow as tf

    with tf.device("/job:ps/task:0"):
        return tf.compat.v1.FIFOQueue(
            num_trainers, [tf.int32], shapes=[[]], shared_name="bench_done_queue"
        )


def run_task(role: str, index: int, params: dict[str, Any], model_dir: str) -> None:
    import tensorflow as tf

    tf_config = json.loads(os.environ["TF_CONFIG"])
    cluster = tf.train.ClusterSpec(tf_config["cluster"])
    config = session_config(role, index)
    server = tf.distribute.Server(
        cluster, job_name=role, task_index=index, config=config, start=True
    )
    num_trainers = int(params["num_trainers"])
    if role == "ps":
        with tf.Graph().as_default():
            dequeue = done_queue(num_trainers).dequeue()
            with tf.compat.v1.Session(server.target, config=config) as sess:
                for _ in range(num_trainers):
                    sess.run(dequeue)
        return
    train(server, cluster, role, index, params, model_dir)
    with tf.Graph().as_default():
        enqueue = done_queue(num_trainers).enqueue(1)
        with tf.compat.v1.Session(server.target, config=config) as sess:
            sess.run(enqueue)


def train(
    server: Any, cluster: Any, role: str, index: int, params: dict[str, Any], model_dir: str
) -> None:
    """The training loop: MonitoredTrainingSession running ``[train_op, loss]`` until it stops."""
    import tensorflow as tf

    from bench import workload

    v1 = tf.compat.v1
    task, is_chief = f"{role}:{index}", role == "chief"
    with tf.Graph().as_default() as graph:
        device_fn = v1.train.replica_device_setter(
            cluster=cluster, worker_device=f"/job:{role}/task:{index}", merge_devices=True
        )
        with graph.device(device_fn):
            v1.train.get_or_create_global_step()
            with tf.device("/cpu:0"):
                dataset = workload.input_fn(params)
                features, labels = v1.data.make_one_shot_iterator(dataset).get_next()
            model = workload.build_model(features, labels, params)
        hooks = [v1.train.StopAtStepHook(last_step=MAX_STEPS)]
        if params.get("estimator_hooks"):  # the bare TF + Estimator hooks variant
            hooks += workload.estimator_hooks(model)
        hooks.append(workload.RecorderHook(model, task, is_chief, params))
        scaffold = v1.train.Scaffold(init_fn=workload.mark_init(params["record_dir"], task))
        with v1.train.MonitoredTrainingSession(
            master=server.target,
            is_chief=is_chief,
            checkpoint_dir=model_dir,
            scaffold=scaffold,
            hooks=hooks,
            config=session_config(role, index),
        ) as sess:
            while not sess.should_stop():
                sess.run([model.train_op, model.loss])


# ---- command line ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_tf", description=__doc__)
    parser.add_argument("--task", help="ROLE:INDEX (set by the launcher)")
    parser.add_argument("--params", help="workload params as JSON (set by the launcher)")
    parser.add_argument("--model-dir", help="checkpoint directory (set by the launcher)")
    parser.add_argument("--size", choices=["small", "large"], default="small")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--window-secs", type=float, default=10.0)
    parser.add_argument("--dir", default="/tmp/bench-bare-tf")
    parser.add_argument(
        "--chief-last", action="store_true", help="start the chief once the workers are up"
    )
    args = parser.parse_args(argv)
    if args.task:
        role, index = args.task.split(":")
        run_task(role, int(index), json.loads(args.params), args.model_dir)
        return
    record_dir = os.path.join(args.dir, "records")
    os.makedirs(record_dir, exist_ok=True)
    params = {"size": args.size, "record_dir": record_dir, "window_secs": args.window_secs}
    model_dir = os.path.join(args.dir, "model")
    launch, procs = start_cluster(params, model_dir, args.workers, chief_last=args.chief_last)
    launch = wait_cluster(launch, procs)
    print(json.dumps({**launch.__dict__, "record_dir": record_dir}, indent=2))


if __name__ == "__main__":
    main()
