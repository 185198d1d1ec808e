"""``harness validate``: build every graph a job will build, and show each role's hooks.

No server is started, no checkpoint is needed and the environment is left alone. In throwaway
``tf.Graph``s, with a placeholder cluster (each trainer's RunConfig comes from a ``TaskSpec``
with placeholder addresses, as the task's would from its real one):

1. the TRAIN graph of the chief and of a worker (input_fn and model_fn in TRAIN mode, the
   result checked, the role's hooks selected); a table lists every hook each role will run,
   by class, in call order, with its origin (training_hooks, training_chief_hooks, or who adds
   the default: the harness, Estimator or MonitoredTrainingSession) and, for a default, its
   cadence for this job; all of it from ``hooks.roles``'s table;
2. the EVAL graph (the evaluator task and ``harness evaluate``), with the eval input_fn;
3. the export graph (``harness export``, ``train.export_on_finish``): the INFER graph and its
   serving signatures.

A failure names the role or mode, the user's file and line, and the error. A TRAIN failure is
always an error. An EVAL or export failure is an error when the job uses that graph (an
evaluator task or ``eval.input_fn``; ``export_on_finish`` or ``serving_input_fn``), and a
warning otherwise, since ``harness run`` would not build it. Exit status 0 when valid, 2 when
not.
"""

from __future__ import annotations

import sys
import threading

from rich import box
from rich.console import Console
from rich.table import Table

from cluster.plan import placeholder_cluster
from harness.identity import TaskId, TaskSpec
from harness.job import JobSpec, JobSpecError
from harness.legacy_keras import describe as describe_keras
from harness.runtime.graph import UserCodeError


def _placeholder_addresses(job: JobSpec) -> dict[str, list[str]]:
    return {
        role: [f"localhost:{2222 + 10 * n + i}" for i in range(len(tasks))]
        for n, (role, tasks) in enumerate(placeholder_cluster(job).items())
    }


def validate_job(job: JobSpec, origin: str) -> int:
    """Print the hook table and what else was built; returns 0 when valid, 2 otherwise."""
    console = Console(width=None if sys.stdout.isatty() else 120)  # piped: rows unwrapped
    console.print(describe_keras(job.keras), highlight=False)
    table = _hook_table(job, origin)
    if table is None:
        return 2
    console.print(table)
    checks = [
        ("EVAL graph", _build_eval, bool(job.cluster.evaluator or job.eval.input_fn)),
        ("export graph", _build_export, bool(job.train.export_on_finish or job.serving_input_fn)),
    ]
    failed = False
    for what, build, used in checks:
        try:
            console.print(f"{what}: {build(job)}", highlight=False)
        except (UserCodeError, JobSpecError, ValueError) as exc:
            if used:
                print(f"harness: error: {origin}: {what}: {exc}", file=sys.stderr)
                failed = True
            else:
                console.print(
                    f"[yellow]warning: {what}: {exc}[/yellow] (this job's run does not build it, "
                    f"but `harness {'evaluate' if what.startswith('EVAL') else 'export'}` "
                    "would fail)",
                    highlight=False,
                )
    if failed:
        return 2
    console.print(f"[green]{origin}: valid[/green] ({job.num_tasks} tasks: {job.task_counts()})")
    return 0


def _hook_table(job: JobSpec, origin: str) -> Table | None:
    """The TRAIN graph of each trainer role, as a hook table; None (message printed) on error."""
    rows = hook_rows(job, origin)
    if rows is None:
        return None
    table = Table(
        title=f"{job.name}: hooks per role (MonitoredSession call order)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column in ("role", "#", "hook", "origin"):
        table.add_column(column, no_wrap=True)
    table.add_column("cadence")
    table.add_column("fetches", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def hook_rows(job: JobSpec, origin: str) -> list[tuple[str, ...]] | None:
    """``(task, #, hook, origin, cadence, fetches)`` per hook of each role of the job, from the TRAIN
    graphs' real hooks and ``hooks.roles``; None (message printed) when a graph fails."""
    from harness.runtime.run_config import run_config
    from harness.runtime.trainer import build_task_graph
    from hooks import roles

    cluster = _placeholder_addresses(job)
    trainers = ["chief"] + (["worker"] if job.cluster.workers else [])
    rows = []
    for role in trainers:
        task = TaskSpec(TaskId(role, 0), job, cluster=cluster)
        try:
            graph, _ = build_task_graph(
                job, run_config(task), lambda *a, **k: None, threading.Event()
            )
        except UserCodeError as exc:
            print(f"harness: error: {origin}: {role}:0: {exc}", file=sys.stderr)
            return None
        lines = roles.describe(graph.role_hooks, role, job)
        for n, line in enumerate(lines, 1):
            rows.append((f"{role}:0", str(n), line.hook, line.origin, line.cadence, line.fetches))
        for line in roles.wrappers(role, job):
            rows.append((f"{role}:0", "*", line.hook, line.origin, line.cadence, "-"))
    for role in ("ps", "evaluator"):
        if getattr(job.cluster, role):
            rows.append((f"{role}:*", "-", "(none)", "-", roles.ROLE_NOTES[role], "-"))
    return rows


def _build_eval(job: JobSpec) -> str:
    from harness.runtime.evaluation import build_eval_graph, resolve_eval_functions
    from harness.runtime.run_config import local_run_config

    model_fn, input_fn = resolve_eval_functions(job)
    graph = build_eval_graph(job, local_run_config(job), model_fn, input_fn)
    return "builds; metrics " + ", ".join(sorted(graph.value_ops))


def _build_export(job: JobSpec) -> str:
    from harness.commands.quiet import tensorflow_notices_quiet
    from harness.export.graph import build_export_graph

    with tensorflow_notices_quiet():
        graph = build_export_graph(job, job.train.export_default_output)
    return "builds; signatures " + "; ".join(
        f"{key} (inputs {', '.join(sorted(sig.inputs))})"
        for key, sig in sorted(graph.signatures.items())
    )
