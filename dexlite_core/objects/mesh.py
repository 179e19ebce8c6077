"""Object meshes: loading with clear errors, repair into one watertight solid, normalization.

Normalization follows DexGraspNet: the bounding-box centre goes to the origin and the mesh is
divided by 1.03 x its largest vertex radius, so it fits in the unit ball with a small margin.
A grasp's ``scale`` then multiplies the normalized mesh.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

NORMALIZE_MARGIN = 1.03
MESH_SUFFIXES = (".obj", ".stl", ".ply", ".off", ".glb", ".gltf")


class MeshError(ValueError):
    """A mesh file that cannot be used; the message names the file, the cause and the fix."""


@dataclass(frozen=True)
class NormalizedMesh:
    """A watertight solid in the normalized frame plus how it maps back to the file's frame."""

    mesh: trimesh.Trimesh  #: unit-ball normalized, watertight, outward normals
    pieces: tuple[trimesh.Trimesh, ...]  #: convex pieces in the same frame (collision)
    center: np.ndarray  #: (3,) bbox centre in the file's frame
    radius: float  #: file units per normalized unit


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """Read a mesh file and check it holds finite triangles; raises MeshError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise MeshError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MeshError(f"{path}: the file is empty; export the mesh again")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise MeshError(f"{path}: unsupported mesh format '{path.suffix}'; use one of {', '.join(MESH_SUFFIXES)}")
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise MeshError(f"{path}: not a readable {path.suffix} mesh ({type(exc).__name__}: {exc})") from exc
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0 or len(loaded.vertices) == 0:
        raise MeshError(f"{path}: contains no triangles; export the object as a triangle mesh")
    if not np.isfinite(loaded.vertices).all():
        raise MeshError(f"{path}: has NaN or infinite vertex coordinates; fix or re-export the mesh")
    if np.ptp(loaded.vertices, axis=0).max() <= 0:
        raise MeshError(f"{path}: all vertices coincide; the mesh has no extent")
    return loaded


def _clean(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Merge duplicate vertices, drop degenerate faces, close small holes, orient outwards."""
    mesh = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True, validate=True)
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.update_faces(mesh.unique_faces())
    mesh.remove_unreferenced_vertices()
    trimesh.repair.fill_holes(mesh)
    trimesh.repair.fix_normals(mesh, multibody=True)
    return mesh


def _shells(mesh: trimesh.Trimesh) -> list[trimesh.Trimesh]:
    """Connected shells. The file's own vertex sharing comes first, so convex pieces that
    merely touch stay apart; files without sharing (STL) have their vertices merged."""
    parts = mesh.split(only_watertight=False)
    if not all(p.is_watertight for p in parts):
        parts = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True).split(only_watertight=False)
    return [_clean(p) for p in parts if len(p.faces) >= 4]


def repair(mesh: trimesh.Trimesh, source: str = "mesh") -> tuple[trimesh.Trimesh, tuple[trimesh.Trimesh, ...]]:
    """One watertight, outward-oriented solid from a possibly multi-shell mesh.

    Shells are closed individually (merging duplicate vertices, filling small holes) and then
    united with manifold3d, so overlapping convex pieces (V-HACD or CoACD output) become one
    solid. Returns the solid and the closed shells (the collision pieces when they are convex).
    """
    shells = _shells(mesh)
    open_shells = [s for s in shells if not s.is_watertight]
    if open_shells or not shells:
        raise MeshError(
            f"{source}: not watertight and could not be closed ({len(open_shells)} of {len(shells)} shells "
            "have open boundaries); export it as a closed solid or remesh it (e.g. ManifoldPlus)"
        )
    solid = shells[0] if len(shells) == 1 else trimesh.boolean.union(shells, engine="manifold")
    if not solid.is_watertight or solid.volume <= 0:
        raise MeshError(f"{source}: the union of its {len(shells)} shells is not a closed solid; remesh it")
    return solid, tuple(shells)


def convex_pieces(solid: trimesh.Trimesh, shells: tuple[trimesh.Trimesh, ...], threshold: float = 0.05,
                  max_pieces: int = 16) -> tuple[trimesh.Trimesh, ...]:
    """Convex collision pieces: the shells when all are (nearly) convex, else CoACD's decomposition."""
    if all(_is_nearly_convex(s) for s in shells):
        return tuple(s.convex_hull for s in shells)
    import coacd

    coacd.set_log_level("error")
    parts = coacd.run_coacd(coacd.Mesh(solid.vertices, solid.faces), threshold=threshold,
                            max_convex_hull=max_pieces, seed=0)
    return tuple(trimesh.Trimesh(v, f).convex_hull for v, f in parts)


def _is_nearly_convex(mesh: trimesh.Trimesh, tolerance: float = 0.02) -> bool:
    return mesh.volume >= (1 - tolerance) * mesh.convex_hull.volume


#: Shape families, the cases a grasp test is least sure of first: ``concave`` (a cavity the hand
#: can reach into or must grasp by the rim: mugs, bowls), ``flat`` (plates, discs, tablets),
#: ``thin`` (handles, rods), else ``compact``. Size is not a shape: "large" is a scale.
SHAPES = ("concave", "flat", "thin", "compact")
CONCAVE_SOLIDITY = 0.5  #: volume / convex-hull volume below this: concave (DexGraspNet's mug 0.28, banana 0.64)
FLAT_RATIO = 0.25  #: shortest / middle extent below this: flat (a plate of 1.9 x 1.9 x 0.4 is 0.21)
THIN_RATIO = 0.25  #: middle / longest extent below this: thin (a bottle is 0.28, a handle 0.1)


def shape_of(solid: trimesh.Trimesh) -> str:
    """The shape family of a watertight solid (see :data:`SHAPES`), from its oriented bounding
    box and its solidity; scale-free, so the same for every size of an object."""
    longest, middle, shortest = np.sort(solid.bounding_box_oriented.primitive.extents)[::-1]
    if solid.volume < CONCAVE_SOLIDITY * solid.convex_hull.volume:
        return "concave"
    if shortest < FLAT_RATIO * middle:
        return "flat"
    if middle < THIN_RATIO * longest:
        return "thin"
    return "compact"


def normalize(solid: trimesh.Trimesh, pieces: tuple[trimesh.Trimesh, ...] = ()) -> NormalizedMesh:
    """Centre the bounding box at the origin and fit the mesh inside the unit ball (DexGraspNet)."""
    center = solid.bounds.mean(axis=0)
    radius = float(np.linalg.norm(solid.vertices - center, axis=1).max() * NORMALIZE_MARGIN)

    def to_unit(m: trimesh.Trimesh) -> trimesh.Trimesh:
        return trimesh.Trimesh((m.vertices - center) / radius, m.faces.copy(), process=False)

    return NormalizedMesh(to_unit(solid), tuple(to_unit(p) for p in pieces), center, radius)


def prepare_mesh(path: str | Path, decompose: bool = True) -> NormalizedMesh:
    """Load, repair, decompose and normalize a mesh file in one step (raises MeshError)."""
    solid, shells = repair(load_mesh(path), source=str(path))
    pieces = convex_pieces(solid, shells) if decompose else ()
    return normalize(solid, pieces)
