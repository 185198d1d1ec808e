"""Ray Tune trials that are whole clusters: ``harness.tune.trainable(job)`` (docs/tune.md).

::

    try:
    from ray import tune
except ImportError as exc:  # ray[default] alone lacks Tune's own dependencies
    raise ImportError(
        f"harness.tune needs Ray Tune ({exc}); install it with: pip install 'tf-harness[tune]' "
        "(or pip install 'ray[tune]==2.60.*')"
    ) from exc
    from ray.tune.schedulers import ASHAScheduler
    import harness, harness.tune

    job = harness.Job(name="linear", model_fn="model:model_fn", input_fn="model:input_fn",
                      model_dir="/unused", cluster={"workers": 1}, train={"max_steps": 400})
    tuner = tune.Tuner(
        harness.tune.trainable(job, report_every_steps=50),
        param_space={"learning_rate": tune.grid_search([0.3, 0.1, 0.01])},
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=ASHAScheduler(
            time_attr="global_step", max_t=400, grace_period=50)),
    )
    best = tuner.fit().get_best_result()

Contract:

- **A trial is a whole cluster.** Its resources are ``trial_resources(job)``, a
  ``PlacementGroupFactory`` whose bundles are the job's own (``RayRequest.bundles``: GPUs
  only for the chief and workers) after an empty head bundle: the trial's driver (the
  Trainable actor, which runs the supervisor) takes no resources, as ``harness run`` takes
  none, so Tune puts it beside bundle 0 and the group's bundles are exactly the job's. Tune
  places a trial's group atomically; the trial's tasks are started in it
  (``RayBackend(placement_group=...)``), so trials never oversubscribe.
- **Per trial:** the config is merged over the job's ``params``; the model_dir is
  ``<trial dir>/model`` in Tune's storage (the trial's persistent directory, the same path
  when the experiment is restored), so trials never share checkpoints; the job's name is
  ``<name>-<trial id>`` (lowercase, dashes, at most 40 characters), so actor names are unique.
- **Reports.** A ``RunObserver`` turns the supervisor's news into Tune results, never blocking
  the supervisor (it only queues; ``step`` waits for the queue, and reports queued meanwhile are
  merged, the latest values winning): ``global_step``, ``loss``, ``steps_per_sec`` and
  ``model_dir`` every ``report_every_steps`` global steps (None: only at evaluations), plus
  ``eval/<metric>`` (and ``eval/global_step``) after each evaluation. The last result is fit's
  ``Result.metrics``, with ``done``. A failed run raises its ``HarnessError`` in ``step``, so
  Tune marks the trial ERROR with the harness's message.
- **Stopping.** When Tune stops or pauses a trial (a scheduler's decision, the experiment's
  end), ``cleanup`` stops the run as Ctrl-C does (``fit(stop=...)``) and waits for it: no
  task process, actor or placement-group use is left; the model_dir and its checkpoints stay.
- **Checkpoints.** The harness restores the latest checkpoint in model_dir by itself, so a
  restored trial (``Tuner.restore(..., resume_errored=True)``, or an unfinished one) resumes
  from its model_dir; ``restart_errored`` makes a new trial, which starts from scratch. ``save_checkpoint`` also copies the latest TF
  checkpoint into Tune's checkpoint, and ``load_checkpoint`` copies one from another trial
  into model_dir (PBT's exploit).
"""

from __future__ import annotations

import glob
import json
import os
import queue
import re
import shutil
import threading
from typing import Any

from ray import tune

from cluster.observe import RunObserver, Snapshot
from harness.api import Result, fit, latest_checkpoint
from harness.job import JobSpec, JobSpecError

DEFAULT_REPORT_EVERY_STEPS = 100
FIRST_BUNDLE = 0  # the head bundle is empty: Tune leaves it out of the group
CHECKPOINT_INFO = "harness_checkpoint.json"
_NOT_NAME = re.compile(r"[^a-z0-9]+")


def trainable(job: JobSpec, report_every_steps: int | None = DEFAULT_REPORT_EVERY_STEPS) -> Any:
    """The Tune trainable whose every trial runs ``job`` as a cluster (module docstring).

    ``job``'s model_dir and name are replaced per trial; its resources, cluster and placement
    strategy make each trial's ``PlacementGroupFactory``. Raises JobSpecError for a job whose
    functions cannot be imported.
    """
    if report_every_steps is not None and report_every_steps < 1:
        raise JobSpecError("report_every_steps must be >= 1, or None", field="report_every_steps")
    job.resolve_functions()
    with_job = tune.with_parameters(ClusterTrial, job=job, report_every_steps=report_every_steps)
    return tune.with_resources(with_job, resources=trial_resources(job))


def job_bundles(job: JobSpec) -> list[dict[str, float]]:
    """The placement-group bundles of ``job``'s tasks, as the Ray backend renders them."""
    from cluster.ray_launcher import RayBackend

    backend = RayBackend()
    return backend.render(backend.plan(job)).bundles


def trial_resources(job: JobSpec) -> Any:
    """A trial's ``tune.PlacementGroupFactory``: an empty head bundle, then the job's bundles."""
    bundles = job_bundles(job)  # never empty: a job's cpu is > 0
    return tune.PlacementGroupFactory([{}, *bundles], strategy=job.placement.strategy)


def trial_job(job: JobSpec, config: dict[str, Any], trial_id: str, trial_dir: str) -> JobSpec:
    """``job`` for one trial: ``config`` over its params, its own model_dir and name."""
    suffix = _NOT_NAME.sub("-", trial_id.lower()).strip("-")
    base = job.name[: 40 - len(suffix) - 1].rstrip("-")
    return job.with_overrides(
        name=f"{base}-{suffix}",
        model_dir=os.path.join(trial_dir, "model"),
        params={**(job.params or {}), **config},
    )


class TrialReports(RunObserver):
    """The observer of a trial's run: queues Tune results; ``take`` waits for and merges them.

    Its methods only queue (thread-safe, never blocking): the supervisor goes on at once.
    Nothing is queued once the global step reached ``max_steps``: the run's last result (with
    ``done``) comes next, and a scheduler whose ``max_t`` is max_steps must not stop the trial
    at a report just before it (ASHA stops any trial that reports ``max_t``).
    """

    def __init__(self, every_steps: int | None, model_dir: str, max_steps: int) -> None:
        self._every = every_steps
        self._max_steps = max_steps
        self._next_step = every_steps or 0
        self._latest: dict[str, Any] = {"model_dir": model_dir}
        self._queue: queue.Queue[tuple[dict[str, Any], bool]] = queue.Queue()
        self._lock = threading.Lock()

    def progress(self, snapshot: Snapshot) -> None:
        if snapshot.loss is None:
            return
        with self._lock:
            self._latest.update(global_step=snapshot.global_step, loss=snapshot.loss)
            if snapshot.steps_per_sec is not None:
                self._latest["steps_per_sec"] = snapshot.steps_per_sec
            if self._every is None or snapshot.global_step < self._next_step:
                return
            if snapshot.global_step >= self._max_steps:
                return
            self._next_step = snapshot.global_step + self._every
            self._queue.put((dict(self._latest), False))

    def evaluation(self, global_step: int | None, metrics: dict[str, float]) -> None:
        with self._lock:
            self._latest.update({f"eval/{k}": v for k, v in metrics.items()})
            self._latest["eval/global_step"] = global_step
            if self._latest.get("global_step", 0) < self._max_steps:
                self._queue.put((dict(self._latest), False))

    def finished(self, summary: dict[str, Any]) -> None:
        self._queue.put(({}, True))

    def take(self) -> tuple[dict[str, Any], bool]:
        """Wait for a result; returns the merge of all queued and whether the run ended."""
        result, ended = self._queue.get()
        while not ended:
            try:
                newer, ended = self._queue.get_nowait()
            except queue.Empty:
                break
            result.update(newer)
        return result, ended


def final_metrics(result: Result, reported: dict[str, Any]) -> dict[str, Any]:
    """The last Tune result of a run: fit's ``Result.metrics`` over the latest report."""
    metrics = {k: v for k, v in result.metrics.items() if k != "eval" and v is not None}
    evaluated = {f"eval/{k}": v for k, v in (result.metrics.get("eval") or {}).items()}
    step = result.checkpoint.step if result.checkpoint else None
    last = {"model_dir": result.model_dir, "checkpoint_step": step}
    return {**reported, **metrics, **evaluated, **last}


class ClusterTrial(tune.Trainable):
    """One trial: ``fit`` of the trial's job in a thread, inside the trial's placement group."""

    def setup(self, config: dict[str, Any], job: JobSpec, report_every_steps: int | None):
        self.job = trial_job(job, config, self.trial_id, trial_dir(self))
        self.reports = TrialReports(
            report_every_steps, self.job.model_dir, self.job.train.max_steps
        )
        self.stop_run = threading.Event()
        self.thread: threading.Thread | None = None
        self.outcome: Result | BaseException | None = None
        self.reported: dict[str, Any] = {}

    def step(self) -> dict[str, Any]:
        if self.thread is None:
            self._start()
        result, ended = self.reports.take()
        self.reported.update(result)
        if not ended:
            return result
        assert self.thread is not None
        self.thread.join()
        outcome = self.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        if outcome.error is not None:
            raise outcome.error
        return {**final_metrics(outcome, self.reported), "done": True}

    def _start(self) -> None:
        from ray.util import get_current_placement_group

        from cluster.ray_launcher import RayBackend

        group = get_current_placement_group()
        backend = RayBackend(placement_group=group, first_bundle=FIRST_BUNDLE)

        def run() -> None:
            try:
                self.outcome = fit(
                    self.job, backend=backend, observers=[self.reports], stop=self.stop_run
                )
            except BaseException as exc:  # noqa: BLE001 - raised again in step
                self.outcome = exc
                self.reports.finished({})

        self.thread = threading.Thread(target=run, name=f"harness-{self.job.name}", daemon=True)
        self.thread.start()

    def cleanup(self) -> None:
        """Stop the run as Ctrl-C does and wait until its tasks and actors are gone."""
        self.stop_run.set()
        if self.thread is not None:
            self.thread.join()

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        save_model_checkpoint(self.job.model_dir, checkpoint_dir)

    def load_checkpoint(self, checkpoint: Any) -> None:
        if isinstance(checkpoint, str):
            restore_model_checkpoint(checkpoint, self.job.model_dir)


def trial_dir(trial: Any) -> str:
    """A trial's persistent directory in Tune's storage (``storage_path/<experiment>/<trial>``).

    ``get_trial_dir()`` and ``Trainable.logdir`` are local staging folders of one Ray session,
    which a restored experiment does not see again; the storage path stays. A remote storage
    (``s3://``, ``gs://``) gives a URI, which TensorFlow must be able to write.
    """
    storage = trial._storage  # Tune's StorageContext: Trainable has no public accessor for it
    path = storage.trial_fs_path
    kind = storage.storage_filesystem.type_name  # pyarrow's: "local", "gcs", "s3", ...
    if kind == "local":
        return path
    scheme = "gs" if kind == "gcs" else kind
    return f"{scheme}://{path}"


def save_model_checkpoint(model_dir: str, checkpoint_dir: str) -> None:
    """Copy model_dir's latest TF checkpoint (its files) into ``checkpoint_dir``."""
    latest = latest_checkpoint(model_dir)
    if latest is None:
        return
    for path in glob.glob(glob.escape(latest.path) + ".*"):
        shutil.copy2(path, checkpoint_dir)
    info = {"model_dir": model_dir, "prefix": os.path.basename(latest.path), "step": latest.step}
    with open(os.path.join(checkpoint_dir, CHECKPOINT_INFO), "w") as f:
        json.dump(info, f)


def restore_model_checkpoint(checkpoint_dir: str, model_dir: str) -> None:
    """Make the TF checkpoint saved in ``checkpoint_dir`` model_dir's latest one.

    Nothing is copied when it came from this model_dir and model_dir has it or a newer one
    (a trial resumed); a checkpoint of another trial (PBT's exploit) replaces model_dir's.
    """
    info_path = os.path.join(checkpoint_dir, CHECKPOINT_INFO)
    if not os.path.isfile(info_path):
        return
    with open(info_path) as f:
        info = json.load(f)
    latest = latest_checkpoint(model_dir)
    if info["model_dir"] == model_dir and latest is not None and latest.step >= info["step"]:
        return
    os.makedirs(model_dir, exist_ok=True)
    for path in glob.glob(os.path.join(glob.escape(checkpoint_dir), info["prefix"] + ".*")):
        shutil.copy2(path, model_dir)
    prefix = json.dumps(info["prefix"])
    with open(os.path.join(model_dir, "checkpoint"), "w") as f:
        f.write(f"model_checkpoint_path: {prefix}\nall_model_checkpoint_paths: {prefix}\n")
