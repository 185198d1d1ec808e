"""A task process gets its own process group, in its parent's session (cluster.processes)."""

from __future__ import annotations

import os
import sys

import psutil
import pytest

from cluster.processes import kill_tree, spawn_task

REPORT = "import os; print(os.getsid(0), os.getpgid(0), flush=True); import sys; sys.stdin.read()"


@pytest.mark.timeout(60)
def test_a_task_has_its_own_process_group_in_the_parents_session():
    """Its own group keeps a Ctrl-C at the terminal (sent to the foreground group) away; the
    parent's session keeps it in the parent's scheduler autogroup (spawn_task's docstring)."""
    proc = spawn_task([sys.executable, "-c", REPORT], dict(os.environ))
    try:
        assert proc.stdout is not None
        sid, pgid = (int(x) for x in proc.stdout.readline().split())
        assert pgid == proc.pid != os.getpgid(0)
        assert sid == os.getsid(0)
        with open(f"/proc/{proc.pid}/autogroup") as child, open("/proc/self/autogroup") as me:
            # "/autogroup-N nice 0"; empty where the kernel keeps no autogroups
            assert child.read().split()[:1] == me.read().split()[:1]
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


@pytest.mark.timeout(60)
def test_kill_tree_takes_the_task_and_what_it_started():
    script = (
        "import subprocess, sys, time; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(c.pid, flush=True); time.sleep(60)"
    )
    proc = spawn_task([sys.executable, "-c", script], dict(os.environ))
    assert proc.stdout is not None
    grandchild = psutil.Process(int(proc.stdout.readline()))
    kill_tree(proc.pid)
    proc.wait(timeout=30)
    grandchild.wait(timeout=30)
    assert not grandchild.is_running()
