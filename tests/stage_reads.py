"""What each DVC stage reads: the project files its script imports and the params keys its ``settings``
reads. tests/test_dvc_yaml.py holds dvc.yaml to them."""
from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from imports import REPO, import_closure


class RecordingParams(Mapping):
    """A params mapping that notes the dotted key of every value read through it."""

    def __init__(self, values: dict, read: set[str], prefix: str = ""):
        self._values, self._read, self._prefix = values, read, prefix

    def __getitem__(self, key):
        value = self._values[key]
        name = f"{self._prefix}{key}"
        if isinstance(value, dict):
            return RecordingParams(value, self._read, name + ".")
        self._read.add(name)
        return value

    def __contains__(self, key) -> bool:  # asking is not reading
        return key in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def stage_script(cmd: str) -> Path:
    (script,) = re.findall(r"stages/\w+\.py", cmd)
    return REPO / script


def stages(dvc_yaml: Path = REPO / "dvc.yaml") -> dict:
    return yaml.safe_load(dvc_yaml.read_text())["stages"]


def code_read(cmd: str) -> set[Path]:
    """The stage script and every project file it imports, relative to the repository."""
    script = stage_script(cmd)
    return {p.relative_to(REPO) for p in {script} | import_closure(script)}


def settings_of(cmd: str, params):
    """What the stage script's ``settings(params)`` builds: its typed configs."""
    sys.path.insert(0, str(REPO / "stages"))
    try:
        module = importlib.import_module(stage_script(cmd).stem)
    finally:
        sys.path.remove(str(REPO / "stages"))
    return module.settings(params)


def params_read(cmd: str, params: dict) -> set[str]:
    """Dotted keys of the params values the stage script's ``settings(params)`` reads."""
    read: set[str] = set()
    settings_of(cmd, RecordingParams(params, read))
    return read
