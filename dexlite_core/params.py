"""params.yaml sections -> typed, validated config dataclasses.

Stage scripts and the CLI call :func:`load_params` and :func:`build`; library code only ever sees
the frozen dataclasses and never reads params.yaml. Unknown keys (typos) and wrong types fail with the key's full name.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")


class ParamsError(ValueError):
    """A params.yaml value that cannot be used; the message names the key and the fix."""


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the repository root")
    with open(path) as f:
        params = yaml.safe_load(f) or {}
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of stage sections")
    return params


def load_section(name: str, path: str | Path = "params.yaml") -> dict:
    params = load_params(path)
    if name not in params:
        raise ParamsError(f"{path}: missing section '{name}'")
    return params[name] or {}


def build(cls: type[C], values: Mapping | None, prefix: str) -> C:
    """Instantiate dataclass ``cls`` from a mapping, recursing into nested dataclasses."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ParamsError(f"unknown params {', '.join(prefix + '.' + k for k in unknown)}; "
                          f"known keys of {prefix}: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(hints[k], v, f"{prefix}.{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ParamsError(f"{prefix}: {exc}") from exc


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ParamsError(f"{key} must be a mapping, got {value!r}")
        return build(hint, value, key)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(options[0], value, key)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key} must be a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key} must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key} must be a string, got {value!r}")
        return value
    return value


def override_args(overrides_path: str | Path, params_path: str | Path = "params.yaml") -> list[str]:
    """``-S key=value`` arguments for `dvc exp run` from a YAML of overrides (params-full.yaml).

    Every overridden key must exist in params.yaml, so an outdated overrides file fails here
    instead of silently running the small configuration.
    """
    base, overrides = load_params(params_path), load_params(overrides_path)
    args = []
    for key, value in flatten(overrides):
        node = base
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ParamsError(f"{overrides_path}: {key} is not a key of {params_path}")
            node = node[part]
        # Compact JSON is valid in DVC's (Hydra's) override grammar and has no spaces to split.
        args += ["-S", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return args


def flatten(values: dict, prefix: str = "") -> list[tuple[str, Any]]:
    items = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        items += flatten(value, name + ".") if isinstance(value, dict) else [(name, value)]
    return items


if __name__ == "__main__":
    # python -m dexlite_core.params params-full.yaml  ->  the -S arguments, one line.
    print(" ".join(override_args(sys.argv[1])))
