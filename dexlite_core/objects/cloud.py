"""Surface point clouds: farthest-point sampled points with normals, grouped into compact chunks."""
from __future__ import annotations

import numpy as np
import trimesh

#: Points per chunk for the sparse penetration test (a point count must be a multiple of it).
CHUNK_SIZE = 16


def farthest_point_sample(points: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """Indices of ``n`` points chosen greedily farthest from those already chosen."""
    if n > len(points):
        raise ValueError(f"cannot pick {n} of {len(points)} points")
    chosen = np.empty(n, dtype=np.int64)
    chosen[0] = start
    dist = np.linalg.norm(points - points[start], axis=1)
    for k in range(1, n):
        chosen[k] = int(dist.argmax())
        dist = np.minimum(dist, np.linalg.norm(points - points[chosen[k]], axis=1))
    return chosen


def surface_cloud(mesh: trimesh.Trimesh, n: int, seed: int, oversample: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``n`` evenly spread surface points (FPS over a dense uniform sample) and outward normals,
    both (n, 3) float32, ordered so that consecutive :data:`CHUNK_SIZE` points are compact."""
    dense, faces = trimesh.sample.sample_surface(mesh, n * oversample, seed=seed)
    pick = farthest_point_sample(dense, n)
    points, normals = dense[pick], mesh.face_normals[faces[pick]]
    order = kd_order(points)
    return points[order].astype(np.float32), normals[order].astype(np.float32)


def kd_order(points: np.ndarray, leaf: int = CHUNK_SIZE) -> np.ndarray:
    """Permutation grouping points into compact runs of ``leaf``: recursive median splits along
    the longest axis (the leaves of a balanced kd-tree), each side a multiple of ``leaf``."""
    if len(points) % leaf:
        raise ValueError(f"point count {len(points)} must be a multiple of {leaf}")

    def split(idx: np.ndarray) -> list[np.ndarray]:
        if len(idx) <= leaf:
            return [idx]
        pts = points[idx]
        axis = int(np.ptp(pts, axis=0).argmax())
        order = idx[np.argsort(pts[:, axis], kind="stable")]
        cut = (len(idx) // leaf // 2) * leaf
        return split(order[:cut]) + split(order[cut:])

    return np.concatenate(split(np.arange(len(points))))


def chunk_bounds(points: np.ndarray, chunk_size: int = CHUNK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Bounding spheres of consecutive chunks: centres (C, 3) and radii (C,)."""
    if len(points) % chunk_size:
        raise ValueError(f"point count {len(points)} must be a multiple of {chunk_size}")
    chunks = points.reshape(-1, chunk_size, 3)
    centers = chunks.mean(1)
    radii = np.linalg.norm(chunks - centers[:, None], axis=-1).max(1)
    return centers.astype(np.float32), radii.astype(np.float32)
