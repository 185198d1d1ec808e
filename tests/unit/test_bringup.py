"""cluster.bringup: the phases on the critical path, from milestones with known times."""

from __future__ import annotations

from types import SimpleNamespace

from cluster.bringup import BringUp


def _ray_run() -> BringUp:
    b = BringUp(wall=lambda: 0.0)
    b.mark("driver_start", 100.0)
    b.mark("launch", 103.0)
    b.marks({"ray_connected": 104.5, "placed": 104.6})
    for i, key in enumerate(["chief:0", "worker:0", "ps:0", "evaluator:0"]):
        b.task_mark(key, "launched", 104.6)
        handle = SimpleNamespace(info={"started_at": 105.0 + i * 0.1})
        event = {"event": "address", "process_start": 105.2 + i * 0.1, "t": 105.5 + i * 0.1}
        b.on_event(key, event, handle)
        b.task_mark(key, "cluster_sent", 106.0)
        b.on_event(key, {"event": "server_started", "t": 109.5, "tf_import_secs": 3.0 + i / 10})
    b.on_event("chief:0", {"event": "session_ready", "t": 111.0})
    b.on_event("worker:0", {"event": "session_ready", "t": 111.2})
    b.task_mark("chief:0", "first_step", 111.5)
    b.on_event("worker:0", {"event": "progress", "local_steps": 0})  # no step yet
    b.wall = lambda: 111.6
    b.on_event("worker:0", {"event": "progress", "local_steps": 3})
    return b


def test_phases_add_up_on_the_critical_path_and_skip_the_evaluator():
    b = _ray_run()
    phases = b.phases(["chief:0", "worker:0", "ps:0", "evaluator:0"])
    assert phases == {
        "driver_imports": 3.0,
        "ray_connect": 1.5,
        "placement_group": 0.1,
        "actor_start": 0.6,  # the last of chief, worker, ps (the evaluator's 105.3 is not)
        "task_process_start": 0.5,
        "rendezvous": 0.3,
        "tensorflow_import": 3.2,
        "server_start": 0.3,
        "chief_session": 1.5,
        "worker_sessions": 0.2,
        "first_step": 0.4,
        "launch_to_all_stepping": 8.6,
    }
    parts = sum(
        v for k, v in phases.items() if k not in ("driver_imports", "launch_to_all_stepping")
    )
    assert round(parts, 3) == phases["launch_to_all_stepping"]


def test_tasks_are_seconds_since_the_launch_and_a_restart_adds_nothing():
    b = _ray_run()
    b.on_event("worker:0", {"event": "session_ready", "t": 200.0})  # a later instance
    tasks = b.tasks()
    assert tasks["worker:0"]["session_ready"] == 8.2
    assert tasks["ps:0"]["tf_imported"] == 6.2
    assert list(tasks["chief:0"])[:3] == ["launched", "actor_started", "process_start"]


def test_local_runs_have_no_ray_phases_and_no_driver_imports_without_its_start():
    b = BringUp(wall=lambda: 0.0)
    b.mark("launch", 10.0)
    for key in ("chief:0", "ps:0"):
        b.on_event(key, {"event": "address", "process_start": 10.1, "t": 10.5})
        b.task_mark(key, "cluster_sent", 10.6)
        b.on_event(key, {"event": "server_started", "t": 13.0, "tf_import_secs": 2.0})
    b.on_event("chief:0", {"event": "session_ready", "t": 14.0})
    b.task_mark("chief:0", "first_step", 14.5)
    phases = b.phases(["chief:0", "ps:0"])
    assert list(phases) == [
        "task_process_start",
        "rendezvous",
        "tensorflow_import",
        "server_start",
        "chief_session",
        "first_step",
        "launch_to_all_stepping",
    ]
    assert phases["launch_to_all_stepping"] == 4.5
