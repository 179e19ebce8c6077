"""What an optimizer works on: a batch of grasps on a set of objects, and their random source.

Rows are grouped by (object, scale); each group draws its random numbers from its own
generator, so a group's result does not depend on which other groups share its batch.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from dexlite_core.conventions import HandPose, couple_joints
from dexlite_core.energy import EnergyTerms, EnergyWeights, grasp_energy
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.object_set import ObjectSet


class GroupRandom:
    """Per-group generators (CPU, so CPU and CUDA runs draw the same numbers)."""

    def __init__(self, seeds: list[int], sizes: list[int], device: torch.device):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.sizes = sizes
        self.device = device

    def select(self, keep: Tensor) -> "GroupRandom":
        """The same generators for the rows ``keep`` (B,) bool leaves in each group."""
        kept = copy.copy(self)  # shares the generators: their streams go on
        kept.sizes = [int(part.sum()) for part in keep.cpu().split(self.sizes)]
        return kept

    def rand(self, *tail: int) -> Tensor:
        """(B, *tail) uniform [0, 1)."""
        return torch.cat([torch.rand(n, *tail, generator=g) for g, n in zip(self.generators, self.sizes)]).to(self.device)

    def randn(self, *tail: int) -> Tensor:
        return torch.cat([torch.randn(n, *tail, generator=g) for g, n in zip(self.generators, self.sizes)]).to(self.device)

    def randint(self, high: int, *tail: int) -> Tensor:
        return torch.cat([torch.randint(high, (n, *tail), generator=g) for g, n in zip(self.generators, self.sizes)]).to(self.device)


@dataclass(frozen=True)
class GraspProblem:
    """Grasps to optimize: which object and scale each row grasps."""

    hand: HandModel
    objects: ObjectSet
    obj: Tensor  #: (B,) object index into ``objects``
    scale: Tensor  #: (B,) metres
    weights: EnergyWeights = EnergyWeights()
    couple: bool = True  #: evaluate with J0 tied to J1 (the real hand's tendons)

    def pose(self, vector: Tensor) -> HandPose:
        pose = HandPose.from_vector(vector)
        if self.couple:
            pose = HandPose(pose.wrist_pos, pose.wrist_rot, couple_joints(pose.joints))
        return pose

    def energy(self, vector: Tensor, contacts: Tensor) -> EnergyTerms:
        return grasp_energy(self.hand, self.objects, self.pose(vector), contacts, self.obj, self.scale)

    def energy_and_grad(self, vector: Tensor, contacts: Tensor) -> tuple[EnergyTerms, Tensor, Tensor]:
        """Energy terms, the weighted total (B,) and its gradient w.r.t. the pose vector (B, 31)."""
        vector = vector.detach().requires_grad_()
        terms = self.energy(vector, contacts)
        total = terms.total(self.weights)
        (grad,) = torch.autograd.grad(total.sum(), vector)
        detached = EnergyTerms(*(t.detach() for t in (terms.fc, terms.dis, terms.pen, terms.spen, terms.joints)))
        return detached, total.detach(), grad
