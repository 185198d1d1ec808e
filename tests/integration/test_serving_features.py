"""The default serving signature asks clients only for the features the outputs use."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.export.graph import build_export_graph
from harness.export.serving_inputs import ExportError
from harness.job import JobSpec
from harness.testing import make_job_dict

REPO = Path(__file__).resolve().parents[2]
MODULE = "tests.integration.serving_models"


def job(tmp_path: Path, **fields) -> JobSpec:
    data = make_job_dict(
        f"{MODULE}:model_fn", f"{MODULE}:input_fn", tmp_path, params={}, source_dirs=(str(REPO),)
    )
    data.update(fields)
    return JobSpec.from_dict(data)


def inputs(graph) -> dict[str, set[str]]:
    return {key: set(sig.inputs) for key, sig in graph.signatures.items()}


def test_features_used_only_for_the_loss_are_not_serving_inputs(tmp_path):
    graph = build_export_graph(job(tmp_path))
    assert inputs(graph) == {"serving_default": {"x"}}


def test_the_job_can_list_the_serving_features(tmp_path):
    graph = build_export_graph(job(tmp_path, serving_features=["x", "is_real_example"]))
    assert inputs(graph) == {"serving_default": {"x", "is_real_example"}}


def test_an_unknown_serving_feature_is_named(tmp_path):
    with pytest.raises(ExportError, match=r"serving_features: \['label'\] are not among"):
        build_export_graph(job(tmp_path, serving_features=["x", "label"]))
