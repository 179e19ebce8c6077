"""Typed configs that several stage scripts build from params.yaml the same way.

Each stage script's ``settings(params)`` is the one place it reads params.yaml's values;
tests/test_dvc_yaml.py records what it reads and holds dvc.yaml's ``params`` to it.
"""
from collections.abc import Mapping

from dexlite_core.optimize.postopt import PostOptConfig
from dexlite_core.params import build
from dexlite_core.sim.runner import SimConfig

#: The postopt keys of the descent that other stages (engine, refine) run on their own candidates:
#: not keep_per_object, which only the postopt stage uses.
DESCENT_KEYS = ("method", "staged", "anneal", "weights", "couple_joints", "batch_size", "seed", "device")


def descent_config(params: Mapping) -> PostOptConfig:
    """postopt's descent, for a stage that post-optimizes its own candidates."""
    postopt = params["postopt"]
    return build(PostOptConfig, {k: postopt[k] for k in DESCENT_KEYS if k in postopt}, "postopt")


def sim_config(params: Mapping, tests) -> SimConfig:
    """The ``sim`` section with the tests a stage runs (filter.tests or evaluate.tests)."""
    return build(SimConfig, {**params["sim"], "tests": tests}, "sim")

