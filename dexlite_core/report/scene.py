"""Grasp scenes for people: the hand's visual meshes posed by MuJoCo, the object, contacts.

The hand's visual geometry is gymnasium-robotics' STL meshes (9 distinct meshes, ~10k vertices);
a posed hand is a list of (mesh, rotation, translation) parts, so viewers can store each mesh
once and only a few numbers per grasp.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import torch
import trimesh

from dexlite_core.conventions import JOINT_NAMES, HandPose
from dexlite_core.hand.asset import PALM_BODY, MjcfOptions, compile_hand
from dexlite_core.hand.model import HandModel
from dexlite_core.metrics import contacts_near_surface
from dexlite_core.objects.object_set import ObjectSet
from dexlite_core.objects.store import read_pieces


@dataclass(frozen=True)
class HandMeshes:
    vertices: list[np.ndarray]  #: per distinct mesh (V, 3), its own frame, metres
    faces: list[np.ndarray]  #: per distinct mesh (F, 3)


@dataclass(frozen=True)
class PosedHand:
    mesh: np.ndarray  #: (G,) distinct-mesh index of each visual part
    rot: np.ndarray  #: (G, 3, 3) part frames in the object frame
    pos: np.ndarray  #: (G, 3)


@functools.cache
def _visual_model() -> tuple[mujoco.MjModel, np.ndarray]:
    model = compile_hand(MjcfOptions(free_palm=True, visual=True, coupling=False))
    geoms = np.array([g for g in range(model.ngeom) if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH])
    return model, geoms


@functools.cache
def hand_meshes() -> HandMeshes:
    model, geoms = _visual_model()
    ids = sorted({int(model.geom_dataid[g]) for g in geoms})
    verts = [model.mesh_vert[model.mesh_vertadr[m]:model.mesh_vertadr[m] + model.mesh_vertnum[m]].copy() for m in ids]
    faces = [model.mesh_face[model.mesh_faceadr[m]:model.mesh_faceadr[m] + model.mesh_facenum[m]].copy() for m in ids]
    return HandMeshes(verts, faces)


def pose_hand(wrist_pos: np.ndarray, wrist_quat: np.ndarray, joints: np.ndarray) -> PosedHand:
    """The visual parts of one grasp (palm pose in the object frame, 22 joints)."""
    model, geoms = _visual_model()
    data = mujoco.MjData(model)
    adr = model.jnt_qposadr[model.joint(PALM_BODY + "_free").id]
    data.qpos[adr:adr + 7] = np.concatenate([wrist_pos, wrist_quat])
    data.qpos[[model.jnt_qposadr[model.joint(n).id] for n in JOINT_NAMES]] = joints
    mujoco.mj_kinematics(model, data)
    ids = sorted({int(model.geom_dataid[g]) for g in geoms})
    return PosedHand(np.array([ids.index(int(model.geom_dataid[g])) for g in geoms]),
                     data.geom_xmat[geoms].reshape(-1, 3, 3).copy(), data.geom_xpos[geoms].copy())


def posed_hand_mesh(hand: PosedHand) -> trimesh.Trimesh:
    meshes = hand_meshes()
    parts = [trimesh.Trimesh(meshes.vertices[m] @ r.T + p, meshes.faces[m], process=False)
             for m, r, p in zip(hand.mesh, hand.rot, hand.pos)]
    return trimesh.util.concatenate(parts)


def object_mesh(objects_dir: Path, code: str, scale: float) -> trimesh.Trimesh:
    solid = read_pieces(Path(objects_dir) / code / "mesh.obj")[0]
    return trimesh.Trimesh(solid.vertices * scale, solid.faces, process=False)


def contact_points(hand: HandModel, objects: ObjectSet, pose: HandPose, obj: torch.Tensor, scale: torch.Tensor,
                   threshold: float = 0.005) -> list[np.ndarray]:
    """Per grasp, the contact candidates within ``threshold`` of the surface (K, 3)."""
    return [p for p, _ in contacts_near_surface(hand, objects, pose, obj, scale, threshold)]
