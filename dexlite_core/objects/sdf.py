"""Signed distance grids of normalized meshes and their differentiable, batched lookup.

Convention: negative inside, metres after scaling. A grid covers the cube [-extent, extent]^3
of the normalized frame with ``resolution`` samples per axis (corners included).

Exact distances are only needed near the surface, where contacts and penetration live: a
coarse exact grid is interpolated everywhere, and fine samples within ``band`` of the surface
are replaced by exact values. That is ~10x fewer exact queries than the full grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import point_cloud_utils as pcu
import torch
import trimesh
from torch import Tensor

from dexlite_core.objects.mesh import MeshError


@dataclass(frozen=True)
class SdfSpec:
    resolution: int = 128  #: samples per axis
    extent: float = 1.1  #: half-width of the grid cube, normalized units
    coarse_resolution: int = 32  #: exact coarse grid used away from the surface
    band: float = 0.08  #: fine samples closer than this (normalized) to the surface are exact

    def __post_init__(self) -> None:
        if not 16 <= self.resolution <= 512:
            raise ValueError(f"sdf resolution must be in [16, 512], got {self.resolution}")
        if not 1.0 < self.extent <= 2.0:
            raise ValueError(f"sdf extent must be in (1, 2] (normalized objects fit the unit ball), got {self.extent}")


def exact_signed_distance(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Exact signed distance (negative inside) of points (N, 3) to a watertight mesh.

    The distance is pcu's closest point; the sign compares the offset with the angle-weighted
    pseudo-normal of the closest feature (face, edge or vertex), which is exact for closed
    meshes (Baerentzen & Aanaes 2005) and ~10x faster than a winding-number sign.
    """
    n = len(points)
    if n == 0:
        return np.zeros(0)
    # point-cloud-utils squeezes its outputs for a single query: always ask for two or more.
    points = np.ascontiguousarray(np.concatenate([points, points[:1]]) if n == 1 else points, dtype=np.float64)
    # Zero-area triangles add no surface but give NaN barycentric coordinates: leave them out.
    mesh = trimesh.Trimesh(mesh.vertices, mesh.faces[mesh.area_faces > 1e-14], process=False)
    v = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
    f = np.ascontiguousarray(mesh.faces, dtype=np.int64)
    _, face, bary = pcu.closest_points_on_mesh(points, v, f)
    closest = np.einsum("nk,nkj->nj", bary, v[f[face]])
    normal = _pseudo_normals(mesh, face, bary)
    sign = np.where(np.einsum("nj,nj->n", points - closest, normal) < 0, -1.0, 1.0)
    return (sign * np.linalg.norm(points - closest, axis=1))[:n]


def _pseudo_normals(mesh: trimesh.Trimesh, face: np.ndarray, bary: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Normal of the feature a closest point lies on: face interior, edge (sum of the two face
    normals) or vertex (face normals weighted by the incident angles)."""
    face_n = mesh.face_normals
    edge_n = np.zeros((len(mesh.edges_unique), 3))
    vert_n = np.zeros((len(mesh.vertices), 3))
    for k in range(3):
        np.add.at(edge_n, mesh.faces_unique_edges[:, k], face_n)
        np.add.at(vert_n, mesh.faces[:, k], face_n * mesh.face_angles[:, k:k + 1])
    on = bary > eps
    normal = face_n[face].copy()
    edge = on.sum(1) == 2  # one barycentric is zero: on the edge opposite that vertex
    if edge.any():
        opposite = (~on[edge]).argmax(1)
        normal[edge] = edge_n[mesh.faces_unique_edges[face[edge], (opposite + 1) % 3]]
    vertex = on.sum(1) == 1
    if vertex.any():
        normal[vertex] = vert_n[mesh.faces[face[vertex], on[vertex].argmax(1)]]
    return normal


def _lattice(resolution: int, extent: float) -> np.ndarray:
    axis = np.linspace(-extent, extent, resolution)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def compute_sdf_grid(mesh: trimesh.Trimesh, spec: SdfSpec = SdfSpec()) -> np.ndarray:
    """(R, R, R) float32 signed distances of a normalized watertight mesh, indexed [x, y, z]."""
    coarse = exact_signed_distance(mesh, _lattice(spec.coarse_resolution, spec.extent))
    coarse = torch.from_numpy(coarse.reshape((1, 1) + (spec.coarse_resolution,) * 3)).float()
    # Both lattices span the same cube, so align_corners=True interpolation is trilinear lookup.
    fine = torch.nn.functional.interpolate(coarse, size=(spec.resolution,) * 3, mode="trilinear",
                                           align_corners=True).reshape(-1).numpy().astype(np.float64)
    # A distance field is 1-Lipschitz: interpolation is off by at most half a coarse cell diagonal.
    slack = np.sqrt(3) * spec.extent / (spec.coarse_resolution - 1)
    near = np.abs(fine) < spec.band + slack
    fine[near] = exact_signed_distance(mesh, _lattice(spec.resolution, spec.extent)[near])
    if not np.isfinite(fine).all():
        raise MeshError(f"signed distances of this mesh came out non-finite ({(~np.isfinite(fine)).sum()} samples)")
    return fine.reshape((spec.resolution,) * 3).astype(np.float32)


def trilinear(grids: Tensor, resolution: int, extent: float, x: Tensor, obj: Tensor) -> Tensor:
    """Differentiable trilinear lookup in a stack of flattened grids.

    grids (O, R^3) indexed [x, y, z] in C order; x (N, 3) normalized coordinates; obj (N,)
    grid index per point. Outside the cube the value at the clamped point plus the distance
    to the cube is returned, a continuous upper bound that keeps pulling points inwards.
    """
    inside = x.clamp(-extent, extent)
    outside = torch.sqrt(((x - inside) ** 2).sum(-1) + 1e-12) - 1e-6
    u = (inside + extent) * ((resolution - 1) / (2 * extent))
    # NaN coordinates must give NaN, not an out-of-range index: index with a finite stand-in.
    i0 = torch.nan_to_num(u.detach()).floor().clamp(0, resolution - 2)
    frac = u - i0
    i0 = i0.long()
    base = obj * resolution ** 3 + (i0[:, 0] * resolution + i0[:, 1]) * resolution + i0[:, 2]
    offsets = torch.tensor([(dx * resolution + dy) * resolution + dz for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)],
                           device=x.device)
    corners = grids.reshape(-1)[base.unsqueeze(1) + offsets].to(x.dtype)  # (N, 8)
    fx, fy, fz = frac.unbind(-1)
    wx = torch.stack([1 - fx, fx], -1)
    wy = torch.stack([1 - fy, fy], -1)
    wz = torch.stack([1 - fz, fz], -1)
    weights = (wx[:, :, None, None] * wy[:, None, :, None] * wz[:, None, None, :]).reshape(-1, 8)
    return (corners * weights).sum(-1) + outside
