"""Annealed gradient optimization of grasp energies (DexGraspNet's MALA-like annealing).

Each step proposes a gradient step on the pose (RMSProp-normalized) and re-draws every contact
index with some probability, then accepts the proposal per grasp with probability
exp((E_old - E_new) / T). Step size and temperature decay geometrically. With temperature 0
only improvements are accepted, which makes it a plain descent (the post-optimizer's mode).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from dexlite_core.conventions import (JOINT_LOWER, JOINT_SLICE, JOINT_UPPER, ROT6D_SLICE, couple_joints, matrix_to_rot6d,
                                      rot6d_to_matrix)
from dexlite_core.energy import EnergyTerms
from dexlite_core.optimize.problem import GraspProblem, GroupRandom


@dataclass(frozen=True)
class EnergyThresholds:
    """A grasp is accepted when every term is below its threshold (DexGraspNet's proxies)."""

    fc: float = 0.3
    dis: float = 0.005  #: metres, summed over contacts
    pen: float = 0.001  #: metres, summed over object points
    spen: float = 0.001
    joints: float = 0.001

    def passes(self, terms: EnergyTerms) -> Tensor:
        return ((terms.fc < self.fc) & (terms.dis < self.dis) & (terms.pen < self.pen)
                & (terms.spen < self.spen) & (terms.joints < self.joints))


@dataclass(frozen=True)
class PruneStage:
    """After ``after`` steps, attempts whose weighted energy is still above ``energy`` stop
    (unless they have met the thresholds already): their rows leave the batch, so the steps
    go to attempts that are likely to pass."""

    after: int
    energy: float

    def __post_init__(self) -> None:
        if self.after < 1 or not self.energy > 0:
            raise ValueError(f"prune stages need after >= 1 and energy > 0, got {self.after}, {self.energy}")


@dataclass(frozen=True)
class AnnealConfig:
    steps: int = 200  #: accepted grasps per step peak near 150-200 steps (bench_anneal)
    step_size: float = 0.005  #: first step, in RMS-normalized pose units (m / rot6d / rad)
    step_size_end: float = 0.0002  #: last step; decays exponentially in between
    temperature: float = 18.0  #: first Metropolis temperature (energy units)
    temperature_end: float = 0.01  #: last temperature; 0 with temperature 0 = plain descent
    rms_decay: float = 0.1  #: weight of the newest squared gradient in the running mean (DexGraspNet: 0.98)
    switch_probability: float = 0.2  #: chance that each contact index is re-drawn per step
    switch_temperature: float = 0.002  #: re-drawn indices favour candidates near the surface,
    #: with probability ~ exp(-|d| / this) (metres); 0 draws uniformly like DexGraspNet
    switch_refresh: int = 4  #: steps between updates of the candidates' surface distances
    n_contacts: int = 4
    check_every: int = 25  #: steps between early-stop checks
    patience: int = 0  #: stop after this many checks without a new accepted grasp (0: never)
    thresholds: EnergyThresholds = field(default_factory=EnergyThresholds)
    prune: tuple[PruneStage, ...] = ()  #: early stops of unpromising attempts, by step

    def __post_init__(self) -> None:
        if any(a.after >= b.after for a, b in zip(self.prune, self.prune[1:])):
            raise ValueError("prune stages must come in increasing order of their step")
        if self.steps < 1 or self.n_contacts < 1:
            raise ValueError(f"steps and n_contacts must be >= 1, got {self.steps}, {self.n_contacts}")
        if not 0 < self.step_size_end <= self.step_size < 1:
            raise ValueError(f"need 0 < step_size_end <= step_size < 1, got {self.step_size_end}, {self.step_size}")
        if not (0 <= self.temperature_end <= self.temperature) or (self.temperature_end == 0 < self.temperature):
            raise ValueError("need 0 < temperature_end <= temperature, or both 0 for plain descent")
        if not 0 <= self.switch_probability <= 1 or not 0 < self.rms_decay <= 1:
            raise ValueError("switch_probability must be in [0, 1] and rms_decay in (0, 1]")


@dataclass(frozen=True)
class AnnealResult:
    pose: Tensor  #: (B, 31) final pose vectors (joints coupled and clamped to their limits)
    contacts: Tensor  #: (B, K) final contact indices
    terms: EnergyTerms  #: energies of the final poses
    accepted: Tensor  #: (B,) bool, meets the thresholds
    pruned: Tensor  #: (B,) bool, stopped early by a prune stage
    steps: int  #: steps run (early stop may end sooner)
    seconds: float


def _schedule(start: float, end: float, k: int, steps: int) -> float:
    """Exponential interpolation from ``start`` (step 0) to ``end`` (last step)."""
    if start == end or steps == 1:
        return start
    return start * (end / start) ** (k / (steps - 1))


def finalize(problem: GraspProblem, pose: Tensor) -> Tensor:
    """Orthonormal rot6d, coupled J0 and joints inside their limits: the pose as it is stored."""
    pose = pose.detach().clone()
    pose[:, ROT6D_SLICE] = matrix_to_rot6d(rot6d_to_matrix(pose[:, ROT6D_SLICE]))
    joints = couple_joints(pose[:, JOINT_SLICE]) if problem.couple else pose[:, JOINT_SLICE]
    lo = torch.as_tensor(JOINT_LOWER, device=pose.device)
    hi = torch.as_tensor(JOINT_UPPER, device=pose.device)
    pose[:, JOINT_SLICE] = torch.maximum(torch.minimum(joints, hi), lo)
    return pose


@dataclass
class _Walk:
    """Per-attempt state of a run; pruned attempts' rows leave it."""

    rows: Tensor  #: (b,) each row's index in the caller's batch
    pose: Tensor
    contacts: Tensor
    terms: EnergyTerms
    energy: Tensor
    grad: Tensor
    mean_sq: Tensor  #: RMSProp's running mean of squared gradients
    kept_pose: Tensor  #: the last state that met the thresholds (annealing can wander out of it)
    kept_contacts: Tensor
    has_kept: Tensor
    candidate_distance: Tensor | None = None  #: (b, N) |d| of every contact candidate (near-surface re-draws)

    def select(self, keep: Tensor) -> "_Walk":
        return _Walk(*(_index_rows(getattr(self, f.name), keep) for f in dataclasses.fields(self)))


def anneal(problem: GraspProblem, pose: Tensor, contacts: Tensor, config: AnnealConfig, rng: GroupRandom,
           switch_contacts: bool = True) -> AnnealResult:
    """Optimize pose vectors (B, 31) and contact indices (B, K) for ``problem``."""
    start = time.perf_counter()
    n_candidates = problem.hand.n_contact_candidates
    terms, energy, grad = problem.energy_and_grad(pose, contacts)
    pose = pose.detach().clone()
    walk = _Walk(torch.arange(len(pose), device=pose.device), pose, contacts, terms, energy, grad,
                 torch.zeros_like(pose), pose.clone(), contacts.clone(),
                 torch.zeros(len(pose), dtype=torch.bool, device=pose.device))
    last_pose, last_contacts = pose.clone(), contacts.clone()  #: each caller row's state when it stopped
    full_problem, prune = problem, list(config.prune)
    best_accepted, stale, steps = -1, 0, config.steps
    for k in range(config.steps):
        step = _schedule(config.step_size, config.step_size_end, k, config.steps)
        temperature = _schedule(config.temperature, config.temperature_end, k, config.steps)
        walk.mean_sq = config.rms_decay * walk.grad * walk.grad + (1 - config.rms_decay) * walk.mean_sq
        proposal = walk.pose - step * walk.grad / (walk.mean_sq.sqrt() + 1e-6)
        new_contacts = walk.contacts
        if switch_contacts and config.switch_probability > 0:
            switch = rng.rand(config.n_contacts) < config.switch_probability
            if config.switch_temperature > 0:
                if k % config.switch_refresh == 0:
                    walk.candidate_distance = _candidate_distances(problem, walk.pose)
                drawn = _draw_near(walk.candidate_distance, config, rng)
            else:
                drawn = rng.randint(n_candidates, config.n_contacts)
            new_contacts = torch.where(switch, drawn, walk.contacts)
        new_terms, new_energy, new_grad = problem.energy_and_grad(proposal, new_contacts)
        u = rng.rand()
        if temperature > 0:
            accept = u < torch.exp(((walk.energy - new_energy) / temperature).clamp(max=0.0))
        else:
            accept = new_energy < walk.energy
        accept &= torch.isfinite(new_energy)
        walk.pose = torch.where(accept.unsqueeze(-1), proposal, walk.pose)
        walk.contacts = torch.where(accept.unsqueeze(-1), new_contacts, walk.contacts)
        walk.grad = torch.where(accept.unsqueeze(-1), new_grad, walk.grad)
        walk.energy = torch.where(accept, new_energy, walk.energy)
        walk.terms = EnergyTerms(*(torch.where(accept, n, o) for n, o in zip(_fields(new_terms), _fields(walk.terms))))
        passing = config.thresholds.passes(walk.terms)
        walk.kept_pose = torch.where(passing.unsqueeze(-1), walk.pose, walk.kept_pose)
        walk.kept_contacts = torch.where(passing.unsqueeze(-1), walk.contacts, walk.kept_contacts)
        walk.has_kept |= passing
        if prune and k + 1 == prune[0].after:
            keep = (walk.energy <= prune.pop(0).energy) | walk.has_kept
            last_pose[walk.rows[~keep]], last_contacts[walk.rows[~keep]] = walk.pose[~keep], walk.contacts[~keep]
            walk, rng = walk.select(keep), rng.select(keep)
            problem = replace(problem, obj=problem.obj[keep], scale=problem.scale[keep])
            if not keep.any():
                steps = k + 1
                break
        if (k + 1) % config.check_every == 0:
            n_accepted = int(walk.has_kept.sum())
            stale = 0 if n_accepted > best_accepted else stale + 1
            best_accepted = max(best_accepted, n_accepted)
            if config.patience and stale >= config.patience:
                steps = k + 1
                break
    last_pose[walk.rows], last_contacts[walk.rows] = walk.pose, walk.contacts
    final = _finish(full_problem, last_pose, last_contacts, config)
    if walk.has_kept.any():
        kept_pose, kept_contacts = last_pose.clone(), last_contacts.clone()
        kept_pose[walk.rows], kept_contacts[walk.rows] = walk.kept_pose, walk.kept_contacts
        has_kept = torch.zeros_like(final[3])
        has_kept[walk.rows] = walk.has_kept
        kept = _finish(full_problem, kept_pose, kept_contacts, config)
        use_kept = has_kept & ~final[3] & kept[3]
        final = tuple(_where_rows(use_kept, a, b) for a, b in zip(kept, final))
    pruned = torch.ones_like(final[3])
    pruned[walk.rows] = False
    return AnnealResult(*final, pruned=pruned, steps=steps, seconds=time.perf_counter() - start)


def _finish(problem: GraspProblem, pose: Tensor, contacts: Tensor, config: AnnealConfig):
    pose = finalize(problem, pose)
    with torch.no_grad():
        terms = problem.energy(pose, contacts)
    return pose, contacts, terms, config.thresholds.passes(terms)


def _where_rows(mask: Tensor, a, b):
    if isinstance(a, EnergyTerms):
        return EnergyTerms(*(torch.where(mask, x, y) for x, y in zip(_fields(a), _fields(b))))
    return torch.where(mask.view(-1, *[1] * (a.ndim - 1)), a, b)


def _candidate_distances(problem: GraspProblem, pose: Tensor) -> Tensor:
    """|signed distance| of every contact candidate to the object: (B, N)."""
    with torch.no_grad():
        points = problem.hand.all_contact_candidates(problem.hand.link_frames(problem.pose(pose)))
        b, n, _ = points.shape
        d = problem.objects.signed_distance(points.reshape(-1, 3), problem.obj.repeat_interleave(n),
                                            problem.scale.repeat_interleave(n))
        return d.view(b, n).abs()


def _draw_near(distance: Tensor, config: AnnealConfig, rng: GroupRandom) -> Tensor:
    """Candidate indices (B, K) drawn with probability ~ exp(-distance / switch_temperature)."""
    logits = -distance / config.switch_temperature
    cdf = torch.softmax(logits - logits.max(-1, keepdim=True).values, -1).cumsum(-1)
    u = rng.rand(config.n_contacts) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).clamp(max=distance.shape[1] - 1)


def _index_rows(x, keep: Tensor):
    if x is None:
        return None
    if isinstance(x, EnergyTerms):
        return EnergyTerms(*(t[keep] for t in _fields(x)))
    return x[keep]


def _fields(terms: EnergyTerms) -> tuple[Tensor, ...]:
    return terms.fc, terms.dis, terms.pen, terms.spen, terms.joints
