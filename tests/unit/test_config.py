"""RunConfig built from TF_CONFIG, as Estimator's RunConfig did."""

from __future__ import annotations

import json

import pytest

from harness.config import RunConfig, device_filters

CLUSTER = {"chief": ["h:1"], "worker": ["h:2", "h:3"], "ps": ["h:4"]}


def config(task_type, index=0):
    return RunConfig.from_tf_config(
        {"cluster": CLUSTER, "task": {"type": task_type, "index": index}}
    )


def test_chief():
    c = config("chief")
    assert c.is_chief and c.task_type == "chief" and c.task_id == 0
    assert c.num_ps_replicas == 1 and c.num_worker_replicas == 3
    assert c.master == "grpc://h:1"
    assert list(c.session_config.device_filters) == ["/job:ps", "/job:chief"]
    assert c.global_id_in_cluster == 0


def test_worker():
    c = config("worker", 1)
    assert not c.is_chief
    assert c.master == "grpc://h:3"
    assert list(c.session_config.device_filters) == ["/job:ps", "/job:worker/task:1"]
    assert c.session_config.allow_soft_placement
    assert c.global_id_in_cluster == 2
    assert c.worker_device == "/job:worker/task:1"


def test_ps_filters_and_no_cluster():
    assert device_filters("ps", 0) == ["/job:ps", "/job:worker", "/job:chief"]
    local = RunConfig.from_tf_config({})
    assert local.is_chief and local.master == "" and local.num_ps_replicas == 0


def test_reads_the_environment(monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": CLUSTER, "task": {"type": "ps", "index": 0}})
    )
    c = RunConfig.from_tf_config(model_dir="/m")
    assert c.task_type == "ps" and c.model_dir == "/m" and not c.is_chief


@pytest.mark.parametrize("growth", [True, False])
def test_gpu_memory_growth(growth):
    c = RunConfig.from_tf_config(
        {"cluster": CLUSTER, "task": {"type": "worker", "index": 0}}, gpu_memory_growth=growth
    )
    assert c.session_config.gpu_options.allow_growth is growth


def test_without_ps_workers_see_the_chief_that_hosts_the_variables():
    no_ps = {"chief": ["h:1"], "worker": ["h:2"]}
    worker = RunConfig.from_tf_config({"cluster": no_ps, "task": {"type": "worker", "index": 0}})
    assert list(worker.session_config.device_filters) == ["/job:chief", "/job:worker/task:0"]
    chief = RunConfig.from_tf_config({"cluster": no_ps, "task": {"type": "chief", "index": 0}})
    assert list(chief.session_config.device_filters) == ["/job:chief"]
