"""MuJoCo grasp tests: initial penetration, lift, and six-direction disturbance.

The scene is the grasping hand (free palm welded to a mocap body, position actuators, the J0/J1
tendons) and the object (convex pieces, exact inertia, free joint) placed at the origin in its
own frame, so a grasp's palm pose is used as is. Each test starts from a pre-grasp (closing
joints opened a little), closes to the grasp plus a small squeeze past it with gravity off,
and then judges the grasp by how the object moves in the hand, measured where the hand holds it
(the grasp point: the mean hand-object contact after closing). Measured at the object's origin,
a large or flat object held near its rim would fail for tilting a few degrees, since its centre
swings by the tilt times its distance from the fingers (bench/README.md, bench_validity). A
simulation that diverges is a failed grasp, never a crash.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import mujoco
import numpy as np
import trimesh

from dexlite_core.conventions import (CLOSING_DIRECTION, COUPLED_PAIRS, JOINT_LOWER, JOINT_NAMES, JOINT_UPPER,
                                      coupled_j0)
from dexlite_core.hand.asset import PALM_BODY, MjcfOptions, hand_mjcf
from dexlite_core.sim.scene import ObjectPhysics, object_assets, object_body, warnings_raised

MOCAP = "palm_target"
OBJECT = "object"
DIRECTIONS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)


@dataclass(frozen=True)
class GraspTestConfig:
    timestep: float = 0.004  #: s (0.002 gives the same verdicts on DexGraspNet's sample, 2x slower)
    object: ObjectPhysics = field(default_factory=ObjectPhysics)
    actuator_kp: float = 40.0  #: finger position gain, N m / rad: how little a finger yields to the object's
    #: torque (robot.xml's 1 cannot hold; 10 let objects held far from their centre slip, bench/README.md)
    actuator_force: float | None = None  #: finger torque limit, N m (None: robot.xml's, 0.7-2.4)
    coupling: bool = True  #: J0 follows J1 through the tendons (the real hand); else J0 is driven
    pregrasp_open: float = 0.05  #: rad the closing joints start opened by
    squeeze: float = 0.05  #: rad past the grasp the closing joints are driven to: how far they may close on
    #: nothing (a spoiled grasp); the grip is about actuator_kp x squeeze
    close_time: float = 0.3  #: s from pre-grasp to squeezed grasp, gravity off
    close_damping: float = 5.0  #: object damping while closing (N s/m, N m s/rad x 0.01): a quasi-static
    #: close, so resolving the grasp's initial interpenetration cannot shoot the light object away
    settle_time: float = 0.2  #: s with gravity on before lifting
    lift_height: float = 0.10  #: m
    lift_time: float = 0.5  #: s
    hold_time: float = 0.2  #: s after the lift
    lift_ratio: float = 0.9  #: the grasp point must rise this share of the hand's rise
    max_slip: float = 0.02  #: m the grasp point may move relative to the palm during the lift
    six_dir_time: float = 0.5  #: s each disturbance lasts
    six_dir_force: float = 1.0  #: disturbance, in multiples of the object's weight
    max_displacement: float = 0.02  #: m the grasp point may move, six-direction test
    max_rotation_deg: float = 15.0  #: degrees the object may turn in the hand, lift and six-direction tests
    max_penetration: float = 0.005  #: m of initial object-into-hand depth that fails a grasp

    def __post_init__(self) -> None:
        if not 1e-4 <= self.timestep <= 0.01:
            raise ValueError(f"timestep must be in [1e-4, 0.01] s, got {self.timestep}")
        if self.actuator_kp <= 0 or self.squeeze < 0 or self.pregrasp_open < 0:
            raise ValueError("actuator_kp must be > 0; squeeze and pregrasp_open >= 0")
        if min(self.close_time, self.lift_time, self.six_dir_time) <= 0 or self.lift_height <= 0:
            raise ValueError("close_time, lift_time, six_dir_time and lift_height must be > 0")
        if not 0 < self.lift_ratio <= 1:
            raise ValueError(f"lift_ratio must be in (0, 1], got {self.lift_ratio}")


@dataclass(frozen=True)
class TestOutcome:
    success: bool
    obj_disp: float  #: m the grasp point moved relative to the hand (worst case)
    obj_rot: float  #: degrees the object turned relative to the hand
    reason: str  #: "" when it passed
    penetration: float = float("nan")  #: m, initial object-into-hand depth
    dirs_passed: int = -1  #: six-direction test only


class SimDiverged(RuntimeError):
    pass


def scene_xml(pieces: list[trimesh.Trimesh], solid: trimesh.Trimesh, scale: float, config: GraspTestConfig) -> str:
    """Hand + mocap target + object, as one MJCF string (collision geometry only)."""
    hand = ET.fromstring(hand_mjcf(MjcfOptions(free_palm=True, actuators=True, coupling=config.coupling,
                                               actuator_kp=config.actuator_kp, actuator_force=config.actuator_force),
                                     model_name="dexlite_grasp_test"))
    hand.insert(1, ET.Element("option", timestep=repr(config.timestep), gravity="0 0 0", cone="elliptic",
                              impratio="10", integrator="implicitfast"))
    return add_object_and_mocap(hand, pieces, solid, scale, config.object, solref="0.005 1")


def add_object_and_mocap(hand: ET.Element, pieces: list[trimesh.Trimesh], solid: trimesh.Trimesh, scale: float,
                         physics: ObjectPhysics, **weld: str) -> str:
    """The scene's MJCF string: ``hand`` plus the object and a mocap body welded to the palm
    (the weld's solver attributes in ``weld``)."""
    asset = hand.find("asset")
    if asset is None:
        asset = ET.Element("asset")
        hand.insert(2, asset)
    asset.extend(object_assets(pieces, scale, prefix=OBJECT))
    world = hand.find("worldbody")
    world.append(ET.Element("body", name=MOCAP, mocap="true"))
    world.append(object_body(solid, pieces, scale, physics, name=OBJECT))
    equality = ET.SubElement(hand, "equality")
    ET.SubElement(equality, "weld", body1=MOCAP, body2=PALM_BODY, **weld)
    return ET.tostring(hand, encoding="unicode")


def _quat_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two unit quaternions (w, x, y, z), degrees."""
    return math.degrees(2 * math.acos(min(1.0, abs(float(np.dot(a, b))))))


class GraspSimulator:
    """The grasp tests for one object at one scale (compile once, reset per grasp)."""

    def __init__(self, pieces: list[trimesh.Trimesh], solid: trimesh.Trimesh, scale: float, config: GraspTestConfig):
        self.config = config
        self.model = mujoco.MjModel.from_xml_string(scene_xml(pieces, solid, scale, config))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.palm = m.body(PALM_BODY).id
        self.obj = m.body(OBJECT).id
        self.mocap = m.body(MOCAP).mocapid[0]
        self.palm_qpos = m.jnt_qposadr[m.joint(PALM_BODY + "_free").id]
        self.obj_qpos = m.jnt_qposadr[m.joint(OBJECT + "_free").id]
        self.joint_qpos = np.array([m.jnt_qposadr[m.joint(n).id] for n in JOINT_NAMES])
        self.act_joint = np.array([JOINT_NAMES.index(m.joint(m.actuator_trnid[a, 0]).name) for a in range(m.nu)])
        self.obj_geoms = {g for g in range(m.ngeom) if m.geom_bodyid[g] == self.obj}
        self.obj_dofs = slice(m.jnt_dofadr[m.joint(OBJECT + "_free").id], m.jnt_dofadr[m.joint(OBJECT + "_free").id] + 6)
        self.weight = config.object.mass * 9.81

    # -- state ---------------------------------------------------------------------------

    def _joint_state(self, joints: np.ndarray) -> np.ndarray:
        """What the hand can hold: limits, and the tendon's J0 when coupled."""
        joints = np.clip(joints, JOINT_LOWER, JOINT_UPPER)
        if self.config.coupling:
            joints = joints.copy()
            for j1, j0 in COUPLED_PAIRS:
                joints[j0] = coupled_j0(joints[j1])
        return joints

    def _reset(self, pos: np.ndarray, quat: np.ndarray, joints: np.ndarray) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self.palm_qpos:self.palm_qpos + 7] = np.concatenate([pos, quat])
        d.mocap_pos[self.mocap], d.mocap_quat[self.mocap] = pos, quat
        d.qpos[self.joint_qpos] = self._joint_state(joints)
        d.qpos[self.obj_qpos:self.obj_qpos + 7] = [0, 0, 0, 1, 0, 0, 0]
        m.opt.gravity[:] = 0
        mujoco.mj_forward(m, d)

    def _step(self, seconds: float, ctrl_from: np.ndarray | None = None, ctrl_to: np.ndarray | None = None,
              rise: float = 0.0, every: int = 5) -> None:
        """Advance ``seconds``, ramping actuator targets linearly and raising the mocap target
        along a minimum-jerk profile (no velocity jump at either end), ``every`` steps at a time."""
        n = max(1, round(seconds / self.config.timestep))
        start_z = self.data.mocap_pos[self.mocap, 2]
        for done in range(every, n + every, every):
            frac = min(done, n) / n
            if ctrl_to is not None:
                self.data.ctrl[:] = ctrl_from + (ctrl_to - ctrl_from) * frac
            if rise:
                self.data.mocap_pos[self.mocap, 2] = start_z + rise * frac ** 3 * (10 - 15 * frac + 6 * frac ** 2)
            mujoco.mj_step(self.model, self.data, nstep=min(every, n - done + every))
            if warnings_raised(self.data) or not np.isfinite(self.data.qpos).all() \
                    or np.abs(self.data.qvel).max() > 100:
                raise SimDiverged

    def grasp_point(self) -> np.ndarray | None:
        """Where the hand holds the object at the current state: the mean hand-object contact
        point, object frame (m); None when nothing touches it."""
        d = self.data
        points = [c.pos for c in d.contact[:d.ncon] if (c.geom1 in self.obj_geoms) != (c.geom2 in self.obj_geoms)]
        if not points:
            return None
        return d.xmat[self.obj].reshape(3, 3).T @ (np.mean(points, axis=0) - d.xpos[self.obj])

    def _held_point(self) -> np.ndarray:
        """The grasp point after closing; the object's origin when the hand closed on nothing."""
        point = self.grasp_point()
        return np.zeros(3) if point is None else point

    def _point_in_world(self, point: np.ndarray) -> np.ndarray:
        return self.data.xpos[self.obj] + self.data.xmat[self.obj].reshape(3, 3) @ point

    def _object_in_palm(self, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``point`` of the object (object frame) in the palm frame, and the object's orientation
        relative to the palm (quaternion)."""
        d = self.data
        rot = d.xmat[self.palm].reshape(3, 3)
        pos = rot.T @ (self._point_in_world(point) - d.xpos[self.palm])
        rel = np.zeros(4)
        palm_inv = np.zeros(4)
        mujoco.mju_negQuat(palm_inv, d.xquat[self.palm])
        mujoco.mju_mulQuat(rel, palm_inv, d.xquat[self.obj])
        return pos, rel

    # -- tests -----------------------------------------------------------------------------

    def penetration(self) -> float:
        """Deepest hand-object contact at the current state, metres (0 when none)."""
        d, depth = self.data, 0.0
        for c in d.contact[: d.ncon]:
            if (c.geom1 in self.obj_geoms) != (c.geom2 in self.obj_geoms):
                depth = max(depth, -float(c.dist))
        return depth

    def close(self, pos: np.ndarray, quat: np.ndarray, joints: np.ndarray) -> float:
        """Pre-grasp -> squeezed grasp with gravity off. Returns the initial penetration (m)."""
        cfg = self.config
        self._reset(pos, quat, joints)
        depth = self.penetration()
        start = joints - cfg.pregrasp_open * CLOSING_DIRECTION
        self.data.qpos[self.joint_qpos] = self._joint_state(start)
        mujoco.mj_forward(self.model, self.data)
        target = joints + cfg.squeeze * CLOSING_DIRECTION
        low, high = self.model.actuator_ctrlrange.T
        damping = self.model.dof_damping[self.obj_dofs]
        damping[:] = [cfg.close_damping] * 3 + [cfg.close_damping * 0.01] * 3
        try:
            self._step(cfg.close_time, np.clip(start[self.act_joint], low, high), np.clip(target[self.act_joint], low, high))
        finally:
            damping[:] = 0
        self.data.qvel[self.obj_dofs] = 0
        return depth

    def lift(self, pos: np.ndarray, quat: np.ndarray, joints: np.ndarray) -> TestOutcome:
        cfg = self.config
        try:
            depth = self.close(pos, quat, joints)
            if depth > cfg.max_penetration:
                return TestOutcome(False, 0.0, 0.0, "penetration", depth)
            point = self._held_point()
            ref_pos, ref_quat = self._object_in_palm(point)
            z_point, z_palm = self._point_in_world(point)[2], self.data.xpos[self.palm, 2]
            self.model.opt.gravity[:] = [0, 0, -9.81]
            self._step(cfg.settle_time)
            self._step(cfg.lift_time, rise=cfg.lift_height)
            self._step(cfg.hold_time)
        except SimDiverged:
            return TestOutcome(False, float("nan"), float("nan"), "sim_unstable")
        obj_pos, obj_quat = self._object_in_palm(point)
        disp = float(np.linalg.norm(obj_pos - ref_pos))
        rot = _quat_angle_deg(ref_quat, obj_quat)
        risen = self._point_in_world(point)[2] - z_point
        hand_risen = self.data.xpos[self.palm, 2] - z_palm
        reason = ("dropped" if risen < cfg.lift_ratio * hand_risen else "slipped" if disp > cfg.max_slip
                  else "turned" if rot > cfg.max_rotation_deg else "")
        return TestOutcome(not reason, disp, rot, reason, depth)

    def six_dir(self, pos: np.ndarray, quat: np.ndarray, joints: np.ndarray) -> TestOutcome:
        """Hand fixed; a force of ``six_dir_force`` x the weight along +-x, +-y, +-z in turn."""
        cfg = self.config
        try:
            depth = self.close(pos, quat, joints)
        except SimDiverged:
            return TestOutcome(False, float("nan"), float("nan"), "sim_unstable", dirs_passed=0)
        if depth > cfg.max_penetration:
            return TestOutcome(False, 0.0, 0.0, "penetration", depth, 0)
        state = np.empty(mujoco.mj_stateSize(self.model, mujoco.mjtState.mjSTATE_FULLPHYSICS))
        mujoco.mj_getState(self.model, self.data, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        point = self._held_point()
        ref_pos, ref_quat = self._object_in_palm(point)
        passed, worst_disp, worst_rot, unstable = 0, 0.0, 0.0, False
        for direction in DIRECTIONS:
            mujoco.mj_setState(self.model, self.data, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
            self.data.xfrc_applied[self.obj, :3] = direction * cfg.six_dir_force * self.weight
            try:
                self._step(cfg.six_dir_time, every=25)
            except SimDiverged:
                unstable = True
                continue
            finally:
                self.data.xfrc_applied[self.obj] = 0
            obj_pos, obj_quat = self._object_in_palm(point)
            disp, rot = float(np.linalg.norm(obj_pos - ref_pos)), _quat_angle_deg(ref_quat, obj_quat)
            worst_disp, worst_rot = max(worst_disp, disp), max(worst_rot, rot)
            passed += disp < cfg.max_displacement and rot < cfg.max_rotation_deg
        reason = "" if passed == 6 else ("sim_unstable" if unstable and passed == 0 else f"held_{passed}_of_6")
        return TestOutcome(passed == 6, worst_disp, worst_rot, reason, depth, passed)
