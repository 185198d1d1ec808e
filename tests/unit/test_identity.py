"""Task identity: TaskId/TaskSpec, the one TF_CONFIG function, RunConfig built from a spec,
and no environment writes outside the task's single TF_CONFIG."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from cluster.plan import make_plan
from harness.config import RunConfig
from harness.identity import TaskId, TaskSpec, tf_config
from harness.job import JobSpec
from harness.runtime.run_config import local_run_config, run_config
from harness.runtime.server import BindFault
from harness.testing import make_job_dict

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = {"chief": ["h:1"], "worker": ["h:2", "h:3"], "ps": ["h:4"]}
TASKS = [
    TaskId("chief"),
    TaskId("worker", 0),
    TaskId("worker", 1),
    TaskId("ps"),
    TaskId("evaluator"),
]


def job(tmp_path: Path, **sections) -> JobSpec:
    data = make_job_dict(
        "examples.linear.model:model_fn",
        "examples.linear.model:input_fn",
        tmp_path / "model",
        workers=2,
        ps=1,
        params={"learning_rate": 0.1, "batch_size": 4},
        source_dirs=(str(ROOT),),
        **sections,
    )
    return JobSpec.from_dict(data)


# ---- the one TF_CONFIG function ------------------------------------------------------------


def test_tf_config_is_tfs_shape():
    assert tf_config(TaskId("worker", 1), CLUSTER) == {
        "cluster": {"chief": ["h:1"], "worker": ["h:2", "h:3"], "ps": ["h:4"]},
        "task": {"type": "worker", "index": 1},
    }
    json.dumps(tf_config(TaskId("chief"), CLUSTER))  # plain JSON types


def test_the_evaluator_is_not_in_the_cluster_but_names_itself():
    with_evaluator = {**CLUSTER, "evaluator": ["h:5"]}
    assert tf_config(TaskId("evaluator"), with_evaluator) == {
        "cluster": CLUSTER,
        "task": {"type": "evaluator", "index": 0},
    }
    assert "evaluator" not in tf_config(TaskId("chief"), with_evaluator)["cluster"]


def test_the_plan_and_the_task_build_the_same_tf_config(tmp_path):
    spec = job(tmp_path, cluster={"workers": 2, "ps": 1, "evaluator": 1})
    plan = make_plan(spec)
    for task in plan.tasks:
        assert task.task_id == TaskId(task.role, task.index)
        expected = TaskSpec(task.task_id, spec).with_cluster(CLUSTER).tf_config()
        assert plan.tf_config(task, CLUSTER) == expected
        placeholder = plan.tf_config(task)
        assert sorted(placeholder["cluster"]) == ["chief", "ps", "worker"]


# ---- TaskId / TaskSpec ---------------------------------------------------------------------


def test_task_id_and_spec(tmp_path):
    assert str(TaskId("worker", 1)) == "worker:1" and TaskId("ps").index == 0
    with pytest.raises(ValueError, match="master"):
        TaskId("master")
    with pytest.raises(ValueError, match=">= 0"):
        TaskId("worker", -1)
    spec = TaskSpec(TaskId("worker", 1), job(tmp_path), node_ip="10.0.0.7")
    assert spec.role == "worker" and spec.index == 1 and spec.cluster is None
    with pytest.raises(ValueError, match="not known yet"):
        spec.tf_config()
    joined = spec.with_cluster(CLUSTER)
    assert joined.address == "h:3" and joined.node_ip == "10.0.0.7" and spec.cluster is None
    evaluator = TaskSpec(TaskId("evaluator"), spec.job).with_cluster(CLUSTER)
    with pytest.raises(ValueError, match="no address"):
        _ = evaluator.address


def test_bind_fault_parses_the_injection_switch():
    assert BindFault.parse(None) is None and BindFault.parse("") is None
    assert BindFault.parse("other:worker:0:/m") is None
    assert BindFault.parse("bind:worker:0:/tmp/m") == BindFault("worker:0", "/tmp/m")


# ---- RunConfig from a TaskSpec -------------------------------------------------------------


def _facts(config: RunConfig) -> dict:
    return {
        "task_type": config.task_type,
        "task_id": config.task_id,
        "is_chief": config.is_chief,
        "num_worker_replicas": config.num_worker_replicas,
        "num_ps_replicas": config.num_ps_replicas,
        "master": config.master,
        "cluster_spec": config.cluster_spec.as_dict(),
        "device_filters": list(config.session_config.device_filters),
        "global_id_in_cluster": config.global_id_in_cluster,
        "worker_device": config.worker_device,
        "model_dir": config.model_dir,
        "save_checkpoints_steps": config.save_checkpoints_steps,
        "save_checkpoints_secs": config.save_checkpoints_secs,
    }


@pytest.mark.parametrize("task", TASKS, ids=str)
@pytest.mark.parametrize("cluster", [CLUSTER, {"chief": ["h:1"], "worker": ["h:2", "h:3"]}])
def test_run_config_for_a_task_equals_the_tf_config_one(tmp_path, monkeypatch, task, cluster):
    if task.role == "ps" and "ps" not in cluster:
        pytest.skip("no ps in this cluster")
    spec = TaskSpec(task, job(tmp_path)).with_cluster(cluster)
    settings = {"model_dir": "/m", "save_checkpoints_steps": 7}
    # What a task's RunConfig was built from: the TF_CONFIG in its environment.
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": cluster, "task": {"type": task.role, "index": task.index}}),
    )
    from_env = RunConfig.from_tf_config(**settings)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"task": {"type": "ps", "index": 3}}))  # ignored
    for_task = RunConfig.for_task(spec, **settings)
    assert _facts(for_task) == _facts(from_env)
    assert for_task == from_env


def test_the_runtime_configs_ignore_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": CLUSTER, "task": {"type": "ps"}}))
    spec = job(tmp_path)
    worker = run_config(TaskSpec(TaskId("worker", 1), spec).with_cluster(CLUSTER))
    assert worker.task_type == "worker" and worker.master == "grpc://h:3"
    assert worker.model_dir == spec.model_dir and worker.save_checkpoints_steps == 10
    local = local_run_config(spec)
    assert local.task_type is None and local.is_chief and local.master == ""
    assert local.cluster_spec.as_dict() == {} and local.model_dir == spec.model_dir
    assert list(local.session_config.device_filters) == []


# ---- the environment -----------------------------------------------------------------------


class RecordingEnviron(dict):
    """``os.environ`` stand-in that records every write."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.writes: list[str] = []

    def __setitem__(self, key, value) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)

    def __delitem__(self, key) -> None:
        self.writes.append(key)
        super().__delitem__(key)

    def setdefault(self, key, default=None):
        self.writes.append(key)
        return super().setdefault(key, default)

    def update(self, *args, **kwargs) -> None:
        self.writes.append("update")
        super().update(*args, **kwargs)

    def pop(self, key, *default):
        self.writes.append(key)
        return super().pop(key, *default)

    def clear(self) -> None:
        self.writes.append("clear")
        super().clear()


def test_validate_builds_every_graph_without_touching_the_environment(tmp_path, monkeypatch):
    from harness.commands.validate import validate_job

    monkeypatch.delenv("TF_CONFIG", raising=False)
    recording = RecordingEnviron(os.environ)
    monkeypatch.setattr(os, "environ", recording)
    spec = job(tmp_path, cluster={"workers": 1, "ps": 1, "evaluator": 1})
    assert validate_job(spec, "job.yaml") == 0
    assert recording.writes == []
    assert "TF_CONFIG" not in recording


def test_the_task_sets_tf_config_once_from_its_spec(tmp_path, monkeypatch):
    from harness.task import join_cluster

    monkeypatch.setenv("TF_CONFIG", "{}")
    spec = TaskSpec(TaskId("evaluator"), job(tmp_path))
    joined = join_cluster(spec, {**CLUSTER, "evaluator": ["h:5"]})
    assert json.loads(os.environ["TF_CONFIG"]) == joined.tf_config()
    assert json.loads(os.environ["TF_CONFIG"]) == {
        "cluster": CLUSTER,
        "task": {"type": "evaluator", "index": 0},
    }


#: Where harness/ may write the environment: (file, variable) -> count.
ALLOWED_WRITES = {
    ("harness/task.py", "TF_CONFIG"): 1,
    ("harness/task.py", "name"): 2,  # a warm spare takes its task's IDENTITY_ENV (become)
    ("harness/cli.py", "TF_CPP_MIN_LOG_LEVEL"): 1,
    ("harness/legacy_keras.py", "ENV"): 2,
}


def _is_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _key(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ast.dump(node)


def _environment_writes(path: Path) -> list[str]:
    """Keys written to ``os.environ`` in ``path``: item assignment or deletion, the mutating
    methods, ``os.putenv``/``os.unsetenv``, and ``os.environ`` handed to any call (e.g.
    ``mock.patch.dict(os.environ, ...)``) other than a read method."""
    writes = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets:
                if isinstance(target, ast.Subscript) and _is_environ(target.value):
                    writes.append(_key(target.slice))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and _is_environ(func.value):
                if func.attr not in ("get", "items", "keys", "values", "copy", "__contains__"):
                    writes.append(_key(node.args[0]) if node.args else func.attr)
            elif isinstance(func, ast.Attribute) and func.attr in ("putenv", "unsetenv"):
                writes.append(_key(node.args[0]) if node.args else func.attr)
            elif any(_is_environ(arg) for arg in node.args):
                if not (isinstance(func, ast.Name) and func.id in ("dict", "len", "sorted")):
                    writes.append(f"{ast.unparse(func)}(os.environ)")
    return writes


def test_only_the_task_cli_and_keras_choice_write_the_environment():
    found: dict[tuple[str, str], int] = {}
    for path in sorted((ROOT / "harness").rglob("*.py")):
        for key in _environment_writes(path):
            where = (path.relative_to(ROOT).as_posix(), key)
            found[where] = found.get(where, 0) + 1
    assert found == ALLOWED_WRITES


def test_the_source_check_sees_a_patched_environment(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nfrom unittest import mock\n"
        "with mock.patch.dict(os.environ, {'TF_CONFIG': '{}'}):\n    pass\n"
        "os.environ['A'] = '1'\nos.environ.update(B='2')\ndel os.environ['C']\n"
        "x = os.environ.get('D')\n"
    )
    assert sorted(_environment_writes(source)) == sorted(
        ["mock.patch.dict(os.environ)", "A", "update", "C"]
    )
