"""Joint names, limits, pose layouts and rotation conventions: the one place these live.

Frames
    The hand's root is the palm body ``robot0:palm`` of OpenAI's Shadow Hand. A grasp's
    palm pose (``wrist_pos``, ``wrist_rot``) maps palm-frame points into the *scaled*
    object frame (metres): ``x_obj = R @ x_palm + t``. Objects are normalized the
    DexGraspNet way (see ``dexlite_core.objects.mesh``) and then multiplied by ``scale``.

Rotations
    - matrix: (..., 3, 3), acting on column vectors.
    - quaternion: (w, x, y, z), unit norm, w >= 0 when written to tables.
    - rot6d: the first two *columns* of the matrix, concatenated (..., 6) (Zhou et al. 2019;
      DexGraspNet's layout).
    - DexGraspNet Euler: static-xyz angles (rx, ry, rz), R = Rz @ Ry @ Rx.

Pose vector (optimizers and the network)
    ``[t (3), rot6d (6), joints (22)]`` = 31 numbers, see ``POSE_DIM`` and the slices.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

PREFIX = "robot0:"

#: The 22 finger joints in DexGraspNet order (without the ``robot0:`` prefix).
JOINT_SHORT_NAMES: tuple[str, ...] = (
    "FFJ3", "FFJ2", "FFJ1", "FFJ0",
    "MFJ3", "MFJ2", "MFJ1", "MFJ0",
    "RFJ3", "RFJ2", "RFJ1", "RFJ0",
    "LFJ4", "LFJ3", "LFJ2", "LFJ1", "LFJ0",
    "THJ4", "THJ3", "THJ2", "THJ1", "THJ0",
)
JOINT_NAMES: tuple[str, ...] = tuple(PREFIX + n for n in JOINT_SHORT_NAMES)
NUM_JOINTS = len(JOINT_NAMES)

_RANGES = {
    "J3": (-0.349, 0.349), "J2": (0.0, 1.571), "J1": (0.0, 1.571), "J0": (0.0, 1.571),
    "LFJ4": (0.0, 0.785),
    "THJ4": (-1.047, 1.047), "THJ3": (0.0, 1.222), "THJ2": (-0.209, 0.209),
    "THJ1": (-0.524, 0.524), "THJ0": (-1.571, 0.0),
}


def _range(short: str) -> tuple[float, float]:
    return _RANGES[short] if short in _RANGES else _RANGES[short[-2:]]


#: Joint limits in radians, (22,) each, DexGraspNet order.
JOINT_LOWER = np.array([_range(n)[0] for n in JOINT_SHORT_NAMES], dtype=np.float32)
JOINT_UPPER = np.array([_range(n)[1] for n in JOINT_SHORT_NAMES], dtype=np.float32)

#: Fingers whose distal joint J0 follows the middle joint J1 through a tendon.
COUPLED_FINGERS: tuple[str, ...] = ("FF", "MF", "RF", "LF")
#: The tendon keeps ``J0_COEF * J0 - J1_COEF * J1`` within +-COUPLING_TOLERANCE.
COUPLING_J0_COEF = 0.00705
COUPLING_J1_COEF = 0.00805
COUPLING_TOLERANCE = 0.001
#: Indices (J1, J0) of each coupled finger in the joint vector.
COUPLED_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (JOINT_SHORT_NAMES.index(f + "J1"), JOINT_SHORT_NAMES.index(f + "J0")) for f in COUPLED_FINGERS
)


def coupled_j0(j1: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """The distal angle the tendon implies for middle angle ``j1`` (clipped to its range)."""
    ratio = COUPLING_J1_COEF / COUPLING_J0_COEF
    lo, hi = _RANGES["J0"]
    return (j1 * ratio).clip(lo, hi)


def couple_joints(joints: Tensor) -> Tensor:
    """Joints with each coupled finger's J0 set from its J1, as the tendon does (differentiable)."""
    out = joints.clone()
    for j1, j0 in COUPLED_PAIRS:
        out[:, j0] = coupled_j0(joints[:, j1])
    return out


def _closing_sign(short: str) -> float:
    """Fingers flex J2, J1, J0 positively; the thumb opposes with THJ3 and flexes its middle
    and distal joints negatively (towards its pad, -x of the thumb links)."""
    if short.startswith("TH"):
        return {"THJ3": 1.0, "THJ1": -1.0, "THJ0": -1.0}.get(short, 0.0)
    return 1.0 if short[-2:] in ("J2", "J1", "J0") else 0.0


#: Sign with which each joint closes the hand around an object (0: it does not).
CLOSING_DIRECTION = np.array([_closing_sign(n) for n in JOINT_SHORT_NAMES], dtype=np.float32)

# Canonical half-closed hand used to initialize optimization (DexGraspNet's mean pose).
CANONICAL_JOINTS = np.array(
    [0.1, 0, 0.6, 0, 0, 0, 0.6, 0, -0.1, 0, 0.6, 0, 0, -0.2, 0, 0.6, 0, 0, 1.2, 0, -0.2, 0],
    dtype=np.float32,
)

# Flat pose vector layout.
POSE_DIM = 3 + 6 + NUM_JOINTS
POS_SLICE = slice(0, 3)
ROT6D_SLICE = slice(3, 9)
JOINT_SLICE = slice(9, POSE_DIM)

# DexGraspNet qpos keys for the palm pose.
DGN_ROT_KEYS = ("WRJRx", "WRJRy", "WRJRz")
DGN_TRANS_KEYS = ("WRJTx", "WRJTy", "WRJTz")
DGN_QPOS_KEYS = JOINT_NAMES + DGN_ROT_KEYS + DGN_TRANS_KEYS

HAND_MODEL_NAME = "shadowhand-gymnasium-robotics-palm"


class PoseError(ValueError):
    """A pose that does not fit the conventions (wrong joint count, NaN, bad rotation)."""


@dataclass(frozen=True)
class HandPose:
    """A batch of grasps: palm pose in the scaled object frame plus finger joints."""

    wrist_pos: Tensor  #: (B, 3) metres, object frame
    wrist_rot: Tensor  #: (B, 3, 3) palm-to-object rotation
    joints: Tensor  #: (B, 22) radians, JOINT_NAMES order

    def __post_init__(self) -> None:
        b = self.joints.shape[0]
        if self.joints.shape != (b, NUM_JOINTS):
            raise PoseError(f"joints must have shape (B, {NUM_JOINTS}), got {tuple(self.joints.shape)}")
        if self.wrist_pos.shape != (b, 3) or self.wrist_rot.shape != (b, 3, 3):
            raise PoseError(
                f"wrist_pos/wrist_rot must be (B, 3)/(B, 3, 3) with B={b}, got "
                f"{tuple(self.wrist_pos.shape)}/{tuple(self.wrist_rot.shape)}"
            )

    def __len__(self) -> int:
        return self.joints.shape[0]

    @staticmethod
    def from_vector(pose: Tensor) -> "HandPose":
        """From the flat ``(B, 31)`` layout [t, rot6d, joints]."""
        check_pose_vector(pose)
        return HandPose(pose[:, POS_SLICE], rot6d_to_matrix(pose[:, ROT6D_SLICE]), pose[:, JOINT_SLICE])

    def to_vector(self) -> Tensor:
        """To the flat ``(B, 31)`` layout [t, rot6d, joints]."""
        return torch.cat([self.wrist_pos, matrix_to_rot6d(self.wrist_rot), self.joints], dim=-1)

    @staticmethod
    def concat(poses: "list[HandPose]") -> "HandPose":
        return HandPose(*(torch.cat([getattr(p, f) for p in poses]) for f in ("wrist_pos", "wrist_rot", "joints")))

    def index(self, idx) -> "HandPose":
        return HandPose(self.wrist_pos[idx], self.wrist_rot[idx], self.joints[idx])

    def to(self, device=None, dtype=None) -> "HandPose":
        return HandPose(*(x.to(device=device, dtype=dtype) for x in (self.wrist_pos, self.wrist_rot, self.joints)))


def check_pose_vector(pose: Tensor) -> None:
    if pose.ndim != 2 or pose.shape[1] != POSE_DIM:
        raise PoseError(
            f"pose vector must have shape (B, {POSE_DIM}) = [t(3), rot6d(6), {NUM_JOINTS} joints], "
            f"got {tuple(pose.shape)}"
        )


# ---------------------------------------------------------------------------------------
# Rotation conversions (torch, batched over leading dims, differentiable)
# ---------------------------------------------------------------------------------------

def rot6d_to_matrix(r6: Tensor) -> Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two stored columns."""
    a1, a2 = r6[..., 0:3], r6[..., 3:6]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(m: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)


def quat_to_matrix(q: Tensor) -> Tensor:
    """(..., 4) wxyz (normalized here) -> (..., 3, 3)."""
    q = torch.nn.functional.normalize(q, dim=-1)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 4) wxyz with w >= 0 (Shepperd's method, numerically robust)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    candidates = torch.stack([
        torch.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22, m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 - m00 - m11 + m22], -1),
    ], dim=-2)  # (..., 4, 4): row k is 4 * q * q[k]
    diag = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = diag.argmax(-1, keepdim=True)
    row = torch.gather(candidates, -2, best.unsqueeze(-1).expand(best.shape[:-1] + (1, 4))).squeeze(-2)
    q = torch.nn.functional.normalize(row, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def euler_sxyz_to_matrix(angles: Tensor) -> Tensor:
    """(..., 3) static-xyz angles (rx, ry, rz) -> R = Rz @ Ry @ Rx (DexGraspNet's WRJR*)."""
    cx, cy, cz = torch.cos(angles).unbind(-1)
    sx, sy, sz = torch.sin(angles).unbind(-1)
    return torch.stack([
        cy * cz, sx * sy * cz - cx * sz, cx * sy * cz + sx * sz,
        cy * sz, sx * sy * sz + cx * cz, cx * sy * sz - sx * cz,
        -sy, sx * cy, cx * cy,
    ], dim=-1).reshape(angles.shape[:-1] + (3, 3))


def matrix_to_euler_sxyz(m: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 3) static-xyz angles; inverse of :func:`euler_sxyz_to_matrix`.

    Away from gimbal lock (|ry| = pi/2) the round trip is exact; at it, rx is set to 0.
    """
    cy = torch.sqrt(m[..., 0, 0] ** 2 + m[..., 1, 0] ** 2)
    regular = cy > 1e-6
    rx = torch.where(regular, torch.atan2(m[..., 2, 1], m[..., 2, 2]), torch.zeros_like(cy))
    ry = torch.atan2(-m[..., 2, 0], cy)
    rz = torch.where(regular, torch.atan2(m[..., 1, 0], m[..., 0, 0]), torch.atan2(-m[..., 0, 1], m[..., 1, 1]))
    return torch.stack([rx, ry, rz], dim=-1)


def random_rotations(n: int, generator: torch.Generator | None = None, dtype=torch.float32) -> Tensor:
    """(n, 3, 3) rotations uniform on SO(3) (normalized Gaussian quaternions)."""
    q = torch.randn(n, 4, generator=generator, dtype=dtype)
    return quat_to_matrix(q)


# ---------------------------------------------------------------------------------------
# DexGraspNet qpos dicts
# ---------------------------------------------------------------------------------------

def qpos_to_pose(qpos: Mapping[str, float], source: str = "qpos") -> HandPose:
    """One DexGraspNet ``qpos`` dict -> a HandPose of batch 1 (float64).

    Raises PoseError naming ``source`` for missing or unknown keys and non-finite values.
    """
    keys = set(qpos)
    missing = [k for k in DGN_QPOS_KEYS if k not in keys]
    unknown = sorted(keys - set(DGN_QPOS_KEYS))
    if missing or unknown:
        raise PoseError(
            f"{source}: qpos must hold the {NUM_JOINTS} Shadow Hand joints plus WRJR*/WRJT*; "
            f"missing {missing[:4]}{'...' if len(missing) > 4 else ''}, unknown {unknown[:4]}"
        )
    values = np.array([float(qpos[k]) for k in DGN_QPOS_KEYS], dtype=np.float64)
    if not np.isfinite(values).all():
        bad = [k for k, v in zip(DGN_QPOS_KEYS, values) if not math.isfinite(v)]
        raise PoseError(f"{source}: non-finite qpos values for {bad}")
    t = torch.from_numpy(values[-3:]).unsqueeze(0)
    rot = euler_sxyz_to_matrix(torch.from_numpy(values[NUM_JOINTS:NUM_JOINTS + 3])).unsqueeze(0)
    return HandPose(t, rot, torch.from_numpy(values[:NUM_JOINTS]).unsqueeze(0))


def pose_to_qpos(pose: HandPose) -> list[dict[str, float]]:
    """A HandPose batch -> DexGraspNet ``qpos`` dicts (plain Python floats)."""
    euler = matrix_to_euler_sxyz(pose.wrist_rot.double()).cpu().numpy()
    t = pose.wrist_pos.double().cpu().numpy()
    joints = pose.joints.double().cpu().numpy()
    rows = []
    for i in range(len(pose)):
        values = list(joints[i]) + list(euler[i]) + list(t[i])
        rows.append({k: float(v) for k, v in zip(DGN_QPOS_KEYS, values)})
    return rows


def check_joints(joints: np.ndarray | Tensor, source: str) -> None:
    """Raise PoseError naming ``source`` unless ``joints`` is a finite (B, 22) array."""
    shape = tuple(joints.shape)
    if len(shape) != 2 or shape[1] != NUM_JOINTS:
        raise PoseError(
            f"{source}: expected {NUM_JOINTS} joint angles per grasp in the order "
            f"{', '.join(JOINT_SHORT_NAMES)}; got shape {shape}"
        )
    finite = torch.isfinite(joints).all() if isinstance(joints, Tensor) else np.isfinite(joints).all()
    if not finite:
        raise PoseError(f"{source}: joint angles contain NaN or inf")


def resolve_device(device: str | torch.device) -> torch.device:
    """``'auto'`` means CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
