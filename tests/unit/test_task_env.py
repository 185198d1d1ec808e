"""The environment a task process starts with: the user's, plus the plan's, joined sensibly."""

from __future__ import annotations

from cluster.processes import join_paths, task_process_env
from cluster.ray_actor import task_environment


def test_the_users_pythonpath_is_kept_after_the_job_folders():
    env = task_process_env(
        {"PYTHONPATH": "/venv/extra:/job", "HOME": "/root"}, {"PYTHONPATH": "/job:/cwd"}
    )
    assert env["PYTHONPATH"] == "/job:/cwd:/venv/extra"
    assert env["HOME"] == "/root"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_no_pythonpath_anywhere_leaves_none():
    assert "PYTHONPATH" not in task_process_env({}, {})


def test_an_inherited_keras_choice_is_overridden_by_the_plan():
    env = task_process_env({"TF_USE_LEGACY_KERAS": "0"}, {"TF_USE_LEGACY_KERAS": "1"})
    assert env["TF_USE_LEGACY_KERAS"] == "1"


def test_join_paths_drops_empty_and_repeated_entries():
    assert join_paths("/a::/b", "", "/b:/c", "/a") == "/a:/b:/c"


def test_a_ray_task_gets_the_plan_then_the_actor_path_then_its_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = task_environment(
        {"PYTHONPATH": "/job"}, "127.0.0.1", ["1"], base={"PYTHONPATH": "/working_dir:/job"}
    )
    assert env["PYTHONPATH"] == f"/job:/working_dir:{tmp_path}"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
