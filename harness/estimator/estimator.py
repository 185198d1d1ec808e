"""``harness.Estimator``: tf.estimator.Estimator's API, run in this process by the harness.

An Estimator runs as TF's did without TF_CONFIG: one task, no server, a local session. Each
method reuses the harness's code for the job it does:

- ``train``: ``harness.runtime.graph.build_train_graph`` (model_fn's hooks, the Scaffold, the
  default saver and checkpoint hook, StopAtStep/NanTensor/LoggingTensor) and the chief's
  MonitoredTrainingSession of ``harness.runtime.session``;
- ``evaluate``: ``harness.runtime.evaluation.evaluate_checkpoint``;
- ``predict``: ``harness.estimator.prediction.predict``;
- ``export_saved_model``: ``harness.export.saved_model.export_saved_model``.

The ``JobSpec`` these functions take is built from the Estimator's ``RunConfig``
(checkpoint and summary settings, seed) and ``model_dir``; the Estimator's function objects
are passed to them directly. Errors raised by the user's model_fn/input_fn reach the caller
as they were raised, as with TF. ``TrainSpec``, ``EvalSpec``, the exporters and
``train_and_evaluate`` are importable from here too (``harness.compat`` maps
``tf.estimator.*`` to these names). See docs/estimator.md.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import tensorflow as tf

from harness.config import RunConfig
from harness.estimator.arguments import (
    attach_listeners,
    check_hooks_type,
    check_listeners_type,
    replace,
    resolve_model_dir,
    train_settings,
    user_errors,
)
from harness.estimator.exporters import BestExporter, Exporter, FinalExporter, LatestExporter
from harness.estimator.functions import (
    LOADER_EVAL_INPUT_FN,
    LOADER_MODEL_FN,
    LOADER_TRAIN_INPUT_FN,
    EstimatorFns,
    bind_input_fn,
    refuse_inside_task,
)
from harness.estimator.specs import EvalSpec, TrainSpec
from harness.job import JobSpec
from harness.model_fn import ModeKeys

v1 = tf.compat.v1
log = logging.getLogger(__name__)

__all__ = [
    "BestExporter",
    "Estimator",
    "EvalSpec",
    "Exporter",
    "FinalExporter",
    "LatestExporter",
    "TrainSpec",
    "train_and_evaluate",
]

# max_steps of a job trained "until the input ends" (train() with neither steps nor max_steps).
UNBOUNDED_STEPS = 2**62


class Estimator:
    """tf.estimator.Estimator on the harness (see the module docstring).

    Args:
        model_fn: called as the harness calls a job's model_fn (TF 1.x rules).
        model_dir: checkpoints and summaries; None takes ``config.model_dir``, else a new
            temporary directory. Both given and different is a ValueError, as in TF.
        config: a ``harness.RunConfig``; its checkpoint/summary settings and seed are used.
        params: passed to model_fn (and input_fns that declare ``params``); any Python value.
        warm_start_from: a checkpoint path or directory, or a WarmStartSettings-like object;
            applied in TRAIN mode when training starts without a checkpoint of its own.
    """

    def __init__(
        self,
        model_fn: Callable[..., Any],
        model_dir: str | os.PathLike[str] | None = None,
        config: RunConfig | None = None,
        params: Any = None,
        warm_start_from: Any = None,
    ) -> None:
        if model_fn is None:
            raise ValueError("model_fn must be provided to Estimator.")
        if not callable(model_fn):
            raise TypeError(f"model_fn must be callable, given: {model_fn!r}")
        config = RunConfig() if config is None else config
        if not isinstance(config, RunConfig):
            raise ValueError(f"config must be an instance of `RunConfig`, but provided {config}.")
        self._model_dir = resolve_model_dir(model_dir, config)
        self._config = replace(config, model_dir=self._model_dir)
        self._model_fn = model_fn
        self._params = None if params is None else copy.deepcopy(params)
        self._warm_start_from = warm_start_from

    # ---- properties ----------------------------------------------------------------------

    @property
    def model_dir(self) -> str:
        return self._model_dir

    @property
    def config(self) -> RunConfig:
        return self._config

    @property
    def params(self) -> Any:
        """A copy of the params (``{}`` when none were given, as in TF)."""
        return copy.deepcopy(self._params if self._params is not None else {})

    @property
    def model_fn(self) -> Callable[..., Any]:
        """The model_fn called with this Estimator's params: ``(features, labels, mode,
        config)``."""
        return self._fns().call_model_fn

    def eval_dir(self, name: str | None = None) -> str:
        """``<model_dir>/eval``, or ``<model_dir>/eval_<name>``."""
        return os.path.join(self._model_dir, "eval" if not name else f"eval_{name}")

    # ---- train ---------------------------------------------------------------------------

    def train(
        self,
        input_fn: Callable[..., Any],
        hooks: list[Any] | None = None,
        steps: int | None = None,
        max_steps: int | None = None,
        saving_listeners: list[Any] | None = None,
    ) -> Estimator:
        """Trains until ``steps`` more steps, ``max_steps`` in all, or the end of the input.

        ``steps`` and ``max_steps`` cannot both be given and must be > 0; when the latest
        checkpoint is already at ``max_steps``, training is skipped (logged). ``hooks`` run
        after the harness defaults and before model_fn's ``training_hooks``;
        ``saving_listeners`` are called around each checkpoint save. Returns ``self``.
        """
        from harness.commands.run import latest_checkpoint_step
        from harness.runtime.graph import build_train_graph
        from harness.runtime.session import monitored_training_session

        refuse_inside_task("Estimator.train()")
        if steps is not None and max_steps is not None:
            raise ValueError("Can not provide both steps and max_steps.")
        if steps is not None and steps <= 0:
            raise ValueError(f"Must specify steps > 0, given: {steps}")
        if max_steps is not None and max_steps <= 0:
            raise ValueError(f"Must specify max_steps > 0, given: {max_steps}")
        start = latest_checkpoint_step(self._model_dir) or 0
        if max_steps is not None and max_steps <= start:
            log.info("Skipping training since max_steps has already saved.")
            return self
        hooks = check_hooks_type(hooks)
        listeners = check_listeners_type(saving_listeners)
        last_step = max_steps or (start + steps if steps else UNBOUNDED_STEPS)
        job = self._job(max_steps=last_step)
        config = self._local_config()
        with user_errors():
            graph = build_train_graph(
                job, config, self.model_fn, bind_input_fn(input_fn, self._params), lambda _: hooks
            )
        attach_listeners(graph.role_hooks.entries_in_call_order(), listeners)
        loss = None
        with graph.graph.as_default():
            with monitored_training_session(job, config, graph.scaffold, graph.role_hooks) as sess:
                while not sess.should_stop():
                    _, loss = sess.run([graph.train_op, graph.loss])
        log.info("Loss for final step: %s.", loss)
        return self

    # ---- evaluate ------------------------------------------------------------------------

    def evaluate(
        self,
        input_fn: Callable[..., Any],
        steps: int | None = None,
        hooks: list[Any] | None = None,
        checkpoint_path: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Evaluates a checkpoint (default: the latest) on ``steps`` batches (None: until the
        input ends); returns the metrics with ``loss`` and ``global_step``. Summaries go to
        ``eval_dir(name)``. No checkpoint is a ValueError."""
        from harness.runtime.evaluation import evaluate_checkpoint

        if steps is not None and steps <= 0:
            raise ValueError(f"Must specify steps > 0, given: {steps}")
        hooks = check_hooks_type(hooks)
        path = self._checkpoint(checkpoint_path)
        with user_errors():
            return evaluate_checkpoint(
                self._job(eval_steps=steps),
                path,
                self.eval_dir(name),
                config=self._local_config(),
                model_fn=self.model_fn,
                input_fn=bind_input_fn(input_fn, self._params),
                hooks=hooks,
            )

    # ---- predict -------------------------------------------------------------------------

    def predict(
        self,
        input_fn: Callable[..., Any],
        predict_keys: str | list[str] | None = None,
        hooks: list[Any] | None = None,
        checkpoint_path: str | None = None,
        yield_single_examples: bool = True,
    ) -> Iterator[Any]:
        """A generator of predictions from a checkpoint (default: the latest) until the input
        ends: single examples, or batches with ``yield_single_examples=False``."""
        from harness.estimator.prediction import predict

        hooks = check_hooks_type(hooks)
        path = self._checkpoint(checkpoint_path)
        with user_errors():
            yield from predict(
                self._job(),
                self._local_config(),
                self.model_fn,
                bind_input_fn(input_fn, self._params),
                path,
                predict_keys=predict_keys,
                hooks=hooks,
                yield_single_examples=yield_single_examples,
            )

    # ---- export --------------------------------------------------------------------------

    def export_saved_model(
        self,
        export_dir_base: str | os.PathLike[str],
        serving_input_receiver_fn: Callable[..., Any],
        assets_extra: dict[str, str] | None = None,
        as_text: bool = False,
        checkpoint_path: str | None = None,
        experimental_mode: str = ModeKeys.INFER,
    ) -> bytes:
        """Exports a SavedModel to ``<export_dir_base>/<timestamp>``; returns that path as
        bytes, as TF did. ``serving_input_receiver_fn`` returns a ServingInputReceiver-like
        object (``features``, ``receiver_tensors``, optional
        ``receiver_tensors_alternatives``) or a ``(features, receiver_tensors)`` pair."""
        if experimental_mode != ModeKeys.INFER:
            raise ValueError(
                f"experimental_mode={experimental_mode!r}: only PREDICT ('infer') exports are "
                "supported"
            )
        return self._export(
            export_dir_base, serving_input_receiver_fn, assets_extra, as_text, checkpoint_path
        )

    def export_savedmodel(
        self,
        export_dir_base: str | os.PathLike[str],
        serving_input_receiver_fn: Callable[..., Any],
        assets_extra: dict[str, str] | None = None,
        as_text: bool = False,
        checkpoint_path: str | None = None,
        strip_default_attrs: bool = True,
        *,
        default_output_alternative_key: str | None = None,
    ) -> bytes:
        """The TF 1.x name of ``export_saved_model``. contrib's
        ``default_output_alternative_key`` picks the ``serving_default`` alternative;
        default attributes are always stripped."""
        return self._export(
            export_dir_base,
            serving_input_receiver_fn,
            assets_extra,
            as_text,
            checkpoint_path,
            default_output_alternative_key,
        )

    def _export(
        self,
        export_dir_base: str | os.PathLike[str],
        serving_input_receiver_fn: Callable[..., Any],
        assets_extra: dict[str, str] | None,
        as_text: bool,
        checkpoint_path: str | None,
        default_output: str | None = None,
    ) -> bytes:
        from harness.export.saved_model import export_saved_model

        if not serving_input_receiver_fn:
            raise ValueError("An input_receiver_fn must be defined.")
        if checkpoint_path is None and self.latest_checkpoint() is None:
            raise ValueError(f"Couldn't find trained model at {self._model_dir}.")
        with user_errors():
            path = export_saved_model(
                self._job(),
                os.fspath(export_dir_base),
                checkpoint_path or self.latest_checkpoint(),
                default_output,
                model_fn=self.model_fn,
                serving_input_fn=serving_input_receiver_fn,
                config=self._local_config(),
                assets_extra=assets_extra,
                as_text=as_text,
            )
        return os.fsencode(path)

    # ---- checkpoints ---------------------------------------------------------------------

    def latest_checkpoint(self) -> str | None:
        """The latest checkpoint prefix in model_dir, or None."""
        return tf.train.latest_checkpoint(self._model_dir)

    def get_variable_names(self) -> list[str]:
        """Names of the variables in the latest checkpoint."""
        return [name for name, _ in tf.train.list_variables(self._checkpoint(None))]

    def get_variable_value(self, name: str) -> Any:
        """The value (a numpy array) of variable ``name`` in the latest checkpoint."""
        return tf.train.load_variable(self._checkpoint(None), name)

    # ---- internals -----------------------------------------------------------------------

    def _fns(self) -> EstimatorFns:
        return EstimatorFns(self._model_fn, self._params, self._warm_start_from)

    def _checkpoint(self, checkpoint_path: str | None) -> str:
        path = checkpoint_path or self.latest_checkpoint()
        if not path:
            raise ValueError(f"Could not find trained model in model_dir: {self._model_dir}.")
        return path

    def _local_config(self) -> RunConfig:
        """The RunConfig model_fn gets here: this Estimator's, as one task with no cluster."""
        return replace(
            self._config, task_type=None, task_id=0, cluster_spec=tf.train.ClusterSpec({})
        )

    def _job(self, max_steps: int = UNBOUNDED_STEPS, eval_steps: int | None = None) -> JobSpec:
        return JobSpec.from_dict(
            {
                "name": "estimator",
                "model_fn": LOADER_MODEL_FN,
                "input_fn": LOADER_TRAIN_INPUT_FN,
                "model_dir": self._model_dir,
                "train": {"max_steps": max_steps, **train_settings(self._config)},
                "eval": {"steps": eval_steps, "input_fn": LOADER_EVAL_INPUT_FN},
            },
            origin="Estimator",
        )


def train_and_evaluate(
    estimator: Estimator,
    train_spec: TrainSpec,
    eval_spec: EvalSpec,
    *,
    harness_config: Any = None,
) -> tuple[dict[str, Any] | None, list[Any]]:
    """Trains and evaluates; returns ``(eval_result, export_results)`` as TF 2.x did.

    With a harness config (``harness_config=`` a path or dict, else ``$HARNESS_CONFIG``, else
    ``harness.yaml`` next to the script) the job runs on a cluster; without one, in this
    process. See ``harness.estimator.driver`` and docs/estimator.md.
    """
    from harness.estimator.driver import train_and_evaluate as run

    return run(estimator, train_spec, eval_spec, harness_config=harness_config)
