"""tf.contrib.training.HParams: contrib's parse syntax, type checks and accessors."""

from __future__ import annotations

import json

import pytest

import harness.compat  # noqa: F401
from harness.compat.hparams import HParams


def make():
    return HParams(lr=0.1, units=10, name="relu", flag=True, sizes=[1, 2], acts=["a", "b"])


def test_attributes_values_contains_get():
    hp = make()
    assert hp.lr == 0.1 and hp.units == 10 and hp.sizes == [1, 2]
    assert "lr" in hp and "nope" not in hp
    assert hp.get("units") == 10 and hp.get("nope", 3) == 3
    assert hp.values() == {
        "lr": 0.1,
        "units": 10,
        "name": "relu",
        "flag": True,
        "sizes": [1, 2],
        "acts": ["a", "b"],
    }
    assert str(HParams(a=1, b=2)) == "a=1,b=2"
    assert repr(HParams(b=2, a=1)) == "HParams([('a', 1), ('b', 2)])"


def test_parse_syntax_and_types():
    hp = make().parse("lr=0.5,units=20,name=tanh,flag=false,sizes=[3,4,5],acts=[x]")
    assert (hp.lr, hp.units, hp.name, hp.flag) == (0.5, 20, "tanh", False)
    assert hp.sizes == [3, 4, 5] and hp.acts == ["x"]
    assert make().parse("flag=0").flag is False and make().parse("lr=1").lr == 1.0
    assert isinstance(make().parse("lr=1").lr, float)
    assert make().parse("sizes[1]=7").sizes == [1, 7]
    assert make().parse("").values() == make().values()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope=1", "Unknown hyperparameter type for nope"),
        ("units=1.5", "Could not parse hparam 'units' of type 'int' with value '1.5' in units=1.5"),
        ("units=1,units=2", "Multiple assignments to variable 'units' in units=1,units=2"),
        ("=1", "Malformed hyperparameter value: =1"),
        ("units=[1,2]", "Must not pass a list for single-valued parameter: units"),
        ("sizes=3", "Must pass a list for multi-valued parameter: sizes."),
        ("sizes[0]=[1]", "Assignment of a list to a list index."),
        ("flag=maybe", "Could not parse hparam 'flag' of type 'bool' with value 'maybe'"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(ValueError) as caught:
        make().parse(text)
    assert message in str(caught.value)


def test_set_hparam_casts_compatible_values_only():
    hp = make()
    hp.set_hparam("lr", 1)
    assert hp.lr == 1.0 and isinstance(hp.lr, float)
    for name, value in [("units", 1.5), ("name", 3), ("flag", 1), ("units", True), ("lr", "x")]:
        with pytest.raises(ValueError, match="Could not cast hparam"):
            hp.set_hparam(name, value)
    with pytest.raises(KeyError):
        hp.set_hparam("nope", 1)


def test_add_del_override_json():
    hp = make()
    hp.add_hparam("extra", 5)
    assert hp.extra == 5
    with pytest.raises(ValueError, match="Hyperparameter name is reserved: parse"):
        hp.add_hparam("parse", 1)
    with pytest.raises(ValueError, match="cannot be empty: empty"):
        hp.add_hparam("empty", [])
    hp.del_hparam("extra")
    hp.del_hparam("never_there")
    assert "extra" not in hp and not hasattr(hp, "extra")
    hp.override_from_dict({"units": 3, "acts": ["z"]})
    assert hp.units == 3 and hp.acts == ["z"]
    hp.parse_json('{"lr": 0.25}')
    assert hp.lr == 0.25
    assert json.loads(hp.to_json(sort_keys=True))["units"] == 3
    with pytest.raises(ValueError, match="incompatible with default"):
        hp.get("units", "x")
    with pytest.raises(ValueError, match="incompatible with default"):
        hp.get("sizes", 1)


def test_proto_construction_is_refused_clearly():
    with pytest.raises(ValueError, match="HParamDef"):
        HParams(hparam_def=object())
