"""Export to DexGraspBench (BODex's MuJoCo benchmark): one ``.npy`` per grasp plus object assets.

DexGraspBench replays each grasp open loop on MuJoCo Menagerie's Shadow Hand (its
``assets/hand/shadow/right_hand.xml``): pre-grasp -> grasp -> squeeze, then pushes the object.
Everything about that hand's frames and joints lives here, in :func:`to_menagerie` and
:func:`from_menagerie`.

Layout written under the output folder ``DIR``::

    graspdata/<code>/scale<mm>/<grasp_id>.npy   a pickled dict per grasp (see GRASP_KEYS)
    object/<code>/info/simplified.json          mass, density, scale: DexGraspBench sets the
                                                object's density from these for its mass
    object/<code>/urdf/meshes/convex_piece_NNN.obj   the convex collision pieces, normalized
    object/<code>/mesh/simplified.obj           the solid (its visualizers read it)

Run its evaluator from its checkout with ``python src/main.py task=eval hand=shadow
save_dir=DIR``. Grasp files name their object folder by absolute path, as it reads them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dexlite_core.conventions import JOINT_SHORT_NAMES, NUM_JOINTS, matrix_to_quat, quat_to_matrix
from dexlite_core.data.dexgraspnet import DexGraspNetError, load_object_array
from dexlite_core.data.files import atomic_path, write_json
from dexlite_core.data.grasps import GraspTable
from dexlite_core.sim.dgb import PregraspSqueeze, replay_joints

# -- the frame mapping ---------------------------------------------------------------------
# Menagerie's rh_palm is our robot0:palm (same child offsets and axes), but it sits at
# (0, 0, 0.034) in the hand's root body, and DexGraspBench poses that root. Joint order is ours
# (their J4..J1 are our J3..J0, LFJ5 our LFJ4, THJ5..THJ1 our THJ4..THJ0); four axes point the
# other way. Measured over 500 random configurations (bench/bench_export.py): links agree to
# 0.42 mm on average and 1.8 mm at worst (the little finger's metacarpal joint sits elsewhere).

#: Our palm origin in the Menagerie hand root's frame, metres.
MENAGERIE_PALM_OFFSET = np.array([0.0, 0.0, 0.034])
#: Our joints whose Menagerie axis is reversed (rh_FFJ4, rh_MFJ4, rh_THJ2, rh_THJ1).
MENAGERIE_FLIPPED: tuple[str, ...] = ("FFJ3", "MFJ3", "THJ1", "THJ0")
#: Factor from our joint angle to Menagerie's, per joint (JOINT_NAMES order).
MENAGERIE_JOINT_SIGN = np.array([-1.0 if n in MENAGERIE_FLIPPED else 1.0 for n in JOINT_SHORT_NAMES])


def _menagerie_name(short: str) -> str:
    finger, number = short[:-1], int(short[-1])
    # Our lowest joint number is 0 (distal), theirs 1; LF and TH count the same way.
    return f"rh_{finger}{number + 1}"


#: Menagerie's joint names in our joint order (= its qpos order).
MENAGERIE_JOINT_NAMES: tuple[str, ...] = tuple(_menagerie_name(n) for n in JOINT_SHORT_NAMES)
#: A Menagerie hand qpos: root position (3), root quaternion (w, x, y, z), 22 joints.
QPOS_DIM = 7 + NUM_JOINTS


def to_menagerie(wrist_pos: np.ndarray, wrist_quat: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Our palm poses (N, 3), (N, 4) wxyz and joints (N, 22) -> Menagerie qpos (N, 29), float64."""
    rot = quat_to_matrix(torch.as_tensor(np.asarray(wrist_quat, dtype=np.float64))).numpy()
    root = np.asarray(wrist_pos, dtype=np.float64) - rot @ MENAGERIE_PALM_OFFSET
    quat = matrix_to_quat(torch.from_numpy(rot)).numpy()
    return np.concatenate([root, quat, np.asarray(joints, dtype=np.float64) * MENAGERIE_JOINT_SIGN], axis=-1)


def from_menagerie(qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Menagerie qpos (N, 29) -> our palm position (N, 3), quaternion wxyz (N, 4), joints (N, 22)."""
    qpos = np.asarray(qpos, dtype=np.float64)
    if qpos.shape[-1] != QPOS_DIM:
        raise ValueError(f"a Menagerie Shadow Hand qpos has {QPOS_DIM} numbers, got {qpos.shape[-1]}")
    rot = quat_to_matrix(torch.from_numpy(qpos[..., 3:7])).numpy()
    pos = qpos[..., :3] + rot @ MENAGERIE_PALM_OFFSET
    return pos, matrix_to_quat(torch.from_numpy(rot)).numpy(), qpos[..., 7:] * MENAGERIE_JOINT_SIGN


# -- the export ----------------------------------------------------------------------------

#: Keys of a grasp file, as DexGraspBench's evaluator reads them (``src/task/eval_func/base.py``).
GRASP_KEYS = ("obj_path", "obj_pose", "obj_scale", "pregrasp_qpos", "grasp_qpos", "squeeze_qpos")
#: The object sits at the world origin unrotated: grasp poses are in its (scaled) frame.
OBJECT_POSE = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])


class ExportError(ValueError):
    """A table or object store that cannot be exported; the message names the file and the fix."""


@dataclass(frozen=True)
class ExportSummary:
    grasp_files: int
    objects: int
    out_dir: Path


def grasp_path(out_dir: Path, code: str, scale: float, grasp_id: int) -> Path:
    return Path(out_dir) / "graspdata" / code / f"scale{round(float(scale) * 1000):03d}" / f"{int(grasp_id)}.npy"


def object_dir(out_dir: Path, code: str) -> Path:
    return Path(out_dir).resolve() / "object" / code


def write_object(pieces_obj: Path, solid_obj: Path | None, folder: Path) -> None:
    """DexGraspBench's object folder from our convex pieces (decomposed.obj, normalized units)."""
    from dexlite_core.objects.store import read_pieces, write_mesh

    if not pieces_obj.exists():
        raise ExportError(f"{pieces_obj} is missing: export needs the object store the table was made with "
                          "(run `dvc repro objects`, or pass --objects)")
    pieces = read_pieces(pieces_obj)
    for i, piece in enumerate(pieces):
        write_mesh(folder / "urdf" / "meshes" / f"convex_piece_{i:03d}.obj", [piece])
    # It sets density = 0.1 kg / (mass / (density * scale^3) * obj_scale^3): so mass here is the
    # volume MuJoCo gives the pieces at unit size (convex hulls, overlaps counted twice).
    volume = float(sum(p.convex_hull.volume for p in pieces))
    write_json(folder / "info" / "simplified.json", {"mass": volume, "density": 1.0, "scale": 1.0})
    if solid_obj is not None and solid_obj.exists():
        write_mesh(folder / "mesh" / "simplified.obj", read_pieces(solid_obj))


def _write_grasp(path: Path, record: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, record, allow_pickle=True)  # a pickled dict: what DexGraspBench's np.load(...).item() reads


def export_dexgraspbench(table: GraspTable, objects_dir: Path, out_dir: Path,
                         stages: PregraspSqueeze = PregraspSqueeze()) -> ExportSummary:
    """Write ``table``'s grasps and their objects (from ``objects_dir/<code>/``) under ``out_dir``."""
    keys = list(zip(table.object_code.astype(str), np.round(table.scale * 1000).astype(int), table.grasp_id))
    if len(set(keys)) != len(keys):
        raise ExportError("the table holds several grasps with the same (object_code, scale, grasp_id); "
                          "one file per grasp needs them unique (export one source at a time)")
    codes = sorted(set(table.object_code.astype(str)))
    for code in codes:
        write_object(Path(objects_dir) / code / "decomposed.obj", Path(objects_dir) / code / "mesh.obj",
                     object_dir(out_dir, code))
    pre, squeeze = replay_joints(table, stages)
    qpos = {name: to_menagerie(table.wrist_pos, table.wrist_quat, joints)
            for name, joints in (("pregrasp_qpos", pre), ("grasp_qpos", table.joints), ("squeeze_qpos", squeeze))}
    for i in range(len(table)):
        code = str(table.object_code[i])
        record = {"obj_path": str(object_dir(out_dir, code)), "obj_pose": OBJECT_POSE.copy(),
                  "obj_scale": float(table.scale[i]), **{k: v[i] for k, v in qpos.items()}}
        _write_grasp(grasp_path(out_dir, code, table.scale[i], table.grasp_id[i]), record)
    return ExportSummary(len(table), len(codes), Path(out_dir))


def read_grasp_file(path: str | Path) -> dict:
    """One DexGraspBench grasp (or evaluation) file, unpickled safely; checks the keys it needs."""
    try:
        array = load_object_array(path)
    except DexGraspNetError as exc:
        raise ExportError(str(exc)) from exc
    if array.shape != ():
        raise ExportError(f"{path}: a DexGraspBench grasp file holds one dict, got an array of shape {array.shape}")
    record = array.item()
    missing = [k for k in GRASP_KEYS if k not in record]
    if missing:
        raise ExportError(f"{path}: lacks {missing}; not a DexGraspBench grasp file")
    for k in ("pregrasp_qpos", "grasp_qpos", "squeeze_qpos"):
        if np.shape(record[k]) != (QPOS_DIM,):
            raise ExportError(f"{path}: {k} has shape {np.shape(record[k])}, expected ({QPOS_DIM},) for the Shadow Hand")
    return record


def read_info(folder: Path) -> dict:
    return json.loads((Path(folder) / "info" / "simplified.json").read_text())


# -- checking the mapping against the Menagerie hand ------------------------------------------

def menagerie_kinematics(xml_path: str | Path):
    """Menagerie's Shadow Hand from DexGraspBench's ``right_hand.xml`` for kinematics only: its
    meshes dropped (they are not needed for link frames), its root on a free joint."""
    import xml.etree.ElementTree as ET

    import mujoco

    xml_path = Path(xml_path)
    if not xml_path.exists():
        raise FileNotFoundError(f"{xml_path}: no Menagerie Shadow Hand here; point at a DexGraspBench checkout's "
                                "assets/hand/shadow/right_hand.xml")
    root = ET.parse(xml_path).getroot()
    for parent in list(root.iter("asset")) + list(root.iter("body")):
        for child in list(parent):
            if child.tag == "mesh" or (child.tag == "geom" and child.get("mesh")):
                parent.remove(child)
    world = root.find("worldbody")
    hand_root = ET.Element("body", name="hand_root")
    hand_root.append(ET.Element("freejoint", name="hand_root_free"))
    for child in list(world):
        world.remove(child)
        hand_root.append(child)
    world.append(hand_root)
    model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
    names = tuple(model.joint(j).name for j in range(1, model.njnt))
    if names != MENAGERIE_JOINT_NAMES:
        raise ValueError(f"{xml_path}: joints {names} differ from the expected Menagerie order {MENAGERIE_JOINT_NAMES}")
    return model


def link_residuals(menagerie, qpos: np.ndarray, wrist_pos: np.ndarray, wrist_quat: np.ndarray,
                   joints: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """Distances (N, L) in metres between our links (posed by wrist/joints) and Menagerie's
    (posed by ``qpos`` (N, 29)), for every link both hands share an origin convention for."""
    import mujoco

    from dexlite_core.conventions import PREFIX, HandPose
    from dexlite_core.hand.model import HandModel

    hand = HandModel(dtype=torch.float64)
    pose = HandPose(torch.as_tensor(wrist_pos, dtype=torch.float64),
                    quat_to_matrix(torch.as_tensor(wrist_quat, dtype=torch.float64)),
                    torch.as_tensor(joints, dtype=torch.float64))
    ours = hand.link_frames(pose).pos.numpy()
    # The little finger's metacarpal body origin is placed differently (both on its joint axis).
    links = [n for n in hand.link_names if not n.endswith("lfmetacarpal")]
    ids = [menagerie.body("rh_" + n[len(PREFIX):]).id for n in links]
    cols = [hand.link_index(n) for n in links]
    data = mujoco.MjData(menagerie)
    out = np.empty((len(qpos), len(links)))
    for i, q in enumerate(np.asarray(qpos, dtype=np.float64)):
        data.qpos[:] = q
        mujoco.mj_kinematics(menagerie, data)
        out[i] = np.linalg.norm(data.xpos[ids] - ours[i, cols], axis=1)
    return tuple(links), out
