"""``harness run --timings``: the bring-up breakdown of a finished run, as a small table.

Reads only run.json's ``timings`` (``cluster.record``, ``cluster.bringup``): the phases of
``bring_up`` in order with their seconds, the workers' join delays, then one row per task
with its milestones (seconds since the launch).
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

#: The per-task milestones shown, in order (``cluster.bringup``), and their column headers.
TASK_COLUMNS = {
    "launched": "launched",
    "actor_started": "actor",
    "process_start": "process",
    "address": "address",
    "cluster_sent": "cluster",
    "tf_imported": "tf",
    "server_started": "server",
    "session_ready": "session",
    "first_step": "step",
}


def phase_table(timings: dict[str, Any]) -> Table:
    """Phase -> seconds (``timings["bring_up"]``), then each ``join_delay_secs.<worker>``."""
    table = Table(title="bring-up", title_justify="left")
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    phases = dict(timings.get("bring_up") or {})
    total = phases.pop("launch_to_all_stepping", None)
    for phase, secs in phases.items():
        table.add_row(phase.replace("_", " "), f"{secs:.3f}")
    if total is not None:
        table.add_row("launch → all trainers stepping", f"{total:.3f}", style="bold")
    for name, secs in sorted(timings.items()):
        if name.startswith("join_delay_secs."):
            table.add_row(f"join delay {name.split('.', 1)[1]}", f"{secs:.3f}")
    return table


def task_table(timings: dict[str, Any]) -> Table:
    """One row per task: its milestones in seconds since the launch (blank: not reached)."""
    tasks = timings.get("bring_up_tasks") or {}
    shown = [c for c in TASK_COLUMNS if any(c in marks for marks in tasks.values())]
    table = Table(title="per task (seconds since launch)", title_justify="left")
    table.add_column("task")
    for column in shown:
        table.add_column(TASK_COLUMNS[column], justify="right")
    for key, marks in tasks.items():
        cells = [f"{marks[c]:.2f}" if c in marks else "" for c in shown]
        table.add_row(key, *cells)
    return table


def print_timings(run: dict[str, Any], console: Console | None = None) -> None:
    """Print both tables of run.json's content ``run`` (nothing when it has no bring-up)."""
    timings = run.get("timings") or {}
    if not timings.get("bring_up"):
        return
    console = console or Console(width=None if sys.stdout.isatty() else 120)  # piped: unwrapped
    console.print(phase_table(timings))
    console.print(task_table(timings))
