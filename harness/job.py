"""JobSpec: the one description of a training job, read from the job YAML.

Every launcher (local processes, Ray actors, Kubernetes manifests) starts from a JobSpec,
and every task receives it again as JSON, so a job cannot mean two things in two places.

Loading is two steps:

1. ``JobSpec.from_yaml(path)`` checks the shape: unknown keys, types, impossible values.
   It needs nothing but the file.
2. ``spec.resolve_functions()`` imports ``model_fn`` / ``input_fn`` (``"module:function"``)
   with the job's source directories on ``sys.path``. The driver does this before it starts
   anything, so a typo in a path fails in seconds, not inside a task.

Errors are ``JobSpecError``; its message lists every problem as
``<file>: <field.path>: <what is wrong> (got <value>). <how to fix it>``.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.data_spec import DataConfig
from harness.errors import HarnessError, user_location
from harness.job_errors import first_field, format_errors

_FN_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class JobSpecError(HarnessError, ValueError):
    """The job description is invalid; the message names the file, the field and the fix.

    ``field`` is the field path of the (first) problem when there is one (``train.max_steps``,
    ``model_fn``), else None (a file that cannot be read or parsed).
    """


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterSpecConfig(_Strict):
    """Cluster shape. The chief is always one task; ``workers`` counts the non-chief workers."""

    workers: int = Field(0, ge=0, le=256)
    ps: int = Field(0, ge=0, le=64)
    evaluator: int = Field(0, ge=0, le=1)
    # The fewest workers the job goes on with once lost ones cannot be placed again (Ray:
    # their node is gone and no other takes them); None: all of them (``workers_needed``).
    min_workers: int | None = Field(None, ge=0)

    @field_validator("min_workers")
    @classmethod
    def _at_most_workers(cls, value: int | None, info: Any) -> int | None:
        if value is not None and value > info.data.get("workers", 0):
            raise ValueError(f"must be at most cluster.workers ({info.data.get('workers', 0)})")
        return value

    @property
    def workers_needed(self) -> int:
        """``min_workers``, or every worker when it is not set."""
        return self.workers if self.min_workers is None else self.min_workers


TRAINER_ROLES: tuple[str, ...] = ("chief", "worker")
"""The roles that run the training loop (``model_fn`` in TRAIN mode)."""


def takes_gpus(role: str) -> bool:
    """Whether tasks of ``role`` may hold GPUs: the trainers only (chief and workers).

    ps tasks only host variables and the evaluator runs on CPU: neither gets a GPU on any
    backend. This is the one statement of that rule; the job's validation, the local plan's
    ``CUDA_VISIBLE_DEVICES``, Ray's bundles and the Kubernetes worker groups all ask it.
    """
    return role in TRAINER_ROLES


def gpus_for(role: str, resources: RoleResources) -> float:
    """The GPUs one task of ``role`` gets: ``resources.gpu`` for a trainer, 0 for any other role."""
    return resources.gpu if takes_gpus(role) else 0.0


class RoleResources(_Strict):
    """What one task of a role needs: logical CPUs, GPUs and, optionally, memory in MiB."""

    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)
    memory_mb: int | None = Field(None, gt=0)


class CpuOnlyResources(RoleResources):
    """Resources of ``role``, which ``takes_gpus`` says never takes a GPU; ``why`` says so in
    the error."""

    role: ClassVar[str]
    why: ClassVar[str]

    @field_validator("gpu")
    @classmethod
    def _no_gpu(cls, value: float) -> float:
        if value and not takes_gpus(cls.role):
            raise ValueError(f"{cls.why} and must not take GPUs; set it to 0")
        return value


class PsResources(CpuOnlyResources):
    role: ClassVar[str] = "ps"
    why: ClassVar[str] = "ps tasks only host variables"


class EvaluatorResources(CpuOnlyResources):
    role: ClassVar[str] = "evaluator"
    why: ClassVar[str] = "the evaluator runs on CPU (the GPUs are for the trainers)"


class Resources(_Strict):
    chief: RoleResources = RoleResources()
    worker: RoleResources = RoleResources()
    ps: PsResources = PsResources()
    evaluator: EvaluatorResources = EvaluatorResources()
    gpu_memory_growth: bool = False

    def for_role(self, role: str) -> RoleResources:
        return getattr(self, role)


class TrainConfig(_Strict):
    """Training loop and checkpoint settings (Estimator's RunConfig names and defaults)."""

    max_steps: int = Field(gt=0)
    save_checkpoints_steps: int | None = Field(None, gt=0)
    save_checkpoints_secs: float | None = Field(None, gt=0)
    keep_checkpoint_max: int = Field(5, ge=0)
    keep_checkpoint_every_n_hours: float = Field(10000.0, gt=0)
    save_summary_steps: int = Field(100, ge=0)
    log_step_count_steps: int = Field(100, gt=0)
    tf_random_seed: int | None = None
    # The chief exports a SavedModel to <model_dir>/export/<timestamp> after training.
    export_on_finish: bool = False
    # The output alternative served as 'serving_default' when there are several
    # (what `harness export --default-output` sets).
    export_default_output: str | None = None

    @model_validator(mode="after")
    def _one_checkpoint_trigger(self) -> TrainConfig:
        if self.save_checkpoints_steps is not None and self.save_checkpoints_secs is not None:
            raise ValueError(
                "save_checkpoints_steps and save_checkpoints_secs are both set; "
                "keep only one of them (TF's RunConfig allows one checkpoint trigger)"
            )
        return self

    @property
    def checkpoint_secs(self) -> float | None:
        """Seconds between checkpoints; 600 when neither trigger is set (RunConfig's default)."""
        if self.save_checkpoints_steps is None and self.save_checkpoints_secs is None:
            return 600.0
        return self.save_checkpoints_secs


class EvalConfig(_Strict):
    """The evaluator task (``cluster.evaluator: 1``) and ``harness evaluate``."""

    # Batches per evaluation; None evaluates until input_fn's data ends.
    steps: int | None = Field(100, gt=0)
    # At least this long between two evaluations (newer checkpoints in between are skipped).
    throttle_secs: float = Field(0.0, ge=0)
    # input_fn for EVAL mode; the job's input_fn (called with mode='eval') when unset.
    input_fn: str | None = None
    # After training, how long the evaluator may take to evaluate the final checkpoint.
    final_timeout_secs: float = Field(300.0, gt=0)

    @field_validator("input_fn")
    @classmethod
    def _valid_fn_path(cls, value: str | None) -> str | None:
        if value is not None and not _FN_PATH.match(value):
            raise ValueError(
                "must be 'package.module:function', for example 'mymodel:eval_input_fn'"
            )
        return value


class FailureConfig(_Strict):
    """Failure policy knobs. See cluster/policy.py for what happens per role."""

    max_failures: int = Field(3, ge=0)
    stall_timeout_secs: float = Field(300.0, gt=0)
    # a restarted chief joins the variables its ps kept, or restores as TF 1.x did
    chief_restart: Literal["live", "checkpoint"] = "live"
    # a restarted task becomes a warm spare (TensorFlow already imported), which costs one
    # idle task process's memory per spare (docs/ARCHITECTURE.md, "Warm spares")
    warm_spares: bool = True


class TimeoutConfig(_Strict):
    """Deadlines of the cluster lifecycle, in seconds."""

    startup_secs: float = Field(120.0, gt=0)
    worker_ready_secs: float = Field(600.0, gt=0)
    stop_grace_secs: float = Field(10.0, ge=0)


class PlacementConfig(_Strict):
    """Ray placement group settings."""

    strategy: Literal["PACK", "SPREAD", "STRICT_SPREAD"] = "PACK"
    timeout_secs: float = Field(60.0, gt=0)


class JobSpec(_Strict):
    """The job YAML, validated. See DESIGN.md for the minimal form."""

    name: str
    model_fn: str
    input_fn: str
    model_dir: str
    # None (no `params:` in the YAML) lets a model_fn without a params argument run, as an
    # Estimator built without params did; a model_fn that declares params then gets {}.
    params: dict[str, Any] | None = None
    cluster: ClusterSpecConfig = ClusterSpecConfig()
    resources: Resources = Resources()
    train: TrainConfig
    failure: FailureConfig = FailureConfig()
    timeouts: TimeoutConfig = TimeoutConfig()
    placement: PlacementConfig = PlacementConfig()
    eval: EvalConfig = EvalConfig()
    # serving_input_fn for `harness export`: "module:function" -> (features, receiver_tensors).
    serving_input_fn: str | None = None
    # With the default serving inputs: the input_fn features a client sends. None: the
    # features the export outputs depend on (labels carried as features are left out).
    serving_features: list[str] | None = None
    # Which Keras the model code gets: "legacy" (tf_keras, TF_USE_LEGACY_KERAS=1, what TF 1.x
    # era code needs) or "keras3" (code written for Keras 3). See harness/legacy_keras.py.
    keras: Literal["legacy", "keras3"] = "legacy"
    data: DataConfig | None = None  # shards the supervisor hands out (harness/data_spec.py)
    # TensorBoard on model_dir while `harness run` runs: true (port 6006), false, or a port
    # (0: a free one); `--tensorboard [PORT]` overrides it. See cluster/tensorboard.py.
    tensorboard: bool | int = False
    # Directories put on sys.path before importing model_fn/input_fn: the YAML's folder and
    # the directory `harness` was started from. Filled in by from_yaml; users rarely set it.
    source_dirs: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value) or len(value) > 40:
            raise ValueError(
                "must be 1-40 characters of lowercase letters, digits and '-', starting and "
                "ending with a letter or digit (it names Ray actors and Kubernetes objects)"
            )
        return value

    @field_validator("model_fn", "input_fn", "serving_input_fn")
    @classmethod
    def _valid_fn_path(cls, value: str | None) -> str | None:
        if value is not None and not _FN_PATH.match(value):
            raise ValueError("must be 'package.module:function', for example 'mymodel:model_fn'")
        return value

    @field_validator("tensorboard", mode="before")
    @classmethod
    def _valid_tensorboard(cls, value: Any) -> bool | int:
        if isinstance(value, bool) or (isinstance(value, int) and 0 <= value <= 65535):
            return value
        raise ValueError("must be true, false or a port from 0 to 65535 (0: a free port)")

    @property
    def num_tasks(self) -> int:
        return sum(self.task_counts().values())

    def task_counts(self) -> dict[str, int]:
        """Tasks per role, in TF_CONFIG order; roles with no task are left out."""
        counts = {
            "chief": 1,
            "worker": self.cluster.workers,
            "ps": self.cluster.ps,
            "evaluator": self.cluster.evaluator,
        }
        return {role: n for role, n in counts.items() if n}

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> JobSpec:
        """Read and validate a job YAML. Relative model_dir is taken from the current directory.

        Raises JobSpecError, naming the path, for a file that cannot be read, is not UTF-8
        text, is not YAML or does not describe a valid job.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise JobSpecError(f"{path}: cannot read the job file: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise JobSpecError(
                f"{path}: not a text (UTF-8) file: byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}; a job file is YAML"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise JobSpecError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise JobSpecError(
                f"{path}: the job file must be a YAML mapping (name: ..., model_fn: ...)"
            )
        data.setdefault("source_dirs", [str(path.resolve().parent), os.getcwd()])
        if isinstance(data.get("model_dir"), str):
            data["model_dir"] = os.path.abspath(os.path.expanduser(data["model_dir"]))
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "<job>") -> JobSpec:
        try:
            return JobSpec.model_validate(data)
        except ValidationError as exc:
            raise JobSpecError(
                format_errors(exc, origin, JobSpec), field=first_field(exc)
            ) from None

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        return cls.from_dict(json.loads(text), origin="<job json>")

    def to_json(self) -> str:
        return self.model_dump_json()

    def with_overrides(self, **changes: Any) -> JobSpec:
        """A validated copy with top-level fields replaced (used by tests and the CLI)."""
        data = self.model_dump()
        data.update(changes)
        return JobSpec.from_dict(data)

    # ---- user functions ------------------------------------------------------------------

    def resolve_functions(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """Import and return ``(model_fn, input_fn)``; JobSpecError names the field on failure."""
        return self.resolve("model_fn"), self.resolve("input_fn")

    def resolve(self, field: str) -> Callable[..., Any]:
        return import_function(getattr(self, field), field, self.source_dirs)


def import_function(
    fn_path: str, field: str, source_dirs: tuple[str, ...] = ()
) -> Callable[..., Any]:
    """Import ``module:function``; raise JobSpecError naming ``field`` and the cause.

    ``harness.compat`` is installed first, so the module may use ``tf.estimator`` and
    ``tf.contrib`` as TF 1.x / tf.estimator-era code does.
    """
    _install_compat()
    for directory in reversed(source_dirs):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    module_name, _, attr = fn_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        where = ", ".join(source_dirs) or "sys.path"
        raise JobSpecError(
            f"{field}: cannot import module '{module_name}' ({exc}). Check the spelling, or run "
            f"from the directory that contains it (searched {where}).",
            field=field,
        ) from None
    except Exception as exc:
        where = user_location(exc)
        raise JobSpecError(
            f"{field}: importing module '{module_name}' raised {type(exc).__name__}: {exc}"
            + (f" (at {where})" if where else ""),
            field=field,
        ) from exc
    fn = getattr(module, attr, None)
    if fn is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        hint = difflib.get_close_matches(attr, names, n=1)
        suggestion = f" Did you mean '{module_name}:{hint[0]}'?" if hint else ""
        raise JobSpecError(
            f"{field}: module '{module_name}' has no attribute '{attr}'.{suggestion}", field=field
        )
    if not callable(fn):
        raise JobSpecError(
            f"{field}: '{fn_path}' is a {type(fn).__name__}, not a function", field=field
        )
    return fn


def _install_compat() -> None:
    import harness.compat

    harness.compat.install()
