"""Node loss on a real multi-node Ray cluster (``ray.cluster_utils.Cluster``, loopback).

One head (the driver's node, 0 CPUs: no task lands there) is shared by the module; each test
adds the nodes it needs, sized so that the placement group can only land one way, and
removes one of them (``Cluster.remove_node``, as a node that leaves the cluster) while the
job trains:

- the node of a worker, with room for it elsewhere: the worker is started again in its
  bundle, which Ray placed on the other node, and the job completes;
- the node of the ps: the whole cluster restarts, the ps on the spare node, and completes;
- the node of a worker with no room left: with ``cluster.min_workers`` < workers the job
  goes on without it and completes (run.json's ``dropped``); with every worker needed it
  fails, naming what the bundle needs and what the cluster has.

After each: no actor, no placement group, no task process of the job remains. Every node
is 127.0.0.1 here, so a task started on another node rejoins on its old address; a change of
host (the whole cluster restarts) is tested in tests/unit/test_supervisor.py.
"""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray address is 127.0.0.1

import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster
from ray.util.state import list_actors, list_placement_groups

from harness.commands.run import run_job
from harness.job import JobSpec
from harness.testing import leftover_task_processes, make_job_dict

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MODELS = "tests.integration.models"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """The shared head; a test's own nodes are removed after it (``nodes``)."""
    head_args = {
        "num_cpus": 0,
        "include_dashboard": True,  # the state API needs it
        "dashboard_host": "127.0.0.1",
        "dashboard_port": free_port(),
    }
    ray_cluster = Cluster(initialize_head=True, head_node_args=head_args)
    try:
        ray.init(address=ray_cluster.address, logging_level="WARNING")
        yield ray_cluster
    finally:
        ray.shutdown()
        ray_cluster.shutdown()


@pytest.fixture
def nodes(cluster):
    """``add(cpus)`` adds a node to the shared cluster; every node added is gone afterwards."""
    added: list[Any] = []

    def add(cpus: int) -> Any:
        node = cluster.add_node(num_cpus=cpus)
        added.append(node)
        cluster.wait_for_nodes()
        return node

    yield add
    for node in added:
        if node in cluster.worker_nodes:
            cluster.remove_node(node)


def state_address() -> str:
    return "http://" + ray._private.worker._global_node.webui_url


def job_actors(job: JobSpec, name: str = "") -> list[Any]:
    prefix = f"{job.name}-{name}"
    actors = list_actors(address=state_address(), limit=10000, detail=True)
    return [a for a in actors if (a.name or "").startswith(prefix)]


def make_job(tmp_path: Path, name: str, cpus: dict[str, int], **cluster: int) -> JobSpec:
    """A slow tiny model (0.2 s a step on each trainer), so the node goes mid-training."""
    data = make_job_dict(
        f"{MODELS}:model_fn",
        f"{MODELS}:input_fn",
        tmp_path / "model",
        name=name,
        max_steps=120,
        params={"slow_secs": 0.2},
        source_dirs=(str(REPO),),
        cluster={"ps": 1, **cluster},
        resources={role: {"cpu": cpu} for role, cpu in cpus.items()},
        train={"max_steps": 120, "save_checkpoints_steps": 10},
        failure={"max_failures": 3, "stall_timeout_secs": 120},
        timeouts={"startup_secs": 90, "stop_grace_secs": 5},
        placement={"strategy": "PACK", "timeout_secs": 8},
    )
    return JobSpec.from_dict(data)


def checkpoint_step(model_dir: str) -> int:
    try:
        text = Path(model_dir, "checkpoint").read_text()
    except OSError:
        return -1
    match = re.search(r'model_checkpoint_path: ".*?-(\d+)"', text)
    return int(match.group(1)) if match else -1


def poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def run_with_node_loss(
    cluster: Cluster, job: JobSpec, task: str, before: Callable[[], Any] = lambda: None
) -> tuple[dict[str, Any], str]:
    """Run ``job`` (in a thread); once a checkpoint at step >= 10 exists, call ``before``
    (add a spare node) and remove ``task``'s node. Ray's ``Cluster`` changes nodes only
    from the main thread. Returns the run summary and the id of the node removed."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["summary"] = run_job(job, backend="ray", quiet=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    poll(lambda: checkpoint_step(job.model_dir) >= 10, 150, "a checkpoint at step 10")
    name = task.replace(":", "-")
    alive = poll(lambda: [a for a in job_actors(job, name) if a.state == "ALIVE"], 30, task)
    lost = alive[0].node_id
    before()
    cluster.remove_node(next(n for n in cluster.worker_nodes if n.node_id == lost))
    thread.join(timeout=240)
    assert not thread.is_alive(), "the job did not end"
    assert "error" not in result, result.get("error")
    return result["summary"], lost


def assert_nothing_left(job: JobSpec) -> None:
    alive = [a.name for a in job_actors(job) if a.state not in ("DEAD",)]
    assert not alive, f"actors left: {alive}"
    groups = [
        (g.name, g.state)
        for g in list_placement_groups(address=state_address(), limit=10000)
        if g.name.startswith(f"harness-{job.name}-") and g.state != "REMOVED"
    ]
    assert not groups, f"placement groups left: {groups}"
    left = poll(
        lambda: not leftover_task_processes(job.model_dir) or None, 30, "the task processes"
    )
    assert left


@pytest.mark.timeout(300)
def test_a_worker_whose_node_is_lost_is_started_on_another_node(tmp_path, cluster, nodes):
    # chief 2 + ps 2 fill the 4-CPU node; the worker (1) fits only the 1-CPU one
    job = make_job(tmp_path, "lose-worker", {"chief": 2, "worker": 1, "ps": 2}, workers=1)
    nodes(4)
    nodes(1)
    summary, lost = run_with_node_loss(cluster, job, "worker:0", before=lambda: nodes(1))
    assert summary["status"] == "succeeded", summary["error"]
    assert summary["final_global_step"] >= 120
    assert summary["failures"][0]["task"] == "worker:0"
    assert summary["failures"][0]["decision"] == "RESTART_TASK"
    assert summary["dropped"] == []
    workers = job_actors(job, "worker-0")
    assert len(workers) >= 2 and {a.node_id for a in workers} - {lost}, "never on another node"
    assert {a.node_id for a in job_actors(job, "ps-0")} != {lost}
    assert_nothing_left(job)


@pytest.mark.timeout(300)
def test_the_ps_whose_node_is_lost_restarts_the_whole_cluster_elsewhere(tmp_path, cluster, nodes):
    # chief 2 + worker 1 fill one 3-CPU node, the ps (3) the other
    job = make_job(tmp_path, "lose-ps", {"chief": 2, "worker": 1, "ps": 3}, workers=1)
    nodes(3)
    nodes(3)
    summary, lost = run_with_node_loss(cluster, job, "ps:0", before=lambda: nodes(3))
    assert summary["status"] == "succeeded", summary["error"]
    assert summary["final_global_step"] >= 120
    assert summary["failures"][0]["task"] == "ps:0"
    assert summary["failures"][0]["decision"] == "RESTART_CLUSTER"
    # the chief and the worker, on nodes that stayed, restart inside their living actors
    assert len(job_actors(job, "chief-0")) == len(job_actors(job, "worker-0")) == 1
    ps = job_actors(job, "ps-0")
    assert len(ps) >= 2 and {a.node_id for a in ps} - {lost}, "the ps never ran elsewhere"
    assert_nothing_left(job)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("min_workers", [1, 2])
def test_a_worker_with_no_room_left(tmp_path, cluster, nodes, min_workers):
    # chief 2 + ps 2 fill the 4-CPU node; each worker (1) has a 1-CPU node of its own
    job = make_job(
        tmp_path,
        f"no-room-{min_workers}",
        {"chief": 2, "worker": 1, "ps": 2},
        workers=2,
        min_workers=min_workers,
    )
    nodes(4)
    nodes(1)
    nodes(1)
    summary, _ = run_with_node_loss(cluster, job, "worker:1")
    failures = [(f["task"], f["decision"]) for f in summary["failures"]]
    if min_workers == 1:
        assert summary["status"] == "succeeded", summary["error"]
        assert summary["final_global_step"] >= 120
        assert failures == [("worker:1", "RESTART_TASK"), ("worker:1", "DROP_TASK")]
        assert summary["dropped"] == ["worker:1"]
    else:
        assert summary["status"] == "failed"
        error = summary["error"]
        assert "worker:1 cannot be started again: its bundle 2 {CPU: 1}" in error, error
        assert "was not placed again within 8 s (placement.timeout_secs)" in error, error
        # the 4-CPU node (chief, ps) and the 1-CPU one (worker:0) are left, every CPU in bundles
        assert "the cluster has: {CPU: 5, " in error and "available now {CPU: 0, " in error, error
        assert "on 3 node(s)" in error, error
        assert "cluster.min_workers=2 of 2 workers" in error, error
        assert failures == [("worker:1", "RESTART_TASK"), ("worker:1", "FAIL")]
    assert_nothing_left(job)
