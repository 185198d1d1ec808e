"""JobSpec: the job YAML, validated with errors that give the field path and the fix."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from harness.job import JobSpec, JobSpecError, RoleResources, gpus_for, takes_gpus

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
name: linear
model_fn: examples.linear.model:model_fn
input_fn: examples.linear.model:input_fn
model_dir: /tmp/linear
train: {max_steps: 10}
"""


def load(tmp_path, text):
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(text))
    return JobSpec.from_yaml(path)


def error_of(tmp_path, text) -> str:
    with pytest.raises(JobSpecError) as info:
        load(tmp_path, text)
    return str(info.value)


def test_minimal_job_gets_the_documented_defaults(tmp_path):
    job = load(tmp_path, MINIMAL)
    assert job.cluster.workers == 0 and job.cluster.ps == 0
    assert job.task_counts() == {"chief": 1}
    assert job.resources.chief.cpu == 1 and job.resources.worker.gpu == 0
    assert job.train.keep_checkpoint_max == 5
    assert job.train.checkpoint_secs == 600  # RunConfig's default when no trigger is set
    assert job.failure.max_failures == 3
    assert job.placement.strategy == "PACK"
    assert job.source_dirs[0] == str(tmp_path.resolve())


def test_the_example_job_is_valid():
    job = JobSpec.from_yaml(REPO / "examples" / "linear" / "job.yaml")
    assert job.task_counts() == {"chief": 1, "worker": 2, "ps": 1}
    assert job.num_tasks == 4


def test_json_round_trip(tmp_path):
    job = load(tmp_path, MINIMAL + "cluster: {workers: 2, ps: 1}\n")
    assert JobSpec.from_json(job.to_json()) == job


def test_unknown_top_level_key_is_named_with_a_suggestion(tmp_path):
    message = error_of(tmp_path, MINIMAL + "clutser: {workers: 2}\n")
    assert "clutser: unknown key 'clutser'. Did you mean 'cluster'?" in message
    assert str(tmp_path / "job.yaml") in message


def test_unknown_nested_key_lists_the_allowed_keys(tmp_path):
    message = error_of(
        tmp_path, MINIMAL.replace("{max_steps: 10}", "{max_steps: 10, save_every: 5}")
    )
    assert "train.save_every: unknown key 'save_every'." in message
    assert "Allowed here:" in message and "save_checkpoints_steps" in message


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ("{max_steps: 0}", "train.max_steps"),
        ("{max_steps: -5}", "train.max_steps"),
        ("{max_steps: 10, keep_checkpoint_max: -1}", "train.keep_checkpoint_max"),
    ],
)
def test_impossible_train_values(tmp_path, patch, field):
    message = error_of(tmp_path, MINIMAL.replace("{max_steps: 10}", patch))
    assert f"{field}: Input should be greater than" in message


def test_negative_counts(tmp_path):
    message = error_of(tmp_path, MINIMAL + "cluster: {workers: -1, ps: -2}\n")
    assert "cluster.workers: Input should be greater than or equal to 0 (got -1)" in message
    assert "cluster.ps: Input should be greater than or equal to 0 (got -2)" in message


def test_min_workers_is_at_most_workers_and_defaults_to_all(tmp_path):
    job = load(tmp_path, MINIMAL + "cluster: {workers: 3, min_workers: 1}\n")
    assert job.cluster.min_workers == 1 and job.cluster.workers_needed == 1
    assert load(tmp_path, MINIMAL + "cluster: {workers: 3}\n").cluster.workers_needed == 3
    message = error_of(tmp_path, MINIMAL + "cluster: {workers: 2, min_workers: 3}\n")
    assert "cluster.min_workers: must be at most cluster.workers (2) (got 3)" in message
    message = error_of(tmp_path, MINIMAL + "cluster: {workers: 2, min_workers: -1}\n")
    assert "cluster.min_workers: Input should be greater than or equal to 0 (got -1)" in message


def test_both_checkpoint_triggers_are_refused(tmp_path):
    text = MINIMAL.replace(
        "{max_steps: 10}", "{max_steps: 10, save_checkpoints_steps: 5, save_checkpoints_secs: 60}"
    )
    message = error_of(tmp_path, text)
    assert "save_checkpoints_steps and save_checkpoints_secs are both set; keep only one" in message


def test_missing_required_field(tmp_path):
    message = error_of(tmp_path, MINIMAL.replace("model_dir: /tmp/linear\n", ""))
    assert "model_dir: required field is missing; add it to the job file" in message


def test_bad_function_path_format(tmp_path):
    message = error_of(
        tmp_path, MINIMAL.replace("examples.linear.model:model_fn", "examples/linear/model.py")
    )
    assert "model_fn: must be 'package.module:function'" in message


def test_ps_may_not_take_gpus(tmp_path):
    message = error_of(tmp_path, MINIMAL + "resources: {ps: {cpu: 1, gpu: 1}}\n")
    assert "resources.ps.gpu: ps tasks only host variables and must not take GPUs" in message


def test_only_trainers_take_gpus():
    assert [role for role in ("chief", "worker", "ps", "evaluator") if takes_gpus(role)] == [
        "chief",
        "worker",
    ]
    two = RoleResources(gpu=2)
    assert gpus_for("chief", two) == gpus_for("worker", two) == 2
    assert gpus_for("ps", two) == gpus_for("evaluator", two) == 0


def test_invalid_name(tmp_path):
    message = error_of(tmp_path, MINIMAL.replace("name: linear", "name: My_Job"))
    assert "name: must be 1-40 characters of lowercase letters" in message


def test_not_a_mapping_and_bad_yaml(tmp_path):
    assert "must be a YAML mapping" in error_of(tmp_path, "- a\n- b\n")
    assert "not valid YAML" in error_of(tmp_path, "name: [unclosed\n")
    with pytest.raises(JobSpecError, match=re.escape("cannot read the job file")):
        JobSpec.from_yaml(tmp_path / "missing.yaml")


def test_every_problem_is_reported_at_once(tmp_path):
    message = error_of(
        tmp_path, MINIMAL.replace("{max_steps: 10}", "{max_steps: 0}") + "cluster: {ps: -1}\n"
    )
    assert "(2 problem(s))" in message


def test_resolve_functions_imports_from_the_source_dirs(tmp_path):
    (tmp_path / "mymodel.py").write_text(
        "def model_fn(features, labels):\n    pass\ndef input_fn():\n    pass\n"
    )
    job = load(tmp_path, MINIMAL.replace("examples.linear.model", "mymodel"))
    model_fn, input_fn = job.resolve_functions()
    assert model_fn.__name__ == "model_fn" and input_fn.__name__ == "input_fn"


def test_unimportable_module_and_missing_function(tmp_path):
    job = load(tmp_path, MINIMAL.replace("examples.linear.model:model_fn", "nosuchmodule:model_fn"))
    with pytest.raises(
        JobSpecError, match=re.escape("model_fn: cannot import module 'nosuchmodule'")
    ):
        job.resolve_functions()
    (tmp_path / "mymodel2.py").write_text("def model_fn(features, labels):\n    pass\n")
    job = load(tmp_path, MINIMAL.replace("examples.linear.model:model_fn", "mymodel2:modelfn"))
    with pytest.raises(JobSpecError, match=re.escape("Did you mean 'mymodel2:model_fn'?")):
        job.resolve("model_fn")


def test_a_module_that_raises_on_import_is_reported(tmp_path):
    (tmp_path / "broken.py").write_text("raise RuntimeError('bad import')\n")
    job = load(tmp_path, MINIMAL.replace("examples.linear.model:model_fn", "broken:model_fn"))
    with pytest.raises(
        JobSpecError, match=re.escape("importing module 'broken' raised RuntimeError: bad import")
    ):
        job.resolve("model_fn")


def test_a_job_built_in_python_is_validated_as_a_job_file_is(tmp_path):
    import harness

    with pytest.raises(harness.JobSpecError) as info:
        harness.Job(name="py", model_fn="m:f", input_fn="m:g", model_dir="m", train={"max_step": 5})
    message = str(info.value)
    assert info.value.field == "train.max_steps"
    assert "train.max_steps: required field is missing; add it\n" in message + "\n"
    assert "Did you mean 'max_steps'?" in message
    job = harness.Job(
        name="py", model_fn="m:f", input_fn="m:g", model_dir="m", train={"max_steps": 5}
    )
    assert job.model_dir == str(Path.cwd() / "m") and job.source_dirs == (str(Path.cwd()),)
