"""``harness run``: plan → render → launch → supervise; return the run summary.

The backend (``cluster.backends``) plans the job and renders the plan into a request, pure
data whose ``describe()`` is the ``--dry-run`` text; a run launches exactly that request and
hands the launcher to the supervisor, with TensorBoard beside it when the job asks for it
(``cluster.tensorboard.serving``).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.checkpoints import latest_checkpoint
from harness.errors import HarnessError
from harness.job import JobSpec, JobSpecError

if TYPE_CHECKING:
    from cluster.backends import LaunchingBackend
    from cluster.observe import RunObserver


def run_job(
    job: JobSpec,
    backend: str = "local",
    address: str | None = None,
    quiet: bool = False,
    extra_env: dict[str, str] | None = None,
    observers: Sequence[RunObserver] = (),
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run ``job`` to the end; returns run.json's content (``run_supervised``'s summary)."""
    summary, _ = run_supervised(
        job, backend, address, quiet, extra_env, observers, show_progress=show_progress
    )
    return summary


def run_supervised(
    job: JobSpec,
    backend: str | LaunchingBackend = "local",
    address: str | None = None,
    quiet: bool = False,
    extra_env: dict[str, str] | None = None,
    observers: Sequence[RunObserver] = (),
    show_progress: bool = True,
    stop: threading.Event | None = None,
    driver_start: float | None = None,
) -> tuple[dict[str, Any], HarnessError | None]:
    """Run ``job`` to the end with the given backend: run.json's content, and why it failed.

    ``backend`` is a backend's name (with ``address`` and ``extra_env``) or a backend object
    that brings its own (``cluster.ray_launcher.RayBackend(placement_group=...)``). Setting
    ``stop`` from another thread ends the run as Ctrl-C does (status ``interrupted``).
    ``driver_start``: when the driver process started (wall clock; ``harness run`` passes its
    own), so that run.json's bring-up breakdown (``cluster.bringup``) has the driver's imports.

    The failure is the supervisor's ``JobFailed`` (role, index, traceback lines), or None
    when the job succeeded, was interrupted or ended before a task failed it.

    ``observers`` (``cluster.observe.RunObserver``) hear of the run as it goes, and get
    ``finished(summary)`` at the end (also when training is skipped). While the job runs,
    run.json says ``"status": "running"`` (``cluster.record.RunningRecord``). ``quiet``: task output
    is not echoed (it is still logged); ``show_progress``: the progress bar or lines.

    Raises JobSpecError, before anything starts, when model_dir cannot be used
    (``check_model_dir``).
    """
    from cluster.backends import launching_backend
    from cluster.console import Console
    from cluster.record import RunningRecord
    from cluster.supervisor import Supervisor
    from cluster.tensorboard import serving

    check_model_dir(job.model_dir)
    console = Console(
        os.path.join(job.model_dir, "logs"),
        job.train.max_steps,
        quiet_tasks=quiet,
        show_progress=show_progress,
    )
    saved_step = latest_checkpoint_step(job.model_dir)
    if saved_step is not None and saved_step >= job.train.max_steps:
        console.info(
            f"Skipping training since max_steps has already saved (checkpoint at step {saved_step})."
        )
        console.close()
        summary = {
            "job": job.name,
            "status": "succeeded",
            "skipped": True,
            "error": None,
            "final_global_step": saved_step,
        }
        for observer in observers:
            observer.finished(summary)
        return summary, None
    launcher = status = None
    launch_start = time.time()
    try:
        chosen = (
            launching_backend(backend, address=address, extra_env=extra_env)
            if isinstance(backend, str)
            else backend
        )
        plan = chosen.plan(job)
        request = chosen.render(plan)
        launcher = chosen.launch(request)  # on Ctrl-C in ray.init it closes what it started
        if chosen.name == "ray":  # `harness status` / `harness logs` (cluster.status)
            from cluster.status import register_status

            keys = [t.key for t in plan.tasks]
            status = register_status(job.name, keys, job.train.max_steps, console.info)
            observers = [*observers, *([status] if status else [])]
        # run.json says "running" while the job runs; the observer is called only from inside
        # supervisor.run(), when ``supervisor`` is bound
        running = RunningRecord(job.model_dir, lambda: supervisor.summary("running", None))
        observers = [running, *observers]
        with serving(request, launcher, console) as tensorboard:  # when the job asks for it
            supervisor = Supervisor(plan, launcher, console, observers=observers, stop=stop)
            for name, at in (("driver_start", driver_start), ("launch", launch_start)):
                if at is not None:
                    supervisor.record.bring_up.mark(name, at)
            summary = tensorboard.record(supervisor.run())
        return summary, supervisor.failure
    finally:
        if status is not None:
            status.close()
        if launcher is not None:
            launcher.close()
        console.close()


def check_model_dir(model_dir: str) -> None:
    """Create ``model_dir`` if it is missing and check that a file can be written in it.

    Raises JobSpecError naming the path when it, or a folder above it, is a file, or when it
    cannot be created or written (read-only, no permission). Writability is tested by
    creating and removing a file, not by permission bits, which root ignores.
    """
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise JobSpecError(f"model_dir {model_dir}: is a file, not a directory")
    try:
        os.makedirs(model_dir, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".harness-write-test-", dir=model_dir)
        os.close(fd)
        os.remove(probe)
    except (NotADirectoryError, FileExistsError):
        raise JobSpecError(
            f"model_dir {model_dir}: a folder on its path is a file, not a directory"
        ) from None
    except PermissionError as exc:
        raise JobSpecError(
            f"model_dir {model_dir}: cannot write there ({exc.strerror}); choose a model_dir "
            "this user can write to"
        ) from None
    except OSError as exc:
        raise JobSpecError(f"model_dir {model_dir}: cannot use it: {exc.strerror}") from None


def latest_checkpoint_step(model_dir: str) -> int | None:
    """The global step of the latest checkpoint in model_dir, or None when there is none.

    The same reading as ``harness.Result.checkpoint`` (``harness.checkpoints``).
    """
    checkpoint = latest_checkpoint(model_dir) if os.path.isdir(model_dir) else None
    return None if checkpoint is None else checkpoint.step


def dry_run(job: JobSpec, args: Any) -> str:
    """What ``args.backend`` would start (its request's ``describe()``); starts nothing."""
    from cluster.backends import backend_for

    backend = backend_for(args.backend, address=args.address, image=args.image)
    return backend.render(backend.plan(job)).describe()
