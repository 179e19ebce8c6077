"""The Shadow Hand asset: the palm subtree of gymnasium-robotics' ``robot.xml`` as MJCF and URDF.

gymnasium-robotics ships OpenAI's Shadow Hand (MIT licence, LICENSE.md must travel with any
copy). We keep only the grasping hand: the palm body and everything below it, with the two
wrist joints and the forearm dropped. The palm is the root. Everything the simulators and the
kinematics need is generated from that one source here.
"""
from __future__ import annotations

import copy
import functools
import importlib.util
import math
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from dexlite_core.conventions import COUPLED_FINGERS, JOINT_NAMES, PREFIX

PALM_BODY = PREFIX + "palm"
ASSET_CLASS = PREFIX + "asset_class"


@dataclass(frozen=True)
class AssetPaths:
    robot_xml: Path
    shared_xml: Path
    shared_asset_xml: Path
    mesh_dir: Path
    license: Path


@functools.cache
def asset_paths() -> AssetPaths:
    # Located, not imported: importing gymnasium_robotics registers environments and prints notices.
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("gymnasium-robotics is not installed; `pip install gymnasium-robotics`")
    root = Path(list(spec.submodule_search_locations)[0]) / "envs" / "assets"
    paths = AssetPaths(
        robot_xml=root / "hand" / "robot.xml",
        shared_xml=root / "hand" / "shared.xml",
        shared_asset_xml=root / "hand" / "shared_asset.xml",
        mesh_dir=root / "stls" / "hand",
        license=root / "LICENSE.md",
    )
    missing = [str(p) for p in vars(paths).values() if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"gymnasium-robotics' Shadow Hand asset is incomplete ({missing}); reinstall with "
            "`pip install --force-reinstall gymnasium-robotics`"
        )
    return paths


@dataclass(frozen=True)
class MjcfOptions:
    """Which hand MJCF to build."""

    free_palm: bool = False  #: add a free joint to the palm (simulation); else the palm is fixed
    visual: bool = False  #: keep the visual STL geoms and sites (rendering); collision primitives always stay
    actuators: bool = False  #: position actuators on the 18 driven joints
    coupling: bool = True  #: the J0/J1 tendons of FF, MF, RF, LF
    actuator_kp: float = 1.0  #: position gain, N m / rad (robot.xml uses 1)
    actuator_force: float | None = None  #: torque limit, N m; None keeps robot.xml's per-joint limits
    self_collision: bool = False  #: robot.xml's finger-thumb contact pairs


def _parse(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def _palm_subtree() -> ET.Element:
    """The palm body with its descendants, the wrist joint removed, placed at the origin."""
    robot = _parse(asset_paths().robot_xml)
    palm = next(b for b in robot.iter("body") if b.get("name") == PALM_BODY)
    palm = copy.deepcopy(palm)
    for joint in palm.findall("joint"):
        palm.remove(joint)
    palm.set("pos", "0 0 0")
    palm.set("childclass", ASSET_CLASS)
    return palm


def _strip_visuals(body: ET.Element) -> None:
    for parent in body.iter("body"):
        for geom in list(parent.findall("geom")):
            if geom.get("name", "").startswith(PREFIX + "V_"):
                parent.remove(geom)
        for site in list(parent.findall("site")):
            parent.remove(site)


def _coupling_tendons(shared: ET.Element) -> list[ET.Element]:
    names = {f"{PREFIX}T_{f}J1c" for f in COUPLED_FINGERS}
    return [copy.deepcopy(t) for t in shared.find("tendon") if t.get("name") in names]


def _actuators(shared: ET.Element, options: MjcfOptions) -> list[ET.Element]:
    """robot.xml's position actuators of the finger joints; without the coupling tendons each
    J0 gets one too (with its J1's limits), since nothing else would move it."""
    kept = []
    for act in shared.find("actuator"):
        if act.get("joint") not in JOINT_NAMES:
            continue  # the wrist actuators
        copies = [copy.deepcopy(act)]
        finger = act.get("joint")[len(PREFIX):-2]
        if not options.coupling and finger in COUPLED_FINGERS and act.get("joint").endswith("J1"):
            j0 = copy.deepcopy(act)
            j0.set("name", f"{PREFIX}A_{finger}J0")
            j0.set("joint", f"{PREFIX}{finger}J0")
            copies.append(j0)
        for a in copies:
            a.set("kp", repr(options.actuator_kp))
            if options.actuator_force is not None:
                a.set("forcerange", f"{-options.actuator_force!r} {options.actuator_force!r}")
        kept.extend(copies)
    return kept


def hand_mjcf(options: MjcfOptions = MjcfOptions(), model_name: str = "dexlite_shadow_hand") -> str:
    """The grasping hand as a standalone MJCF string (mesh files named relative to ``meshes/``)."""
    shared = _parse(asset_paths().shared_xml)
    root = ET.Element("mujoco", model=model_name)
    ET.SubElement(root, "compiler", angle="radian", meshdir="meshes", autolimits="true")
    root.append(copy.deepcopy(shared.find("default")))
    palm = _palm_subtree()
    if options.visual:
        asset = ET.SubElement(root, "asset")
        shared_asset = _parse(asset_paths().shared_asset_xml)
        for el in shared_asset:
            if el.tag == "material" and el.get("name") in (PREFIX + "MatColl", PREFIX + "MatViz"):
                asset.append(copy.deepcopy(el))
            if el.tag == "mesh" and el.get("scale"):  # the scaled (finger/palm) meshes; forearm dropped
                asset.append(copy.deepcopy(el))
    else:
        _strip_visuals(palm)
        # The collision default refers to a material only the visual asset defines.
        for geom in root.iter("geom"):
            geom.attrib.pop("material", None)
    if options.free_palm:
        palm.insert(0, ET.Element("freejoint", name=PREFIX + "palm_free"))
    worldbody = ET.SubElement(root, "worldbody")
    worldbody.append(palm)
    if options.self_collision:
        root.append(copy.deepcopy(shared.find("contact")))
    if options.coupling:
        tendon = ET.SubElement(root, "tendon")
        tendon.extend(_coupling_tendons(shared))
    if options.actuators:
        actuator = ET.SubElement(root, "actuator")
        actuator.extend(_actuators(shared, options))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def mesh_assets(xml: str) -> dict[str, bytes]:
    """The STL files an MJCF from :func:`hand_mjcf` refers to, keyed as MuJoCo expects."""
    names = {m.get("file") for m in ET.fromstring(xml).iter("mesh") if m.get("file")}
    return {f"meshes/{n}": (asset_paths().mesh_dir / n).read_bytes() for n in names}


def compile_hand(options: MjcfOptions = MjcfOptions()) -> mujoco.MjModel:
    xml = hand_mjcf(options)
    return mujoco.MjModel.from_xml_string(xml, assets=mesh_assets(xml))


def export_mjcf(out_dir: Path, options: MjcfOptions = MjcfOptions(free_palm=True, visual=True, actuators=True)) -> Path:
    """Write the hand MJCF, its meshes and the asset licence into ``out_dir``."""
    out_dir = Path(out_dir)
    (out_dir / "meshes").mkdir(parents=True, exist_ok=True)
    xml = hand_mjcf(options)
    for name, data in mesh_assets(xml).items():
        (out_dir / name).write_bytes(data)
    shutil.copyfile(asset_paths().license, out_dir / "LICENSE.md")
    path = out_dir / "shadow_hand.xml"
    path.write_text(xml)
    return path


# ---------------------------------------------------------------------------------------
# URDF (PyBullet cannot load this MJCF: it ignores default classes and tendons)
# ---------------------------------------------------------------------------------------

def _fmt(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def _quat_to_rpy(q: np.ndarray) -> np.ndarray:
    """wxyz -> URDF fixed-axis roll, pitch, yaw (R = Rz(yaw) Ry(pitch) Rx(roll))."""
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, np.asarray(q, dtype=np.float64))
    m = m.reshape(3, 3)
    pitch = math.atan2(-m[2, 0], math.hypot(m[0, 0], m[1, 0]))
    roll = math.atan2(m[2, 1], m[2, 2])
    yaw = math.atan2(m[1, 0], m[0, 0])
    return np.array([roll, pitch, yaw])


def _urdf_geometry(model: mujoco.MjModel, g: int) -> ET.Element:
    geometry = ET.Element("geometry")
    size = model.geom_size[g]
    if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE:
        ET.SubElement(geometry, "capsule", radius=f"{size[0]:.9g}", length=f"{2 * size[1]:.9g}")
    elif model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX:
        ET.SubElement(geometry, "box", size=_fmt(2 * size))
    else:
        raise ValueError(f"URDF export supports capsule and box collision geoms, got type {model.geom_type[g]}")
    return geometry


def hand_urdf() -> str:
    """A URDF of the grasping hand built from the compiled MJCF: primitive collisions,
    revolute joints with MuJoCo's limits, link frames identical to MuJoCo's body frames."""
    model = compile_hand(MjcfOptions(coupling=False))
    robot = ET.Element("robot", name="dexlite_shadow_hand")
    for b in range(1, model.nbody):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b)
        link = ET.SubElement(robot, "link", name=name)
        inertial = ET.SubElement(link, "inertial")
        ET.SubElement(inertial, "origin", xyz=_fmt(model.body_ipos[b]), rpy=_fmt(_quat_to_rpy(model.body_iquat[b])))
        ET.SubElement(inertial, "mass", value=f"{model.body_mass[b]:.9g}")
        i = model.body_inertia[b]
        ET.SubElement(inertial, "inertia", ixx=f"{i[0]:.9g}", iyy=f"{i[1]:.9g}", izz=f"{i[2]:.9g}", ixy="0", ixz="0", iyz="0")
        for g in range(model.ngeom):
            if model.geom_bodyid[g] != b or model.geom_contype[g] == 0:
                continue
            collision = ET.SubElement(link, "collision", name=mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g))
            ET.SubElement(collision, "origin", xyz=_fmt(model.geom_pos[g]), rpy=_fmt(_quat_to_rpy(model.geom_quat[g])))
            collision.append(_urdf_geometry(model, g))
        parent = model.body_parentid[b]
        if parent == 0:
            continue
        parent_name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, parent)
        if model.body_jntnum[b] == 1:
            j = model.body_jntadr[b]
            joint = ET.SubElement(robot, "joint", name=mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j), type="revolute")
            ET.SubElement(joint, "axis", xyz=_fmt(model.jnt_axis[j]))
            lo, hi = model.jnt_range[j]
            ET.SubElement(joint, "limit", lower=f"{lo:.9g}", upper=f"{hi:.9g}", effort="10", velocity="10")
        else:
            joint = ET.SubElement(robot, "joint", name=f"{name}_fixed", type="fixed")
        ET.SubElement(joint, "parent", link=parent_name)
        ET.SubElement(joint, "child", link=name)
        ET.SubElement(joint, "origin", xyz=_fmt(model.body_pos[b]), rpy=_fmt(_quat_to_rpy(model.body_quat[b])))
    ET.indent(robot)
    return ET.tostring(robot, encoding="unicode")


def export_urdf(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(asset_paths().license, out_dir / "LICENSE.md")
    path = out_dir / "shadow_hand.urdf"
    path.write_text(hand_urdf())
    return path
