"""The Estimator facade: ``tf.estimator``'s API on the harness (docs/estimator.md).

- ``estimator.py``   ``Estimator``: train, evaluate, predict, export in this process;
- ``specs.py``       ``TrainSpec``, ``EvalSpec``, ``WarmStartSettings``;
- ``exporters.py``   ``LatestExporter``, ``FinalExporter``, ``BestExporter``;
- ``prediction.py``  ``Estimator.predict``'s loop;
- ``driver.py``      ``train_and_evaluate``, in this process or as a cluster job (an entry
                     point: it runs ``harness.commands.run``);
- ``functions.py``   the Estimator's functions pickled to ``<model_dir>/estimator_fns.pkl``
                     and the loaders a cluster job's tasks call.

Names are imported lazily, so importing ``harness.estimator.functions`` in a task does not
load the facade.
"""

from __future__ import annotations

from harness.lazy import lazy_getattr

_EXPORTS = {
    "Estimator": "harness.estimator.estimator",
    "train_and_evaluate": "harness.estimator.estimator",
    "train_settings": "harness.estimator.arguments",
    "TrainSpec": "harness.estimator.specs",
    "EvalSpec": "harness.estimator.specs",
    "WarmStartSettings": "harness.estimator.specs",
    "Exporter": "harness.estimator.exporters",
    "LatestExporter": "harness.estimator.exporters",
    "FinalExporter": "harness.estimator.exporters",
    "BestExporter": "harness.estimator.exporters",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
