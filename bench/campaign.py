"""``python -m bench.campaign``: the long fault campaign (RELIABILITY.md, "Campaign").

Per backend (``local`` processes, an embedded ``ray``, or ``both``), runs jobs of
``bench.campaign_model`` (1 chief, 2 workers, 1 ps, checkpoints every ``--checkpoint-steps``)
in which tasks SIGKILL themselves at planned random steps (``harness.faults``, several kills
a job: ``bench.campaign_plan``). Each job's ``failure.max_failures`` is its number of kills,
so one more failure than planned fails it. After each job it measures every kill
(``bench.campaign_measure``) and what was left running: the job's task processes (psutil),
and on Ray any live actor or placement group not removed. It writes one CSV row per kill
(``kills.csv``) and the summary per backend and kind (``summary.md``, also printed;
``bench.campaign_report``) to ``--out``.

Exit status: 0 when every kill was recovered, every final checkpoint loads and nothing was
left; 1 otherwise; 2 for bad arguments.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray on 127.0.0.1 only

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.campaign_measure import KillRow, rows_for_run
from bench.campaign_plan import WORKERS, Counts, RunPlan, plan_runs
from bench.campaign_report import markdown, passed, summarize, write_csv
from harness.testing import kill_tasks_at_steps, leftover_task_processes, make_job_dict

REPO = Path(__file__).resolve().parents[1]
MODEL_FN = "bench.campaign_model:model_fn"
INPUT_FN = "bench.campaign_model:input_fn"
LEFTOVER_WAIT_SECS = 15.0  # how long a run's processes/actors may take to go after it ended
QUICK = Counts(worker=2, chief=1, ps=1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.campaign",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--backend",
        choices=("local", "ray", "both"),
        default=None,
        help="where the jobs run (default: both; local with --quick)",
    )
    add("--worker-kills", type=int, default=20, help="worker kills per backend")
    add("--chief-kills", type=int, default=10, help="chief kills per backend")
    add("--ps-kills", type=int, default=10, help="ps kills per backend")
    add(
        "--quick",
        action="store_true",
        help=f"a small check: {QUICK.worker} worker, {QUICK.chief} chief and {QUICK.ps} ps "
        "kills, in one job, instead of the counts above",
    )
    add(
        "--kills-per-run",
        type=int,
        default=20,
        help="kills per job; each job's restart budget (failure.max_failures) is its kills",
    )
    add("--seed", type=int, default=0, help="seed of the kinds' order, targets and steps")
    add(
        "--gap-steps",
        type=int,
        default=200,
        help="global steps between two kills' windows; a kill is planned in the first "
        "quarter of its window, so kills are at least 3/4 of this apart",
    )
    add("--first-step", type=int, default=60, help="the first kill window's first step")
    add(
        "--tail-steps",
        type=int,
        default=400,
        help="global steps after the last kill's window, for its recovery before the end",
    )
    add("--checkpoint-steps", type=int, default=40, help="train.save_checkpoints_steps")
    add("--slow-secs", type=float, default=0.1, help="each trainer's sleep before a step")
    add(
        "--out",
        type=Path,
        default=None,
        help="folder for kills.csv, summary.md and each job's model_dir, step records and "
        "markers (default: a new folder under the temp dir)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.worker_kills, args.chief_kills, args.ps_kills = QUICK.worker, QUICK.chief, QUICK.ps
    args.backend = args.backend or ("local" if args.quick else "both")
    if args.checkpoint_steps < 1 or args.slow_secs < 0:
        parser.error("--checkpoint-steps must be 1 or more and --slow-secs 0 or more")
    try:
        args.counts = Counts(args.worker_kills, args.chief_kills, args.ps_kills)
        for backend in backends(args.backend):  # validates the plan's arguments
            plan_runs(
                backend,
                args.counts,
                args.kills_per_run,
                args.seed,
                args.gap_steps,
                args.first_step,
                args.tail_steps,
            )
    except ValueError as exc:
        parser.error(str(exc))
    return args


def backends(choice: str) -> tuple[str, ...]:
    return ("local", "ray") if choice == "both" else (choice,)


def log(message: str) -> None:
    print(f"[campaign {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def job_for(run: RunPlan, run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The job description of one run (``harness.testing.make_job_dict``'s, with the run's
    max_steps, checkpoints, model params and restart budget)."""
    return make_job_dict(
        MODEL_FN,
        INPUT_FN,
        run_dir / "model",
        name=f"campaign-{run.run_id}",
        workers=WORKERS,
        ps=1,
        max_steps=run.max_steps,
        params={"steps_dir": str(run_dir / "steps"), "slow_secs": args.slow_secs},
        train={"save_checkpoints_steps": args.checkpoint_steps},
        failure={"max_failures": len(run.kills), "stall_timeout_secs": 120},
        placement={"timeout_secs": 60},
        source_dirs=(str(REPO),),
    )


def run_one(run: RunPlan, root: Path, args: argparse.Namespace) -> list[KillRow]:
    """Run one job with its kills; its rows (the job's failure to start is a failed run)."""
    from harness.commands.run import run_job
    from harness.errors import HarnessError
    from harness.job import JobSpec

    run_dir = root / run.run_id
    run_dir.mkdir(parents=True)
    markers = [run_dir / f"kill-{j}.json" for j in range(len(run.kills))]
    env = kill_tasks_at_steps(
        [
            (kill.target.split(":")[0], int(kill.target.split(":")[1]), kill.step, marker)
            for kill, marker in zip(run.kills, markers, strict=True)
        ]
    )
    job = JobSpec.from_dict(job_for(run, run_dir, args))
    try:
        summary = run_job(job, backend=run.backend, quiet=True, extra_env=env, show_progress=False)
    except HarnessError as exc:
        summary = {"status": "failed", "error": str(exc), "failures": []}
    left = leftovers(run_dir / "model", run.backend)
    loads = final_checkpoint_loads(run_dir / "model", run.max_steps)
    if summary.get("status") != "succeeded":
        log(f"{run.run_id}: {summary.get('status')}: {summary.get('error')}")
    return rows_for_run(run, markers, run_dir / "steps", summary, loads, left)


def leftovers(model_dir: Path, backend: str) -> int:
    """What of the job is still there ``LEFTOVER_WAIT_SECS`` after it ended (or at once when
    nothing is): its task processes, and on Ray live actors and unremoved placement groups."""
    deadline = time.monotonic() + LEFTOVER_WAIT_SECS
    while True:
        found = [f"pid {p.pid}" for p in leftover_task_processes(model_dir)]
        if backend == "ray":
            found += ray_leftovers()
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if found:
        log(f"left after the run of {model_dir}: {found}")
    return len(found)


def ray_leftovers() -> list[str]:
    """Live actors and placement groups not removed, on the Ray this process is connected to
    (the campaign creates none itself: every one is a job's)."""
    from ray._private.state import actors
    from ray.util import placement_group_table

    left = [f"actor {a.get('Name') or aid}" for aid, a in actors().items() if a["State"] != "DEAD"]
    groups = placement_group_table().items()
    left += [
        f"placement group {g.get('name') or gid}" for gid, g in groups if g["state"] != "REMOVED"
    ]
    return left


def final_checkpoint_loads(model_dir: Path, max_steps: int) -> bool:
    """model_dir's latest checkpoint loads and holds a global step of max_steps or more."""
    import tensorflow as tf

    try:
        latest = tf.train.latest_checkpoint(str(model_dir))
        step = tf.train.load_checkpoint(latest).get_tensor("global_step") if latest else -1
        return bool(step >= max_steps)
    except (tf.errors.OpError, ValueError):
        return False


def connect_ray(cpus: int = 8) -> None:
    """One embedded Ray for every Ray run (the jobs use the Ray this process is connected
    to, and leave it running: ``cluster.ray_launcher``), so leftovers can be looked for."""
    import ray

    ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level="WARNING")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="harness-campaign-"))
    out.mkdir(parents=True, exist_ok=True)
    rows: list[KillRow] = []
    runs = 0
    started = time.monotonic()
    for backend in backends(args.backend):
        plans = plan_runs(
            backend,
            args.counts,
            args.kills_per_run,
            args.seed,
            args.gap_steps,
            args.first_step,
            args.tail_steps,
        )
        if backend == "ray":
            connect_ray()
        try:
            for run in plans:
                t0 = time.monotonic()
                new = run_one(run, out / "runs", args)
                rows += new
                runs += 1
                write_csv(out / "kills.csv", rows)
                ok = sum(r.recovered for r in new)
                log(
                    f"{run.run_id}: {ok}/{len(new)} kills recovered, max_steps {run.max_steps}, "
                    f"{time.monotonic() - t0:.0f} s"
                )
        finally:
            if backend == "ray":
                import ray

                ray.shutdown()
    elapsed = time.monotonic() - started
    table = markdown(summarize(rows), runs)
    (out / "summary.md").write_text(table)
    print(table)
    print(
        f"{len(rows)} kills in {elapsed:.0f} s ({elapsed / max(1, len(rows)):.1f} s a kill); "
        f"CSV: {out / 'kills.csv'}, summary: {out / 'summary.md'}"
    )
    return 0 if passed(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
