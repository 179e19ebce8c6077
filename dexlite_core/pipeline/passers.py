"""Candidates -> passers, the one loop of the engine's rounds, its held-out check, its adapt step and the
refiner's pairs: post-optimize every candidate (the postopt stage's descent, seeded per caller), keep a share
of lowest energy, simulate those with the filter stage's tests."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from dexlite_core.data.grasps import GraspTable
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.object_set import ObjectSet
from dexlite_core.optimize.postopt import PostOptConfig, PostOptResult, lowest_energy_rows, post_optimize
from dexlite_core.seeding import stable_seed
from dexlite_core.sim.runner import SimConfig, simulate
from dexlite_core.squeeze import PressConfig


class LoopConfigs(Protocol):
    """The settings the loop reads, as the engine's and the refine stage's settings both carry them."""

    postopt: PostOptConfig  #: the postopt stage's descent
    press: PressConfig  #: each post-optimized grasp's own pre-grasp and squeeze
    sim: SimConfig  #: with the filter stage's tests


@dataclass(frozen=True)
class Passers:
    """What the callers keep: the engine writes both tables, the adapt step and the refiner pair the passers'
    post-optimized poses with the transfers they came from."""

    optimized: PostOptResult  #: every candidate post-optimized, rows as given, with its ranking energy
    simulated: GraspTable  #: the kept ones (all with keep_fraction 1, rows as in optimized) with their results

    @property
    def passed(self) -> np.ndarray:
        """(len(simulated),) bool: which simulated grasps pass every test."""
        return self.simulated.sim.success


def keep_lowest_fraction(table: GraspTable, energy: np.ndarray, fraction: float) -> GraspTable:
    """The ``ceil(fraction * n)`` grasps of lowest ``energy`` (N,) of each (object, scale) of n grasps."""
    if fraction >= 1:
        return table
    return table.select(lowest_energy_rows(table, energy, lambda n: math.ceil(fraction * n))).sorted()


def find_passers(hand: HandModel, objects: ObjectSet, candidates: GraspTable, configs: LoopConfigs,
                 objects_dir: Path, seed: tuple[str | int, ...], desc: str, keep_fraction: float = 1.0) -> Passers:
    """``candidates`` post-optimized with ``configs.postopt`` seeded by ``stable_seed(postopt.seed, *seed)``, the
    ``keep_fraction`` of lowest energy per object and scale simulated with ``configs.sim`` (progress: ``desc``)."""
    postopt = replace(configs.postopt, seed=stable_seed(configs.postopt.seed, *seed))
    optimized = post_optimize(hand, objects, candidates, postopt, configs.press)
    kept = keep_lowest_fraction(optimized.table, optimized.energy, keep_fraction)
    return Passers(optimized, simulate(kept, objects_dir, configs.sim, desc=desc).table)
