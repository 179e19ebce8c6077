"""A DexGraspBench-like grasp test on our hand: its physics and its force-closure protocol.

DexGraspBench (BODex's MuJoCo benchmark, ``fcMocapEval`` at JYChen18/DexGraspBench main @1e7a5a6)
replays a grasp open loop on MuJoCo Menagerie's Shadow Hand and pushes the object. This test
reproduces what it sets, on our hand's collision geometry (capsules and boxes, not Menagerie's
meshes): gravity off, 4 ms implicitfast steps, elliptic cones, impratio 10, two no-slip
iterations; every geom at one sliding friction with torsional 0.02 and condim 4; stiff hand
contacts (solimp 0.5 0.99 0.0001, solref 0.005 1); finger joints with damping 0.05, armature
0.0002 and friction loss 0.01, position actuators with kp 5 and a 3 N m force limit and no
control range; each finger's J1 and J0 driven as their sum by one actuator on a fixed tendon
(Menagerie's J2 + J1 tendon), the two joints otherwise free; the palm on a free joint welded to
a mocap body (solimp 0.9 0.95 0.001 0.5 2). The object weighs 0.1 kg.

Protocol: a grasp whose pre-grasp already has a hand-object or hand-hand contact deeper than
``max_penetration`` fails. Otherwise, for each of six directions (-x, +x, -y, +y, -z, +z), fresh
from the pre-grasp: pre-grasp -> grasp in ``stage_time`` and grasp -> squeeze in another, the
targets moved linearly in ``stage_steps`` jumps; then a force of ``push_accel`` x the object's
mass pushes the object for ``push_time``, its pose checked every ``check_time``: it fails when
it has moved ``max_displacement`` or turned ``max_rotation_deg`` from where it started. It
passes when it holds in all six directions. The replay is deterministic, so it runs once and every
push starts from a copy of its final state: the same bits as six fresh replays, a quarter less time.
Pre-grasp and squeeze are each grasp's own where its table has them (:mod:`dexlite_core.squeeze`),
else the fixed :class:`PregraspSqueeze` (``sim.dgb.stages``); :func:`replay_joints` picks them, for this test
and the DexGraspBench export alike.
"""
from __future__ import annotations

import copy
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import mujoco
import numpy as np
import trimesh

from dexlite_core.conventions import (CLOSING_DIRECTION, COUPLED_FINGERS, JOINT_LOWER, JOINT_NAMES, JOINT_UPPER,
                                      PREFIX)
from dexlite_core.data.grasps import GraspTable
from dexlite_core.hand.asset import PALM_BODY, MjcfOptions, hand_mjcf
from dexlite_core.sim.grasp import MOCAP, OBJECT, SimDiverged, TestOutcome, add_object_and_mocap
from dexlite_core.sim.scene import ObjectPhysics, warnings_raised

#: The state :meth:`DgbSimulator._state` saves: stepping on from it is bit-identical to never having stopped.
_FULL_STATE = mujoco.mjtState.mjSTATE_INTEGRATION

#: DexGraspBench's push directions, in its order.
DGB_DIRECTIONS = np.array([[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]], dtype=float)


@dataclass(frozen=True)
class PregraspSqueeze:
    """How far the closing joints open for the pre-grasp and close past the grasp for the squeeze, the
    palm held still: DexGraspBench replays a grasp as pre-grasp -> grasp -> squeeze. Its kp-5 fingers
    grip with about 5 x squeeze N m, so the squeeze is set for them, not taken from our lift test, whose
    stiffer fingers (sim.grasp) need less."""

    pregrasp_open: float = 0.05  #: rad
    squeeze: float = 0.075  #: rad

    def __post_init__(self) -> None:
        if self.pregrasp_open < 0 or self.squeeze < 0:
            raise ValueError("pregrasp_open and squeeze must be >= 0")

    def joints(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pre-grasp and squeeze joints for grasp joints (..., 22), within our joint limits."""
        pre = np.clip(joints - self.pregrasp_open * CLOSING_DIRECTION, JOINT_LOWER, JOINT_UPPER)
        squeeze = np.clip(joints + self.squeeze * CLOSING_DIRECTION, JOINT_LOWER, JOINT_UPPER)
        return pre, squeeze


def replay_joints(table: GraspTable, stages: PregraspSqueeze) -> tuple[np.ndarray, np.ndarray]:
    """Pre-grasp and squeeze joints (N, 22) that replay ``table``'s grasps: each grasp's own where it has
    them, the fixed ``stages`` elsewhere (tables without them, such as the DexGraspNet release)."""
    joints = table.joints.astype(np.float64)
    pre, squeeze = stages.joints(joints)
    if table.pregrasp is not None:
        own = ~np.isnan(table.pregrasp).any(axis=1)
        pre[own], squeeze[own] = table.pregrasp[own], table.squeeze[own]
    return pre, squeeze


@dataclass(frozen=True)
class DgbTestConfig:
    """DexGraspBench's values (config/task/eval.yaml, assets/hand/shadow/right_hand.xml, src/util/hand_util.py)."""

    friction: float = 0.6  #: sliding friction of every geom (its miu_coef[0])
    torsional_friction: float = 0.02  #: its miu_coef[1]
    object_mass: float = 0.1  #: kg (its obj_mass)
    timestep: float = 0.004  #: s
    impratio: float = 10.0
    noslip_iterations: int = 2
    actuator_kp: float = 5.0  #: N m / rad
    actuator_force: float = 3.0  #: N m, every finger actuator
    joint_damping: float = 0.05
    joint_armature: float = 0.0002
    joint_frictionloss: float = 0.01
    self_collision: bool = True  #: robot.xml's finger-thumb contact pairs (its hand collides with itself)
    stage_time: float = 0.4  #: s, pre-grasp -> grasp, then grasp -> squeeze
    stage_steps: int = 10  #: control-target jumps per stage
    push_accel: float = 10.0  #: m/s^2: the push is this x the object's mass (its 10 x obj_mass N)
    push_time: float = 2.0  #: s per direction
    check_time: float = 0.2  #: s between pose checks (a failure stops the test)
    max_displacement: float = 0.05  #: m (its trans_thre)
    max_rotation_deg: float = 15.0  #: its angle_thre
    max_penetration: float = 0.01  #: m, pre-grasp contact depth that fails (its max_pene)
    #: pre-grasp and squeeze of grasps that have none of their own
    stages: PregraspSqueeze = field(default_factory=PregraspSqueeze)

    def __post_init__(self) -> None:
        if not 1e-4 <= self.timestep <= 0.01:
            raise ValueError(f"timestep must be in [1e-4, 0.01] s, got {self.timestep}")
        if not 0 < self.friction <= 10 or self.torsional_friction < 0:
            raise ValueError("friction must be in (0, 10] and torsional_friction >= 0")
        if min(self.actuator_kp, self.actuator_force, self.stage_time, self.push_time, self.check_time,
               self.object_mass) <= 0 or self.stage_steps < 1:
            raise ValueError("actuator_kp, actuator_force, stage_time, push_time, check_time and object_mass "
                             "must be > 0, stage_steps >= 1")
        if min(self.max_displacement, self.max_rotation_deg, self.max_penetration) <= 0:
            raise ValueError("max_displacement, max_rotation_deg and max_penetration must be > 0")

    @property
    def object(self) -> ObjectPhysics:
        return ObjectPhysics(mass=self.object_mass, friction=self.friction,
                             torsional_friction=self.torsional_friction, condim=4)


def _tendon_name(finger: str) -> str:
    return f"{PREFIX}dgb_T_{finger}J01"


def dgb_scene_xml(pieces: list[trimesh.Trimesh], solid: trimesh.Trimesh, scale: float, config: DgbTestConfig) -> str:
    """Our hand with DexGraspBench's physics, a mocap target and the object, as one MJCF string."""
    c = config
    hand = ET.fromstring(hand_mjcf(MjcfOptions(free_palm=True, actuators=True, coupling=False,
                                               actuator_kp=c.actuator_kp, actuator_force=c.actuator_force,
                                               self_collision=c.self_collision), model_name="dexlite_dgb_test"))
    hand.insert(1, ET.Element("option", timestep=repr(c.timestep), gravity="0 0 0", cone="elliptic",
                              impratio=repr(c.impratio), integrator="implicitfast",
                              noslip_iterations=str(c.noslip_iterations)))
    friction = f"{c.friction!r} {c.torsional_friction!r} 0.0001"
    for joint in hand.iter("joint"):  # the default class and every hinge
        if joint.get("type") != "free":
            joint.attrib.update(damping=repr(c.joint_damping), armature=repr(c.joint_armature),
                                frictionloss=repr(c.joint_frictionloss), margin="0")
    for geom in hand.iter("geom"):
        geom.attrib.update(friction=friction, condim="4", margin="0", solimp="0.5 0.99 0.0001", solref="0.005 1")
    for pair in hand.iter("pair"):  # self-contacts: the same contact model
        pair.attrib.update(condim="4", friction=f"{c.friction!r} {c.friction!r} {c.torsional_friction!r} 0.0001 0.0001",
                           solimp="0.5 0.99 0.0001", solref="0.005 1")
    # Menagerie drives each finger's J1 + J0 (its J2 + J1) as a sum through a fixed tendon.
    actuator = hand.find("actuator")
    for act in list(actuator):
        act.attrib.pop("ctrlrange", None)
        act.set("ctrllimited", "false")
        act.attrib.pop("class", None)
        if any(act.get("joint") in (f"{PREFIX}{f}J1", f"{PREFIX}{f}J0") for f in COUPLED_FINGERS):
            actuator.remove(act)
    tendon = ET.Element("tendon")
    for f in COUPLED_FINGERS:
        fixed = ET.SubElement(tendon, "fixed", name=_tendon_name(f))
        ET.SubElement(fixed, "joint", joint=f"{PREFIX}{f}J1", coef="1")
        ET.SubElement(fixed, "joint", joint=f"{PREFIX}{f}J0", coef="1")
        ET.SubElement(actuator, "position", name=f"{PREFIX}dgb_A_{f}J01", tendon=_tendon_name(f),
                      kp=repr(c.actuator_kp), ctrllimited="false", forcelimited="true",
                      forcerange=f"{-c.actuator_force!r} {c.actuator_force!r}")
    hand.insert(list(hand).index(actuator), tendon)
    return add_object_and_mocap(hand, pieces, solid, scale, c.object, solimp="0.9 0.95 0.001 0.5 2", torquescale="1")


class DgbSimulator:
    """The DexGraspBench-like test for one object at one scale (compile once, reset per grasp)."""

    def __init__(self, pieces: list[trimesh.Trimesh], solid: trimesh.Trimesh, scale: float, config: DgbTestConfig):
        self.config = config
        self.model = mujoco.MjModel.from_xml_string(dgb_scene_xml(pieces, solid, scale, config))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.obj = m.body(OBJECT).id
        self.mocap = m.body(MOCAP).mocapid[0]
        self.palm_qpos = m.jnt_qposadr[m.joint(PALM_BODY + "_free").id]
        self.obj_qpos = m.jnt_qposadr[m.joint(OBJECT + "_free").id]
        self.joint_qpos = np.array([m.jnt_qposadr[m.joint(n).id] for n in JOINT_NAMES])
        # ctrl = A @ joints: one joint per actuator, or J1 + J0 for the tendon actuators.
        self.ctrl_matrix = np.zeros((m.nu, len(JOINT_NAMES)))
        for a in range(m.nu):
            if m.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT:
                self.ctrl_matrix[a, JOINT_NAMES.index(m.joint(m.actuator_trnid[a, 0]).name)] = 1
            else:
                finger = m.tendon(m.actuator_trnid[a, 0]).name[len(PREFIX) + len("dgb_T_"):-len("J01")]
                self.ctrl_matrix[a, JOINT_NAMES.index(f"{PREFIX}{finger}J1")] = 1
                self.ctrl_matrix[a, JOINT_NAMES.index(f"{PREFIX}{finger}J0")] = 1
        self.obj_geoms = {g for g in range(m.ngeom) if m.geom_bodyid[g] == self.obj}
        self.hand_geoms = {g for g in range(m.ngeom) if m.geom_bodyid[g] not in (0, self.obj)}

    def _reset(self, pos: np.ndarray, quat: np.ndarray, joints: np.ndarray) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self.palm_qpos:self.palm_qpos + 7] = np.concatenate([pos, quat])
        d.mocap_pos[self.mocap], d.mocap_quat[self.mocap] = pos, quat
        d.qpos[self.joint_qpos] = joints
        d.qpos[self.obj_qpos:self.obj_qpos + 7] = [0, 0, 0, 1, 0, 0, 0]
        d.ctrl[:] = self.ctrl_matrix @ joints
        mujoco.mj_forward(m, d)

    def _state(self) -> np.ndarray:
        """Everything the next step depends on (time, positions, velocities, controls, forces, warm start)."""
        state = np.empty(mujoco.mj_stateSize(self.model, _FULL_STATE))
        mujoco.mj_getState(self.model, self.data, state, _FULL_STATE)
        return state

    def _restore(self, state: np.ndarray) -> None:
        mujoco.mj_setState(self.model, self.data, state, _FULL_STATE)

    def _steps(self, n: int) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)
        if warnings_raised(self.data) or not np.isfinite(self.data.qpos).all():
            raise SimDiverged

    def pregrasp_contact_depth(self) -> float:
        """Deepest hand-object or hand-hand contact at the current state, metres (0 when none)."""
        d, depth = self.data, 0.0
        for con in d.contact[: d.ncon]:
            g1, g2 = con.geom1, con.geom2
            if (g1 in self.hand_geoms or g2 in self.hand_geoms) and (g1 not in self.obj_geoms or g2 not in self.obj_geoms):
                depth = max(depth, -float(con.dist))
        return depth

    def _object_moved(self) -> tuple[float, float]:
        """Object displacement (m) and rotation (deg) from its start pose, the origin, in the world."""
        q = self.data.qpos[self.obj_qpos:self.obj_qpos + 7]
        return float(np.linalg.norm(q[:3])), math.degrees(2 * math.acos(min(1.0, abs(float(q[3]) / np.linalg.norm(q[3:])))))

    def dgb(self, pos: np.ndarray, quat: np.ndarray, joints: np.ndarray, pre: np.ndarray,
            squeeze: np.ndarray) -> TestOutcome:
        """Replay pre-grasp -> grasp (``joints``) -> squeeze, then push (the module docstring)."""
        c = self.config
        self._reset(pos, quat, pre)
        depth = self.pregrasp_contact_depth()
        if depth > c.max_penetration:
            return TestOutcome(False, 0.0, 0.0, "penetration", depth, 0)
        per_target = max(1, round(c.stage_time / c.stage_steps / c.timestep))
        per_check = max(1, round(c.check_time / c.timestep))
        checks = max(1, round(c.push_time / c.check_time))
        push = c.push_accel * c.object_mass
        try:  # the replay is the same for every direction: run it once, push from a copy of its end state
            for start, end in ((pre, joints), (joints, squeeze)):
                for k in range(1, c.stage_steps + 1):
                    self.data.ctrl[:] = self.ctrl_matrix @ (start + (end - start) * k / c.stage_steps)
                    self._steps(per_target)
        except SimDiverged:
            return TestOutcome(False, 0.0, 0.0, "sim_unstable", depth, 0)
        squeezed = self._state()
        passed, worst_disp, worst_rot, reason = 0, 0.0, 0.0, ""
        for direction in DGB_DIRECTIONS:
            self._restore(squeezed)
            held = True
            try:
                self.data.xfrc_applied[self.obj, :3] = direction * push
                for _ in range(checks):
                    self._steps(per_check)
                    disp, rot = self._object_moved()
                    worst_disp, worst_rot = max(worst_disp, disp), max(worst_rot, rot)
                    if disp >= c.max_displacement or rot >= c.max_rotation_deg:
                        held = False
                        break
            except SimDiverged:
                held, reason = False, "sim_unstable"
            if not held:
                break  # as DexGraspBench: the first direction that fails ends the test
            passed += 1
        reason = "" if passed == 6 else reason or f"held_{passed}_of_6"
        return TestOutcome(passed == 6, worst_disp, worst_rot, reason, depth, passed)
