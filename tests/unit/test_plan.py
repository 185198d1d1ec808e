"""cluster.plan: pure plans, GPU slices for the local backend, the dry-run text."""

from __future__ import annotations

import json

import pytest

from cluster.plan import make_plan
from harness.job import JobSpec, JobSpecError


def job(**changes):
    data = {
        "name": "plan",
        "model_fn": "m:model_fn",
        "input_fn": "m:input_fn",
        "model_dir": "/tmp/plan",
        "cluster": {"workers": 2, "ps": 1},
        "train": {"max_steps": 10},
        "source_dirs": ["/src"],
    }
    data.update(changes)
    return JobSpec.from_dict(data)


def test_tasks_in_tf_config_order_with_commands_and_job_json():
    plan = make_plan(job(), python="/py")
    assert [t.key for t in plan.tasks] == ["chief:0", "worker:0", "worker:1", "ps:0"]
    chief = plan.tasks[0]
    assert chief.command == ("/py", "-m", "harness.task", "--role", "chief", "--index", "0")
    assert JobSpec.from_json(chief.env["HARNESS_JOB"]) == job()
    assert chief.env["PYTHONPATH"] == "/src"
    assert plan.variable_hosts == ("ps:0",)
    assert make_plan(job(cluster={"workers": 1, "ps": 0})).variable_hosts == ("chief:0",)


def test_source_dirs_are_on_pythonpath_once_each_and_keras_mode_travels():
    plan = make_plan(job(source_dirs=["/src", "/other", "/src"]))
    assert plan.tasks[0].env["PYTHONPATH"] == "/src:/other"
    assert {t.env["TF_USE_LEGACY_KERAS"] for t in plan.tasks} == {"1"}
    plan = make_plan(job(keras="keras3"))
    assert {t.env["TF_USE_LEGACY_KERAS"] for t in plan.tasks} == {"0"}


def test_tf_config_has_the_standard_shape():
    plan = make_plan(job())
    tf_config = plan.tf_config(
        plan.tasks[2], {"chief": ["a:1"], "worker": ["b:2", "c:3"], "ps": ["d:4"]}
    )
    assert tf_config == {
        "cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"], "ps": ["d:4"]},
        "task": {"type": "worker", "index": 1},
    }


def test_local_gpus_are_disjoint_and_ps_gets_none():
    spec = job(resources={"chief": {"gpu": 1}, "worker": {"gpu": 2}, "ps": {"cpu": 1}})
    plan = make_plan(spec, visible_gpus=["0", "1", "2", "3", "4", "5"])
    devices = {t.key: t.env["CUDA_VISIBLE_DEVICES"] for t in plan.tasks}
    assert devices == {"chief:0": "0", "worker:0": "1,2", "worker:1": "3,4", "ps:0": ""}


def test_cpu_only_local_tasks_see_no_gpu():
    plan = make_plan(job(), visible_gpus=["0"])
    assert all(t.env["CUDA_VISIBLE_DEVICES"] == "" for t in plan.tasks)


def test_too_few_local_gpus_is_a_clear_error():
    spec = job(resources={"worker": {"gpu": 1}})
    with pytest.raises(JobSpecError, match=r"needs 2 GPU\(s\).*this machine shows 1"):
        make_plan(spec, visible_gpus=["0"])
    with pytest.raises(
        JobSpecError, match="resources.worker.gpu: the local backend gives whole GPUs"
    ):
        make_plan(job(resources={"worker": {"gpu": 0.5}}), visible_gpus=["0", "1"])


def test_ray_plan_leaves_gpu_assignment_to_ray():
    plan = make_plan(job(resources={"worker": {"gpu": 1}}), backend="ray")
    assert all("CUDA_VISIBLE_DEVICES" not in t.env for t in plan.tasks)
    assert [t.gpu for t in plan.tasks] == [0, 1, 1, 0]


def test_describe_is_pure_and_shows_every_task():
    text = make_plan(job()).describe()
    for key in ("chief:0", "worker:0", "worker:1", "ps:0"):
        assert f"[{key}]" in text
    assert "HARNESS_JOB" not in text
    line = next(ln for ln in text.splitlines() if "TF_CONFIG" in ln and "worker" in ln)
    assert json.loads(line.split("TF_CONFIG: ", 1)[1])["cluster"]["ps"] == ["<ps:0 address>"]
    assert text == make_plan(job()).describe()
