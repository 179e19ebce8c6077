"""The environment is the one requirements.lock pins (`make install` installs it, `make lock` refreshes it)."""
import importlib.metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"


def locked() -> dict[str, Version]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_installed_versions_match_the_lock():
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in importlib.metadata.distributions()}
    # torch's CPU wheel says 2.13.0+cpu; the lock pins the public version 2.13.0.
    wrong = {name: (str(version), str(installed[name]) if name in installed else "missing")
             for name, version in locked().items()
             if name not in installed or Version(installed[name].public) != version}
    assert not wrong, f"installed versions differ from requirements.lock (locked, installed): {wrong}; " \
                      "run `make clean install`, or `make lock` to change the lock on purpose"


def test_lock_satisfies_pyproject():
    """A dependency added to pyproject.toml without `make lock` would never be installed."""
    pins = locked()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name]), f"locked {name}=={pins[name]} violates {spec}: run `make lock`"
