"""Grasps from a trained CVAE: pure synthesis for any object, and dataset expansion.

Pure synthesis transfers the training grasps stored in the checkpoint (their conditions and
latents, :func:`dexlite_core.model.train.grasp_bank`) to a new object: each bank grasp is matched
to the object's point whose condition (global shape + local feature) is nearest to its own; the
best-matching grasps are decoded at their matched points. z ~ N(0, I) does not work here: the
latent of a precise fit carries the whole grasp, approach side included, so prior samples land
~9 cm and ~110 deg from any grasp (bench/README.md, "CVAE fit").
Expansion (Dex1B's data engine) encodes known good grasps and decodes them again with a
perturbed latent, at the same or a neighbouring anchor. Reconstruction decodes the posterior
mean of known grasps at their own anchors: how well the model fits its data.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from dexlite_core.conventions import HandPose
from dexlite_core.data.grasps import GraspTable
from dexlite_core.model.data import GraspData, anchor_points, distinct_clouds
from dexlite_core.model.encoding import decoded_pose
from dexlite_core.model.network import GraspCVAE
from dexlite_core.model.refine import Refinement
from dexlite_core.objects.object_set import ObjectSet
from dexlite_core.seeding import deterministic_torch, stable_seed

MODES = ("pure", "expand")


@dataclass(frozen=True)
class SampleConfig:
    mode: str = "pure"  #: pure: new grasps for the test objects; expand: variations of training grasps
    n_per_object: int = 48  #: pure: grasps per object and scale; expand: decodings per source grasp
    temperature: float = 0.0  #: pure: noise on the transferred latent, in its posterior std; expand: std of the
    #: noise on the posterior mean
    neighbour_fraction: float = 0.5  #: expand: share of decodings moved to a neighbouring anchor
    batch_size: int = 4096
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"synth.mode must be one of {MODES}, got {self.mode!r}")
        if self.n_per_object < 1 or self.temperature < 0 or not 0 <= self.neighbour_fraction <= 1:
            raise ValueError("need n_per_object >= 1, temperature >= 0, neighbour_fraction in [0, 1]")


@dataclass(frozen=True)
class GraspBank:
    """What pure synthesis transfers to new objects: every training grasp's condition (N, C), posterior
    mean and log-variance (N, Z), and its object (N,)."""

    condition: Tensor
    mu: Tensor
    logvar: Tensor
    codes: np.ndarray

    def __len__(self) -> int:
        return len(self.mu)

    def to(self, device) -> GraspBank:
        return replace(self, condition=self.condition.to(device), mu=self.mu.to(device), logvar=self.logvar.to(device))


@dataclass(frozen=True)
class Transfers:
    """Where pure synthesis decoded each grasp of its table (same rows)."""

    source: Tensor  #: (N,) the bank row transferred
    condition: Tensor  #: (N, C) the condition it was decoded at
    anchor_point: Tensor  #: (N, 3) that point, metres


@dataclass(frozen=True)
class Samples:
    table: GraspTable
    seconds: float  #: network time (excludes loading)
    transfers: Transfers | None = None  #: pure synthesis only
    decoded: GraspTable | None = None  #: pure synthesis with a refiner: the same rows as decoded, before it


def _decode(model: GraspCVAE, cond: Tensor, anchor_xyz: Tensor, z: Tensor, couple: bool, batch: int) -> list[HandPose]:
    """Decode latents ``z`` (B, Z) at conditions (B, C) and anchor points (B, 3, metres) in batches."""
    return [decoded_pose(model.decode(z[s:s + batch], cond[s:s + batch]), anchor_xyz[s:s + batch], couple)
            for s in range(0, len(z), batch)]


def _table(objects: ObjectSet, obj: Tensor, scale: Tensor, grasp_id: np.ndarray, source: str,
           poses: list[HandPose]) -> GraspTable:
    pose = HandPose.concat(poses).to("cpu")
    codes = np.array(objects.codes, dtype=object)[obj.cpu().numpy()]
    return GraspTable.from_poses(codes, scale.cpu().numpy(), grasp_id, source, pose)


def best_matches(bank_condition: Tensor, conditions: Tensor, pool: int) -> tuple[Tensor, Tensor]:
    """The ``pool`` bank grasps (indices into the bank's N) whose conditions (N, C) come nearest
    to one of an object's point conditions (P, C), best first, and each one's nearest point."""
    nearest_distance, nearest_point = torch.cdist(bank_condition, conditions).min(dim=1)
    best = nearest_distance.argsort()[:pool]
    return best, nearest_point[best]


@torch.no_grad()
def synthesize(model: GraspCVAE, bank: GraspBank, objects: ObjectSet, point_index: Tensor,
               groups: list[tuple[str, float]], config: SampleConfig, couple: bool,
               bank_codes: np.ndarray | None = None, refinement: Refinement | None = None) -> Samples:
    """``n_per_object`` grasps for each (object, scale) in ``groups``, transferred from the grasp
    ``bank`` (module docstring): its ``n_per_object`` best matches in a seeded order (all of them,
    repeated, when the bank is smaller). Drawing from the 4 x n_per_object best instead lowered
    held-out lift from 13.8 to 6.2 % (bench/README.md). With ``bank_codes`` (the object of each
    bank row) an object's own grasps are left out of its matches. With a ``refinement`` (the
    checkpoint's refiner, :mod:`dexlite_core.model.refine`) every decoded grasp is refined; the
    decodings are kept beside (``Samples.decoded``)."""
    deterministic_torch()
    device = objects.device
    n = config.n_per_object
    obj = objects.index_of([c for c, _ in groups])
    scale = torch.tensor([s for _, s in groups], device=device, dtype=torch.float32)
    bank = bank.to(device)
    start = time.perf_counter()
    points, shape = distinct_clouds(objects, point_index, obj, scale)
    conditions = model.point_conditions(points)[shape]  # (G, P, C)
    source, anchor, eps = [], [], []
    for g, (code, s) in enumerate(groups):
        gen = torch.Generator().manual_seed(stable_seed(config.seed, "synth", code, f"{s:.4f}"))
        rows = (torch.arange(len(bank), device=device) if bank_codes is None
                else torch.as_tensor(np.flatnonzero(bank_codes != code), device=device))
        if len(rows) == 0:
            raise ValueError(f"no bank grasps on objects other than {code} to transfer")
        best, point = best_matches(bank.condition[rows], conditions[g].float(), n)
        draw = torch.cat([torch.randperm(len(best), generator=gen) for _ in range(-(-n // len(best)))])[:n].to(device)
        source.append(rows[best[draw]]), anchor.append(point[draw])
        eps.append(torch.randn(n, model.config.latent, generator=gen))
    source, anchor, eps = torch.cat(source), torch.cat(anchor), torch.cat(eps).to(device)
    group = torch.arange(len(groups), device=device).repeat_interleave(n)
    z = bank.mu[source] + config.temperature * eps * (0.5 * bank.logvar[source]).exp()
    anchor_xyz = anchor_points(objects, point_index, obj[group], scale[group], anchor)
    condition = conditions[group, anchor]
    poses = _decode(model, condition, anchor_xyz, z, couple, config.batch_size)
    grasp_id = np.tile(np.arange(n), len(groups))
    decoded = None
    if refinement is not None:
        decoded = _table(objects, obj[group], scale[group], grasp_id, "cvae", poses)
        poses = [refinement(objects, HandPose.concat(poses), obj[group], scale[group])]
    seconds = time.perf_counter() - start
    table = _table(objects, obj[group], scale[group], grasp_id, "cvae", poses)
    order = table.sort_order()
    index = torch.as_tensor(order, device=device)
    return Samples(table.select(order), seconds, Transfers(source[index], condition[index], anchor_xyz[index]),
                   None if decoded is None else decoded.select(order))


@torch.no_grad()
def expand(model: GraspCVAE, data: GraspData, config: SampleConfig, couple: bool) -> Samples:
    """``n_per_object`` decodings of each grasp in ``data``: its posterior mean plus noise, at its
    own anchor or (for ``neighbour_fraction`` of them) at one of the 8 nearest network points."""
    device = data.obj.device
    n = config.n_per_object
    g = torch.Generator().manual_seed(stable_seed(config.seed, "expand"))
    index = torch.arange(len(data), device=device).repeat_interleave(n)
    points, shape, anchor, pose, _, obj, scale = data.batch(index)
    start = time.perf_counter()
    conditions = model.point_conditions(points)
    mu, _ = model.encode(pose, conditions[shape, anchor])
    z = mu + config.temperature * torch.randn(mu.shape, generator=g).to(device)
    row_points = points[shape, :, :3]  # (B, n, 3)
    anchor_dm = row_points[torch.arange(len(index), device=device), anchor]
    near = torch.cdist(anchor_dm.unsqueeze(1), row_points).squeeze(1).topk(9, largest=False).indices[:, 1:]
    pick = near[torch.arange(len(index), device=device), torch.randint(8, (len(index),), generator=g).to(device)]
    move = torch.rand(len(index), generator=g).to(device) < config.neighbour_fraction
    anchor = torch.where(move, pick, anchor)
    anchor_xyz = anchor_points(data.objects, data.point_index, obj, scale, anchor)
    poses = _decode(model, conditions[shape, anchor], anchor_xyz, z, couple, config.batch_size)
    seconds = time.perf_counter() - start
    grasp_id = np.arange(len(index))
    return Samples(_table(data.objects, obj, scale, grasp_id, "expand", poses).sorted(), seconds)


@torch.no_grad()
def reconstruct(model: GraspCVAE, data: GraspData, grasp_id: np.ndarray, couple: bool, batch: int) -> GraspTable:
    """Each grasp in ``data`` encoded and its posterior mean decoded at its own anchor, as in
    training (source ``recon``; ``grasp_id`` (N,) are the source grasps' ids)."""
    index = torch.arange(len(data), device=data.obj.device)
    poses = []
    for s in range(0, len(index), batch):
        points, shape, anchor, pose, anchor_point, _, _ = data.batch(index[s:s + batch])
        cond = model.condition(points, anchor, shape)
        poses.append(decoded_pose(model.decode(model.encode(pose, cond)[0], cond), anchor_point, couple))
    return _table(data.objects, data.obj, data.scale, grasp_id, "recon", poses).sorted()
