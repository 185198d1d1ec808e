"""SavedModel export: every signature served by TensorFlow's own loaders, in a fresh process.

The models (tests/integration/export_models.py) are linear with known variables, so each
signature's outputs are computed here with numpy and compared with what the loaded SavedModel
returns, through ``tf.saved_model.load`` (TF 2) and ``tf.compat.v1.saved_model.loader.load``
(a TF 1 session fed by tensor name, as TF Serving does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from harness.export.saved_model import export_on_finish, export_saved_model
from harness.export.serving_inputs import ExportError
from harness.job import JobSpec
from harness.testing import make_job_dict
from tests.integration import export_models as models

REPO = Path(__file__).resolve().parents[2]
MODULE = "tests.integration.export_models"
X = [-1.0, 0.0, 0.5, 3.0]
N = [0, 1, 2, 3]
EXACT = {"weight": models.WEIGHT, "bias": models.BIAS, "offset": models.OFFSET}

# Runs in a fresh process: argv[1] is a JSON list of requests {dir, signature, examples |
# features}; prints one JSON list of {v1: outputs, v2: outputs, method, signatures}.
SERVE = r"""
import json, sys
import numpy as np
import tensorflow as tf

def example(features):
    feature = {}
    for key, value in features.items():
        values = value if isinstance(value, list) else [value]
        if isinstance(values[0], float):
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        else:
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

def plain(value):
    value = np.asarray(value)
    if value.dtype.kind in "SO":
        return np.vectorize(lambda b: b.decode())(value).tolist()
    return value.tolist()

def feeds(request, signature):
    if "examples" in request:
        return {"inputs": np.array([example(e) for e in request["examples"]], dtype=object)}
    return {key: np.asarray(value, dtype=tf.dtypes.as_dtype(signature.inputs[key].dtype)
                            .as_numpy_dtype) for key, value in request["features"].items()}

requests = json.loads(sys.argv[1])
results = [dict() for _ in requests]
for directory in sorted({r["dir"] for r in requests}):
    mine = [(i, r) for i, r in enumerate(requests) if r["dir"] == directory]
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], directory)
        for i, request in mine:
            signature = meta.signature_def[request["signature"]]
            inputs = feeds(request, signature)
            fetched = session.run(
                {k: v.name for k, v in signature.outputs.items()},
                {signature.inputs[k].name: v for k, v in inputs.items()})
            results[i]["v1"] = {k: plain(v) for k, v in fetched.items()}
            results[i]["method"] = signature.method_name
            results[i]["signatures"] = sorted(meta.signature_def)
            results[i]["inputs"] = inputs
    loaded = tf.saved_model.load(directory)
    for i, request in mine:
        inputs = {k: tf.constant(v) for k, v in results[i].pop("inputs").items()}
        outputs = loaded.signatures[request["signature"]](**inputs)
        results[i]["v2"] = {k: plain(v.numpy()) for k, v in outputs.items()}
print("RESULTS " + json.dumps(results))
"""


def job_for(model_dir: Path, params: dict, **fields) -> JobSpec:
    data = make_job_dict(
        f"{MODULE}:model_fn",
        f"{MODULE}:input_fn",
        model_dir,
        params=params,
        source_dirs=(str(REPO),),
        **fields,
    )
    return JobSpec.from_dict(data)


def scores(weight: float, bias: float, offset: float = 0.0, with_n: bool = False) -> np.ndarray:
    x = np.asarray(X, dtype=np.float32).reshape(-1, 1)
    return models.expected(weight, bias, x, offset, N if with_n else None)


def classify_outputs(score: np.ndarray) -> dict:
    p = 1.0 / (1.0 + np.exp(-score))
    return {"classes": [["neg", "pos"]] * len(score), "scores": np.stack([1 - p, p], axis=1)}


def export_case(root: Path, name: str, params: dict, **options) -> tuple[str, dict]:
    """Writes the exact checkpoint (or trains), exports; returns (export dir, variables)."""
    model_dir = root / name
    fields = (
        {"serving_input_fn": options.pop("serving_input_fn")}
        if "serving_input_fn" in options
        else {}
    )
    job = job_for(model_dir, params, **fields)
    if options.pop("train", False):
        models.train(str(model_dir), params, max_steps=150, save_steps=150)
        reader = tf.train.load_checkpoint(str(model_dir))
        values = {v: float(reader.get_tensor(v).ravel()[0]) for v in ("weight", "bias")}
    else:
        values = EXACT
        models.write_checkpoint(str(model_dir), params, values, global_step=7)
    return export_saved_model(job, str(root / f"{name}-export"), **options), values


def build_requests(root: Path) -> tuple[list[dict], list[dict]]:
    """(requests for the serving process, what each must return)."""
    requests, wanted = [], []

    def ask(directory, signature, answer, method, signatures, examples=None, features=None):
        request = {"dir": directory, "signature": signature}
        request.update({"examples": examples} if examples else {"features": features})
        requests.append(request)
        wanted.append({"answer": answer, "method": method, "signatures": sorted(signatures)})

    x_examples = [{"x": x} for x in X]
    xn_examples = [{"x": x, "n": n} for x, n in zip(X, N, strict=True)]
    x_features = {"x": [[x] for x in X]}
    predict, classify, regress = (
        f"tensorflow/serving/{m}" for m in ("predict", "classify", "regress")
    )

    path, v = export_case(root, "regression", {"outputs": ["regress"]}, train=True)
    assert v["weight"] == pytest.approx(2.0, abs=1e-3) and v["bias"] == pytest.approx(1.0, abs=1e-3)
    sigs = ["regress", "serving_default"]
    for key in sigs:
        ask(path, key, {"outputs": scores(v["weight"], v["bias"])}, regress, sigs, x_examples)

    path, v = export_case(root, "classification", {"outputs": ["classify"]})
    sigs = ["classify", "serving_default"]
    for key in sigs:
        ask(path, key, classify_outputs(scores(2, 1)), classify, sigs, x_examples)

    path, _ = export_case(root, "predict", {"outputs": ["predict"]})
    sigs = ["predict", "serving_default"]
    for key in sigs:
        ask(
            path,
            key,
            {"y": scores(2, 1), "doubled": 2 * scores(2, 1)},
            predict,
            sigs,
            None,
            x_features,
        )

    path, _ = export_case(root, "plain", {})
    answer = {"y": scores(2, 1).reshape(-1, 1)}
    ask(path, "serving_default", answer, predict, ["serving_default"], None, x_features)

    params = {"outputs": ["regress", "classify_scores", "predict"], "with_n": True}
    path, _ = export_case(root, "multi", params, default_output="classify_scores")
    sigs = ["regress", "classify_scores", "predict", "serving_default"]
    s = scores(2, 1, 0.5, with_n=True)
    ask(path, "regress", {"outputs": s}, regress, sigs, xn_examples)
    ask(path, "classify_scores", classify_outputs(s), classify, sigs, xn_examples)
    ask(path, "serving_default", classify_outputs(s), classify, sigs, xn_examples)
    answer = {"y": s, "doubled": 2 * s, "n_twice": [2 * n for n in N]}
    ask(path, "predict", answer, predict, sigs, None, {**x_features, "n": N})

    params = {"outputs": ["predict"]}
    path, _ = export_case(root, "custom", params, serving_input_fn=f"{MODULE}:serving_input_fn")
    sigs = ["predict", "serving_default"]
    for key in sigs:
        ask(
            path,
            key,
            {"y": scores(2, 1), "doubled": 2 * scores(2, 1)},
            predict,
            sigs,
            None,
            {"x_raw": X},
        )
    return requests, wanted


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    requests, wanted = build_requests(tmp_path_factory.mktemp("export"))
    result = subprocess.run(
        [sys.executable, "-c", SERVE, json.dumps(requests)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULTS "))
    return requests, wanted, json.loads(line.removeprefix("RESULTS "))


@pytest.mark.timeout(180)
def test_every_signature_serves_the_known_outputs_in_a_fresh_process(served):
    requests, wanted, results = served
    assert len(results) == len(requests) == 13
    for request, want, got in zip(requests, wanted, results, strict=True):
        where = f"{Path(request['dir']).parent.name}/{request['signature']}"
        assert got["signatures"] == want["signatures"], where
        assert got["method"] == want["method"], where
        for loader in ("v1", "v2"):
            assert sorted(got[loader]) == sorted(want["answer"]), (where, loader)
            for key, value in want["answer"].items():
                if key == "classes":
                    assert got[loader][key] == value, (where, loader, key)
                else:
                    np.testing.assert_allclose(
                        got[loader][key], value, rtol=1e-5, atol=1e-6, err_msg=f"{where} {loader}"
                    )


@pytest.mark.timeout(60)
def test_export_on_finish_writes_a_version_under_model_dir_export(tmp_path):
    job = job_for(tmp_path / "model", {"outputs": ["regress"]})
    models.write_checkpoint(job.model_dir, job.params, EXACT, global_step=3)
    path = export_on_finish(job)
    assert Path(path).parent == tmp_path / "model" / "export"
    assert Path(path).name.isdigit() and (Path(path) / "saved_model.pb").is_file()
    assert not [p for p in Path(path).parent.iterdir() if p.name.startswith("temp-")]


@pytest.mark.timeout(60)
def test_a_signature_that_cannot_be_built_is_an_error_not_dropped(tmp_path):
    # Two receiver tensors: a classify signature needs exactly one string tensor.
    job = job_for(
        tmp_path / "model",
        {"outputs": ["classify"]},
        serving_input_fn=f"{MODULE}:two_receivers_serving_input_fn",
    )
    models.write_checkpoint(job.model_dir, job.params, EXACT, global_step=3)
    with pytest.raises(ExportError, match="signature 'classify' .*cannot be built"):
        export_saved_model(job, str(tmp_path / "export"))
    assert not (tmp_path / "export").exists() or not list((tmp_path / "export").iterdir())


def harness_export(tmp_path: Path, params: dict, *args: str, checkpoint: bool = True):
    job = make_job_dict(
        f"{MODULE}:model_fn", f"{MODULE}:input_fn", tmp_path / "model", params=params
    )
    job.pop("source_dirs")
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    if checkpoint:
        models.write_checkpoint(str(tmp_path / "model"), params, EXACT, global_step=5)
    command = ["export", str(tmp_path / "job.yaml"), "--export-dir", str(tmp_path / "out"), *args]
    return subprocess.run(
        [sys.executable, "-m", "harness", *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


MULTI = {"outputs": ["regress", "classify", "predict"]}


@pytest.mark.timeout(120)
def test_cli_export_prints_the_path_and_the_signatures(tmp_path):
    result = harness_export(tmp_path, MULTI, "--default-output", "regress")
    assert result.returncode == 0, result.stderr
    path = result.stdout.splitlines()[0].removeprefix("harness: exported a SavedModel to ")
    assert Path(path).parent == tmp_path / "out" and (Path(path) / "saved_model.pb").is_file()
    for line in (
        "regress: tensorflow/serving/regress",
        "serving_default: tensorflow/serving/regress",
        "classify: tensorflow/serving/classify",
        "predict: tensorflow/serving/predict",
    ):
        assert line in result.stdout


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("params", "args", "checkpoint", "expected"),
    [
        (
            MULTI,
            (),
            True,
            ["--default-output KEY", "regress, classify, predict", "serving_default"],
        ),
        (MULTI, ("--default-output", "nope"), True, ["'nope'", "regress, classify, predict"]),
        (
            {"outputs": ["unknown"]},
            (),
            True,
            ["output_alternatives['unknown']", "unknown problem type 7"],
        ),
        ({"outputs": ["regress"]}, (), False, ["no checkpoint in", "model"]),
    ],
    ids=[
        "several-alternatives-no-default",
        "bad-default-key",
        "unknown-problem-type",
        "no-checkpoint",
    ],
)
def test_cli_export_rejects_bad_input_with_exit_2(tmp_path, params, args, checkpoint, expected):
    result = harness_export(tmp_path, params, *args, checkpoint=checkpoint)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "KeyError" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("harness: error: ")
    for text in expected:
        assert text in message
    if not checkpoint:
        assert str(tmp_path / "model") in message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
