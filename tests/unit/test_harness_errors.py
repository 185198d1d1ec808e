"""harness.errors.HarnessError: the facts of a user-facing error as attributes; the graph
preamble's one implementation."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from harness.compat.removed import RemovedAPIError, RemovedModuleError
from harness.errors import (
    CheckpointMismatchError,
    HarnessError,
    UserCodeError,
    UserGraphError,
    UserHookError,
)
from harness.export.serving_inputs import ExportError
from harness.job import JobSpec, JobSpecError, import_function
from harness.runtime.evaluation import CheckpointNotFoundError

ROOT = Path(__file__).resolve().parents[2]


def test_a_harness_error_carries_its_facts():
    exc = HarnessError("the chief failed", role="chief", index=0, field="train.max_steps")
    assert str(exc) == exc.message == "the chief failed"
    assert (exc.role, exc.index, exc.field, exc.task) == ("chief", 0, "train.max_steps", "chief:0")
    plain = HarnessError("x")
    assert (plain.role, plain.index, plain.field, plain.task) == (None, None, None, None)
    assert HarnessError("x", role="ps").task == "ps"


def test_the_facts_survive_pickling():
    exc = pickle.loads(pickle.dumps(UserCodeError("bad", role="worker", index=2, field="model_fn")))
    assert type(exc) is UserCodeError
    assert (str(exc), exc.role, exc.index, exc.field) == ("bad", "worker", 2, "model_fn")


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (UserCodeError, Exception),
        (UserGraphError, UserCodeError),
        (CheckpointMismatchError, UserCodeError),
        (JobSpecError, ValueError),
        (ExportError, ValueError),
        (CheckpointNotFoundError, ValueError),
    ],
)
def test_each_user_facing_error_is_a_harness_error_and_keeps_its_base(cls, builtin):
    exc = cls("message", field="f")
    assert isinstance(exc, HarnessError) and isinstance(exc, builtin)
    assert exc.field == "f" and str(exc) == "message"


def test_user_hook_error_keeps_its_hook():
    exc = UserHookError("MyHook.begin raised", hook="MyHook.begin", role="chief", index=0)
    assert exc.hook == "MyHook.begin" and exc.task == "chief:0"
    assert isinstance(exc, UserCodeError)


def test_removed_api_errors_stay_attribute_and_import_errors():
    api = RemovedAPIError("contrib.rnn")
    assert isinstance(api, AttributeError) and isinstance(api, HarnessError)
    assert api.api == "tf.contrib.rnn" and str(api) == api.message
    module = RemovedModuleError("contrib.rnn")
    assert isinstance(module, ImportError) and isinstance(module, HarnessError)
    with pytest.raises(AttributeError):
        raise api


JOB = {"name": "x", "model_fn": "m:f", "input_fn": "m:g", "model_dir": "/tmp/x"}


def test_job_spec_error_names_the_first_field_of_a_validation_error():
    with pytest.raises(JobSpecError) as info:
        JobSpec.from_dict({**JOB, "train": {"max_steps": 0}, "cluster": {"workers": -1}})
    first_problem = str(info.value).splitlines()[1]
    assert info.value.field in ("train.max_steps", "cluster.workers")
    assert first_problem.startswith(f"  {info.value.field}: ")
    with pytest.raises(JobSpecError) as info:
        JobSpec.from_dict({**JOB, "train": {"max_steps": 1, "max_step": 2}})
    assert info.value.field == "train.max_step"


def test_job_spec_error_names_the_field_of_a_function_that_cannot_be_imported():
    with pytest.raises(JobSpecError) as info:
        import_function("no_such_module_here:model_fn", "eval.input_fn")
    assert info.value.field == "eval.input_fn"
    with pytest.raises(JobSpecError) as info:
        import_function("json:no_such_function", "model_fn")
    assert info.value.field == "model_fn"


def test_a_job_file_that_cannot_be_read_has_no_field(tmp_path):
    with pytest.raises(JobSpecError) as info:
        JobSpec.from_yaml(tmp_path / "missing.yaml")
    assert info.value.field is None


# ---- one graph preamble ----------------------------------------------------------------------


def _calls(path: Path, name: str) -> int:
    tree = ast.parse(path.read_text())
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == name
    )


def test_the_graph_preamble_has_one_implementation():
    """Only harness/runtime/graph.py resets Keras state or wraps user errors (``user_code``);
    the TRAIN, EVAL, INFER/export and prediction graphs all use its ``user_graph``."""
    found = {
        str(path.relative_to(ROOT)): (_calls(path, "reset_keras_state"), _calls(path, "user_code"))
        for path in (ROOT / "harness").rglob("*.py")
    }
    assert {p: n for p, n in found.items() if any(n)} == {"harness/runtime/graph.py": (1, 2)}
    for path in (
        "harness/runtime/graph.py",
        "harness/runtime/evaluation.py",
        "harness/export/graph.py",
        "harness/estimator/prediction.py",
    ):
        assert _calls(ROOT / path, "user_graph") >= 1, path
