"""Grasp-quality metrics used in the literature (REFERENCE.md section 7).

- Q1 (Ferrari-Canny epsilon): radius of the largest origin-centred ball inside the convex hull
  of the contact wrenches, friction cones linearized with ``edges`` edges.
- penetration depth: deepest object surface point inside the hand (our hand model).
- contact distance: mean |signed distance| of the grasp's nearest contact candidates.
- diversity: DexGraspNet's "H mean" (per-joint histogram entropy, averaged over joints) and
  the share of joint-space variance in the first 3 principal components.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import ConvexHull, QhullError

from dexlite_core.conventions import JOINT_LOWER, JOINT_UPPER, HandPose
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.object_set import ObjectSet

ENTROPY_BINS = 32


def q1_epsilon(points: np.ndarray, normals: np.ndarray, torque_scale: float, mu: float = 0.6, edges: int = 8) -> float:
    """Q1 of contacts (K, 3) with outward object normals (K, 3); torques divided by
    ``torque_scale`` (m). 0 when the wrench hull misses the origin or is degenerate."""
    if len(points) < 2:
        return 0.0
    inward = -normals / np.linalg.norm(normals, axis=1, keepdims=True)
    helper = np.where(np.abs(inward[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    t1 = np.cross(inward, helper)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(inward, t1)
    angle = 2 * np.pi * np.arange(edges) / edges
    forces = inward[:, None] + mu * (np.cos(angle)[None, :, None] * t1[:, None] + np.sin(angle)[None, :, None] * t2[:, None])
    torques = np.cross(points[:, None], forces) / torque_scale
    wrenches = np.concatenate([forces, torques], axis=-1).reshape(-1, 6)
    try:
        hull = ConvexHull(wrenches)
    except (QhullError, ValueError):
        return 0.0
    distance = -hull.equations[:, -1]  # unit facet normals: offset = -distance of the origin
    return float(max(distance.min(), 0.0))


def contacts_near_surface(hand: HandModel, objects: ObjectSet, pose: HandPose, obj: torch.Tensor, scale: torch.Tensor,
                          threshold: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per grasp: the nearest candidate of each link within ``threshold`` of the surface, as
    (points (K, 3), outward object normals (K, 3))."""
    with torch.no_grad():
        points = hand.all_contact_candidates(hand.link_frames(pose))
        b, n, _ = points.shape
        d, normal = objects.distance_and_normal(points.reshape(-1, 3), obj.repeat_interleave(n), scale.repeat_interleave(n))
    d, normal, points = d.view(b, n).abs().cpu().numpy(), normal.view(b, n, 3).cpu().numpy(), points.cpu().numpy()
    link = hand.contact_link.cpu().numpy()
    out = []
    for i in range(b):
        keep = []
        for lk in np.unique(link):
            on_link = np.flatnonzero(link == lk)
            best = on_link[d[i, on_link].argmin()]
            if d[i, best] < threshold:
                keep.append(best)
        out.append((points[i, keep], normal[i, keep]))
    return out


def joint_entropy(joints: np.ndarray, bins: int = ENTROPY_BINS) -> float:
    """DexGraspNet's H mean: entropy (nats) of each joint's histogram over its range, averaged."""
    if len(joints) == 0:
        return 0.0
    entropies = []
    for j in range(joints.shape[1]):
        counts, _ = np.histogram(joints[:, j], bins=bins, range=(JOINT_LOWER[j], JOINT_UPPER[j]))
        p = counts[counts > 0] / counts.sum()
        entropies.append(float(-(p * np.log(p)).sum()))
    return float(np.mean(entropies))


def pca_top3_share(joints: np.ndarray) -> float:
    """Share of the joint-space variance in the first 3 principal components (lower: more diverse)."""
    if len(joints) < 2:
        return 1.0
    centered = joints - joints.mean(0)
    variance = np.linalg.svd(centered, compute_uv=False) ** 2
    return float(variance[:3].sum() / max(variance.sum(), 1e-12))
