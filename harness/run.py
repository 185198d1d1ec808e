"""``harness run``: pick the launcher, run the supervisor, return the run summary."""

from __future__ import annotations

import os
from typing import Any

from harness.job import JobSpec, JobSpecError


def run_job(
    job: JobSpec,
    backend: str = "local",
    address: str | None = None,
    quiet: bool = False,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``job`` to the end with the given backend; returns run.json's content."""
    from cluster.console import Console
    from cluster.supervisor import Supervisor

    console = Console(os.path.join(job.model_dir, "logs"), job.train.max_steps, quiet_tasks=quiet)
    saved_step = latest_checkpoint_step(job.model_dir)
    if saved_step is not None and saved_step >= job.train.max_steps:
        console.info(
            f"Skipping training since max_steps has already saved (checkpoint at step {saved_step})."
        )
        console.close()
        return {
            "job": job.name,
            "status": "succeeded",
            "skipped": True,
            "error": None,
            "final_global_step": saved_step,
        }
    plan, launcher = _plan_and_launcher(job, backend, address, extra_env or {})
    try:
        return Supervisor(plan, launcher, console).run()
    finally:
        launcher.close()
        console.close()


def latest_checkpoint_step(model_dir: str) -> int | None:
    """The global step of the latest checkpoint in model_dir, or None when there is none."""
    import tensorflow as tf

    path = tf.train.latest_checkpoint(model_dir) if os.path.isdir(model_dir) else None
    if path is None:
        return None
    return int(tf.train.load_checkpoint(path).get_tensor("global_step"))


def _plan_and_launcher(
    job: JobSpec, backend: str, address: str | None, extra_env: dict[str, str]
) -> Any:
    from cluster.plan import make_plan

    if backend == "local":
        from cluster.local import LocalLauncher, visible_gpus

        return make_plan(job, "local", visible_gpus=visible_gpus()), LocalLauncher(extra_env)
    if backend == "ray":
        from cluster.ray_launcher import RayLauncher

        return make_plan(job, "ray"), RayLauncher(job, address=address, extra_env=extra_env)
    raise JobSpecError(f"--backend {backend}: cannot run jobs; use it with --dry-run")


def dry_run(job: JobSpec, args: Any) -> str:
    """The plan of ``args.backend``, printed without starting anything."""
    from cluster.plan import make_plan

    if args.backend == "local":
        from cluster.local import visible_gpus

        return make_plan(job, "local", visible_gpus=visible_gpus()).describe()
    if args.backend == "ray":
        from cluster.ray_launcher import describe_ray_plan

        return describe_ray_plan(make_plan(job, "ray"))
    from cluster.k8s import render_rayjob

    return render_rayjob(job, image=args.image)
