"""``harness status JOB`` and ``harness logs JOB ROLE:INDEX``: a job running on a Ray cluster.

Both find the job's status board (``cluster.status``) by the job's name on the cluster of
``--address`` / ``RAY_ADDRESS``. ``add_status_parsers`` adds the two subcommands to the CLI;
each parser's ``run_command`` default is the function that runs it (``status_command``,
``logs_command``), which returns the exit status:

- 0: printed (``logs --follow``: the job ended);
- 2: no Ray address, the cluster refused the connection, no running job of that name (the
  message lists the jobs that are running), or no such task (the message lists the tasks);
- 130: ``logs --follow`` interrupted (Ctrl-C), quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from typing import Any

from harness.commands import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK

FOLLOW_WAIT_SECS = 1.0  # each --follow long poll


def add_status_parsers(commands: Any) -> None:
    """Add ``status`` and ``logs`` to the CLI's subparsers (``commands``)."""
    status = commands.add_parser(
        "status",
        help="show the tasks and progress of a job running on a Ray cluster",
        description="Show each task of JOB (state, node, restarts) and the job's global step, "
        "loss, steps/s, elapsed time and latest evaluation, for a job that `harness run` is "
        "running on the Ray cluster of --address / RAY_ADDRESS.",
    )
    status.add_argument("job", metavar="JOB_NAME")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    _add_address(status)
    status.set_defaults(run_command=status_command)

    logs = commands.add_parser(
        "logs",
        help="print a task's output lines of a job running on a Ray cluster",
        description="Print the latest output lines (up to 1000) of one task of JOB, running on "
        "the Ray cluster of --address / RAY_ADDRESS; --follow keeps printing new lines until "
        "the job ends.",
    )
    logs.add_argument("job", metavar="JOB_NAME")
    logs.add_argument("task", metavar="ROLE:INDEX", help="e.g. chief:0, worker:1, ps:0")
    logs.add_argument("--follow", "-f", action="store_true", help="print new lines as they come")
    _add_address(logs)
    logs.set_defaults(run_command=logs_command)


def _add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", help="the Ray cluster's address HOST:PORT, or auto (default: RAY_ADDRESS)"
    )


def status_command(args: argparse.Namespace) -> int:
    """``harness status``: print the job's status (``--json``: as JSON)."""
    from cluster import status_client

    board = _board(args.address, args.job)
    if board is None:
        return EXIT_INVALID
    try:
        status = status_client.fetch_status(board)
    except status_client.BoardGone:
        return _error(f"job {args.job} is not running on this Ray cluster (its run just ended)")
    status.pop("version", None)
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return EXIT_OK


def logs_command(args: argparse.Namespace) -> int:
    """``harness logs``: print the task's kept lines; ``--follow``: and new ones, to the end."""
    from cluster import status_client

    try:
        board = _board(args.address, args.job)
        if board is None:
            return EXIT_INVALID
        try:
            keys = list(status_client.fetch_status(board)["tasks"])
        except status_client.BoardGone:
            return _error(f"job {args.job} is not running on this Ray cluster")
        if args.task not in keys:
            return _error(f"job {args.job} has no task {args.task}; its tasks: {', '.join(keys)}")
        return _print_lines(board, args.job, args.task, args.follow)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `harness logs ... | head`
        sys.stdout = open(os.devnull, "w")  # nothing more is written; no error at exit
        return EXIT_OK


def _board(address: str | None, job: str) -> Any:
    from cluster import status_client

    status_client.connect(address)  # JobSpecError: the CLI prints it, exit 2
    try:
        return status_client.find_board(job)
    except status_client.JobNotRunning as exc:
        _error(str(exc))
        return None


def _print_lines(board: Any, job: str, key: str, follow: bool) -> int:
    from cluster import status_client

    follower = uuid.uuid4().hex if follow else None
    after, wait = 0, 0.0
    while True:
        try:
            reply = status_client.fetch_lines(board, key, after, wait, follower)
        except status_client.BoardGone:
            if follow:
                print(f"harness: the run of job {job} has ended", file=sys.stderr)
            return EXIT_OK
        lines = reply["lines"]
        note = gap_note(key, after, lines[0][0] if lines else None)
        if note:
            print(note, file=sys.stderr, flush=True)
        for seq, text in lines:
            print(text)
            after = seq
        sys.stdout.flush()
        if not follow or reply["finished"]:
            return EXIT_OK
        wait = FOLLOW_WAIT_SECS


def gap_note(key: str, after: int, first: int | None) -> str | None:
    """The note for lines that were not kept before line ``first`` (None: no gap)."""
    if first is None or first <= after + 1:
        return None
    missing = first - after - 1
    what = "earlier lines" if after == 0 else "lines"
    return (
        f"[harness] {missing} {what} of {key} are no longer kept here; the task's log file "
        "under model_dir/logs has every line"
    )


def _error(message: str) -> int:
    print(f"harness: error: {message}", file=sys.stderr)
    return EXIT_INVALID


# ---- the text of `harness status` -------------------------------------------------------------


def format_status(status: dict[str, Any]) -> str:
    """The human-readable status: a job line, the latest evaluation, a table of the tasks."""
    lines = [_job_line(status)]
    evaluation = status.get("evaluation")
    if evaluation:
        lines.append(f"  latest evaluation: {format_evaluation(evaluation)}")
    if status.get("error"):
        lines.append(f"  error: {str(status['error']).splitlines()[0]}")
    rows = [("TASK", "STATE", "NODE", "RESTARTS")]
    for key, task in status["tasks"].items():
        rows.append((key, task_state(task), task.get("node") or "-", str(task["restarts"])))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        cells.append(row[3])
        lines.append("  " + "  ".join(cells))
    return "\n".join(lines)


def _job_line(status: dict[str, Any]) -> str:
    progress = status.get("progress") or {}
    step = progress.get("global_step", 0)
    parts = [f"global step {step}/{status['max_steps']}"]
    if progress.get("loss") is not None:
        parts.append(f"loss {progress['loss']:.4g}")
    if progress.get("steps_per_sec") is not None:
        parts.append(f"{progress['steps_per_sec']:.1f} steps/s")
    parts.append(f"elapsed {format_duration(status.get('elapsed_secs', 0.0))}")
    return f"job {status['job']}: {status['state']}, " + ", ".join(parts)


def task_state(task: dict[str, Any]) -> str:
    """``starting``, ``running``, ``restarting`` or ``exited (code N)``."""
    if task["state"] == "exited":
        return f"exited (code {task['exit_code']})"
    return str(task["state"])


def format_evaluation(evaluation: dict[str, Any]) -> str:
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted(evaluation["metrics"].items()))
    return f"global step {evaluation['global_step']}: {metrics or 'no metrics'}"


def format_duration(secs: float) -> str:
    """``42s``, ``3m05s``, ``2h01m``."""
    secs = int(secs)
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m{secs % 60:02d}s"
    return f"{secs // 3600}h{secs % 3600 // 60:02d}m"
