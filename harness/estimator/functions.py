"""An Estimator's functions as one object, and the loaders that let cluster tasks call them.

``EstimatorFns`` holds what an ``Estimator`` and its specs give as Python objects: the
model_fn, its params (any Python value, e.g. feature columns), ``warm_start_from``, the train
and eval input_fns (lambdas and closures included), TrainSpec/EvalSpec hooks and the
TrainSpec's saving listeners. ``model_fn``/``input_fn`` of the harness's JobSpec are plain
``module:function`` strings, so ``train_and_evaluate`` pickles an ``EstimatorFns`` with
cloudpickle (``ray.cloudpickle``, which ships with Ray) to ``<model_dir>/estimator_fns.pkl``
and points the job at the loaders below:

    model_fn: harness.estimator.functions:model_fn
    input_fn: harness.estimator.functions:train_input_fn
    eval.input_fn: harness.estimator.functions:eval_input_fn

Each loader reads the file again on every call (so each graph gets fresh hook objects) from
``config.model_dir``, which every task has, and delegates. The JobSpec format, the task
runner and the launchers are unchanged. Functions defined in the driver script (``__main__``)
are pickled by value, so a task never imports the script; functions of importable modules are
pickled by reference and imported from the job's ``source_dirs``.

What the loader model_fn adds to the user's model_fn (the in-process ``Estimator`` calls the
same ``call_model_fn``, with no hooks):

- params are the Estimator's (the JobSpec itself carries ``params: null``);
- TRAIN: ``warm_start_from`` is applied after model_fn built the variables, as Estimator did;
  TrainSpec hooks are appended to ``training_hooks`` (every trainer runs them); saving
  listeners go to a ``CheckpointSaverHook`` in ``training_chief_hooks`` (the chief's only
  checkpoint saver, with the job's checkpoint settings);
- EVAL: EvalSpec hooks are appended to ``evaluation_hooks``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

PAYLOAD_FILE = "estimator_fns.pkl"
LOADER_MODEL_FN = "harness.estimator.functions:model_fn"
LOADER_TRAIN_INPUT_FN = "harness.estimator.functions:train_input_fn"
LOADER_EVAL_INPUT_FN = "harness.estimator.functions:eval_input_fn"


class PayloadError(ValueError):
    """The Estimator's functions cannot be written for the tasks, or read back in a task."""


@dataclass
class EstimatorFns:
    """The user's objects behind one Estimator (and, for a cluster job, its specs)."""

    model_fn: Callable[..., Any]
    params: Any = None
    warm_start_from: Any = None
    train_input_fn: Callable[..., Any] | None = None
    eval_input_fn: Callable[..., Any] | None = None
    train_hooks: Sequence[Any] = ()
    eval_hooks: Sequence[Any] = ()
    saving_listeners: Sequence[Any] = field(default_factory=tuple)

    def call_model_fn(self, features: Any, labels: Any, mode: str, config: Any) -> Any:
        """The user's model_fn with this Estimator's params, plus warm start and spec hooks."""
        from harness.calling import call_model_fn
        from harness.model_fn import ModeKeys, ModelFnOps

        ops = call_model_fn(self.model_fn, features, labels, mode, self.params, config)
        if mode == ModeKeys.TRAIN:
            if self.warm_start_from is not None:
                apply_warm_start(self.warm_start_from)
            extra_chief, scaffold = self._chief_saver_hooks(ops, config)
            if self.train_hooks or extra_chief:
                ops = ops._replace(
                    training_hooks=[*(ops.training_hooks or ()), *self.train_hooks],
                    training_chief_hooks=[*(ops.training_chief_hooks or ()), *extra_chief],
                    scaffold=scaffold,
                )
        elif mode == ModeKeys.EVAL and self.eval_hooks:
            if isinstance(ops, ModelFnOps):
                ops = ops.estimator_spec()
            ops = ops._replace(evaluation_hooks=[*(ops.evaluation_hooks or ()), *self.eval_hooks])
        return ops

    def _chief_saver_hooks(self, ops: Any, config: Any) -> tuple[list[Any], Any]:
        """``([CheckpointSaverHook with the saving listeners], scaffold)`` on the chief; the
        listeners join a CheckpointSaverHook of model_fn's instead, as Estimator.train did."""
        import tensorflow as tf

        v1 = tf.compat.v1
        if not self.saving_listeners or not config.is_chief:
            return [], ops.scaffold
        for hook in [*(ops.training_chief_hooks or ()), *(ops.training_hooks or ())]:
            if isinstance(hook, v1.train.CheckpointSaverHook):
                hook._listeners.extend(self.saving_listeners)
                return [], ops.scaffold
        scaffold = ops.scaffold or v1.train.Scaffold()
        steps = config.save_checkpoints_steps
        hook = v1.train.CheckpointSaverHook(
            config.model_dir,
            save_secs=None if steps else (config.save_checkpoints_secs or 600),
            save_steps=steps,
            scaffold=scaffold,
            listeners=list(self.saving_listeners),
        )
        return [hook], scaffold


def apply_warm_start(warm_start_from: Any) -> None:
    """``tf.compat.v1.train.warm_start`` from a checkpoint path (or directory) or a
    WarmStartSettings-like object (``ckpt_to_initialize_from``, ``vars_to_warm_start``,
    ``var_name_to_vocab_info``, ``var_name_to_prev_var_name``)."""
    import tensorflow as tf

    if isinstance(warm_start_from, (str, os.PathLike)):
        tf.compat.v1.train.warm_start(os.fspath(warm_start_from))
        return
    tf.compat.v1.train.warm_start(
        warm_start_from.ckpt_to_initialize_from,
        vars_to_warm_start=getattr(warm_start_from, "vars_to_warm_start", ".*"),
        var_name_to_vocab_info=getattr(warm_start_from, "var_name_to_vocab_info", None),
        var_name_to_prev_var_name=getattr(warm_start_from, "var_name_to_prev_var_name", None),
    )


def payload_path(model_dir: str) -> str:
    return os.path.join(model_dir, PAYLOAD_FILE)


def save(fns: EstimatorFns, model_dir: str) -> str:
    """Pickles ``fns`` to ``<model_dir>/estimator_fns.pkl``; returns the path.

    Raises:
        PayloadError: a part cannot be pickled; the message names it (model_fn, params,
            TrainSpec.input_fn, TrainSpec.hooks, ...) and the cause.
    """
    from ray import cloudpickle

    try:
        data = cloudpickle.dumps(fns)
    except Exception as exc:
        raise PayloadError(_unpicklable_part(fns, exc)) from exc
    os.makedirs(model_dir, exist_ok=True)
    path = payload_path(model_dir)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    return path


_PARTS = {
    "model_fn": "the Estimator's model_fn",
    "params": "the Estimator's params",
    "warm_start_from": "the Estimator's warm_start_from",
    "train_input_fn": "TrainSpec.input_fn",
    "eval_input_fn": "EvalSpec.input_fn",
    "train_hooks": "TrainSpec.hooks",
    "eval_hooks": "EvalSpec.hooks",
    "saving_listeners": "TrainSpec.saving_listeners",
}


def _unpicklable_part(fns: EstimatorFns, exc: Exception) -> str:
    from ray import cloudpickle

    for name, what in _PARTS.items():
        try:
            cloudpickle.dumps(getattr(fns, name))
        except Exception as part_exc:
            return (
                f"{what} cannot be sent to the cluster's tasks: cloudpickle failed with "
                f"{type(part_exc).__name__}: {part_exc}. Everything it refers to must be "
                "picklable: no graph tensors, sessions, locks or open files (create hooks "
                "inside model_fn, as training_hooks / training_chief_hooks / evaluation_hooks)."
            )
    return f"the Estimator's functions cannot be pickled: {type(exc).__name__}: {exc}"


def load(model_dir: str | None) -> EstimatorFns:
    """Unpickles the ``EstimatorFns`` of ``model_dir`` (a fresh copy on every call)."""
    import pickle

    if not model_dir:
        raise PayloadError("the harness.estimator.functions loaders need config.model_dir")
    path = payload_path(model_dir)
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        raise PayloadError(
            f"{path} does not exist: train_and_evaluate writes it before the job starts, and "
            "every task must see model_dir (on a multi-node cluster, a shared file system)"
        ) from None


def model_fn(features: Any, labels: Any, mode: str, config: Any) -> Any:
    """JobSpec ``model_fn``: the pickled Estimator's model_fn (see the module docstring)."""
    return load(config.model_dir).call_model_fn(features, labels, mode, config)


def train_input_fn(mode: str, config: Any) -> Any:
    """JobSpec ``input_fn``: the pickled TrainSpec.input_fn, called with what it declares."""
    return _call_input_fn("train_input_fn", mode, config)


def eval_input_fn(mode: str, config: Any) -> Any:
    """JobSpec ``eval.input_fn``: the pickled EvalSpec.input_fn, called with what it declares."""
    return _call_input_fn("eval_input_fn", mode, config)


def _call_input_fn(name: str, mode: str, config: Any) -> Any:
    fns = load(config.model_dir)
    fn = getattr(fns, name)
    if fn is None:
        raise PayloadError(f"the pickled Estimator has no {name}")
    return bind_input_fn(fn, fns.params)(mode, config)


def call_declared(fn: Callable[..., Any], declared: Sequence[str], **values: Any) -> Any:
    """``fn`` called with the ``values`` it declares (params None becomes ``{}``, as TF did)."""
    from harness.calling import declared_kwargs

    if values.get("params") is None:
        values["params"] = {}
    return fn(**declared_kwargs(declared, **values))


def bind_input_fn(input_fn: Callable[..., Any], params: Any) -> Callable[..., Any]:
    """A JobSpec-style input_fn ``(mode, config)`` calling ``input_fn`` with ``params``."""
    from harness.calling import fn_args

    declared = fn_args(input_fn)

    def bound(mode: str, config: Any) -> Any:
        return call_declared(input_fn, declared, mode=mode, params=params, config=config)

    return bound


def refuse_inside_task(what: str) -> None:
    """Raises RuntimeError when called inside a harness task (``HARNESS_JOB`` is set there).

    A driver script whose ``train_and_evaluate``/``Estimator.train`` call runs at import time
    (no ``if __name__ == "__main__":`` guard) would otherwise start a job from each task that
    imports it.
    """
    if os.environ.get("HARNESS_JOB"):
        raise RuntimeError(
            f"{what} was called inside a harness task: a task imported the driver script, and "
            "the script calls it at import time. Put the call under "
            '`if __name__ == "__main__":`, or move model_fn and input_fn to a module that does '
            "not start training when imported."
        )
