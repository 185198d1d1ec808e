"""Exporters for ``EvalSpec.exporters``: tf.estimator's ``Exporter``, ``LatestExporter`` and
``FinalExporter``, exporting through ``Estimator.export_saved_model`` (harness/export/saved_model.py).

An exporter writes to ``<model_dir>/export/<exporter name>/<timestamp>``. ``LatestExporter``
exports after every evaluation and then keeps the ``exports_to_keep`` newest versions;
``FinalExporter`` exports only when called with ``is_the_final_export=True``; ``BestExporter``
exports when an evaluation beats the best one so far. When
``train_and_evaluate`` calls them is in docs/estimator.md.
"""

from __future__ import annotations

import abc
import logging
import os
import shutil
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Exporter(abc.ABC):
    """tf.estimator's Exporter interface: a ``name`` and ``export(...)``."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Directory name under ``<model_dir>/export``; unique among an EvalSpec's exporters."""

    @abc.abstractmethod
    def export(
        self,
        estimator: Any,
        export_path: str,
        checkpoint_path: str,
        eval_result: dict[str, Any] | None,
        is_the_final_export: bool,
    ) -> Any:
        """Exports ``checkpoint_path`` under ``export_path``; returns the export's path or None."""


class _SavedModelExporter(Exporter):
    def __init__(
        self,
        name: str,
        serving_input_receiver_fn: Callable[..., Any],
        assets_extra: dict[str, str] | None = None,
        as_text: bool = False,
    ) -> None:
        self._name = name
        self._serving_input_receiver_fn = serving_input_receiver_fn
        self._assets_extra = assets_extra
        self._as_text = as_text

    @property
    def name(self) -> str:
        return self._name

    def _export(self, estimator: Any, export_path: str, checkpoint_path: str) -> bytes:
        return estimator.export_saved_model(
            export_path,
            self._serving_input_receiver_fn,
            assets_extra=self._assets_extra,
            as_text=self._as_text,
            checkpoint_path=checkpoint_path,
        )


class FinalExporter(_SavedModelExporter):
    """Exports only the final model (``is_the_final_export``), as tf.estimator's did."""

    def export(
        self,
        estimator: Any,
        export_path: str,
        checkpoint_path: str,
        eval_result: dict[str, Any] | None,
        is_the_final_export: bool,
    ) -> bytes | None:
        if not is_the_final_export:
            return None
        log.info("performing the final export in the end of training")
        return self._export(estimator, export_path, checkpoint_path)


class LatestExporter(_SavedModelExporter):
    """Exports on every call, then deletes all but the ``exports_to_keep`` newest versions."""

    def __init__(
        self,
        name: str,
        serving_input_receiver_fn: Callable[..., Any],
        assets_extra: dict[str, str] | None = None,
        as_text: bool = False,
        exports_to_keep: int | None = 5,
    ) -> None:
        super().__init__(name, serving_input_receiver_fn, assets_extra, as_text)
        if exports_to_keep is not None and exports_to_keep <= 0:
            raise ValueError(
                f"`exports_to_keep`, if provided, must be a positive number. Got {exports_to_keep}"
            )
        self._exports_to_keep = exports_to_keep

    def export(
        self,
        estimator: Any,
        export_path: str,
        checkpoint_path: str,
        eval_result: dict[str, Any] | None,
        is_the_final_export: bool,
    ) -> bytes:
        result = self._export(estimator, export_path, checkpoint_path)
        self._garbage_collect(export_path)
        return result

    def _garbage_collect(self, export_path: str) -> None:
        if self._exports_to_keep is None or not os.path.isdir(export_path):
            return
        versions = sorted(int(name) for name in os.listdir(export_path) if name.isdigit())
        for version in versions[: -self._exports_to_keep]:
            shutil.rmtree(os.path.join(export_path, str(version)), ignore_errors=True)


def _loss_smaller(best_eval_result: dict[str, Any], current_eval_result: dict[str, Any]) -> bool:
    """TF's default ``compare_fn``: the current evaluation's ``loss`` is smaller."""
    for result in (best_eval_result, current_eval_result):
        if not result or "loss" not in result:
            raise ValueError("best_eval_result and current_eval_result cannot be empty or no loss")
    return current_eval_result["loss"] < best_eval_result["loss"]


class BestExporter(LatestExporter):
    """Exports when an evaluation is the best so far by ``compare_fn(best, current)`` (default:
    a smaller ``loss``), keeping the ``exports_to_keep`` newest exports. The best result is
    remembered in this object only (TF also read earlier eval event files; this does not)."""

    def __init__(
        self,
        name: str = "best_exporter",
        serving_input_receiver_fn: Callable[..., Any] | None = None,
        event_file_pattern: str = "eval/*.tfevents.*",
        compare_fn: Callable[[dict[str, Any], dict[str, Any]], bool] = _loss_smaller,
        assets_extra: dict[str, str] | None = None,
        as_text: bool = False,
        exports_to_keep: int | None = 5,
    ) -> None:
        if serving_input_receiver_fn is None:
            raise ValueError("`serving_input_receiver_fn` must be provided.")
        super().__init__(name, serving_input_receiver_fn, assets_extra, as_text, exports_to_keep)
        self._compare_fn = compare_fn
        self._best_eval_result: dict[str, Any] | None = None

    def export(
        self,
        estimator: Any,
        export_path: str,
        checkpoint_path: str,
        eval_result: dict[str, Any] | None,
        is_the_final_export: bool,
    ) -> bytes | None:
        if self._best_eval_result is not None and not self._compare_fn(
            self._best_eval_result, eval_result
        ):
            return None
        self._best_eval_result = eval_result
        return super().export(estimator, export_path, checkpoint_path, eval_result, True)
