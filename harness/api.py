"""The Python API: ``harness.fit(job) -> harness.Result``, what ``harness run`` does, from code.

::

    import harness

    job = harness.Job(
        name="linear",
        model_fn="model:model_fn",
        input_fn="model:input_fn",
        model_dir="/tmp/linear",
        cluster={"workers": 2, "ps": 1},
        train={"max_steps": 1000},
    )  # or harness.Job.from_yaml("job.yaml")
    result = harness.fit(job, backend="local")
    print(result.metrics["loss"], result.checkpoint.path)

Contract of ``fit``:

- Invalid input fails before anything starts, with ``harness.JobSpecError`` (a
  ``HarnessError`` naming the field): a model_fn/input_fn that cannot be imported, a
  model_dir that cannot be written. Everything after that is in the ``Result``: a job that
  failed or was interrupted does not raise; ``result.error`` says why and
  ``result.raise_for_error()`` raises it.
- It prints no progress bar and no task output unless asked (``progress=True``,
  ``echo=True``); the harness's own one-line notes (restarts, failures) are printed. Task
  output always goes to ``<model_dir>/logs/<role>-<index>.log``.
- It works inside a Ray driver (an existing ``ray.init`` connection is used), a notebook and
  pytest; ``backend="ray"`` with no address and no connection starts an embedded Ray for the
  run and shuts it down afterwards.
- ``observers`` (``cluster.observe.RunObserver``) hear of the run while it goes.
- ``stop`` (a ``threading.Event``) set from another thread ends the run as Ctrl-C does:
  every task is stopped, the Result's status is ``"interrupted"``.

``Result`` is built from run.json (``run``), the supervisor's failure (``error``) and the
latest checkpoint in model_dir (``checkpoint``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from harness.checkpoints import Checkpoint, latest_checkpoint
from harness.errors import HarnessError
from harness.job import JobSpec, JobSpecError
from harness.job_errors import first_field, format_errors

if TYPE_CHECKING:
    from cluster.backends import LaunchingBackend
    from cluster.observe import RunObserver

BACKENDS = ("ray", "local")


class Job(JobSpec):
    """A job built in Python (``harness.Job``): the fields of a job file, as keywords.

    ``Job(name=..., model_fn="model:model_fn", input_fn="model:input_fn", model_dir=...,
    cluster={"workers": 2, "ps": 1}, train={"max_steps": 1000})``; nested sections are dicts
    or their models. Validated as a job file is: ``JobSpecError`` lists every problem with its
    field path. A relative model_dir is taken from the current directory, and the current
    directory is searched for the functions' modules unless ``source_dirs`` is given.
    ``Job.from_yaml(path)`` reads a job file (a ``JobSpec``, which is what a Job is).
    """

    def __init__(self, **fields: Any) -> None:
        if isinstance(fields.get("model_dir"), str | os.PathLike):
            fields["model_dir"] = os.path.abspath(os.path.expanduser(fields["model_dir"]))
        fields.setdefault("source_dirs", (os.getcwd(),))
        try:
            super().__init__(**fields)
        except ValidationError as exc:
            raise JobSpecError(format_errors(exc, "Job", JobSpec), field=first_field(exc)) from None


@dataclass(frozen=True)
class Result:
    """What a run left: its metrics, its latest checkpoint, run.json, and its error if any.

    Attributes:
        status: ``"succeeded"``, ``"failed"`` or ``"interrupted"``.
        metrics: ``global_step`` (final), ``loss`` (the last reported), ``steps_per_sec``
            (global steps per second while training), ``eval`` (the last evaluation's
            metrics, or None without an evaluator).
        checkpoint: the latest checkpoint in model_dir, or None when there is none.
        model_dir: the job's model_dir.
        run: run.json's content.
        error: None on success; else a ``HarnessError`` whose ``role``/``index`` name the
            task that failed the job (None when no single task did, e.g. a stall or Ctrl-C),
            with ``traceback`` (that task's last traceback or output lines) and ``user_error``
            (True when the cause is the user's code or data, never retried).
    """

    status: str
    metrics: dict[str, Any]
    checkpoint: Checkpoint | None
    model_dir: str
    run: dict[str, Any] = field(repr=False)
    error: HarnessError | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def raise_for_error(self) -> Result:
        """Raise ``error`` when the run did not succeed; else return the Result."""
        if self.error is not None:
            raise self.error
        return self


def fit(
    job: JobSpec,
    backend: str | LaunchingBackend = "ray",
    address: str | None = None,
    *,
    progress: bool = False,
    echo: bool = False,
    observers: Sequence[RunObserver] = (),
    metrics_port: int | None = None,
    extra_env: dict[str, str] | None = None,
    stop: threading.Event | None = None,
    driver_start: float | None = None,
) -> Result:
    """Train ``job`` on a cluster to ``train.max_steps``; returns its ``Result``.

    ``backend``: ``"ray"`` (Ray actors on ``address``, ``RAY_ADDRESS``, the Ray this process
    is connected to, or an embedded Ray) or ``"local"`` (one OS process per task). ``progress``
    shows the progress bar (on a TTY) or progress lines; ``echo`` prints the tasks' output,
    prefixed with their role:index. ``backend`` may also be a backend object, which brings its
    own address and environment (``cluster.ray_launcher.RayBackend(placement_group=...)``, as
    ``harness.tune`` passes). On Ray the run's metrics (``harness_global_step``, ...,
    docs/metrics.md) are Ray metrics; ``metrics_port`` also serves them on
    ``http://127.0.0.1:PORT/metrics`` (0: a free port). Raises ``JobSpecError`` for invalid
    input (see the module docstring); a failed run returns a Result whose ``error`` says why.
    ``driver_start`` (wall clock) is when the driver process started, for run.json's bring-up
    breakdown (``harness run`` passes its own; ``result.run["timings"]["bring_up"]``).
    """
    from harness.commands.run import run_supervised

    if not isinstance(job, JobSpec):
        raise JobSpecError(
            f"fit: job must be a harness.Job (got {type(job).__name__}); build one with "
            "harness.Job(...) or harness.Job.from_yaml(path)",
            field="job",
        )
    if not isinstance(backend, str):
        if address is not None or extra_env:
            raise JobSpecError(
                "fit: a backend object brings its own address and extra_env; pass them to it",
                field="backend",
            )
    elif backend not in BACKENDS:
        raise JobSpecError(
            f"fit: backend must be one of {', '.join(BACKENDS)} (got {backend!r}); "
            "Kubernetes jobs are rendered with `harness render k8s`",
            field="backend",
        )
    job.resolve_functions()
    from cluster.metrics import metrics_observers

    backend_name = backend if isinstance(backend, str) else backend.name
    observers = [*observers, *metrics_observers(job.name, backend_name, metrics_port)]
    try:
        summary, failure = run_supervised(
            job,
            backend=backend,
            address=address,
            quiet=not echo,
            show_progress=progress,
            observers=observers,
            extra_env=extra_env,
            stop=stop,
            driver_start=driver_start,
        )
    finally:  # a run that ended before the supervisor ran: close what the observers hold
        for observer in observers:
            getattr(observer, "close", lambda: None)()
    return result_of(job, summary, failure)


def result_of(job: JobSpec, summary: dict[str, Any], failure: HarnessError | None = None) -> Result:
    """The Result of a run of ``job`` that ended with ``summary`` (run.json's content)."""
    status = summary["status"]
    error = failure
    if status != "succeeded" and error is None:
        error = HarnessError(summary.get("error") or f"the job {status}")
    if error is not None and not hasattr(error, "traceback"):
        error.traceback = ()  # type: ignore[attr-defined]
    if error is not None and not hasattr(error, "user_error"):
        error.user_error = bool(summary.get("user_error"))  # type: ignore[attr-defined]
    latest = summary.get("eval") or {}
    metrics = {
        "global_step": summary.get("final_global_step", 0),
        "loss": summary.get("last_loss"),
        "steps_per_sec": summary.get("steps_per_sec"),
        "eval": latest.get("metrics"),
    }
    return Result(
        status=status,
        metrics=metrics,
        checkpoint=latest_checkpoint(job.model_dir),
        model_dir=job.model_dir,
        run=summary,
        error=error,
    )
