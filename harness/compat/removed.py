"""Errors for TensorFlow APIs that TF 2 removed and `harness.compat` does not provide.

Two exception classes carry the same message, ``tf.<api> was removed in TensorFlow 2; use
<replacement>``:

- `RemovedAPIError` (an `AttributeError`) is raised by attribute access, e.g.
  ``tf.contrib.rnn`` or ``tf.estimator.DNNClassifier``; ``hasattr()`` stays False for them.
- `RemovedModuleError` (an `ImportError`) is raised by import statements, e.g.
  ``from tensorflow.contrib import rnn`` or ``import tensorflow.contrib.rnn``, so that
  ``try: ... except ImportError`` around an optional import keeps working. (One class cannot be
  both: Python's AttributeError and ImportError have incompatible instance layouts.)

Both have ``.api`` (the dotted name, e.g. ``'tf.contrib.rnn'``) and ``.replacement``.

`namespace_getattr` builds the module-level ``__getattr__`` of each provided namespace: listed
names resolve lazily (the target module is imported at first access), everything else raises
`RemovedAPIError`. `RemovedFinder` is the import hook behind `RemovedModuleError`;
`SlimAliasFinder` makes ``tensorflow.contrib.slim.<submodule>`` imports resolve to the same
``tf_slim.<submodule>`` module objects.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

from harness.errors import HarnessError

#: Where the removed APIs went, by dotted name below ``tf.``. Looked up from the most specific
#: prefix: ``contrib.rnn.LSTMCell`` is reported with the ``contrib.rnn`` entry.
REPLACEMENTS: dict[str, str] = {
    # tf.contrib modules.
    "contrib.rnn": "tf.compat.v1.nn.rnn_cell (e.g. tf.compat.v1.nn.rnn_cell.LSTMCell) or "
    "tf.keras.layers.LSTM/GRU",
    "contrib.seq2seq": "tensorflow_addons.seq2seq (itself discontinued) or Keras layers; "
    "there is no drop-in replacement on TF 2.21",
    "contrib.legacy_seq2seq": "Keras layers; there is no drop-in replacement on TF 2.21",
    "contrib.data": "tf.data and tf.data.experimental",
    "contrib.metrics": "tf.compat.v1.metrics (streaming_* became tf.compat.v1.metrics.*)",
    "contrib.losses": "tf.compat.v1.losses",
    "contrib.distribute": "tf.distribute",
    "contrib.opt": "tf.compat.v1.train optimizers, or tf.keras.optimizers (e.g. AdamW)",
    "contrib.predictor": "tf.saved_model.load(export_dir).signatures['serving_default']",
    "contrib.lookup": "tf.lookup",
    "contrib.summary": "tf.summary (TF 2 summaries) or tf.compat.v1.summary",
    "contrib.cudnn_rnn": "tf.keras.layers.LSTM/GRU (cuDNN kernels are used automatically)",
    "contrib.estimator": "tf.estimator as provided by harness.compat, or harness.Estimator",
    "contrib.eager": "TF 2 eager execution (tf.function, tf.GradientTape)",
    "contrib.keras": "tf.keras",
    "contrib.crf": "tensorflow_addons.text.crf (itself discontinued) or your own CRF layer",
    "contrib.quantize": "the TensorFlow Model Optimization toolkit (tfmot.quantization)",
    "contrib.tensorboard": "tf.summary and the tensorboard package",
    "contrib.tensor_forest": "TensorFlow Decision Forests (tensorflow_decision_forests)",
    "contrib.boosted_trees": "TensorFlow Decision Forests (tensorflow_decision_forests)",
    "contrib.factorization": "tf.compat.v1.train and your own model_fn; no replacement on TF 2",
    "contrib.image": "tf.image (or tensorflow_addons.image, itself discontinued)",
    "contrib.signal": "tf.signal",
    "contrib.distributions": "tensorflow_probability.distributions",
    "contrib.bayesflow": "tensorflow_probability",
    "contrib.stat_summarizer": "the TensorFlow profiler (tf.profiler)",
    "contrib.tfprof": "tf.compat.v1.profiler",
    "contrib.timeseries": "tf.keras models; no replacement on TF 2",
    "contrib.util": "tf.make_ndarray / tf.make_tensor_proto",
    "contrib.graph_editor": "tf.compat.v1.graph_util or rewriting the graph-building code",
    "contrib.grid_rnn": "tf.keras RNN layers; no replacement on TF 2",
    "contrib.nn": "tf.nn",
    "contrib.labeled_tensor": "plain tensors; no replacement on TF 2",
    "contrib.linalg": "tf.linalg",
    "contrib.ffmpeg": "tf.audio or an external decoder",
    "contrib.cluster_resolver": "tf.distribute.cluster_resolver",
    "contrib.checkpoint": "tf.train.Checkpoint",
    "contrib.compiler": "tf.function(jit_compile=True)",
    "contrib.constrained_optimization": "the tensorflow_constrained_optimization package",
    "contrib.deprecated": "tf.compat.v1.summary",
    "contrib.gan": "the tensorflow_gan package",
    "contrib.integrate": "tensorflow_probability.math.ode",
    "contrib.kernel_methods": "tf.keras.layers.experimental.RandomFourierFeatures",
    "contrib.learn.datasets": "tf.keras.datasets or tensorflow_datasets",
    "contrib.learn.python.learn.datasets": "tf.keras.datasets or tensorflow_datasets",
    "contrib.memory_stats": "tf.config.experimental.get_memory_info",
    "contrib.mixed_precision": "tf.keras.mixed_precision",
    "contrib.model_pruning": "the TensorFlow Model Optimization toolkit (tfmot.sparsity)",
    "contrib.proto": "tf.io.decode_proto / tf.io.encode_proto",
    "contrib.receptive_field": "no replacement on TF 2",
    "contrib.recurrent": "tf.keras RNN layers",
    "contrib.resampler": "tensorflow_addons.image.resampler (itself discontinued)",
    "contrib.rpc": "tf.raw_ops.Rpc is gone; no replacement on TF 2",
    "contrib.saved_model": "tf.saved_model / tf.compat.v1.saved_model",
    "contrib.session_bundle": "tf.saved_model",
    "contrib.slim.nets": "tf_slim.nets (harness.compat maps tensorflow.contrib.slim.nets to it)",
    "contrib.solvers": "tf.linalg",
    "contrib.sparsemax": "tensorflow_addons.activations.sparsemax (itself discontinued)",
    "contrib.specs": "no replacement on TF 2",
    "contrib.staging": "tf.data prefetching (dataset.prefetch)",
    "contrib.stateless": "tf.random.stateless_*",
    "contrib.testing": "tf.test",
    "contrib.text": "tensorflow_text",
    "contrib.tpu.TPUEstimator": "harness.Estimator / a harness job running the same model_fn "
    "(TPUEstimatorSpec results are converted)",
    "contrib.tpu.RunConfig": "tf.estimator.RunConfig (harness.RunConfig)",
    "contrib.tpu.TPUConfig": "tf.estimator.RunConfig (harness.RunConfig); TPU settings have no "
    "meaning outside a TPU",
    "contrib.tpu": "tf.distribute.TPUStrategy",
    "contrib.training": "tf.data for input pipelines, tf.compat.v1.train for training loops",
    "contrib.framework.nest": "tf.nest",
    "contrib.framework.python.ops": "tf_slim / tf.compat.v1",
    "contrib.layers.feature_column": "tf.feature_column / tf.compat.v1.feature_column",
    "contrib.layers.real_valued_column": "tf.feature_column.numeric_column",
    "contrib.layers.sparse_column_with_hash_bucket": "tf.feature_column."
    "categorical_column_with_hash_bucket",
    "contrib.layers.sparse_column_with_keys": "tf.feature_column."
    "categorical_column_with_vocabulary_list",
    "contrib.layers.sparse_column_with_vocabulary_file": "tf.feature_column."
    "categorical_column_with_vocabulary_file",
    "contrib.layers.sparse_column_with_integerized_feature": "tf.feature_column."
    "categorical_column_with_identity",
    "contrib.layers.bucketized_column": "tf.feature_column.bucketized_column",
    "contrib.layers.crossed_column": "tf.feature_column.crossed_column",
    "contrib.layers.embedding_column": "tf.feature_column.embedding_column",
    "contrib.layers.one_hot_column": "tf.feature_column.indicator_column",
    "contrib.layers.weighted_sparse_column": "tf.feature_column.weighted_categorical_column",
    "contrib.layers.input_from_feature_columns": "tf.compat.v1.feature_column.input_layer",
    "contrib.layers.weighted_sum_from_feature_columns": "tf.compat.v1.feature_column.linear_model",
    "contrib.layers.create_feature_spec_for_parsing": "tf.feature_column.make_parse_example_spec",
    "contrib.layers.parse_feature_columns_from_examples": "tf.io.parse_example with "
    "tf.feature_column.make_parse_example_spec",
    "contrib.layers.infer_real_valued_columns": "tf.feature_column.numeric_column per feature",
    "contrib.layers.embedding_lookup_unique": "tf.nn.embedding_lookup on tf.unique ids",
    "contrib.layers.recompute_grad": "tf.recompute_grad",
    "contrib.layers.rev_block": "tf.recompute_grad / your own reversible block",
    "contrib.layers.RevBlock": "tf.recompute_grad / your own reversible block",
    "contrib.learn.Experiment": "tf.estimator.train_and_evaluate (harness.train_and_evaluate)",
    "contrib.learn.learn_runner": "tf.estimator.train_and_evaluate (harness.train_and_evaluate)",
    "contrib.learn.DNNClassifier": "a model_fn returning ModelFnOps/EstimatorSpec "
    "(canned estimators are not provided)",
    "contrib.learn.DNNRegressor": "a model_fn returning ModelFnOps/EstimatorSpec "
    "(canned estimators are not provided)",
    "contrib.learn.LinearClassifier": "a model_fn returning ModelFnOps/EstimatorSpec "
    "(canned estimators are not provided)",
    "contrib.learn.LinearRegressor": "a model_fn returning ModelFnOps/EstimatorSpec "
    "(canned estimators are not provided)",
    "contrib.learn.SKCompat": "harness.Estimator with an input_fn over numpy arrays",
    "contrib.learn.io": "tf.data.Dataset.from_tensor_slices, or "
    "tf.estimator.inputs.numpy_input_fn from harness.compat",
    "contrib.learn.preprocessing": "tf.keras.layers.TextVectorization",
    "contrib.learn.head": "your own loss/metrics in the model_fn (heads are not provided)",
    "contrib.learn.multi_class_head": "your own loss/metrics in the model_fn (heads are not "
    "provided)",
    "contrib.learn.regression_head": "your own loss/metrics in the model_fn (heads are not "
    "provided)",
    "contrib.learn.utils": "tf.estimator.export from harness.compat (serving input receivers)",
    "contrib.learn.InputFnOps": "tf.estimator.export.ServingInputReceiver",
    "contrib.learn.build_parsing_serving_input_fn": "tf.estimator.export."
    "build_parsing_serving_input_receiver_fn",
    # tf.estimator names the harness does not provide.
    "estimator.DNNClassifier": "a model_fn returning an EstimatorSpec (canned estimators are "
    "not provided)",
    "estimator.DNNRegressor": "a model_fn returning an EstimatorSpec (canned estimators are "
    "not provided)",
    "estimator.LinearClassifier": "a model_fn returning an EstimatorSpec (canned estimators are "
    "not provided)",
    "estimator.LinearRegressor": "a model_fn returning an EstimatorSpec (canned estimators are "
    "not provided)",
    "estimator.DNNLinearCombinedClassifier": "a model_fn returning an EstimatorSpec (canned "
    "estimators are not provided)",
    "estimator.DNNLinearCombinedRegressor": "a model_fn returning an EstimatorSpec (canned "
    "estimators are not provided)",
    "estimator.BoostedTreesClassifier": "TensorFlow Decision Forests",
    "estimator.BoostedTreesRegressor": "TensorFlow Decision Forests",
    "estimator.BaselineClassifier": "a model_fn returning an EstimatorSpec",
    "estimator.BaselineRegressor": "a model_fn returning an EstimatorSpec",
    "estimator.WarmStartSettings": "tf.compat.v1.train.init_from_checkpoint inside model_fn",
    "estimator.VocabInfo": "tf.compat.v1.train.init_from_checkpoint inside model_fn",
    "estimator.experimental": "the harness's own job settings; tf.estimator.experimental is "
    "not provided",
    "estimator.add_metrics": "eval_metric_ops returned by the model_fn",
    "estimator.classifier_parse_example_spec": "tf.feature_column.make_parse_example_spec",
    "estimator.regressor_parse_example_spec": "tf.feature_column.make_parse_example_spec",
    "estimator.Head": "your own loss/metrics in the model_fn (heads are not provided)",
    "estimator.BinaryClassHead": "your own loss/metrics in the model_fn",
    "estimator.MultiClassHead": "your own loss/metrics in the model_fn",
    "estimator.RegressionHead": "your own loss/metrics in the model_fn",
    "estimator.tpu": "tf.distribute.TPUStrategy",
    "estimator.export.BestExporter": "tf.estimator.LatestExporter / harness export",
}

_GENERIC = (
    "its TF 2 equivalent (tf.compat.v1, tf.keras, or a separate package; "
    "https://github.com/tensorflow/community/blob/master/rfcs/20180907-contrib-sunset.md "
    "lists where each tf.contrib module went)"
)


def replacement_for(api: str) -> str:
    """The replacement hint for a dotted name below ``tf.`` (longest matching prefix)."""
    parts = api.split(".")
    for end in range(len(parts), 0, -1):
        hint = REPLACEMENTS.get(".".join(parts[:end]))
        if hint:
            return hint
    if parts[0] == "estimator":
        return (
            "harness.Estimator or a harness job; harness.compat provides only the names in "
            "docs/tf1-code.md"
        )
    return _GENERIC


def removed_message(api: str) -> str:
    """``'tf.<api> was removed in TensorFlow 2; use <replacement>'``."""
    return f"tf.{api} was removed in TensorFlow 2; use {replacement_for(api)}"


class RemovedAPIError(HarnessError, AttributeError):
    """A removed TensorFlow API was used as an attribute (``tf.contrib.rnn``).

    Attributes:
        api: the dotted name as the user wrote it below ``tf``, prefixed: ``'tf.contrib.rnn'``.
        replacement: what to use instead.
    """

    def __init__(self, api: str, message: str | None = None) -> None:
        self.api = "tf." + api
        self.replacement = replacement_for(api)
        super().__init__(message or removed_message(api))


class RemovedModuleError(HarnessError, ImportError):
    """A removed TensorFlow module was imported (``from tensorflow.contrib import rnn``).

    Same message and attributes as `RemovedAPIError`.
    """

    def __init__(self, api: str, message: str | None = None) -> None:
        self.api = "tf." + api
        self.replacement = replacement_for(api)
        super().__init__(message or removed_message(api))


def namespace_getattr(
    namespace: str, lazy: dict[str, tuple[str, str]], removed: dict[str, str] | None = None
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for the namespace ``tf.<namespace>``.

    Args:
        namespace: the dotted name below ``tf``, e.g. ``'estimator'`` or ``'contrib.learn'``.
        lazy: ``{attribute: (module, name)}`` resolved at every access (nothing is cached, so a
            class another module replaces later is the one returned).
        removed: ``{attribute: message}`` for names with a namespace-specific error message.

    Returns:
        A function raising `RemovedAPIError` for every other public name, and a plain
        AttributeError for private and dunder names (so introspection tools behave).
    """

    def __getattr__(name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(f"module 'tf.{namespace}' has no attribute {name!r}")
        if name in lazy:
            module_name, attribute = lazy[name]
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise RemovedAPIError(
                    f"{namespace}.{name}",
                    f"tf.{namespace}.{name} is provided by {module_name}, which cannot be "
                    f"imported: {exc}",
                ) from exc
            try:
                return getattr(module, attribute)
            except AttributeError:
                raise RemovedAPIError(
                    f"{namespace}.{name}",
                    f"tf.{namespace}.{name} is provided by {module_name}.{attribute}, which "
                    f"does not exist (yet)",
                ) from None
        if removed and name in removed:
            raise RemovedAPIError(f"{namespace}.{name}", removed[name])
        raise RemovedAPIError(f"{namespace}.{name}")

    return __getattr__


#: Import-name prefixes whose unknown submodules are removed APIs, and the ``tf.`` name below
#: which they sit. Longest prefixes first.
_NAMESPACE_PREFIXES = (
    ("tensorflow.compat.v1.", ""),
    ("tensorflow.compat.v2.", ""),
    ("harness.compat.", ""),
    ("tensorflow.", ""),
)
_REMOVED_ROOTS = ("contrib", "estimator")
#: ``tensorflow.contrib.slim.X`` and TF 1.x's own path ``tensorflow.contrib.slim.python.slim.X``.
_SLIM_PREFIXES = ("contrib.slim.python.slim.", "contrib.slim.")


def _api_name(fullname: str) -> str | None:
    for prefix, _ in _NAMESPACE_PREFIXES:
        if fullname.startswith(prefix):
            rest = fullname[len(prefix) :]
            if rest.split(".", 1)[0] in _REMOVED_ROOTS:
                return rest
            return None
    return None


class _AliasLoader(importlib.abc.Loader):
    """Loads an import name as an existing module object (its own spec is kept)."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._spec: Any = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        module = importlib.import_module(self._target)
        self._spec = getattr(module, "__spec__", None)
        return module

    def exec_module(self, module: Any) -> None:
        if self._spec is not None:
            module.__spec__ = self._spec  # the import system overwrote it with the alias spec


class SlimAliasFinder(importlib.abc.MetaPathFinder):
    """The first entry of ``sys.meta_path``: ``tensorflow.contrib.slim.<name>`` (and the
    ``tensorflow.compat.v1`` and TF 1.x ``...slim.python.slim.<name>`` spellings) imports as the
    module object ``tf_slim.<name>``, so that nothing of tf_slim is loaded twice."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        api = _api_name(fullname)
        if api is None:
            return None
        for slim_prefix in _SLIM_PREFIXES:
            if api.startswith(slim_prefix):
                target_name = "tf_slim." + api[len(slim_prefix) :]
                if importlib.util.find_spec(target_name) is None:
                    return None
                return importlib.machinery.ModuleSpec(fullname, _AliasLoader(target_name))
        return None


class RemovedFinder(importlib.abc.MetaPathFinder):
    """The last entry of ``sys.meta_path``: an import below ``tensorflow.contrib`` or
    ``tensorflow.estimator`` (or their ``tensorflow.compat.v1`` spellings) that nothing else
    could find raises `RemovedModuleError`."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        api = _api_name(fullname)
        if api is None:
            return None
        raise RemovedModuleError(api)


def install_finder() -> None:
    """Puts one `SlimAliasFinder` first and one `RemovedFinder` last in ``sys.meta_path``
    (idempotent)."""
    if not any(isinstance(finder, SlimAliasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, SlimAliasFinder())
    if not any(isinstance(finder, RemovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(RemovedFinder())
