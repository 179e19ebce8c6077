import math

import numpy as np
import pytest
import torch

from dexlite_core import conventions as cv


def test_joint_table_matches_reference():
    assert cv.NUM_JOINTS == 22 and len(set(cv.JOINT_NAMES)) == 22
    assert cv.JOINT_NAMES[0] == "robot0:FFJ3" and cv.JOINT_NAMES[-1] == "robot0:THJ0"
    assert cv.JOINT_LOWER[cv.JOINT_SHORT_NAMES.index("THJ0")] == pytest.approx(-1.571)
    assert cv.JOINT_UPPER[cv.JOINT_SHORT_NAMES.index("LFJ4")] == pytest.approx(0.785)
    assert (cv.JOINT_LOWER < cv.JOINT_UPPER).all()
    assert (cv.CANONICAL_JOINTS >= cv.JOINT_LOWER - 0.21).all()  # DexGraspNet's mean sits at or near the range


def test_coupling_matches_tendon():
    j1 = torch.linspace(0, 1.3, 7)
    j0 = cv.coupled_j0(j1)
    assert torch.all((cv.COUPLING_J0_COEF * j0 - cv.COUPLING_J1_COEF * j1).abs() < 1e-6)


def test_rotation_round_trips():
    rot = cv.random_rotations(256, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(256, 3, 3), atol=1e-12)
    assert torch.allclose(cv.rot6d_to_matrix(cv.matrix_to_rot6d(rot)), rot, atol=1e-12)
    assert torch.allclose(cv.quat_to_matrix(cv.matrix_to_quat(rot)), rot, atol=1e-12)
    assert (cv.matrix_to_quat(rot)[:, 0] >= 0).all()
    assert torch.allclose(cv.euler_sxyz_to_matrix(cv.matrix_to_euler_sxyz(rot)), rot, atol=1e-12)


def test_euler_is_static_xyz():
    rx, ry, rz = 0.3, -0.7, 1.1
    def axis(k, a):
        c, s = math.cos(a), math.sin(a)
        m = np.eye(3)
        i, j = [(1, 2), (0, 2), (0, 1)][k]
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        if k == 1:
            m[i, j], m[j, i] = s, -s
        return m
    expected = axis(2, rz) @ axis(1, ry) @ axis(0, rx)
    got = cv.euler_sxyz_to_matrix(torch.tensor([rx, ry, rz], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_qpos_round_trip():
    g = torch.Generator().manual_seed(1)
    pose = cv.HandPose(torch.randn(5, 3, generator=g, dtype=torch.float64),
                       cv.random_rotations(5, g, dtype=torch.float64),
                       torch.rand(5, 22, generator=g, dtype=torch.float64))
    rows = cv.pose_to_qpos(pose)
    back = [cv.qpos_to_pose(r) for r in rows]
    for i, b in enumerate(back):
        assert torch.allclose(b.wrist_rot[0], pose.wrist_rot[i], atol=1e-12)
        assert torch.allclose(b.joints[0], pose.joints[i]) and torch.allclose(b.wrist_pos[0], pose.wrist_pos[i])


def test_pose_vector_round_trip():
    pose = cv.HandPose(torch.zeros(2, 3), cv.random_rotations(2), torch.zeros(2, 22))
    again = cv.HandPose.from_vector(pose.to_vector())
    assert torch.allclose(again.wrist_rot, pose.wrist_rot, atol=1e-6)


def test_bad_poses_are_named():
    with pytest.raises(cv.PoseError, match="22 joint angles"):
        cv.check_joints(np.zeros((3, 21)), "grasps.parquet")
    with pytest.raises(cv.PoseError, match="NaN"):
        cv.check_joints(np.full((1, 22), np.nan), "grasps.parquet")
    with pytest.raises(cv.PoseError, match=r"\(B, 22\)"):
        cv.HandPose(torch.zeros(1, 3), torch.eye(3)[None], torch.zeros(1, 21))
    with pytest.raises(cv.PoseError, match="31"):
        cv.HandPose.from_vector(torch.zeros(4, 30))
    qpos = {k: 0.0 for k in cv.DGN_QPOS_KEYS}
    del qpos["robot0:THJ0"]
    with pytest.raises(cv.PoseError, match="missing.*THJ0"):
        cv.qpos_to_pose(qpos, "obj.npy[3]")
    qpos["robot0:THJ0"] = float("nan")
    with pytest.raises(cv.PoseError, match="obj.npy.*non-finite"):
        cv.qpos_to_pose(qpos, "obj.npy[3]")
