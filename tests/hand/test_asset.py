import mujoco
import numpy as np
import pybullet as pb
import pytest
import torch

from dexlite_core.conventions import JOINT_LOWER, JOINT_NAMES, JOINT_UPPER
from dexlite_core.hand.asset import MjcfOptions, compile_hand, export_mjcf, export_urdf
from dexlite_core.sim.scene import warnings_raised


def random_joints(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(JOINT_LOWER, dtype=torch.float64), torch.tensor(JOINT_UPPER, dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(n, 22, generator=g, dtype=torch.float64)


def test_exported_mjcf_compiles_and_steps_without_warnings(tmp_path):
    path = export_mjcf(tmp_path)
    assert (tmp_path / "LICENSE.md").exists()
    model = mujoco.MjModel.from_xml_path(str(path))
    assert model.nu == 18 and model.ntendon == 4 and model.njnt == 23  # 22 fingers + the free palm
    data = mujoco.MjData(model)
    model.opt.gravity[:] = 0
    data.ctrl[:] = (model.actuator_ctrlrange[:, 0] + model.actuator_ctrlrange[:, 1]) / 2
    for _ in range(500):
        mujoco.mj_step(model, data)
    assert warnings_raised(data) == []
    assert np.isfinite(data.qpos).all()


def test_fk_matches_mujoco(hand, tmp_path):
    model = mujoco.MjModel.from_xml_path(str(export_mjcf(tmp_path, MjcfOptions(visual=True))))
    data = mujoco.MjData(model)
    q = random_joints(100)
    rot, pos = HandFK(hand)(q)
    adr = [model.jnt_qposadr[model.joint(n).id] for n in JOINT_NAMES]
    body = [model.body(n).id for n in hand.link_names]
    worst = 0.0
    for i in range(len(q)):
        data.qpos[adr] = q[i].numpy()
        mujoco.mj_kinematics(model, data)
        worst = max(worst, np.abs(data.xpos[body] - pos[i].numpy()).max())
        np.testing.assert_allclose(data.xmat[body].reshape(-1, 3, 3), rot[i].numpy(), atol=1e-5)
    assert worst < 1e-5


class HandFK:
    """FK in float64 through a double-precision copy of the hand."""

    def __init__(self, hand):
        from dexlite_core.hand.model import HandModel
        self.hand = HandModel(dtype=torch.float64)

    def __call__(self, q):
        return self.hand.forward_kinematics(q)


def test_urdf_link_frames_match_mujoco(tmp_path):
    path = export_urdf(tmp_path)
    model = compile_hand(MjcfOptions(coupling=False))
    data = mujoco.MjData(model)
    client = pb.connect(pb.DIRECT)
    try:
        robot = pb.loadURDF(str(path), useFixedBase=True, physicsClientId=client)
        joint_index = {pb.getJointInfo(robot, j, physicsClientId=client)[1].decode(): j
                       for j in range(pb.getNumJoints(robot, physicsClientId=client))}
        link_names = {j: pb.getJointInfo(robot, j, physicsClientId=client)[12].decode() for j in joint_index.values()}
        q = random_joints(10, seed=3).numpy()
        for row in q:
            for name, value in zip(JOINT_NAMES, row):
                pb.resetJointState(robot, joint_index[name], value, physicsClientId=client)
                data.qpos[model.jnt_qposadr[model.joint(name).id]] = value
            mujoco.mj_kinematics(model, data)
            for j, link in link_names.items():
                state = pb.getLinkState(robot, j, computeForwardKinematics=True, physicsClientId=client)
                np.testing.assert_allclose(state[4], data.xpos[model.body(link).id], atol=1e-6)
    finally:
        pb.disconnect(client)
