"""bench.cpu_use: processes sorted into groups, and their CPU use in a window, in cores."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench.cpu_use import GROUPS, CpuUse, cores_between, group_of, machine_cores


def test_processes_are_grouped_by_their_command_line():
    assert group_of(7, ["python", "-m", "bench"], driver=7) == "driver"
    assert group_of(8, ["python", "-m", "harness.task", "--role", "ps"], 7) == "tasks"
    assert group_of(8, ["python", "-m", "bench.bare_tf", "--task", "chief:0"], 7) == "tasks"
    assert group_of(8, ["python", "-m", "bench.bare_tf", "--size", "small"], 7) == "other"
    assert group_of(8, ["ray::TaskActor.run"], 7) == "ray actors"
    assert group_of(8, ["/x/ray/core/src/ray/raylet/raylet", "--node"], 7) == "ray services"
    assert group_of(8, ["python", "/x/ray/dashboard/agent.py"], 7) == "ray services"
    assert group_of(8, ["sshd"], 7) == "other"


def test_cores_are_cpu_seconds_per_second_by_group_and_a_new_process_counts_from_its_start():
    before = (10.0, {1: ("tasks", 5.0), 2: ("driver", 1.0), 3: ("tasks", 9.0)})
    # pid 3 ended; pid 4 started inside the window
    after = (12.0, {1: ("tasks", 7.0), 2: ("driver", 1.5), 4: ("other", 0.4)})
    cores = cores_between(before, after, cores=2)
    assert list(cores) == list(GROUPS)
    assert cores["tasks"] == 1.0
    assert cores["driver"] == 0.25
    assert cores["other"] == 0.2
    assert cores["idle"] == 0.55  # 2 cores less 1.45 used
    assert cores["ray actors"] == 0.0


@pytest.mark.timeout(60)
def test_a_busy_task_process_shows_as_about_one_core_of_tasks():
    busy = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass"
    proc = subprocess.Popen([sys.executable, "-c", busy, "harness.task"])
    try:
        with CpuUse(interval=0.2) as cpu:
            time.sleep(0.5)
            start = time.monotonic()
            time.sleep(2.0)
            end = time.monotonic()
            time.sleep(0.5)
        cores = cpu.cores(start, end)
    finally:
        proc.kill()
        proc.wait()
    assert cores is not None
    snaps = [s for s in cpu.snapshots if start <= s[0] <= end]
    first, last = snaps[0], snaps[-1]
    group, spent = last[1][proc.pid][0], last[1][proc.pid][1] - first[1][proc.pid][1]
    assert group == "tasks"
    # one spinning process: some of one core on a busy machine, never more than one
    assert 0.2 < spent / (last[0] - first[0]) <= 1.05
    assert cores["tasks"] >= 0.2  # the machine may run other task processes too
    # what every process used fits in the cores this process may run on: nothing counted twice
    assert cores["idle"] >= 0
    assert sum(cores.values()) == pytest.approx(machine_cores(), rel=0.2)
    assert cpu.cores(end + 100, end + 200) is None  # no snapshot inside that window


def test_the_window_uses_snapshots_inside_it_so_tasks_gone_at_its_end_still_count():
    cpu = CpuUse()
    cpu.snapshots = [
        (0.0, {5: ("tasks", 0.0)}),
        (1.0, {5: ("tasks", 1.5)}),
        (2.0, {5: ("tasks", 3.0)}),
        (3.0, {}),  # the tasks ended 0.1 s after the window
    ]
    cpu._cores = 2
    cores = cpu.cores(0.5, 2.9)
    assert cores is not None
    assert cores["tasks"] == 1.5
    assert cores["idle"] == 0.5
