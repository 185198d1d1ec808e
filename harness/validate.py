"""``harness validate``: build each trainer role's TRAIN graph and show its hooks.

No server is started: the chief's and a worker's graphs are built in throwaway
``tf.Graph``s with a placeholder cluster, input_fn and model_fn are called in TRAIN mode,
their result is checked, and a table lists every hook each role will run, by class, with
its origin (training_hooks, training_chief_hooks or a harness default).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from unittest import mock

from rich.console import Console
from rich.table import Table

from cluster.plan import placeholder_cluster
from harness.graph import UserCodeError
from harness.job import JobSpec


def _placeholder_addresses(job: JobSpec) -> dict[str, list[str]]:
    return {
        role: [f"localhost:{2222 + 10 * n + i}" for i in range(len(tasks))]
        for n, (role, tasks) in enumerate(placeholder_cluster(job).items())
    }


def validate_job(job: JobSpec, origin: str) -> int:
    """Print the hook table; returns 0 when valid, 2 (with a message) otherwise."""
    from harness.trainer import build_task_graph, run_config

    console = Console()
    cluster = _placeholder_addresses(job)
    roles = ["chief"] + (["worker"] if job.cluster.workers else [])
    table = Table(title=f"{job.name}: hooks per role (MonitoredSession call order)")
    for column in ("role", "#", "hook", "origin"):
        table.add_column(column)
    for role in roles:
        tf_config = json.dumps({"cluster": cluster, "task": {"type": role, "index": 0}})
        with mock.patch.dict(os.environ, {"TF_CONFIG": tf_config}):
            try:
                graph, _ = build_task_graph(
                    job, run_config(job), lambda *a, **k: None, threading.Event()
                )
            except UserCodeError as exc:
                print(f"harness: error: {origin}: {role}:0: {exc}", file=sys.stderr)
                return 2
        for n, entry in enumerate(graph.role_hooks.entries_in_call_order(), 1):
            table.add_row(f"{role}:0", str(n), type(entry.hook).__name__, entry.origin)
    if job.cluster.ps:
        table.add_row("ps:*", "-", "(no hooks: hosts variables)", "-")
    console.print(table)
    console.print(
        "Also on the chief, from MonitoredTrainingSession: StepCounterHook and SummarySaverHook "
        f"(summaries every {job.train.save_summary_steps} steps).",
        highlight=False,
    )
    console.print(f"[green]{origin}: valid[/green] ({job.num_tasks} tasks: {job.task_counts()})")
    return 0
