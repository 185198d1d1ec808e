"""``train_and_evaluate``: in this process, as TF did without TF_CONFIG, or as a cluster job.

Which one is decided by the harness config, looked up in this order:

1. ``harness_config=`` (a path to a YAML file, or a dict);
2. the file named by ``$HARNESS_CONFIG``;
3. ``harness.yaml`` in the directory of the script being run (``__main__.__file__``).

**No harness config: in this process** (TF's ``run_local``). The Estimator trains to
``TrainSpec.max_steps``; after each checkpoint save, when ``EvalSpec.throttle_secs`` have
passed since the previous evaluation, it evaluates the new checkpoint and calls the exporters;
the final checkpoint is always evaluated (and exported). The initial checkpoint of a training
run is not evaluated. With ``TF_CONFIG`` set (a cluster of someone else's making) and no harness
config, it refuses: the harness starts a cluster's tasks itself.

**A harness config: a cluster job**, run by the supervisor behind ``harness run``. The config
holds the job file's keys except those the Estimator and the specs give (``model_fn``,
``input_fn``, ``params``, ``model_dir``, ``serving_input_fn``, ``train.max_steps``,
``eval.steps``, ``eval.throttle_secs``, ``eval.input_fn``), plus ``backend`` (``local`` or
``ray``) and ``address``. ``cluster.evaluator`` defaults to 1. The train settings default to the
Estimator's RunConfig; the config's ``train`` section overrides them. The Estimator's functions
go to ``<model_dir>/estimator_fns.pkl`` (``harness.estimator.functions``). Backend: the config's, else
Ray when ``RAY_ADDRESS`` is set or the script runs under ``ray job submit``
(``RAY_JOB_CONFIG_JSON_ENV_VAR`` is set), else local processes. After the job, the driver takes
the evaluator's evaluation of the final checkpoint (or evaluates it itself when there is none),
then calls each exporter once with ``is_the_final_export=True``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import tensorflow as tf
import yaml

from harness.estimator.functions import (
    LOADER_EVAL_INPUT_FN,
    LOADER_MODEL_FN,
    LOADER_TRAIN_INPUT_FN,
    EstimatorFns,
    refuse_inside_task,
    save,
)
from harness.estimator.specs import EvalSpec, TrainSpec
from harness.job import JobSpec, JobSpecError

v1 = tf.compat.v1
log = logging.getLogger(__name__)

CONFIG_ENV = "HARNESS_CONFIG"
CONFIG_FILE = "harness.yaml"
RAY_JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for the entrypoint
EXPORT_DIR_NAME = "export"

# Keys of a harness config that the Estimator and the specs give instead.
SET_IN_CODE = {
    "model_fn": "the Estimator's model_fn",
    "input_fn": "TrainSpec(input_fn=...)",
    "params": "Estimator(params=...)",
    "model_dir": "Estimator(model_dir=...) or RunConfig(model_dir=...)",
    "serving_input_fn": "EvalSpec(exporters=...) with a serving_input_receiver_fn",
    "train.max_steps": "TrainSpec(max_steps=...)",
    "eval.steps": "EvalSpec(steps=...)",
    "eval.throttle_secs": "EvalSpec(throttle_secs=...)",
    "eval.input_fn": "EvalSpec(input_fn=...)",
}


class TrainAndEvaluateError(RuntimeError):
    """The cluster job failed; ``summary`` is its run summary (``<model_dir>/run.json``)."""

    def __init__(self, summary: dict[str, Any], model_dir: str) -> None:
        self.summary = summary
        super().__init__(
            f"train_and_evaluate: the job failed: {summary.get('error')} "
            f"(run summary and task logs in {model_dir}: run.json, logs/)"
        )


def train_and_evaluate(
    estimator: Any, train_spec: TrainSpec, eval_spec: EvalSpec, *, harness_config: Any = None
) -> tuple[dict[str, Any] | None, list[Any]]:
    """Returns ``(eval_result, export_results)``: the metrics of the final evaluation (with
    ``loss`` and ``global_step``) and what each exporter returned after it.

    Raises:
        TypeError: an argument of the wrong type (TF's messages).
        ValueError: a harness config that sets a key the code gives, is not a mapping, or
            an invalid job; TF_CONFIG set without a harness config; no TrainSpec.max_steps
            for a cluster.
        RuntimeError: called inside a harness task (an unguarded driver script).
        TrainAndEvaluateError: the cluster job failed.
    """
    from harness.estimator import Estimator

    if not isinstance(eval_spec, EvalSpec):
        raise TypeError(
            f"`eval_spec` must have type `tf.estimator.EvalSpec`. Got: {type(eval_spec)}"
        )
    if not isinstance(estimator, Estimator):
        raise TypeError(
            f"`estimator` must have type `tf.estimator.Estimator`. Got: {type(estimator)}"
        )
    if not isinstance(train_spec, TrainSpec):
        raise TypeError(
            f"`train_spec` must have type `tf.estimator.TrainSpec`. Got: {type(train_spec)}"
        )
    refuse_inside_task("train_and_evaluate()")
    found = find_harness_config(harness_config)
    if found is None:
        _refuse_foreign_cluster()
        return run_in_process(estimator, train_spec, eval_spec)
    settings, origin = found
    return run_on_cluster(estimator, train_spec, eval_spec, settings, origin)


# ---- the harness config -------------------------------------------------------------------


def find_harness_config(explicit: Any = None) -> tuple[dict[str, Any], str] | None:
    """``(settings, origin)`` of the harness config (see the module docstring), or None."""
    if isinstance(explicit, dict):
        return dict(explicit), "harness_config"
    if explicit is not None:
        return _read_config(Path(explicit)), os.fspath(explicit)
    if os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
        return _read_config(path), str(path)
    script_dir = _script_dir()
    if script_dir is not None and (script_dir / CONFIG_FILE).is_file():
        path = script_dir / CONFIG_FILE
        return _read_config(path), str(path)
    return None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the harness config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the harness config must be a YAML mapping (cluster: ...)")
    return data


def _script_dir() -> Path | None:
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return Path(main_file).resolve().parent if main_file else None


def _refuse_foreign_cluster() -> None:
    try:
        import json

        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster")
    except ValueError:
        cluster = None
    if cluster:
        raise ValueError(
            f"TF_CONFIG describes a cluster ({sorted(cluster)}), but the harness starts a "
            "cluster's tasks itself. Unset TF_CONFIG and give the cluster's shape in a harness "
            f"config (train_and_evaluate(..., harness_config=PATH), ${CONFIG_ENV}, or "
            f"{CONFIG_FILE} next to the script); see docs/estimator.md."
        )


# ---- in this process -----------------------------------------------------------------------


def evaluate_and_export(
    estimator: Any, eval_spec: EvalSpec, checkpoint_path: str, max_steps: int | None
) -> tuple[dict[str, Any], list[Any]]:
    """One evaluation of ``checkpoint_path`` with the EvalSpec, then every exporter (final when
    the checkpoint is at ``max_steps``)."""
    result = _evaluate(estimator, eval_spec, checkpoint_path)
    final = max_steps is not None and result["global_step"] >= max_steps
    return result, _export(estimator, eval_spec, checkpoint_path, result, final)


def _evaluate(estimator: Any, eval_spec: EvalSpec, checkpoint_path: str) -> dict[str, Any]:
    """``estimator.evaluate`` of ``checkpoint_path`` as the EvalSpec says."""
    return estimator.evaluate(
        eval_spec.input_fn,
        steps=eval_spec.steps,
        hooks=eval_spec.hooks,
        checkpoint_path=checkpoint_path,
        name=eval_spec.name,
    )


def _export(
    estimator: Any, eval_spec: EvalSpec, checkpoint_path: str, result: Any, final: bool
) -> list[Any]:
    base = os.path.join(estimator.model_dir, EXPORT_DIR_NAME)
    return [
        exporter.export(
            estimator, os.path.join(base, exporter.name), checkpoint_path, result, final
        )
        for exporter in eval_spec.exporters
    ]


class _EvaluateAfterSave(v1.train.CheckpointSaverListener):
    """Evaluates (and exports) new checkpoints, at most once per ``throttle_secs``, and the
    final one (TF's ``_NewCheckpointListenerForEvaluate``)."""

    def __init__(self, estimator: Any, eval_spec: EvalSpec, max_steps: int | None) -> None:
        self._estimator, self._eval_spec, self._max_steps = estimator, eval_spec, max_steps
        self._start_step: int | None = None
        self._last_step: int | None = None
        self._last_time = -float("inf")
        self.eval_result: dict[str, Any] | None = None
        self.export_results: list[Any] = []

    def begin(self) -> None:
        from harness.commands.run import latest_checkpoint_step

        self._start_step = latest_checkpoint_step(self._estimator.model_dir) or 0

    def after_save(self, session: Any, global_step_value: int) -> None:
        if global_step_value == self._start_step:
            return  # the initial checkpoint of this training run
        if time.monotonic() - self._last_time < self._eval_spec.throttle_secs:
            log.info(
                "Skip the current checkpoint eval due to throttle secs (%s secs).",
                self._eval_spec.throttle_secs,
            )
            return
        self._evaluate(global_step_value)

    def end(self, session: Any, global_step_value: int) -> None:
        if global_step_value != self._last_step:
            self._evaluate(global_step_value)

    def _evaluate(self, global_step_value: int) -> None:
        self._last_time = time.monotonic()
        self._last_step = global_step_value
        path = self._estimator.latest_checkpoint()
        self.eval_result, self.export_results = evaluate_and_export(
            self._estimator, self._eval_spec, path, self._max_steps
        )


def run_in_process(
    estimator: Any, train_spec: TrainSpec, eval_spec: EvalSpec
) -> tuple[dict[str, Any] | None, list[Any]]:
    """TF's local train_and_evaluate (see the module docstring)."""
    listener = _EvaluateAfterSave(estimator, eval_spec, train_spec.max_steps)
    estimator.train(
        train_spec.input_fn,
        hooks=list(train_spec.hooks),
        max_steps=train_spec.max_steps,
        saving_listeners=[*train_spec.saving_listeners, listener],
    )
    if listener.eval_result is None:  # training was skipped: max_steps already reached
        path = estimator.latest_checkpoint()
        return evaluate_and_export(estimator, eval_spec, path, train_spec.max_steps)
    return listener.eval_result, listener.export_results


# ---- on a cluster --------------------------------------------------------------------------


def cluster_job(
    estimator: Any,
    train_spec: TrainSpec,
    eval_spec: EvalSpec,
    settings: dict[str, Any],
    origin: str = "harness_config",
) -> JobSpec:
    """The JobSpec of a cluster run: the harness config plus what the code gives."""
    from harness.estimator.arguments import train_settings

    if train_spec.max_steps is None:
        raise ValueError(
            "TrainSpec.max_steps is None: a cluster job trains to a known step (the chief stops "
            "there and the job ends). Set TrainSpec(max_steps=...)."
        )
    for key, where in SET_IN_CODE.items():
        section, _, name = key.partition(".")
        value = settings.get(section)
        if (name and isinstance(value, dict) and name in value) or (not name and value is not None):
            raise ValueError(f"{origin}: {key}: set it in the code instead, with {where}")
    data = {k: v for k, v in settings.items() if k not in ("backend", "address")}
    data["name"] = settings.get("name") or default_job_name()
    data["model_fn"] = LOADER_MODEL_FN
    data["input_fn"] = LOADER_TRAIN_INPUT_FN
    data["model_dir"] = os.path.abspath(estimator.model_dir)
    train = train_settings(estimator.config)
    if {"save_checkpoints_steps", "save_checkpoints_secs"} & set(settings.get("train") or {}):
        train.pop("save_checkpoints_steps")
        train.pop("save_checkpoints_secs")
    data["train"] = {**train, **(settings.get("train") or {}), "max_steps": train_spec.max_steps}
    data["eval"] = {
        **(settings.get("eval") or {}),
        "steps": eval_spec.steps,
        "throttle_secs": eval_spec.throttle_secs,
        "input_fn": LOADER_EVAL_INPUT_FN,
    }
    data["cluster"] = {"evaluator": 1, **(settings.get("cluster") or {})}
    script_dir = _script_dir()
    data["source_dirs"] = [
        *([str(script_dir)] if script_dir else []),
        os.getcwd(),
        *settings.get("source_dirs", ()),
    ]
    try:
        return JobSpec.from_dict(data, origin=origin)
    except JobSpecError as exc:
        raise ValueError(str(exc)) from None


def default_job_name() -> str:
    """The script's name as a job name (lowercase letters, digits, '-'), else 'estimator'."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    stem = Path(main_file).stem.lower() if main_file else ""
    name = re.sub(r"[^a-z0-9-]+", "-", stem).strip("-")[:40].strip("-")
    return name or "estimator"


def choose_backend(settings: dict[str, Any]) -> tuple[str, str | None]:
    """``(backend, address)``: the config's, else Ray under RAY_ADDRESS / ``ray job submit``,
    else local processes."""
    address = settings.get("address")
    backend = settings.get("backend")
    if backend is None:
        on_ray = address or os.environ.get("RAY_ADDRESS") or os.environ.get(RAY_JOB_ENV)
        backend = "ray" if on_ray else "local"
    if backend not in ("local", "ray"):
        raise ValueError(f"harness config: backend: {backend!r} is not one of 'local', 'ray'")
    return backend, address


def run_on_cluster(
    estimator: Any,
    train_spec: TrainSpec,
    eval_spec: EvalSpec,
    settings: dict[str, Any],
    origin: str = "harness_config",
) -> tuple[dict[str, Any], list[Any]]:
    """Runs the cluster job to the end, then the final evaluation result and exports."""
    from harness.commands.run import run_job

    backend, address = choose_backend(settings)
    job = cluster_job(estimator, train_spec, eval_spec, settings, origin)
    fns = EstimatorFns(
        estimator._model_fn,
        estimator._params,
        estimator._warm_start_from,
        train_input_fn=train_spec.input_fn,
        eval_input_fn=eval_spec.input_fn,
        train_hooks=tuple(train_spec.hooks),
        eval_hooks=tuple(eval_spec.hooks),
        saving_listeners=tuple(train_spec.saving_listeners),
    )
    save(fns, job.model_dir)
    summary = run_job(job, backend=backend, address=address)
    if summary.get("status") != "succeeded":
        raise TrainAndEvaluateError(summary, job.model_dir)
    checkpoint = estimator.latest_checkpoint()
    result = _final_cluster_eval(summary)
    if result is None:
        result = _evaluate(estimator, eval_spec, checkpoint)
    return result, _export(estimator, eval_spec, checkpoint, result, True)


def _final_cluster_eval(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The evaluator's evaluation of the final checkpoint, from the run summary."""
    latest = summary.get("eval") or {}
    step = latest.get("global_step")
    if step is None or step != summary.get("final_global_step"):
        return None
    return {**(latest.get("metrics") or {}), "global_step": int(step)}
