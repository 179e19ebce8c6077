"""Batched, differentiable Shadow Hand: kinematics, contact candidates, keypoints, signed distance.

Everything is batched over grasps B and runs on the model's device. Geometry comes from the
collision primitives of the compiled MJCF (15 capsules, 3 boxes), so the simulators and the
energies see the same hand.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import mujoco
import numpy as np
import pytorch_kinematics as pk
import torch
from torch import Tensor

from dexlite_core.conventions import JOINT_NAMES, PREFIX, HandPose
from dexlite_core.hand.asset import MjcfOptions, compile_hand, hand_mjcf

#: Links that carry contact candidates: the 14 phalanges.
CONTACT_LINKS: tuple[str, ...] = tuple(
    PREFIX + f + part for f in ("ff", "mf", "rf", "lf") for part in ("proximal", "middle", "distal")
) + (PREFIX + "thmiddle", PREFIX + "thdistal")
FINGERTIP_LINKS: tuple[str, ...] = tuple(PREFIX + f + "distal" for f in ("ff", "mf", "rf", "lf", "th"))

# Palmar side of each phalanx in its own frame: fingers flex towards -y, the thumb towards -x.
_FINGER_PALMAR = (0.0, -1.0, 0.0)
_THUMB_PALMAR = (-1.0, 0.0, 0.0)

# Self-penetration keypoints: (link, fractions along the capsule axis from base to tip).
_KEYPOINT_LAYOUT = tuple(
    (PREFIX + f + part, fr)
    for f in ("ff", "mf", "rf", "lf")
    for part, fr in (("proximal", (0.25, 0.75)), ("middle", (0.5,)), ("distal", (0.5,)))
) + ((PREFIX + "thproximal", (0.5,)), (PREFIX + "thmiddle", (0.5,)), (PREFIX + "thdistal", (0.5,)))
#: Two keypoints closer than this penetrate each other (REFERENCE.md, E_spen).
SELF_PENETRATION_DISTANCE = 0.02


@dataclass(frozen=True)
class LinkFrames:
    """Poses of every hand link in the object frame."""

    rot: Tensor  #: (B, L, 3, 3)
    pos: Tensor  #: (B, L, 3) metres

    def apply(self, link: Tensor, local: Tensor) -> Tensor:
        """Points given in link frames -> object frame.

        link: (N,) or (B, N) link indices; local: (N, 3) or (B, N, 3) link-frame points.
        Returns (B, N, 3).
        """
        b = self.rot.shape[0]
        if link.ndim == 1:
            rot, pos = self.rot[:, link], self.pos[:, link]
            return torch.einsum("bnij,nj->bni", rot, local) + pos
        rows = torch.arange(b, device=link.device).unsqueeze(1)
        rot, pos = self.rot[rows, link], self.pos[rows, link]
        return torch.einsum("bnij,bnj->bni", rot, local) + pos


@dataclass(frozen=True)
class Primitives:
    """Collision primitives in their link frames (capsules along local z, boxes)."""

    link: Tensor  #: (G,) link index
    rot: Tensor  #: (G, 3, 3) primitive frame in link frame
    pos: Tensor  #: (G, 3)
    is_capsule: Tensor  #: (G,) bool
    size: Tensor  #: (G, 3) capsule (radius, half length, 0) or box half extents
    bound: Tensor  #: (G,) radius of a sphere about ``pos`` containing the primitive


def _patch_pk_joint_types() -> None:
    """pytorch_kinematics 0.10 keys its joint-type map by mujoco enums, but MuJoCo >= 3 returns
    numpy ints, which never compare equal to those enums: re-key the map by plain ints so
    ``build_chain_from_mjcf`` works (idempotent)."""
    pk.mjcf.JOINT_TYPE_MAP = {int(key): value for key, value in pk.mjcf.JOINT_TYPE_MAP.items()}


@functools.cache
def _compiled() -> mujoco.MjModel:
    return compile_hand(MjcfOptions(coupling=False))


class HandModel:
    """The Shadow Hand as batched torch geometry.

    ``n_contact_per_link`` candidates are laid on the palmar half of each phalanx capsule
    (and its tip cap for the distal links).
    """

    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 contacts_along: int = 4, contacts_around: int = 3):
        _patch_pk_joint_types()
        self.device, self.dtype = torch.device(device), dtype
        model = _compiled()
        self.link_names: tuple[str, ...] = tuple(
            mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in range(1, model.nbody)
        )
        self.chain = pk.build_chain_from_mjcf(hand_mjcf(MjcfOptions(coupling=False)), body=PREFIX + "palm")
        self.chain = self.chain.to(dtype=dtype, device=self.device)
        pk_joints = self.chain.get_joint_parameter_names()
        self._joint_perm = torch.tensor([JOINT_NAMES.index(n) for n in pk_joints], device=self.device)
        self._frame_idx = self.chain.get_frame_indices(*self.link_names).to(self.device)
        self.primitives = self._primitives(model)
        self.contact_link, self.contact_local, self.contact_normal_local = self._contact_candidates(
            contacts_along, contacts_around)
        self.keypoint_link, self.keypoint_local, self.keypoint_pairs = self._keypoints()  # pairs: (K, K) 0/1 mask

    # -- construction -------------------------------------------------------------------

    def _tensor(self, x) -> Tensor:
        return torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device)

    def link_index(self, name: str) -> int:
        return self.link_names.index(name)

    def _primitives(self, model: mujoco.MjModel) -> Primitives:
        link, rot, pos, cap, size, bound = [], [], [], [], [], []
        for g in range(model.ngeom):
            if model.geom_contype[g] == 0 and model.geom_conaffinity[g] == 0:
                continue
            mat = np.zeros(9)
            mujoco.mju_quat2Mat(mat, model.geom_quat[g])
            is_cap = model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE
            s = model.geom_size[g]
            link.append(model.geom_bodyid[g] - 1)
            rot.append(mat.reshape(3, 3))
            pos.append(model.geom_pos[g])
            cap.append(is_cap)
            size.append([s[0], s[1], 0.0] if is_cap else s)
            bound.append(s[0] + s[1] if is_cap else np.linalg.norm(s))
        return Primitives(
            link=torch.tensor(link, device=self.device), rot=self._tensor(rot), pos=self._tensor(pos),
            is_capsule=torch.tensor(cap, device=self.device), size=self._tensor(size), bound=self._tensor(bound),
        )

    def _capsule_of(self, link_name: str) -> int:
        link = self.link_index(link_name)
        return next(g for g in range(len(self.primitives.link))
                    if self.primitives.link[g] == link and self.primitives.is_capsule[g])

    def _contact_candidates(self, along: int, around: int) -> tuple[Tensor, Tensor, Tensor]:
        """Points on the palmar half of each phalanx capsule, with outward normals."""
        links, points, normals = [], [], []
        angles = np.linspace(-np.pi / 4, np.pi / 4, around)
        for name in CONTACT_LINKS:
            g = self._capsule_of(name)
            radius, half = self.primitives.size[g, :2].tolist()
            grot, gpos = self.primitives.rot[g].cpu().numpy(), self.primitives.pos[g].cpu().numpy()
            palmar = np.array(_THUMB_PALMAR if name.startswith(PREFIX + "th") else _FINGER_PALMAR)
            side = np.cross(palmar, [0.0, 0.0, 1.0])
            local = []
            for z in np.linspace(-half, half, along + 2)[1:-1]:  # along the cylinder, ends excluded
                for a in angles:
                    n = np.cos(a) * palmar + np.sin(a) * side
                    local.append((np.array([0, 0, z]) + radius * n, n))
            if name in FINGERTIP_LINKS:  # the pad where the cap begins and the tip itself
                for elev in (np.pi / 4, np.pi / 2):
                    n = np.cos(elev) * palmar + np.sin(elev) * np.array([0, 0, 1.0])
                    local.append((np.array([0, 0, half]) + radius * n, n))
            for p, n in local:
                # capsule frame -> link frame (geom axes in the MJCF are aligned with the link)
                links.append(self.link_index(name))
                points.append(grot @ p + gpos)
                normals.append(grot @ n)
        return torch.tensor(links, device=self.device), self._tensor(points), self._tensor(normals)

    def _keypoints(self) -> tuple[Tensor, Tensor, Tensor]:
        links, points = [], []
        for name, fractions in _KEYPOINT_LAYOUT:
            g = self._capsule_of(name)
            half = float(self.primitives.size[g, 1])
            grot, gpos = self.primitives.rot[g].cpu().numpy(), self.primitives.pos[g].cpu().numpy()
            for fr in fractions:
                links.append(self.link_index(name))
                points.append(grot @ np.array([0, 0, -half + 2 * half * fr]) + gpos)
        link = torch.tensor(links, device=self.device)
        # Pairs on the same or on parent/child links touch by construction: exclude them.
        parent = self._parents()
        same = link[:, None] == link[None, :]
        adjacent = (parent[link][:, None] == link[None, :]) | (parent[link][None, :] == link[:, None])
        pairs = ~(same | adjacent)
        pairs = torch.triu(pairs, diagonal=1)
        return link, self._tensor(points), pairs.to(self.dtype)

    def _parents(self) -> Tensor:
        model = _compiled()
        return torch.tensor([max(int(model.body_parentid[b]) - 1, -1) for b in range(1, model.nbody)],
                            device=self.device)

    # -- kinematics ---------------------------------------------------------------------

    def forward_kinematics(self, joints: Tensor) -> tuple[Tensor, Tensor]:
        """Link poses in the palm frame: joints (B, 22) -> rot (B, L, 3, 3), pos (B, L, 3)."""
        th = joints[:, self._joint_perm]
        mats = self.chain.forward_kinematics_tensor(th)[self._frame_idx]  # (L, B, 4, 4)
        mats = mats.transpose(0, 1)
        return mats[..., :3, :3], mats[..., :3, 3]

    def link_frames(self, pose: HandPose) -> LinkFrames:
        """Link poses in the object frame."""
        rot, pos = self.forward_kinematics(pose.joints)
        wrist = pose.wrist_rot.unsqueeze(1)
        return LinkFrames(rot=wrist @ rot, pos=torch.einsum("bij,blj->bli", pose.wrist_rot, pos) + pose.wrist_pos.unsqueeze(1))

    # -- points on the hand -------------------------------------------------------------

    @property
    def n_contact_candidates(self) -> int:
        return self.contact_link.shape[0]

    def contact_points(self, frames: LinkFrames, index: Tensor) -> tuple[Tensor, Tensor]:
        """Selected contact candidates: index (B, K) -> points (B, K, 3) and outward normals."""
        link = self.contact_link[index]
        points = frames.apply(link, self.contact_local[index])
        rows = torch.arange(index.shape[0], device=index.device).unsqueeze(1)
        normals = torch.einsum("bkij,bkj->bki", frames.rot[rows, link], self.contact_normal_local[index])
        return points, normals

    def all_contact_candidates(self, frames: LinkFrames) -> Tensor:
        """(B, N_candidates, 3)."""
        return frames.apply(self.contact_link, self.contact_local)

    def keypoints(self, frames: LinkFrames) -> Tensor:
        """(B, 19, 3) self-penetration keypoints."""
        return frames.apply(self.keypoint_link, self.keypoint_local)

    def primitive_frames(self, frames: LinkFrames) -> tuple[Tensor, Tensor]:
        """Every collision primitive's frame in the object frame: (B, G, 3, 3), (B, G, 3)."""
        p = self.primitives
        return frames.rot[:, p.link] @ p.rot, frames.apply(p.link, p.pos)

    # -- signed distance ----------------------------------------------------------------

    def primitive_depth(self, rot: Tensor, pos: Tensor, prim: Tensor, points: Tensor) -> Tensor:
        """Penetration depth (positive inside) of points into primitives.

        rot (N, 3, 3), pos (N, 3): primitive frames in the object frame; prim (N,) primitive
        indices; points (N, S, 3). Returns (N, S).
        """
        is_capsule = self.primitives.is_capsule[prim]
        size = self.primitives.size[prim]
        offset = points - pos.unsqueeze(1)
        depth = points.new_empty(points.shape[:2])
        cap, box = is_capsule.nonzero().squeeze(1), (~is_capsule).nonzero().squeeze(1)
        depth = depth.index_put((cap,), _capsule_depth(offset[cap], rot[cap, :, 2], size[cap, 0], size[cap, 1]))
        return depth.index_put((box,), _box_depth(offset[box], rot[box], size[box]))

    def signed_distance(self, frames: LinkFrames, points: Tensor) -> Tensor:
        """Dense hand signed distance, positive inside: points (B, P, 3) -> (B, P).

        Evaluates every primitive: use :meth:`penetration` for large point sets.
        """
        rot, pos = self.primitive_frames(frames)
        b, g = rot.shape[:2]
        prim = torch.arange(g, device=self.device).repeat(b)
        pts = points.unsqueeze(1).expand(b, g, *points.shape[1:]).reshape(b * g, -1, 3)
        depth = self.primitive_depth(rot.reshape(-1, 3, 3), pos.reshape(-1, 3), prim, pts)
        return depth.reshape(b, g, -1).max(dim=1).values

    def penetration(self, frames: LinkFrames, points: Tensor, centers: Tensor, radii: Tensor,
                    obj: Tensor, scale: Tensor, reduce: str = "sum") -> Tensor:
        """Object surface points' depth inside the hand, exact but sparse: per grasp the sum
        (``reduce="sum"``, E_pen) or the largest (``"max"``) of max(0, d_hand(p)). (B,)

        points (O, C, S, 3): each object's normalized surface points in C spatially compact
        chunks of S, bounded by spheres centers (O, C, 3), radii (O, C). obj, scale (B,): the
        grasps' objects and scales. Chunks are culled against each primitive by bounding
        spheres, then exactly; the survivors' points are tested without autograd, and only the
        points found inside the hand are evaluated again with gradients. Every other point has
        depth 0 exactly, so the result equals the dense computation.
        """
        rot, pos = self.primitive_frames(frames)
        b, g = rot.shape[:2]
        n_obj, c, s, _ = points.shape
        frame_rows = torch.cat([rot.reshape(b * g, 9), pos.reshape(b * g, 3)], dim=-1)  # (B*G, 12)
        with torch.no_grad():
            pair, chunk = self._near_chunks(frame_rows.detach(), g, centers, radii, obj, scale)
            grasp = pair // g
            pts = points.reshape(n_obj * c, s * 3).index_select(0, obj[grasp] * c + chunk).view(-1, s, 3)
            inside = self._contains(frame_rows.index_select(0, pair), pair % g, scale[grasp], pts)
            hit, col = inside.nonzero(as_tuple=True)
            pair, point = pair[hit], chunk[hit] * s + col
            grasp = pair // g
            # A point inside several primitives counts once, at its largest depth.
            unique_points, slot = torch.unique(grasp * (c * s) + point, return_inverse=True)
        pts = points.reshape(-1, 3).index_select(0, obj[grasp] * (c * s) + point) * scale[grasp].unsqueeze(-1)
        depth = self._depth_rows(frame_rows.index_select(0, pair), pair % g, pts.unsqueeze(1)).squeeze(1).clamp(min=0)
        per_point = depth.new_zeros(len(unique_points)).scatter_reduce(0, slot, depth, reduce="amax")
        owner = unique_points // (c * s)
        if reduce == "max":
            return per_point.new_zeros(b).scatter_reduce(0, owner, per_point, reduce="amax")
        return per_point.new_zeros(b).index_add(0, owner, per_point)

    def _near_chunks(self, frame_rows: Tensor, g: int, centers: Tensor, radii: Tensor, obj: Tensor,
                     scale: Tensor) -> tuple[Tensor, Tensor]:
        """(grasp * G + primitive, chunk) pairs whose chunk sphere meets the primitive.

        Works in the normalized object frame, where the chunks are stored."""
        b = len(obj)
        pos = frame_rows[:, 9:].view(b, g, 3) / scale.view(-1, 1, 1)
        bound = self.primitives.bound.view(1, -1, 1) / scale.view(-1, 1, 1)  # (B, G, 1)
        grasp_centers, grasp_radii = centers[obj], radii[obj]  # (B, C, 3), (B, C)
        # Spheres meet iff |p - c|^2 <= (bound + r)^2, i.e. with a = [p, bound], a' = [2c, 2r]:
        # a . a' + (r^2 - |c|^2) + (bound^2 - |p|^2) >= 0. One baddbmm does all (B, G, C) pairs.
        a = torch.cat([pos, bound], dim=-1)
        a_chunk = 2 * torch.cat([grasp_centers, grasp_radii.unsqueeze(-1)], dim=-1).transpose(1, 2)
        chunk_term = (grasp_radii * grasp_radii - (grasp_centers * grasp_centers).sum(-1)).unsqueeze(1)
        margin = torch.baddbmm(chunk_term, a, a_chunk).add_(bound * bound - (pos * pos).sum(-1, keepdim=True))
        grasp, prim, chunk = (margin >= 0).nonzero(as_tuple=True)
        pair = grasp * g + prim
        # Exact: does the chunk's sphere reach into the primitive?
        meets = self._contains(frame_rows.index_select(0, pair), prim, scale[grasp],
                               grasp_centers[grasp, chunk].unsqueeze(1), inflate=grasp_radii[grasp, chunk])
        return pair[meets[:, 0]], chunk[meets[:, 0]]

    def _contains(self, frame_rows: Tensor, prim: Tensor, scale: Tensor, points: Tensor,
                  inflate: Tensor | None = None) -> Tensor:
        """Whether normalized object points (N, S, 3) at ``scale`` (N,) lie strictly inside the
        primitives (frames as rows [rot, pos] in metres, (N, 12)), each grown by ``inflate``
        (N,) normalized units (boxes grow per axis, a superset). Squared distances, no sqrt:
        cheaper than :meth:`primitive_depth` for culling. Returns (N, S) bool."""
        k = scale.unsqueeze(-1)
        offset = points - (frame_rows[:, 9:] / k).unsqueeze(1)
        size = self.primitives.size[prim] / k
        grow = torch.zeros_like(k) if inflate is None else inflate.unsqueeze(-1)
        rot = frame_rows[:, :9].view(-1, 3, 3)
        # Capsule test on every row (nearly all rows are capsules), boxes overwrite their rows.
        z = torch.linalg.vecdot(offset, rot[:, :, 2].unsqueeze(1))
        dz = (z.abs() - size[:, 1:2]).clamp(min=0)
        reach = size[:, 0:1] + grow
        inside = torch.linalg.vector_norm(offset, dim=-1).square() - z * z + dz * dz < reach * reach
        box = (~self.primitives.is_capsule[prim]).nonzero().squeeze(1)
        if len(box):
            local = torch.bmm(offset[box], rot[box]).abs()
            inside[box] = (local < (size[box] + grow[box]).unsqueeze(1)).all(-1)
        return inside

    def _depth_rows(self, frame_rows: Tensor, prim: Tensor, points: Tensor) -> Tensor:
        """:meth:`primitive_depth` with frames packed as rows [rot (9), pos (3)]: (N, 12)."""
        return self.primitive_depth(frame_rows[:, :9].reshape(-1, 3, 3), frame_rows[:, 9:], prim, points)

    def self_penetration(self, frames: LinkFrames) -> Tensor:
        """E_spen per grasp: sum over keypoint pairs of max(0, 0.02 - |k_i - k_j|). (B,)"""
        k = self.keypoints(frames)
        dist = torch.cdist(k, k)  # (B, K, K)
        return ((SELF_PENETRATION_DISTANCE - dist).clamp(min=0) * self.keypoint_pairs).sum((1, 2))


def _capsule_depth(offset: Tensor, axis: Tensor, radius: Tensor, half: Tensor) -> Tensor:
    """Radius minus distance to the axis segment. offset (N, S, 3) from the capsule centre,
    axis (N, 3) unit, radius and half length (N,). Returns (N, S)."""
    z = (offset * axis.unsqueeze(1)).sum(-1)
    h = half.unsqueeze(1)
    dz = z - torch.minimum(torch.maximum(z, -h), h)
    radial_sq = ((offset * offset).sum(-1) - z * z).clamp(min=0)
    return radius.unsqueeze(1) - torch.sqrt(radial_sq + dz * dz + 1e-12)


def _box_depth(offset: Tensor, rot: Tensor, half: Tensor) -> Tensor:
    """Minus the box signed distance. offset (N, S, 3) from the box centre, rot (N, 3, 3) box
    axes as columns, half extents (N, 3). Returns (N, S)."""
    q = torch.bmm(offset, rot).abs() - half.unsqueeze(1)
    return -(_safe_norm(q.clamp(min=0)) + q.max(dim=-1).values.clamp(max=0))


def _safe_norm(v: Tensor) -> Tensor:
    """Euclidean norm whose gradient stays finite at zero."""
    return torch.sqrt((v * v).sum(-1) + 1e-12)
