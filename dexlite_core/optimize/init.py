"""Initial hand poses around an object, after DexGraspNet's initializer.

Start points are spread (farthest-point) over the object's convex hull; the palm faces the
hull along its inward normal, tilted within a cone and spun at random, with the middle of the
fingers a small gap outside the hull; joints come from a truncated normal around
DexGraspNet's half-closed hand.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from scipy.spatial import ConvexHull
from torch import Tensor

from dexlite_core.conventions import CANONICAL_JOINTS, JOINT_LOWER, JOINT_UPPER, HandPose, couple_joints
from dexlite_core.objects.cloud import farthest_point_sample
from dexlite_core.objects.object_set import ObjectSet
from dexlite_core.optimize.problem import GroupRandom
from dexlite_core.seeding import stable_seed

#: Palm-frame point that faces the object at the start: on the palm's front plane, level with
#: the middle of the fingers (DexGraspNet's grasps hold objects there).
FINGER_CENTER = (0.013, -0.011, 0.12)


@dataclass(frozen=True)
class InitConfig:
    gap: tuple[float, float] = (0.01, 0.04)  #: metres between the hull and the finger centre
    cone: float = 0.5236  #: largest tilt of the approach from the hull normal, radians (30 degrees)
    joint_sigma: float = 0.1  #: std of the joint noise as a fraction of each joint's range

    def __post_init__(self) -> None:
        if not 0 <= self.gap[0] <= self.gap[1] <= 0.3:
            raise ValueError(f"init gap must be 0 <= low <= high <= 0.3 m, got {self.gap}")
        if not 0 <= self.cone <= math.pi / 2:
            raise ValueError(f"init cone must be in [0, pi/2], got {self.cone}")


def hull_starts(points: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` farthest-point spread points on the convex hull of ``points`` and outward normals."""
    hull = ConvexHull(points)
    # Qhull's facet equations hold outward unit normals: no winding repair of the mesh needed
    # (trimesh's fix_normals took most of the initialization time).
    mesh = trimesh.Trimesh(points, hull.simplices, process=False)
    dense, face = trimesh.sample.sample_surface(mesh, max(20 * n, 500), seed=seed)
    pick = farthest_point_sample(dense, n, start=int(np.random.default_rng(seed).integers(len(dense))))
    return dense[pick], hull.equations[face[pick], :3]


def _orthonormal(a: Tensor, rng: GroupRandom) -> Tensor:
    """A random unit vector perpendicular to each row of ``a`` (B, 3)."""
    r = rng.randn(3)
    r = r - (r * a).sum(-1, keepdim=True) * a
    return torch.nn.functional.normalize(r, dim=-1)


def _rotate(v: Tensor, axis: Tensor, angle: Tensor) -> Tensor:
    """Rodrigues' rotation of vectors v about unit axes by angles (B,)."""
    c, s = torch.cos(angle).unsqueeze(-1), torch.sin(angle).unsqueeze(-1)
    return v * c + torch.linalg.cross(axis, v, dim=-1) * s + axis * (axis * v).sum(-1, keepdim=True) * (1 - c)


def truncated_normal_joints(rng: GroupRandom, sigma_fraction: float) -> Tensor:
    """Joints ~ N(canonical, (sigma x range)^2) truncated to the limits, by inverse CDF."""
    lo, hi = torch.tensor(JOINT_LOWER, dtype=torch.float64), torch.tensor(JOINT_UPPER, dtype=torch.float64)
    mu = torch.tensor(CANONICAL_JOINTS, dtype=torch.float64).clamp(lo, hi)
    sigma = sigma_fraction * (hi - lo)
    cdf = lambda x: 0.5 * (1 + torch.erf((x - mu) / (sigma * math.sqrt(2))))  # noqa: E731
    u = rng.rand(len(JOINT_LOWER)).cpu().double()
    p = cdf(lo) + u * (cdf(hi) - cdf(lo))
    joints = mu + sigma * math.sqrt(2) * torch.erfinv((2 * p - 1).clamp(-1 + 1e-12, 1 - 1e-12))
    return joints.clamp(lo, hi).float()


def initial_poses(starts: Tensor, normals: Tensor, rng: GroupRandom, config: InitConfig, couple: bool) -> Tensor:
    """Pose vectors (B, 31) for hull start points (B, 3) with outward normals (B, 3), metres."""
    device = starts.device
    n = torch.nn.functional.normalize(normals, dim=-1)
    tilt = _orthonormal(n, rng)
    approach = _rotate(-n, tilt, rng.rand() * config.cone)  # into the object
    # Palm frame: -y (palm normal) along the approach, z (fingers) random about it.
    y = -approach
    z = _orthonormal(y, rng)
    x = torch.linalg.cross(y, z, dim=-1)
    rot = torch.stack([x, y, z], dim=-1)
    gap = config.gap[0] + (config.gap[1] - config.gap[0]) * rng.rand()
    finger_center = torch.tensor(FINGER_CENTER, device=device)
    pos = starts - gap.unsqueeze(-1) * approach - rot @ finger_center
    joints = truncated_normal_joints(rng, config.joint_sigma).to(device)
    if couple:
        joints = couple_joints(joints)
    return HandPose(pos, rot, joints).to_vector()


def initial_contacts(rng: GroupRandom, n_candidates: int, n_contacts: int) -> Tensor:
    return rng.randint(n_candidates, n_contacts)


def batch_starts(objects: ObjectSet, groups: list[tuple[str, float]], n: int, seed: int, config: InitConfig,
                 couple: bool, device) -> tuple[GroupRandom, Tensor, Tensor, Tensor]:
    """A batch of whole (object code, scale) groups, ``n`` attempts each, as the seed optimizers start it:
    every group's own generator (seeded by seed, code and scale), the rows' objects and scales, and their
    initial pose vectors from hull starts. The generators go on to draw whatever the optimizer draws next."""
    seeds = [stable_seed(seed, "curate", code, f"{scale:.4f}") for code, scale in groups]
    rng = GroupRandom(seeds, [n] * len(groups), device)
    obj = objects.index_of([code for code, _ in groups]).repeat_interleave(n)
    scale = torch.tensor([s for _, s in groups], dtype=torch.float32, device=device).repeat_interleave(n)
    starts, normals = zip(*(hull_starts(objects.points[objects.index_of([code])[0]].cpu().numpy() * s, n, sd % 2 ** 32)
                            for (code, s), sd in zip(groups, seeds)))
    starts = torch.tensor(np.concatenate(starts), dtype=torch.float32, device=device)
    normals = torch.tensor(np.concatenate(normals), dtype=torch.float32, device=device)
    return rng, obj, scale, initial_poses(starts, normals, rng, config, couple)
