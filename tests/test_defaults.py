"""One source of defaults: every config a stage script builds from the shipped params.yaml equals
the dataclasses' own defaults, so the library, `dexlite grasp` and the pipeline agree."""
import dataclasses

import pytest

from imports import REPO
from stage_reads import settings_of, stages

from dexlite_core.params import load_params

#: Values a stage sets on purpose: evaluate runs its own tests (SimConfig's default is filter.tests).
STAGE_CHOICES = {"evaluate": {"EvaluateSettings.sim.tests"}}


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def differences(config, default=dataclasses.MISSING, prefix: str = "") -> list[str]:
    """Dotted names of the fields of dataclass ``config`` that differ from ``default`` (a dataclass of the
    same type), or from the fields' own defaults when there is none; fields without a default only recurse."""
    prefix = prefix or type(config).__name__
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        expected = _default(f) if default is dataclasses.MISSING else getattr(default, f.name)
        name = f"{prefix}.{f.name}"
        if dataclasses.is_dataclass(value):
            out += differences(value, expected, name)
        elif expected is not dataclasses.MISSING and value != expected:
            out.append(f"{name}: params {value!r}, default {expected!r}")
    return out


def configs(built) -> list:
    return [c for c in (built if isinstance(built, tuple) else (built,)) if dataclasses.is_dataclass(c)]


@pytest.mark.parametrize("stage", sorted(stages()))
def test_params_equal_the_defaults(stage):
    built = settings_of(stages()[stage]["cmd"], load_params(REPO / "params.yaml"))
    found = [d for c in configs(built) for d in differences(c)]
    assert [d for d in found if d.split(":")[0] not in STAGE_CHOICES.get(stage, set())] == []


def test_a_drifted_default_is_caught():
    from dexlite_core.pipeline.engine import EngineConfig

    drifted = dataclasses.replace(EngineConfig(), heldout_per_object=16, adapt=dataclasses.replace(
        EngineConfig().adapt, steps=3000))
    assert differences(drifted, EngineConfig()) == [
        "EngineConfig.heldout_per_object: params 16, default 32", "EngineConfig.adapt.steps: params 3000, default 9000"]
