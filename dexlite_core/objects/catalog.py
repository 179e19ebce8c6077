"""The built-in object catalog: procedural trimesh shapes and pybullet_data meshes.

Nothing here downloads: every mesh is generated or ships inside a package. Codes are stable
and say where an object comes from (``proc-`` generated here, ``pyb-`` from pybullet_data).
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

#: random_urdfs objects used by default (#168 is broken upstream: NaN vertices).
RANDOM_URDF_IDS: tuple[int, ...] = tuple(range(0, 25))


@dataclass(frozen=True)
class CatalogEntry:
    code: str
    family: str  #: the generator or source: box, cylinder, ..., bowl, mug, random
    source: str  #: procedural | pybullet_data
    path: Path | None = None  #: mesh file for file-based entries
    params: tuple = field(default=())  #: shape parameters for procedural entries

    def mesh(self) -> trimesh.Trimesh:
        """The raw mesh (before repair and normalization)."""
        if self.path is not None:
            from dexlite_core.objects.mesh import load_mesh

            return load_mesh(self.path)
        return _PROCEDURAL[self.family](*self.params)


def _box(x: float, y: float, z: float) -> trimesh.Trimesh:
    return trimesh.creation.box((x, y, z))


def _cylinder(radius: float, height: float) -> trimesh.Trimesh:
    return trimesh.creation.cylinder(radius=radius, height=height, sections=48)


def _sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=3)


def _capsule(radius: float, height: float) -> trimesh.Trimesh:
    return trimesh.creation.capsule(height=height, radius=radius, count=(24, 24))


def _ellipsoid(x: float, y: float, z: float) -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=3)
    mesh.apply_scale((x, y, z))
    return mesh


def _cone(radius: float, height: float) -> trimesh.Trimesh:
    return trimesh.creation.cone(radius=radius, height=height, sections=48)


def _torus(major: float, minor: float) -> trimesh.Trimesh:
    return trimesh.creation.torus(major_radius=major, minor_radius=minor, major_sections=32, minor_sections=16)


def _bowl(radius: float, height: float, wall: float) -> trimesh.Trimesh:
    """A bowl with a rounded bottom and an open top: a closed (r, z) profile, outer wall up to
    the rim then inner wall back down to the axis, revolved about z."""
    t = np.linspace(0.0, np.pi / 2, 16)
    outer = np.stack([radius * np.sin(t), height * (1 - np.cos(t))], axis=1)
    inner = np.stack([(radius - wall) * np.sin(t), wall + (height - wall) * (1 - np.cos(t))], axis=1)
    return trimesh.creation.revolve(np.concatenate([outer, inner[::-1]]), sections=48)


_PROCEDURAL = {"box": _box, "cylinder": _cylinder, "sphere": _sphere, "capsule": _capsule,
               "ellipsoid": _ellipsoid, "cone": _cone, "torus": _torus, "bowl": _bowl}

_PROCEDURAL_ENTRIES: tuple[tuple[str, str, tuple], ...] = (
    ("proc-box-cube", "box", (1.0, 1.0, 1.0)),
    ("proc-box-brick", "box", (1.0, 0.6, 0.4)),
    ("proc-box-slab", "box", (1.0, 1.0, 0.35)),
    ("proc-box-bar", "box", (1.0, 0.3, 0.3)),
    ("proc-box-plank", "box", (1.0, 0.5, 0.2)),
    ("proc-box-prism", "box", (1.0, 0.5, 0.5)),
    ("proc-cyl-disk", "cylinder", (0.5, 0.4)),
    ("proc-cyl-can", "cylinder", (0.5, 1.2)),
    ("proc-cyl-bottle", "cylinder", (0.3, 1.2)),
    ("proc-cyl-rod", "cylinder", (0.2, 1.4)),
    ("proc-sphere", "sphere", ()),
    ("proc-capsule-short", "capsule", (0.5, 0.5)),
    ("proc-capsule-mid", "capsule", (0.4, 1.0)),
    ("proc-capsule-long", "capsule", (0.25, 1.2)),
    ("proc-ellipsoid-egg", "ellipsoid", (1.0, 0.7, 0.7)),
    ("proc-ellipsoid-flat", "ellipsoid", (1.0, 1.0, 0.5)),
    ("proc-ellipsoid-long", "ellipsoid", (1.0, 0.5, 0.4)),
    ("proc-cone-wide", "cone", (0.6, 0.8)),
    ("proc-cone-tall", "cone", (0.4, 1.2)),
    ("proc-torus", "torus", (0.7, 0.3)),
    # The shape families a grasp test is least sure of (flat, thin, concave; "large" is a scale):
    ("proc-box-plate", "box", (1.0, 1.0, 0.1)),
    ("proc-box-tablet", "box", (1.0, 0.6, 0.08)),
    ("proc-cyl-coaster", "cylinder", (0.5, 0.08)),
    ("proc-cyl-handle", "cylinder", (0.1, 2.0)),
    ("proc-capsule-handle", "capsule", (0.12, 2.0)),
    ("proc-bowl-shallow", "bowl", (1.0, 0.35, 0.08)),
    ("proc-bowl-deep", "bowl", (1.0, 0.7, 0.08)),
)


@functools.cache
def _pybullet_data() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath())


def default_catalog() -> tuple[CatalogEntry, ...]:
    """The default object set: 27 procedural shapes, 4 pybullet_data models, 25 random_urdfs."""
    root = _pybullet_data()
    entries = [CatalogEntry(code, family, "procedural", params=params) for code, family, params in _PROCEDURAL_ENTRIES]
    entries += [
        CatalogEntry("pyb-mug", "mug", "pybullet_data", root / "objects" / "mug_col.obj"),
        CatalogEntry("pyb-duck", "duck", "pybullet_data", root / "duck_vhacd.obj"),
        CatalogEntry("pyb-teddy", "teddy", "pybullet_data", root / "teddy2_VHACD_CHs.obj"),
        CatalogEntry("pyb-bunny", "bunny", "pybullet_data", root / "bunny.obj"),
    ]
    entries += [CatalogEntry(f"pyb-random-{i:03d}", "random", "pybullet_data", root / "random_urdfs" / f"{i:03d}" / f"{i:03d}.obj")
                for i in RANDOM_URDF_IDS]
    return tuple(entries)


def split_objects(codes: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """Assign each object to train/val/test by a seeded hash of its code: stable when objects
    are added or removed, and independent of their order."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val ({val_fraction}) and test ({test_fraction}) fractions must be in [0, 1) and sum below 1")
    ranked = sorted(codes, key=lambda c: hashlib.sha256(f"{seed}:{c}".encode()).hexdigest())
    n_test = round(test_fraction * len(codes))
    n_val = round(val_fraction * len(codes))
    if len(codes) >= 3:  # a split that was asked for gets at least one object
        n_test = max(n_test, int(test_fraction > 0))
        n_val = max(n_val, int(val_fraction > 0))
    split = {c: "test" for c in ranked[:n_test]}
    split.update({c: "val" for c in ranked[n_test:n_test + n_val]})
    split.update({c: "train" for c in ranked[n_test + n_val:]})
    return split
