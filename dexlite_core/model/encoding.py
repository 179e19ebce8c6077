"""How grasps and objects are presented to the network, and the associated point of a grasp.

Associated point (anchor) of a grasp: of the object's network input points, the one closest to
the palm's approach ray, a ray from the centre of the palm's front face along the palm normal
(-y of the palm frame), among points in front of the palm. It is where the palm points, so it
is defined by the hand pose alone, and at inference any surface point can be one.

Network pose (31 numbers): translation relative to the anchor in decimetres, rot6d, joints
mapped to [-1, 1] by their limits.
Network points (F = 6): surface points in decimetres (scaled object) and unit normals.
"""
from __future__ import annotations

import torch
from torch import Tensor

from dexlite_core.conventions import JOINT_LOWER, JOINT_UPPER, POS_SLICE, ROT6D_SLICE, JOINT_SLICE, HandPose, couple_joints

#: Palm-frame origin and direction of the approach ray.
PALM_CENTER = (0.011, -0.0111, 0.05)
PALM_NORMAL = (0.0, -1.0, 0.0)
UNIT = 0.1  #: metres per network length unit


def _joint_range(device, dtype) -> tuple[Tensor, Tensor]:
    lo = torch.as_tensor(JOINT_LOWER, device=device, dtype=dtype)
    hi = torch.as_tensor(JOINT_UPPER, device=device, dtype=dtype)
    return (hi + lo) / 2, (hi - lo) / 2


def network_points(points: Tensor, normals: Tensor, scale: Tensor) -> Tensor:
    """Unit-frame points (B, P, 3) and normals at ``scale`` (B,) -> network input (B, P, 6)."""
    return torch.cat([points * (scale / UNIT).view(-1, 1, 1), normals], dim=-1)


def anchor_index(pose: HandPose, points: Tensor) -> Tensor:
    """Index (B,) of the point (B, P, 3, metres) closest to each palm's approach ray."""
    origin = torch.einsum("bij,j->bi", pose.wrist_rot, pose.wrist_pos.new_tensor(PALM_CENTER)) + pose.wrist_pos
    direction = torch.einsum("bij,j->bi", pose.wrist_rot, pose.wrist_pos.new_tensor(PALM_NORMAL))
    rel = points - origin.unsqueeze(1)
    along = (rel * direction.unsqueeze(1)).sum(-1)  # (B, P)
    off_ray = (rel - along.unsqueeze(-1) * direction.unsqueeze(1)).norm(dim=-1)
    return torch.where(along > 0, off_ray, off_ray + 10.0).argmin(dim=1)  # points behind the palm last


def encode_pose(pose: HandPose, anchor_point: Tensor) -> Tensor:
    """HandPose and anchor points (B, 3, metres) -> network pose (B, 31)."""
    mid, half = _joint_range(pose.joints.device, pose.joints.dtype)
    vec = pose.to_vector()
    return torch.cat([(vec[:, POS_SLICE] - anchor_point) / UNIT, vec[:, ROT6D_SLICE], (vec[:, JOINT_SLICE] - mid) / half], -1)


def decode_pose(net: Tensor, anchor_point: Tensor) -> HandPose:
    """Network pose (B, 31) -> HandPose (differentiable)."""
    mid, half = _joint_range(net.device, net.dtype)
    vec = torch.cat([net[:, POS_SLICE] * UNIT + anchor_point, net[:, ROT6D_SLICE], net[:, JOINT_SLICE] * half + mid], -1)
    return HandPose.from_vector(vec)


def decoded_pose(net: Tensor, anchor_point: Tensor, couple: bool) -> HandPose:
    """What the decoder's output (B, 31) means as a grasp: :func:`decode_pose` in float32, J0 following J1
    as the tendon makes it when ``couple``."""
    pose = decode_pose(net.float(), anchor_point)
    return HandPose(pose.wrist_pos, pose.wrist_rot, couple_joints(pose.joints)) if couple else pose
