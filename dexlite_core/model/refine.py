"""The refiner: a network that adapts a transferred grasp to the new object's surface in one pass.

Pure synthesis returns nearly a rigid copy of a training grasp (bench/README.md, "What the decoder
adds"), and half of those copies start > 5 mm inside the new object, which is thicker or thinner
where the grasp lands. The CVAE's condition cannot see that: it describes one point of the object.
The refiner reads where the hand is: the object's signed distance and surface normal at each of the
hand's contact candidates and keypoints (in the palm frame), with the finger joints, and an MLP
predicts a correction of palm position, palm rotation and joints. It learns from the training
objects what post-optimization and simulation make of transfers: each training object gets
its best matches from the *other* objects' grasps (as a new object would), they are post-optimized
and simulated, and each pass is a pair (transferred grasp -> the grasp it became); each such grasp
is also a fixed point (grasp -> itself). A few passes, each reading the surface again, make one
forward computation: no energy, no search.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from dexlite_core.conventions import JOINT_LOWER, JOINT_UPPER, NUM_JOINTS, HandPose, couple_joints, rot6d_to_matrix
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.object_set import ObjectSet
from dexlite_core.seeding import deterministic_torch

IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  #: rot6d of the identity rotation (first two columns)
DISTANCE_CLIP = 0.03  #: m; farther surface readings say no more than "far"
OUTPUT_DIM = 3 + 6 + NUM_JOINTS  #: palm-frame translation (cm), rot6d offset, joints (half ranges)


@dataclass(frozen=True)
class RefinerConfig:
    transfers_per_object: int = 64  #: best matches from the other objects per training object and scale; 0 = off
    steps: int = 1000  #: AdamW steps; more overfits the pairs (held-out error rises after ~500-1 000)
    batch_size: int = 256
    lr: float = 1e-3  #: cosine decay to 0
    weight_decay: float = 0.05
    hidden: int = 512
    passes: int = 5  #: refinement passes at synthesis, each reading the surface again
    check_split: str = "val"  #: objects whose synthesis is simulated after 0 .. passes passes (val: never trained on)
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.transfers_per_object < 0 or min(self.steps, self.batch_size, self.hidden) < 1 \
                or not 0 < self.lr < 1 or self.weight_decay < 0 or self.passes < 0:
            raise ValueError("refine: need transfers_per_object >= 0, steps, batch_size, hidden >= 1, 0 < lr < 1, "
                             "weight_decay >= 0, passes >= 0")
        if self.check_split not in ("val", "test"):
            raise ValueError(f"refine.check_split must be val or test, got {self.check_split!r}")


class GraspRefiner(nn.Module):
    def __init__(self, n_query: int, hidden: int, couple: bool):
        super().__init__()
        self.n_query, self.hidden, self.couple = n_query, hidden, couple
        self.mlp = nn.Sequential(nn.Linear(NUM_JOINTS + 4 * n_query, hidden), nn.LeakyReLU(0.1),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.1), nn.Linear(hidden, OUTPUT_DIM))
        nn.init.zeros_(self.mlp[-1].weight)  # starts as the identity: a pass changes nothing until trained
        nn.init.zeros_(self.mlp[-1].bias)
        self.register_buffer("joint_mid", torch.as_tensor((JOINT_UPPER + JOINT_LOWER) / 2))
        self.register_buffer("joint_half", torch.as_tensor((JOINT_UPPER - JOINT_LOWER) / 2))
        self.register_buffer("identity_6d", torch.tensor(IDENTITY_6D))

    def features(self, hand: HandModel, objects: ObjectSet, pose: HandPose, obj: Tensor, scale: Tensor) -> Tensor:
        """(B, 22 + 4 Q): scaled joints; each query point's clipped signed distance (cm) and outward
        normal in the palm frame (Q = the hand's contact candidates and keypoints)."""
        frames = hand.link_frames(pose)
        query = torch.cat([hand.all_contact_candidates(frames), hand.keypoints(frames)], 1)  # (B, Q, 3)
        b, q, _ = query.shape
        distance, normal = objects.distance_and_normal(query.reshape(-1, 3), obj.repeat_interleave(q),
                                                       scale.repeat_interleave(q))
        distance = distance.view(b, q).clamp(-DISTANCE_CLIP, DISTANCE_CLIP) * 100
        normal = torch.einsum("bji,bqj->bqi", pose.wrist_rot, normal.view(b, q, 3))
        return torch.cat([(pose.joints - self.joint_mid) / self.joint_half, distance, normal.reshape(b, -1)], 1)

    def corrected(self, pose: HandPose, out: Tensor) -> HandPose:
        """``pose`` with the network's output (B, OUTPUT_DIM) applied in its palm frame."""
        position = pose.wrist_pos + torch.einsum("bij,bj->bi", pose.wrist_rot, out[:, :3] / 100)
        rotation = pose.wrist_rot @ rot6d_to_matrix(self.identity_6d + out[:, 3:9])
        joints = torch.clamp(pose.joints + out[:, 9:] * self.joint_half, self.joint_mid - self.joint_half,
                             self.joint_mid + self.joint_half)
        return HandPose(position, rotation, couple_joints(joints) if self.couple else joints)

    def step(self, hand: HandModel, objects: ObjectSet, pose: HandPose, obj: Tensor, scale: Tensor) -> HandPose:
        return self.corrected(pose, self.mlp(self.features(hand, objects, pose, obj, scale)))

    @torch.no_grad()
    def refine(self, hand: HandModel, objects: ObjectSet, pose: HandPose, obj: Tensor, scale: Tensor,
               passes: int, batch: int = 4096) -> HandPose:
        """``pose`` after ``passes`` passes, in batches of ``batch`` rows."""
        parts = []
        for s in range(0, len(pose), batch):
            part = pose.index(slice(s, s + batch))
            for _ in range(passes):
                part = self.step(hand, objects, part, obj[s:s + batch], scale[s:s + batch])
            parts.append(part)
        return HandPose.concat(parts)

    def spec(self) -> dict:
        return {"n_query": self.n_query, "hidden": self.hidden, "couple": self.couple}


def pose_error(a: HandPose, b: HandPose, joint_half: Tensor) -> Tensor:
    """(B,) squared palm offset (cm^2) + 10 x squared Frobenius distance of the rotations + 10 x mean
    squared joint difference in half ranges: 1 cm, ~0.3 rad of palm turn and ~0.3 half ranges weigh alike."""
    return (((a.wrist_pos - b.wrist_pos) * 100) ** 2).sum(-1) + 10 * ((a.wrist_rot - b.wrist_rot) ** 2).sum((-1, -2)) \
        + 10 * (((a.joints - b.joints) / joint_half) ** 2).mean(-1)


@dataclass(frozen=True)
class RefinerPairs:
    """Transferred grasps and what they became on the same object (post-optimized, simulated, passed)."""

    start: HandPose
    target: HandPose
    obj: Tensor  #: (N,) index into the object set
    scale: Tensor  #: (N,) metres

    def __len__(self) -> int:
        return len(self.obj)

    def with_fixed_points(self) -> "RefinerPairs":
        """These pairs and every target as a pair of its own (target -> target): a grasp that holds
        should stay where it is. Without them, each pass moved good grasps on the training objects
        (synthesis there lost 60 -> 48 % lift over five passes; with them 55 %, bench/README.md)."""
        return RefinerPairs(HandPose.concat([self.start, self.target]), HandPose.concat([self.target, self.target]),
                            self.obj.repeat(2), self.scale.repeat(2))


def train_refiner(hand: HandModel, objects: ObjectSet, pairs: RefinerPairs, config: RefinerConfig,
                  couple: bool) -> tuple[GraspRefiner, float]:
    """A refiner fitted to one pass from ``pairs.start`` to ``pairs.target``; returns it (eval mode)
    and the seconds spent."""
    deterministic_torch()
    g = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # the layers' initialization
    device = objects.device
    refiner = GraspRefiner(hand.n_contact_candidates + hand.keypoint_local.shape[0], config.hidden, couple).to(device)
    start = time.perf_counter()
    with torch.no_grad():
        features = refiner.features(hand, objects, pairs.start, pairs.obj, pairs.scale)
    optimizer = torch.optim.AdamW(refiner.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    refiner.train()
    for _ in range(config.steps):
        pick = torch.randint(len(pairs), (config.batch_size,), generator=g).to(device)
        moved = refiner.corrected(pairs.start.index(pick), refiner.mlp(features[pick]))
        loss = pose_error(moved, pairs.target.index(pick), refiner.joint_half).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return refiner.eval(), time.perf_counter() - start


def refiner_state(refiner: GraspRefiner, config: RefinerConfig) -> dict:
    """What a checkpoint stores of a refiner (plain data and tensors: loads with weights_only)."""
    return {"spec": refiner.spec(), "passes": config.passes, "config": asdict(config),
            "state": {k: v.cpu() for k, v in refiner.state_dict().items()}}


def load_refiner(state: dict, device) -> tuple[GraspRefiner, int]:
    """A refiner and its number of passes from :func:`refiner_state`'s dict."""
    refiner = GraspRefiner(**state["spec"])
    refiner.load_state_dict(state["state"])
    return refiner.to(device).eval(), int(state["passes"])


@dataclass(frozen=True)
class Refinement:
    """A trained refiner, the passes synthesis gives it, and the hand whose points it reads."""

    refiner: GraspRefiner
    passes: int
    hand: HandModel

    def __call__(self, objects: ObjectSet, pose: HandPose, obj: Tensor, scale: Tensor) -> HandPose:
        return self.refiner.refine(self.hand, objects, pose, obj, scale, self.passes)
