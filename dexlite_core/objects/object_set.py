"""A batch of objects on one device: SDF grids and surface clouds, queried per grasp.

Data is stored in the normalized frame; every query takes the grasp's object index and scale,
so one set serves all scales: d_scaled(x) = s * d_unit(x / s).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dexlite_core.objects.cloud import CHUNK_SIZE, chunk_bounds
from dexlite_core.objects.sdf import trilinear


@dataclass(frozen=True)
class ObjectGeometry:
    """One normalized object's precomputed geometry (numpy, as stored on disk)."""

    code: str
    sdf: np.ndarray  #: (R, R, R) signed distance, normalized units, negative inside
    sdf_extent: float  #: the grid spans [-extent, extent]^3
    points: np.ndarray  #: (P, 3) surface points, in compact chunks (cloud.kd_order)
    normals: np.ndarray  #: (P, 3) outward unit normals


@dataclass(frozen=True)
class ObjectSet:
    codes: tuple[str, ...]
    sdf: Tensor  #: (O, R^3)
    resolution: int
    extent: float
    points: Tensor  #: (O, P, 3) normalized
    normals: Tensor  #: (O, P, 3)
    chunk_centers: Tensor  #: (O, C, 3) normalized
    chunk_radii: Tensor  #: (O, C)

    @staticmethod
    def from_geometry(items: list[ObjectGeometry], device="cpu", dtype=torch.float32) -> "ObjectSet":
        if not items:
            raise ValueError("an ObjectSet needs at least one object")
        res = {g.sdf.shape[0] for g in items}
        ext = {g.sdf_extent for g in items}
        npts = {len(g.points) for g in items}
        if len(res) != 1 or len(ext) != 1 or len(npts) != 1:
            raise ValueError(f"objects must share SDF resolution/extent and point count, got {res}, {ext}, {npts}")
        for g in items:
            if not (np.isfinite(g.sdf).all() and np.isfinite(g.points).all() and np.isfinite(g.normals).all()):
                raise ValueError(f"object {g.code}: its SDF grid or point cloud holds NaN; rebuild it (dvc repro objects)")
        bounds = [chunk_bounds(g.points) for g in items]

        def stack(arrays):
            return torch.as_tensor(np.stack(arrays), dtype=dtype, device=device)

        return ObjectSet(
            codes=tuple(g.code for g in items),
            sdf=stack([g.sdf.reshape(-1).astype(np.float32) for g in items]),
            resolution=res.pop(), extent=float(ext.pop()),
            points=stack([g.points for g in items]), normals=stack([g.normals for g in items]),
            chunk_centers=stack([b[0] for b in bounds]), chunk_radii=stack([b[1] for b in bounds]),
        )

    def __len__(self) -> int:
        return len(self.codes)

    def index_of(self, codes) -> Tensor:
        lookup = {c: i for i, c in enumerate(self.codes)}
        missing = sorted({c for c in codes if c not in lookup})
        if missing:
            raise KeyError(f"objects not in this set: {missing[:5]}")
        return torch.tensor([lookup[c] for c in codes], device=self.sdf.device)

    @property
    def device(self) -> torch.device:
        return self.sdf.device

    @property
    def cell(self) -> float:
        """Grid spacing in normalized units."""
        return 2 * self.extent / (self.resolution - 1)

    def signed_distance(self, x: Tensor, obj: Tensor, scale: Tensor) -> Tensor:
        """x (N, 3) metres in the scaled object frame; obj, scale (N,) -> (N,) metres."""
        s = scale.unsqueeze(-1)
        return trilinear(self.sdf, self.resolution, self.extent, x / s, obj) * scale

    def distance_and_normal(self, x: Tensor, obj: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        """Signed distance (N,) and outward unit normal (N, 3), the normal by central
        differences of the interpolated field one cell apart (smooth across cells)."""
        d = self.signed_distance(x, obj, scale)
        h = (self.cell * scale).unsqueeze(-1).unsqueeze(-1) * torch.eye(3, device=x.device, dtype=x.dtype)  # (N, 3, 3)
        probes = torch.cat([x.unsqueeze(1) + h, x.unsqueeze(1) - h], dim=1)  # (N, 6, 3)
        n = probes.shape[0]
        values = self.signed_distance(probes.reshape(-1, 3), obj.repeat_interleave(6), scale.repeat_interleave(6))
        values = values.view(n, 6)
        grad = values[:, :3] - values[:, 3:]
        return d, torch.nn.functional.normalize(grad, dim=-1)

    def surface(self, obj: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
        """Scaled surface points (B, P, 3) and normals for grasps with objects ``obj`` (B,)."""
        return self.points[obj] * scale.view(-1, 1, 1), self.normals[obj]

    @property
    def chunked_points(self) -> Tensor:
        """(O, C, S, 3) normalized surface points grouped into the compact chunks."""
        return self.points.view(len(self), -1, CHUNK_SIZE, 3)
