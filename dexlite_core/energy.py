"""The five grasp energies of DexGraspNet / Dex1B (REFERENCE.md section 4), batched.

Every term is a (B,) tensor, differentiable with respect to the palm translation, the palm
rotation and the joints, on CPU and CUDA.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from dexlite_core.conventions import JOINT_LOWER, JOINT_UPPER, HandPose
from dexlite_core.data.grasps import GraspTable
from dexlite_core.hand.model import HandModel, LinkFrames
from dexlite_core.objects.object_set import ObjectSet

#: DexGraspNet's success proxies.
FC_THRESHOLD = 0.3
DIS_THRESHOLD = 0.005
PEN_THRESHOLD = 0.001


@dataclass(frozen=True)
class EnergyWeights:
    fc: float = 1.0
    dis: float = 100.0
    pen: float = 100.0
    spen: float = 10.0
    joints: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (value >= 0 and value < float("inf")):
                raise ValueError(f"energy weight {f.name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class EnergyTerms:
    fc: Tensor  #: (B,) force-closure residual ||c^T G||^2
    dis: Tensor  #: (B,) sum of |d(x_i)| over contacts, metres
    pen: Tensor  #: (B,) sum over object points of depth inside the hand, metres
    spen: Tensor  #: (B,) self-penetration of hand keypoints, metres
    joints: Tensor  #: (B,) joint-limit violation, radians

    def total(self, w: EnergyWeights = EnergyWeights()) -> Tensor:
        return w.fc * self.fc + w.dis * self.dis + w.pen * self.pen + w.spen * self.spen + w.joints * self.joints

    def as_dict(self) -> dict[str, Tensor]:
        return {f"E_{f.name}": getattr(self, f.name) for f in fields(self)}


def force_closure(points: Tensor, normals: Tensor) -> Tensor:
    """||c^T G||^2 = ||sum n_i||^2 + ||sum x_i x n_i||^2 for contacts (B, K, 3) and normals (B, K, 3)."""
    force = normals.sum(1)
    torque = torch.linalg.cross(points, normals, dim=-1).sum(1)
    return (force * force).sum(-1) + (torque * torque).sum(-1)


def joint_limit_violation(joints: Tensor) -> Tensor:
    lower = torch.as_tensor(JOINT_LOWER, dtype=joints.dtype, device=joints.device)
    upper = torch.as_tensor(JOINT_UPPER, dtype=joints.dtype, device=joints.device)
    return ((joints - upper).clamp(min=0) + (lower - joints).clamp(min=0)).sum(-1)


def contact_terms(objects: ObjectSet, points: Tensor, obj: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """(E_fc, E_dis) for contact points (B, K, 3) on objects ``obj`` at ``scale`` (B,)."""
    b, k, _ = points.shape
    d, n = objects.distance_and_normal(points.reshape(-1, 3), obj.repeat_interleave(k), scale.repeat_interleave(k))
    return force_closure(points, n.view(b, k, 3)), d.view(b, k).abs().sum(-1)


def penetration(hand: HandModel, objects: ObjectSet, frames: LinkFrames, obj: Tensor, scale: Tensor) -> Tensor:
    """E_pen: sum over the object's surface points of their depth inside the hand. (B,)"""
    return hand.penetration(frames, objects.chunked_points, objects.chunk_centers, objects.chunk_radii,
                            obj, scale)


def link_contacts(hand: HandModel, objects: ObjectSet, pose: HandPose, obj: Tensor, scale: Tensor
                  ) -> tuple[Tensor, Tensor]:
    """Per grasp and hand link, the contact candidate closest to the surface (by |d|, the first on ties)
    and its signed distance: (B, L) each. Links without candidates get index N and distance inf."""
    with torch.no_grad():
        points = hand.all_contact_candidates(hand.link_frames(pose))
        b, n, _ = points.shape
        d = objects.signed_distance(points.reshape(-1, 3), obj.repeat_interleave(n), scale.repeat_interleave(n)).view(b, n)
        link = hand.contact_link.expand(b, -1)
        nearest = torch.full((b, len(hand.link_names)), float("inf"), device=d.device, dtype=d.dtype)
        nearest = nearest.scatter_reduce(1, link, d.abs(), reduce="amin")
        candidates = torch.arange(n, device=d.device).expand(b, -1)
        on_min = d.abs() == nearest.gather(1, link)
        index = torch.full_like(nearest, n, dtype=torch.long).scatter_reduce(
            1, link, torch.where(on_min, candidates, n), reduce="amin")
        signed = torch.cat([d, d.new_full((b, 1), float("inf"))], 1).gather(1, index)
        return index, signed


def nearest_contacts(hand: HandModel, objects: ObjectSet, pose: HandPose, obj: Tensor, scale: Tensor,
                     k: int = 4) -> Tensor:
    """The ``k`` contact candidates closest to the surface (by |d|), on distinct links: (B, k).

    Scores grasps that come without contact indices (datasets, the network's output)."""
    index, signed = link_contacts(hand, objects, pose, obj, scale)
    return index.gather(1, signed.abs().topk(k, dim=1, largest=False).indices)


def grasp_energy(hand: HandModel, objects: ObjectSet, pose: HandPose, contact_index: Tensor,
                 obj: Tensor, scale: Tensor) -> EnergyTerms:
    """All five energies for grasps ``pose`` with contacts ``contact_index`` (B, K) chosen among
    the hand's contact candidates, on objects ``obj`` (B,) at ``scale`` (B,)."""
    frames = hand.link_frames(pose)
    points, _ = hand.contact_points(frames, contact_index)
    fc, dis = contact_terms(objects, points, obj, scale)
    return EnergyTerms(
        fc=fc, dis=dis,
        pen=penetration(hand, objects, frames, obj, scale),
        spen=hand.self_penetration(frames),
        joints=joint_limit_violation(pose.joints),
    )


def score_grasps(hand: HandModel, objects: ObjectSet, pose: HandPose, obj: Tensor, scale: Tensor,
                 batch: int = 2048) -> EnergyTerms:
    """Energies of grasps without contact indices (contacts: :func:`nearest_contacts`), in
    batches, without gradients."""
    parts = []
    with torch.no_grad():
        for i in range(0, len(pose), batch):
            sl = slice(i, i + batch)
            p = pose.index(sl)
            contacts = nearest_contacts(hand, objects, p, obj[sl], scale[sl])
            parts.append(grasp_energy(hand, objects, p, contacts, obj[sl], scale[sl]))
    return EnergyTerms(*(torch.cat([getattr(t, f.name) for t in parts]) for f in fields(EnergyTerms)))


def with_energies(table: GraspTable, hand: HandModel, objects: ObjectSet, device) -> GraspTable:
    """The table with its energies computed (nearest contacts)."""
    terms = score_grasps(hand, objects, table.poses(device=device), objects.index_of(list(table.object_code)),
                         torch.as_tensor(table.scale, device=device))
    energies = torch.stack([terms.fc, terms.dis, terms.pen, terms.spen, terms.joints], 1).cpu().numpy()
    return replace(table, energies=energies)
