"""Each grasp's own pre-grasp and squeeze, from its contacts.

DexGraspBench replays a grasp as pre-grasp -> grasp -> squeeze, the wrist held, on fingers under
position control (kp 5): the squeeze target is what presses the fingers into the object. A fixed
offset on the closing joints presses hard where a joint barely moves the contact and hardly at all
where it moves it much. Here every touching link is pressed into the object by ``force`` newtons
along the surface normal at its contact: the joint offset whose position-control torque
``kp dq`` equals ``J^T f`` (f = -force n, J the contact point's Jacobian in the finger joints), so
``dq = J^T f / kp``. The squeeze target is q + dq; the pre-grasp is q - dq, every touching link
backed off the same way. Links farther than ``reach`` from the surface are not pressed: a grasp
that touches nothing keeps its own joints for both, so a hand that would only close onto the
object during the squeeze is not helped to.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dexlite_core.conventions import JOINT_LOWER, JOINT_UPPER, HandPose
from dexlite_core.data.grasps import GraspTable
from dexlite_core.energy import link_contacts
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.object_set import ObjectSet


@dataclass(frozen=True)
class PressConfig:
    force: float = 10.0  #: N pressing each touching link into the object
    kp: float = 5.0  #: N m/rad, the position gain of the fingers that replay the grasp (sim.dgb.actuator_kp)
    reach: float = 0.005  #: m: a link whose nearest contact candidate is this close to the surface touches

    def __post_init__(self) -> None:
        if self.force < 0 or self.kp <= 0 or self.reach < 0:
            raise ValueError(f"need force >= 0, kp > 0 and reach >= 0, got {self.force}, {self.kp}, {self.reach}")


def touches(hand: HandModel, objects: ObjectSet, pose: HandPose, obj: Tensor, scale: Tensor,
            within: float = 0.002) -> Tensor:
    """(B,) bool: some contact candidate of the hand lies within ``within`` m of the surface. A grasp that
    passes the DexGraspBench-like test without touching closed onto the object during the squeeze only."""
    return (link_contacts(hand, objects, pose, obj, scale)[1] <= within).any(dim=1)


def pressed_offsets(hand: HandModel, objects: ObjectSet, pose: HandPose, obj: Tensor, scale: Tensor,
                    config: PressConfig = PressConfig()) -> Tensor:
    """dq (B, 22): the finger-joint offsets that press every touching link with ``config.force``."""
    index, signed = link_contacts(hand, objects, pose, obj, scale)
    touching = signed <= config.reach  # (B, L); links without candidates have distance inf
    index = torch.where(touching, index, 0)
    joints = pose.joints.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        frames = hand.link_frames(HandPose(pose.wrist_pos.detach(), pose.wrist_rot.detach(), joints))
        points = frames.apply(hand.contact_link[index], hand.contact_local[index])  # (B, L, 3)
        b, links, _ = points.shape
        _, normal = objects.distance_and_normal(points.detach().reshape(-1, 3), obj.repeat_interleave(links),
                                                scale.repeat_interleave(links))
        force = -config.force * normal.view(b, links, 3) * touching.unsqueeze(-1)
        (torque,) = torch.autograd.grad((points * force).sum(), joints)  # J^T f per grasp
    return torque / config.kp


def pressed_triple(hand: HandModel, objects: ObjectSet, pose: HandPose, obj: Tensor, scale: Tensor,
                   config: PressConfig = PressConfig(), batch: int = 2048) -> tuple[Tensor, Tensor]:
    """Pre-grasp and squeeze joints (B, 22) of grasps ``pose``, within the joint limits."""
    lower, upper = (torch.as_tensor(v, device=pose.joints.device) for v in (JOINT_LOWER, JOINT_UPPER))
    pre, squeeze = [pose.joints[:0].detach()], [pose.joints[:0].detach()]
    for i in range(0, len(pose), batch):
        rows = slice(i, i + batch)
        part = pose.index(rows)
        dq = pressed_offsets(hand, objects, part, obj[rows], scale[rows], config)
        pre.append(torch.clamp(part.joints - dq, lower, upper))
        squeeze.append(torch.clamp(part.joints + dq, lower, upper))
    return torch.cat(pre).detach(), torch.cat(squeeze).detach()


def with_triples(table: GraspTable, hand: HandModel, objects: ObjectSet, config: PressConfig) -> GraspTable:
    """``table`` with every grasp's own pre-grasp and squeeze (:func:`pressed_triple`)."""
    device = objects.device
    pre, squeeze = pressed_triple(hand, objects, table.poses(device=device), objects.index_of(list(table.object_code)),
                                  torch.as_tensor(table.scale, device=device), config)
    return table.with_triple(pre.cpu().numpy(), squeeze.cpu().numpy())
