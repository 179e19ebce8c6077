"""MuJoCo scene pieces: an object body from convex pieces, scaled, with explicit mass."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import mujoco
import numpy as np
import trimesh


@dataclass(frozen=True)
class ObjectPhysics:
    mass: float = 0.1  #: kg
    friction: float = 2.0  #: sliding friction coefficient
    torsional_friction: float = 0.02
    rolling_friction: float = 0.0001
    condim: int = 4  #: contact dimensions: 3 sliding, 4 + torsional, 6 + rolling friction

    def __post_init__(self) -> None:
        if not 0 < self.mass <= 10:
            raise ValueError(f"object mass must be in (0, 10] kg, got {self.mass}")
        if not 0 < self.friction <= 10:
            raise ValueError(f"object friction must be in (0, 10], got {self.friction}")
        if self.condim not in (1, 3, 4, 6):
            raise ValueError(f"object condim must be 1, 3, 4 or 6, got {self.condim}")


def _fmt(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in np.ravel(values))


def object_assets(pieces: list[trimesh.Trimesh], scale: float, prefix: str = "object") -> list[ET.Element]:
    """One MuJoCo mesh asset per convex piece, vertices scaled to metres."""
    return [ET.Element("mesh", name=f"{prefix}_piece{i}", vertex=_fmt(p.vertices * scale))
            for i, p in enumerate(pieces)]


def object_body(solid: trimesh.Trimesh, pieces: list[trimesh.Trimesh], scale: float, physics: ObjectPhysics,
                name: str = "object", free: bool = True) -> ET.Element:
    """A body with one convex mesh geom per piece and the solid's exact inertia for ``physics.mass``."""
    body = ET.Element("body", name=name)
    if free:
        ET.SubElement(body, "freejoint", name=f"{name}_free")
    # Inertia of the watertight solid at unit density, rescaled to the requested mass and size.
    inertia = solid.moment_inertia / solid.volume * physics.mass * scale ** 2
    ET.SubElement(body, "inertial", pos=_fmt(solid.center_mass * scale), mass=f"{physics.mass:.9g}",
                  fullinertia=_fmt([inertia[0, 0], inertia[1, 1], inertia[2, 2], inertia[0, 1], inertia[0, 2], inertia[1, 2]]))
    for i in range(len(pieces)):
        ET.SubElement(body, "geom", name=f"{name}_piece{i}", type="mesh", mesh=f"{name}_piece{i}",
                      friction=_fmt([physics.friction, physics.torsional_friction, physics.rolling_friction]),
                      condim=str(physics.condim), contype="1", conaffinity="1", group="2", rgba="0.8 0.6 0.3 1")
    return body


def warnings_raised(data: mujoco.MjData) -> list[str]:
    """Names of the MuJoCo warnings raised so far in ``data``."""
    return [mujoco.mjtWarning(i).name for i in range(len(data.warning)) if data.warning[i].number > 0]
