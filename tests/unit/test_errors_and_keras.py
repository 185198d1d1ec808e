"""harness.errors (the user's frame of an error) and harness.legacy_keras (which Keras)."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from harness import legacy_keras
from harness.errors import is_user_file, user_location


def test_the_innermost_user_frame_is_named(tmp_path, monkeypatch):
    (tmp_path / "usermodel.py").write_text(
        textwrap.dedent(
            """
            import json

            def model_fn():
                return json.loads("{not json")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    import usermodel

    with pytest.raises(ValueError) as info:
        usermodel.model_fn()
    # json's own frames (the stdlib) are skipped: the user's line 5 is named.
    assert user_location(info.value) == "usermodel.py:5 in model_fn"
    sys.modules.pop("usermodel")


def test_the_cause_chain_is_searched_when_the_outer_error_has_no_user_frame(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    raise KeyError('x')\n")
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    with pytest.raises(KeyError) as info:
        namespace["f"]()
    outer = RuntimeError("wrapped")  # no traceback of its own, as if raised by a library
    outer.__cause__ = info.value
    assert user_location(outer) == f"{path}:2 in f"
    assert user_location(RuntimeError("no traceback")) is None


def test_library_and_harness_files_are_not_user_files():
    import harness.runtime.graph

    assert not is_user_file(os.__file__)
    assert not is_user_file(harness.runtime.graph.__file__)
    assert not is_user_file(pytest.__file__)
    assert not is_user_file("<string>")
    assert is_user_file(__file__)


def test_env_values_and_unknown_modes():
    assert legacy_keras.env_value("legacy") == "1"
    assert legacy_keras.env_value("keras3") == "0"
    with pytest.raises(ValueError, match="keras: must be one of legacy, keras3"):
        legacy_keras.env_value("tf_keras")


def test_apply_sets_the_variable(monkeypatch):
    monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
    legacy_keras.apply("keras3")
    assert os.environ["TF_USE_LEGACY_KERAS"] == "0"
    legacy_keras.apply("legacy")
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"


def test_describe_names_the_package_and_version():
    from importlib import metadata

    assert metadata.version("tf_keras") in legacy_keras.describe("legacy")
    assert "Keras 3" in legacy_keras.describe("keras3")


def test_importing_harness_defaults_to_legacy_keras():
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    code = "import os, harness; print(os.environ['TF_USE_LEGACY_KERAS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "1", out.stderr
    env["TF_USE_LEGACY_KERAS"] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "0", out.stderr


def test_a_keras3_layer_error_gets_the_fix():
    exc = AttributeError("`dense` is not available with Keras 3.")
    assert "remove `keras: keras3`" in legacy_keras.hint(exc)
    assert legacy_keras.hint(ValueError("shapes differ")) == ""
