"""``tf.contrib.training.HParams``: named, typed hyperparameters.

Behaviour of contrib's ``hparam.py`` (TF 1.15):

- ``HParams(**kwargs)`` adds each pair with `HParams.add_hparam`; the type of a value (of the
  first element for a list/tuple) is the parameter's type. A name that is already an attribute
  -> ``ValueError('Hyperparameter name is reserved: %s')``; an empty list ->
  ``ValueError('Multi-valued hyperparameters cannot be empty: %s')``. Values are attributes.
- ``set_hparam(name, value)``: unknown name -> ``KeyError``; a list for a scalar ->
  ``ValueError('Must not pass a list for single-valued parameter: %s')``, a scalar for a list ->
  ``ValueError('Must pass a list for multi-valued parameter: %s.')``; the value is cast to the
  type when compatible, else ``ValueError("Could not cast hparam 'x' of type '<class 'int'>' from
  value 1.5")`` (no str <-> non-str, no bool <-> non-bool, no float -> int, no non-number ->
  number).
- ``parse('a=1,b=[1,2],c=x,d[1]=3')``: names must exist (``ValueError('Unknown hyperparameter
  type for %s')``); values are parsed with the parameter's type (bools: true/True/false/False or
  an int); a name set twice -> ``ValueError("Multiple assignments to variable 'a' in ...")``; a
  malformed clause -> ``ValueError('Malformed hyperparameter value: ...')``; an unparsable value
  -> ``ValueError("Could not parse hparam 'a' of type 'int' with value 'x' in ...")``.
  ``name[i]=v`` sets one element of a list parameter (an extension: contrib parsed it but could
  not apply it).
- ``override_from_dict``, ``parse_json`` (both via ``set_hparam``), ``values()``, ``to_json(indent,
  separators, sort_keys)``, ``get(key, default)`` (a default of an incompatible type ->
  ``ValueError``), ``del_hparam``, ``in``, ``str()`` ('a=1,b=2'), ``repr()``.

``hparam_def`` (an ``HParamDef`` protocol buffer) is not supported: its proto module went with
tf.contrib.
"""

from __future__ import annotations

import json
import numbers
import re
from typing import Any

PARAM_RE = re.compile(
    r"""
  (?P<name>[a-zA-Z][\w\.]*)      # variable name: "var" or "x"
  (\[\s*(?P<index>\d+)\s*\])?    # (optional) index: "1" or None
  \s*=\s*
  ((?P<val>[^,\[]*)              # single value: "a" or None
   |
   \[(?P<vals>[^\]]*)\])         # list of values: None or "1,2,3"
  ($|,\s*)""",
    re.VERBOSE,
)


def _parse_fail(name: str, var_type: type, value: Any, values: str) -> None:
    raise ValueError(
        f"Could not parse hparam '{name}' of type '{var_type.__name__}' with value '{value}' "
        f"in {values}"
    )


def _reuse_fail(name: str, values: str) -> None:
    raise ValueError(f"Multiple assignments to variable '{name}' in {values}")


def _parser(name: str, var_type: type, values: str) -> Any:
    if var_type is not bool:
        return var_type

    def parse_bool(value: str) -> bool:
        if value in ("true", "True"):
            return True
        if value in ("false", "False"):
            return False
        try:
            return bool(int(value))
        except ValueError:
            _parse_fail(name, var_type, value, values)
        raise AssertionError  # unreachable: _parse_fail raises

    return parse_bool


def parse_values(values: str, type_map: dict[str, type], ignore_unknown: bool = False) -> dict:
    """Parses ``'name=value,...'`` into ``{name: value | [values] | {index: value}}``.

    Args:
        values: the string (syntax in the module docstring).
        type_map: ``{name: type}``; every name in ``values`` must be a key.
        ignore_unknown: skip names missing from ``type_map`` instead of raising.

    Raises:
        ValueError: on the errors listed in the module docstring.
    """
    results: dict[str, Any] = {}
    pos = 0
    while pos < len(values):
        match = PARAM_RE.match(values, pos)
        if not match:
            raise ValueError(f"Malformed hyperparameter value: {values[pos:]}")
        pos = match.end()
        groups = match.groupdict()
        name = groups["name"]
        if name not in type_map:
            if ignore_unknown:
                continue
            raise ValueError(f"Unknown hyperparameter type for {name}")
        var_type = type_map[name]
        parse = _parser(name, var_type, values)
        if groups["val"] is not None:
            try:
                parsed = parse(groups["val"])
            except ValueError:
                _parse_fail(name, var_type, groups["val"], values)
            if not groups["index"]:
                if name in results:
                    _reuse_fail(name, values)
                results[name] = parsed
            else:
                if name in results and not isinstance(results[name], dict):
                    _reuse_fail(name, values)
                entries = results.setdefault(name, {})
                index = int(groups["index"])
                if index in entries:
                    _reuse_fail(f"{name}[{index}]", values)
                entries[index] = parsed
        elif groups["vals"] is not None:
            if groups["index"] is not None:
                raise ValueError("Assignment of a list to a list index.")
            if name in results:
                _reuse_fail(name, values)
            elements = [e for e in re.split("[ ,]", groups["vals"]) if e]
            try:
                results[name] = [parse(e) for e in elements]
            except ValueError:
                _parse_fail(name, var_type, groups["vals"], values)
        else:
            _parse_fail(name, var_type, "", values)
    return results


def _cast(name: str, param_type: type, value: Any) -> Any:
    """``value`` as ``param_type`` when compatible (rules in the module docstring)."""
    fail = f"Could not cast hparam '{name}' of type '{param_type}' from value {value!r}"
    if type(value) is param_type:
        return value
    if issubclass(param_type, type(None)):
        return value
    if issubclass(param_type, (str, bytes)) and not isinstance(value, (str, bytes)):
        raise ValueError(fail)
    if issubclass(param_type, bool) != isinstance(value, bool):
        raise ValueError(fail)
    if issubclass(param_type, numbers.Integral) and not isinstance(value, numbers.Integral):
        raise ValueError(fail)
    if issubclass(param_type, numbers.Number) and not isinstance(value, numbers.Number):
        raise ValueError(fail)
    return param_type(value)


class HParams:
    """Hyperparameters as typed attributes (contract in the module docstring)."""

    _HAS_DYNAMIC_ATTRIBUTES = True

    def __init__(self, hparam_def: Any = None, model_structure: Any = None, **kwargs: Any):
        self._hparam_types: dict[str, tuple[type, bool]] = {}
        self._model_structure = model_structure
        if hparam_def is not None:
            raise ValueError(
                "HParams(hparam_def=...) is not supported: the HParamDef protocol buffer was "
                "removed with tf.contrib; pass the values as keyword arguments"
            )
        for name, value in kwargs.items():
            self.add_hparam(name, value)

    def add_hparam(self, name: str, value: Any) -> None:
        """Adds a hyperparameter; its type is the value's (a list's first element's)."""
        if getattr(self, name, None) is not None:
            raise ValueError(f"Hyperparameter name is reserved: {name}")
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"Multi-valued hyperparameters cannot be empty: {name}")
            self._hparam_types[name] = (type(value[0]), True)
        else:
            self._hparam_types[name] = (type(value), False)
        setattr(self, name, value)

    def set_hparam(self, name: str, value: Any) -> None:
        """Sets an existing hyperparameter, cast to its type; KeyError when it does not exist."""
        param_type, is_list = self._hparam_types[name]
        if isinstance(value, list):
            if not is_list:
                raise ValueError(f"Must not pass a list for single-valued parameter: {name}")
            setattr(self, name, [_cast(name, param_type, v) for v in value])
        else:
            if is_list:
                raise ValueError(f"Must pass a list for multi-valued parameter: {name}.")
            setattr(self, name, _cast(name, param_type, value))

    def del_hparam(self, name: str) -> None:
        """Removes a hyperparameter; does nothing when it does not exist."""
        if hasattr(self, name):
            delattr(self, name)
            del self._hparam_types[name]

    def parse(self, values: str) -> HParams:
        """Overrides values from ``'a=1,b=[1,2],c[0]=3'``; returns self."""
        type_map = {name: param_type for name, (param_type, _) in self._hparam_types.items()}
        parsed = parse_values(values, type_map)
        for name, value in parsed.items():
            if isinstance(value, dict):
                param_type, is_list = self._hparam_types[name]
                if not is_list:
                    raise ValueError(f"Must not pass a list for single-valued parameter: {name}")
                current = list(getattr(self, name))
                for index, element in value.items():
                    if index >= len(current):
                        raise ValueError(
                            f"Index {index} out of range for hparam '{name}' of length "
                            f"{len(current)}"
                        )
                    current[index] = element
                parsed[name] = current
        return self.override_from_dict(parsed)

    def override_from_dict(self, values_dict: dict[str, Any]) -> HParams:
        """Sets every ``name: value`` with `set_hparam`; returns self."""
        for name, value in values_dict.items():
            self.set_hparam(name, value)
        return self

    def set_from_map(self, values_map: dict[str, Any]) -> HParams:
        """Deprecated spelling of `override_from_dict`."""
        return self.override_from_dict(values_map)

    def set_model_structure(self, model_structure: Any) -> None:
        self._model_structure = model_structure

    def get_model_structure(self) -> Any:
        return self._model_structure

    def to_json(
        self, indent: int | None = None, separators: Any = None, sort_keys: bool = False
    ) -> str:
        """The values as a JSON object."""
        return json.dumps(self.values(), indent=indent, separators=separators, sort_keys=sort_keys)

    def parse_json(self, values_json: str) -> HParams:
        """Overrides values from a JSON object; returns self."""
        return self.override_from_dict(json.loads(values_json))

    def values(self) -> dict[str, Any]:
        """``{name: value}`` of every hyperparameter."""
        return {name: getattr(self, name) for name in self._hparam_types}

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, else ``default`` (which must fit the parameter's type)."""
        if key not in self._hparam_types:
            return default
        if default is not None:
            param_type, is_list = self._hparam_types[key]
            type_str = f"list<{param_type}>" if is_list else str(param_type)
            fail = f"Hparam '{key}' of type '{type_str}' is incompatible with default={default}"
            if is_list != isinstance(default, list):
                raise ValueError(fail)
            try:
                for value in default if is_list else [default]:
                    _cast(key, param_type, value)
            except ValueError as exc:
                raise ValueError(f"{fail}. {exc}") from None
        return getattr(self, key)

    def __contains__(self, key: str) -> bool:
        return key in self._hparam_types

    def __str__(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self.values().items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({sorted(self.values().items())})"


__all__ = ["HParams", "parse_values"]
