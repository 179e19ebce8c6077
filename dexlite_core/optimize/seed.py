"""Seed grasps by optimization: initialize around each object and anneal, keep what passes."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from dexlite_core.conventions import HandPose, resolve_device
from dexlite_core.data.grasps import GraspTable
from dexlite_core.energy import EnergyWeights
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.object_set import ObjectSet
from dexlite_core.optimize.anneal import AnnealConfig, PruneStage, anneal
from dexlite_core.optimize.init import InitConfig, batch_starts, initial_contacts
from dexlite_core.optimize.problem import GraspProblem
from dexlite_core.seeding import deterministic_torch


#: Seeding stops attempts still above energy 8 after 50 of 200 steps: they keep ~84 % of the
#: grasps that would pass for ~45 % of the steps (bench/README.md, bench_anneal).
SEED_ANNEAL = AnnealConfig(prune=(PruneStage(after=50, energy=8.0),))


@dataclass(frozen=True)
class SeedConfig:
    n_per_object: int = 384  #: optimization attempts per object and scale
    batch_size: int = 2048  #: rows optimized together (whole object-scale groups)
    couple_joints: bool = True  #: optimize with J0 tied to J1, as the real hand's tendons are
    seed: int = 0
    device: str = "auto"
    init: InitConfig = field(default_factory=InitConfig)
    anneal: AnnealConfig = SEED_ANNEAL
    weights: EnergyWeights = field(default_factory=EnergyWeights)

    def __post_init__(self) -> None:
        if self.n_per_object < 1 or self.batch_size < self.n_per_object:
            raise ValueError(f"need 1 <= n_per_object <= batch_size, got {self.n_per_object}, {self.batch_size}")


@dataclass(frozen=True)
class SeedResult:
    accepted: GraspTable  #: grasps meeting the thresholds, source "optimize"
    attempts: int
    pruned: int  #: attempts stopped early by the anneal config's prune stages
    seconds: float  #: optimization wall time (excludes loading)


def _groups_in_batches(groups: list[tuple[str, float]], per_batch: int) -> list[list[tuple[str, float]]]:
    return [groups[i:i + per_batch] for i in range(0, len(groups), per_batch)]


def seed_grasps(hand: HandModel, objects: ObjectSet, groups: list[tuple[str, float]], config: SeedConfig,
                progress: bool = True) -> SeedResult:
    """Optimize ``n_per_object`` grasps for each (object code, scale) in ``groups``.

    Every group draws from its own generator, seeded by (seed, code, scale), and batches are
    fixed by the config, so the same params give the same grasps.
    """
    deterministic_torch()
    device = resolve_device(config.device)
    n = config.n_per_object
    tables, attempts, pruned, seconds = [], 0, 0, 0.0
    batches = _groups_in_batches(sorted(groups), max(1, config.batch_size // n))
    for batch in tqdm(batches, desc="curate: optimizing", disable=not progress):
        start = time.perf_counter()
        rng, obj, scale, pose = batch_starts(objects, batch, n, config.seed, config.init, config.couple_joints, device)
        contacts = initial_contacts(rng, hand.n_contact_candidates, config.anneal.n_contacts)
        problem = GraspProblem(hand, objects, obj, scale, config.weights, config.couple_joints)
        result = anneal(problem, pose, contacts, config.anneal, rng)
        seconds += time.perf_counter() - start
        attempts += len(pose)
        pruned += int(result.pruned.sum())
        keep = result.accepted.cpu().numpy()
        energies = torch.stack([result.terms.fc, result.terms.dis, result.terms.pen, result.terms.spen,
                                result.terms.joints], dim=1).cpu().numpy()
        table = GraspTable.from_poses(
            object_code=np.repeat([c for c, _ in batch], n), scale=scale.cpu().numpy(),
            grasp_id=np.tile(np.arange(n), len(batch)), source="optimize",
            pose=HandPose.from_vector(result.pose).to("cpu"), energies=energies)
        tables.append(table.select(keep))
    return SeedResult(GraspTable.concat(tables).sorted(), attempts, pruned, seconds)
