"""Post-optimization: refine network grasps by a short descent of E_post; the ``postopt`` stage.

The seed optimizer's machinery at temperature 0 (only improvements are accepted), starting
from each grasp's nearest contact candidates; contacts may still be re-drawn near the surface.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dexlite_core.conventions import HandPose, resolve_device
from dexlite_core.data.grasps import GraspTable, read_grasps, write_grasps
from dexlite_core.energy import EnergyWeights, nearest_contacts
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.object_set import ObjectSet
from dexlite_core.objects.store import load_object_set
from dexlite_core.optimize.anneal import AnnealConfig, anneal
from dexlite_core.optimize.problem import GraspProblem, GroupRandom
from dexlite_core.seeding import deterministic_torch, stable_seed
from dexlite_core.squeeze import PressConfig, with_triples

DESCENT = AnnealConfig(steps=150, step_size=0.003, step_size_end=0.0002, temperature=0.0, temperature_end=0.0,
                       switch_probability=0.1)


@dataclass(frozen=True)
class PostOptConfig:
    anneal: AnnealConfig = field(default_factory=lambda: DESCENT)
    weights: EnergyWeights = field(default_factory=EnergyWeights)  #: E_post
    couple_joints: bool = True
    keep_per_object: int = 12  #: keep the grasps of lowest E_post per object and scale (0: keep all)
    batch_size: int = 2048
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.keep_per_object < 0 or self.batch_size < 1:
            raise ValueError("keep_per_object must be >= 0 and batch_size >= 1")


@dataclass(frozen=True)
class PostOptResult:
    table: GraspTable  #: refined grasps (source "postopt"), energies filled
    seconds: float


def _group_random(part: GraspTable, seed: int, device) -> GroupRandom:
    """One generator per run of equal (object, scale) rows (tables are sorted that way)."""
    keys = list(zip(part.object_code, part.scale.tolist()))
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    sizes = np.diff(starts + [len(keys)]).tolist()
    seeds = [stable_seed(seed, "postopt", keys[i][0], f"{keys[i][1]:.4f}", int(part.grasp_id[i])) for i in starts]
    return GroupRandom(seeds, sizes, device)


def post_optimize(hand: HandModel, objects: ObjectSet, table: GraspTable, config: PostOptConfig) -> PostOptResult:
    """Refine every grasp of ``table`` (rows kept in order, ids kept)."""
    deterministic_torch()
    device = resolve_device(config.device)
    poses, energies, seconds = [], [], 0.0
    for start in range(0, len(table), config.batch_size):
        part = table.select(np.arange(start, min(start + config.batch_size, len(table))))
        obj = objects.index_of(list(part.object_code))
        scale = torch.as_tensor(part.scale, device=device)
        pose = part.poses(device=device)
        t = time.perf_counter()
        problem = GraspProblem(hand, objects, obj, scale, config.weights, config.couple_joints)
        contacts = nearest_contacts(hand, objects, problem.pose(pose.to_vector()), obj, scale, config.anneal.n_contacts)
        result = anneal(problem, pose.to_vector(), contacts, config.anneal, _group_random(part, config.seed, device))
        seconds += time.perf_counter() - t
        poses.append(HandPose.from_vector(result.pose).to("cpu"))
        energies.append(torch.stack([result.terms.fc, result.terms.dis, result.terms.pen, result.terms.spen,
                                     result.terms.joints], 1).cpu().numpy())
    pose = HandPose.concat(poses)
    refined = GraspTable.from_poses(table.object_code, table.scale, table.grasp_id, "postopt", pose,
                                    np.concatenate(energies))
    return PostOptResult(refined, seconds)


def keep_lowest_energy(table: GraspTable, weights: EnergyWeights, per_group: int) -> GraspTable:
    """The ``per_group`` grasps of lowest weighted energy of each (object, scale), ids kept."""
    if per_group <= 0:
        return table
    e = np.nan_to_num(table.energies, nan=np.inf)
    total = weights.fc * e[:, 0] + weights.dis * e[:, 1] + weights.pen * e[:, 2] + weights.spen * e[:, 3] \
        + weights.joints * e[:, 4]
    keep = np.zeros(len(table), bool)
    for key in set(zip(table.object_code, table.scale.tolist())):
        rows = np.flatnonzero((table.object_code == key[0]) & (table.scale == key[1]))
        keep[rows[np.argsort(total[rows], kind="stable")[:per_group]]] = True
    return table.select(keep)


def postopt_stage(config: PostOptConfig, press: PressConfig, raw_path: Path, objects_dir: Path, all_path: Path,
                  out_path: Path) -> dict:
    """Refine every raw grasp (all written to ``all_path``, rows as in the raw table, each with its own
    pre-grasp and squeeze), then keep the ``keep_per_object`` of lowest E_post per object and scale (``out_path``)."""
    device = resolve_device(config.device)
    raw = read_grasps(raw_path)
    objects = load_object_set(objects_dir, sorted(set(raw.object_code)), device=device)
    hand = HandModel(device=device)
    result = post_optimize(hand, objects, raw, config)
    refined = with_triples(result.table, hand, objects, press)
    kept = keep_lowest_energy(refined, config.weights, config.keep_per_object)
    write_grasps(all_path, refined)
    write_grasps(out_path, kept)
    return {"n_refined": len(result.table), "n_grasps": len(kept), "postopt_seconds": result.seconds,
            "postopt_grasps_per_s": len(result.table) / max(result.seconds, 1e-9),
            "postopt_ms_per_grasp": 1000 * result.seconds / max(len(result.table), 1)}
