"""Backends render, then launch: rendering is pure, every backend's resources come from the one
GPU rule (cluster.resources), the dry-run prints the request, a launcher performs its request.

No Ray is started here (tests/integration/test_ray_backend.py checks the real placement group).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cluster import k8s
from cluster.backends import backend_for, launching_backend
from cluster.console import Console
from cluster.handles import Inbox
from cluster.local import LocalBackend, LocalLauncher, LocalProcess, LocalRequest, visible_gpus
from cluster.plan import make_plan
from cluster.ray_launcher import RayBackend, RayLauncher, describe_ray_plan
from cluster.resources import gpu_roles, local_gpu_slices, ray_bundle, task_resources
from harness.commands.run import dry_run
from harness.job import JobSpec, JobSpecError

REPO = Path(__file__).resolve().parents[2]
IMAGE = k8s.EXAMPLE_IMAGE


def make_job(**changes) -> JobSpec:
    data = {
        "name": "rl",
        "model_fn": "m:model_fn",
        "input_fn": "m:input_fn",
        "model_dir": "/tmp/rl",
        "cluster": {"workers": 2, "ps": 1, "evaluator": 1},
        "resources": {
            "chief": {"cpu": 1, "gpu": 1, "memory_mb": 2048},
            "worker": {"cpu": 0.5, "gpu": 0.5},
            "ps": {"cpu": 0.5},
            "evaluator": {"cpu": 0.5},
        },
        "train": {"max_steps": 10},
        "source_dirs": ["/src"],
    }
    data.update(changes)
    return JobSpec.from_dict(data)


def whole_gpu_job() -> JobSpec:
    return make_job(resources={"chief": {"gpu": 1}, "worker": {"gpu": 2}, "ps": {"cpu": 1}})


# ---- the one GPU rule ------------------------------------------------------------------------


def test_only_trainers_get_gpus():
    job = make_job()
    assert {r: task_resources(job, r).gpu for r in job.task_counts()} == {
        "chief": 1,
        "worker": 0.5,
        "ps": 0,
        "evaluator": 0,
    }
    assert gpu_roles(job) == ("chief", "worker")
    assert task_resources(job, "chief").memory_mb == 2048


def test_plan_and_ray_bundles_come_from_the_rule():
    job = make_job()
    request = RayBackend().render(make_plan(job, "ray"))
    expected = [ray_bundle(task_resources(job, t.role)) for t in request.plan.tasks]
    assert request.bundles == expected
    assert request.bundles == [
        {"CPU": 1, "GPU": 1, "memory": 2048 * 2**20},
        {"CPU": 0.5, "GPU": 0.5},
        {"CPU": 0.5, "GPU": 0.5},
        {"CPU": 0.5},
        {"CPU": 0.5},
    ]
    assert [a.bundle_index for a in request.actors] == [0, 1, 2, 3, 4]
    assert [a.num_gpus for a in request.actors] == [1, 0.5, 0.5, 0, 0]
    assert [t.gpu for t in request.plan.tasks] == [1, 0.5, 0.5, 0, 0]


def test_local_cuda_slices_come_from_the_rule():
    job = whole_gpu_job()
    gpus = [str(i) for i in range(6)]
    request = LocalBackend().render(make_plan(job, "local", visible_gpus=gpus))
    devices = {p.key: p.env["CUDA_VISIBLE_DEVICES"] for p in request.processes}
    assert devices == {
        "chief:0": "0",
        "worker:0": "1,2",
        "worker:1": "3,4",
        "ps:0": "",
        "evaluator:0": "",
    }
    assert devices == local_gpu_slices(job, gpus)
    for process in request.processes:
        role = process.key.split(":")[0]
        taken = [g for g in devices[process.key].split(",") if g]
        assert len(taken) == task_resources(job, role).gpu


def test_k8s_worker_groups_come_from_the_rule():
    job = make_job()
    groups = {g.name: g for g in k8s.worker_groups(job)}
    assert groups["gpu-trainers"].roles == gpu_roles(job)
    assert groups["cpu-trainers"].roles == ("evaluator",)
    assert groups["ps"].roles == ("ps",)
    assert groups["gpu-trainers"].slot.gpu == max(
        task_resources(job, r).gpu for r in gpu_roles(job)
    )


def test_no_other_cluster_module_restates_the_gpu_rule():
    offenders = {}
    for path in sorted((REPO / "cluster").glob("*.py")):
        if path.name == "resources.py":
            continue
        found = re.findall(r"\b(gpus_for|takes_gpus|TRAINER_ROLES)\b", path.read_text())
        if path.name == "plan.py":  # TaskPlan.is_trainer: which roles train, not who gets GPUs
            found = [f for f in found if f != "TRAINER_ROLES"]
        if found:
            offenders[path.name] = sorted(set(found))
    assert offenders == {}


# ---- render is pure; the dry-run is the request's describe() ---------------------------------


def test_rendering_for_ray_neither_imports_nor_connects_to_ray():
    code = (
        "import sys\n"
        "from cluster.plan import make_plan\n"
        "from cluster.ray_launcher import RayBackend, RayLauncher\n"
        "from harness.job import JobSpec\n"
        f"job = JobSpec.from_json({make_job().to_json()!r})\n"
        "backend = RayBackend(address='ray://nowhere:1')\n"
        "request = backend.render(backend.plan(job))\n"
        "request.describe()\n"
        "RayLauncher(request)\n"  # the constructor connects to nothing either
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "print('pure')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "pure"


def test_rendering_twice_gives_equal_requests_and_keeps_ray_down():
    job = make_job()
    first = RayBackend().render(make_plan(job, "ray"))
    assert first == RayBackend().render(make_plan(job, "ray"))
    if "ray" in sys.modules:
        import ray

        assert not ray.is_initialized()


@pytest.mark.parametrize("backend", ["local", "ray", "k8s"])
def test_the_dry_run_prints_the_request(backend):
    job = make_job(resources={}) if backend == "local" else make_job()
    args = argparse.Namespace(backend=backend, address=None, image=IMAGE)
    chosen = backend_for(backend, image=IMAGE)
    request = chosen.render(chosen.plan(job))
    assert dry_run(job, args) == request.describe()
    before = {  # what each dry-run printed before backends rendered requests
        "local": lambda: make_plan(job, "local", visible_gpus=visible_gpus()).describe(),
        "ray": lambda: describe_ray_plan(make_plan(job, "ray")),
        "k8s": lambda: k8s.render_rayjob(job, image=IMAGE),
    }[backend]
    assert request.describe() == before()


def test_k8s_renders_only():
    with pytest.raises(JobSpecError, match="--backend k8s: cannot run jobs; use it with --dry-run"):
        launching_backend("k8s")
    assert not hasattr(backend_for("k8s", image=IMAGE), "launch")
    manifests = k8s.K8sBackend(IMAGE, kind="raycluster").render(make_plan(make_job(), "k8s"))
    assert manifests.describe() == k8s.render(make_job(), "raycluster", image=IMAGE)


# ---- a launcher performs its request ---------------------------------------------------------


def test_the_local_launcher_starts_the_requests_command(tmp_path):
    plan = make_plan(make_job(cluster={"workers": 0}, resources={}), "local", visible_gpus=[])
    chief = plan.tasks[0]
    script = "import os; print('from the request', os.environ['FROM_REQUEST'], flush=True)"
    request = LocalRequest(
        plan,
        (LocalProcess(chief.key, (sys.executable, "-c", script), {"FROM_REQUEST": "yes"}),),
    )
    launcher = LocalBackend().launch(request)
    assert isinstance(launcher, LocalLauncher)
    console = Console(str(tmp_path / "logs"), 10, quiet_tasks=True)
    inbox = Inbox(console)
    try:
        handle = launcher.start(chief, inbox)
        message = inbox.get(timeout=60)
        assert message is not None and (message.kind, message.data) == ("exit", 0)
        assert list(inbox.tails[chief.key]) == ["from the request yes"]
        assert handle.plan is chief
    finally:
        launcher.close()
        console.close()


def test_the_ray_launcher_is_built_from_its_request_without_replanning():
    request = RayBackend().render(make_plan(make_job(), "ray"))
    launcher = RayLauncher(request)
    assert launcher.request is request
    assert launcher.placement_group is None and not launcher.started_ray
    assert launcher.namespace.startswith("harness-rl-")
    launcher.close()  # never connected: nothing to do


def test_a_task_started_again_waits_for_its_bundle_then_gives_up():
    from cluster.ray_placement import wait_bundle

    now = [0.0]
    answers = iter([False, False, True])

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    assert wait_bundle(None, 1, timeout=10.0, placed=lambda pg, i: next(answers), clock=clock)
    assert not wait_bundle(None, 1, timeout=2.0, placed=lambda pg, i: False, clock=clock)
