"""Training the grasp CVAE: reconstruction + KL + differentiable grasp energies.

Runs on CPU or CUDA (mixed precision there), in one process or several under ``torchrun``
(DistributedDataParallel; gloo on CPU, nccl on GPU). Only rank 0 logs and writes.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from dexlite_core.conventions import JOINT_SLICE, POS_SLICE, ROT6D_SLICE, rot6d_to_matrix
from dexlite_core.energy import EnergyTerms, EnergyWeights, grasp_energy, nearest_contacts
from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import GraspData
from dexlite_core.model.encoding import decode_pose, decoded_pose
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.network import GraspCVAE, NetworkConfig
from dexlite_core.model.sample import GraspBank
from dexlite_core.seeding import deterministic_torch

LOSS_TERMS = ("recon_translation", "recon_rotation", "recon_joints", "kl", "E_fc", "E_dis", "E_pen", "E_spen",
              "E_joints", "energy", "total")


@dataclass(frozen=True)
class LossConfig:
    translation: float = 1.0  #: squared error, decimetres^2
    rotation: float = 1.0  #: squared Frobenius distance of the rotation matrices
    joints: float = 1.0  #: squared error of joints scaled to [-1, 1]
    kl: float = 1e-4  #: per nat (recon is in dm^2: 1 mm costs 1e-4; see params.yaml)
    kl_warmup_steps: int = 500  #: the KL weight ramps linearly from 0 over these gradient steps
    energy_scale: float = 0.0  #: multiplies the weighted energy total; 0 switches the energies off
    energy_warmup_steps: int = 500  #: the energy weight ramps linearly from 0 over these gradient steps
    energy: EnergyWeights = field(default_factory=EnergyWeights)

    def __post_init__(self) -> None:
        if min(self.translation, self.rotation, self.joints, self.kl, self.energy_scale) < 0:
            raise ValueError("loss weights must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 6000  #: gradient steps, whatever the data size (an epoch is one pass over the grasps)
    eval_every: int = 100  #: steps between validations (the log); the last step is always one
    batch_size: int = 128  #: at most this many grasps per step
    clouds_per_batch: int = 8  #: distinct (object, scale) point clouds per step
    lr: float = 1e-3
    n_points: int = 512  #: network input points per object
    seed: int = 0
    device: str = "auto"
    amp: bool = True  #: bf16 autocast on CUDA (ignored on CPU)
    couple_joints: bool = True  #: decoded J0 follows J1, as in the data and the hand
    network: NetworkConfig = field(default_factory=NetworkConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if min(self.steps, self.eval_every, self.batch_size, self.clouds_per_batch) < 1 or not 0 < self.lr < 1:
            raise ValueError(f"need steps, eval_every, batch_size, clouds_per_batch >= 1 and 0 < lr < 1; got "
                             f"{self.steps}, {self.eval_every}, {self.batch_size}, {self.clouds_per_batch}, {self.lr}")


@torch.no_grad()
def grasp_bank(model: GraspCVAE, data: GraspData, batch: int = 4096) -> GraspBank:
    """What pure synthesis transfers to new objects: every grasp of ``data`` with its condition, posterior
    and object."""
    model.eval()
    conditions, mus, logvars = [], [], []
    for start in range(0, len(data), batch):
        points, shape, anchor, pose, _, _, _ = data.batch(torch.arange(start, min(start + batch, len(data)),
                                                                       device=data.obj.device))
        cond = model.condition(points, anchor, shape).float()
        mu, logvar = model.encode(pose, cond)
        conditions.append(cond), mus.append(mu.float()), logvars.append(logvar.float())
    return GraspBank(torch.cat(conditions), torch.cat(mus), torch.cat(logvars), np.array(data.codes(), dtype=object))


def _ramp(step: int, warmup: int) -> float:
    return 1.0 if warmup <= 0 else min(1.0, step / warmup)


def losses(model: torch.nn.Module, hand: HandModel, data: GraspData, index: Tensor, config: TrainConfig,
           step: int, generator: torch.Generator | None, sample: bool = True) -> dict[str, Tensor]:
    """Every loss term (batch means) for rows ``index`` at gradient step ``step`` (the warm-ups);
    "total" is what is minimized."""
    points, shape, anchor, pose, anchor_point, obj, scale = data.batch(index)
    core = model.module if isinstance(model, DistributedDataParallel) else model
    if sample:
        net, mu, logvar = model(points, anchor, pose, shape, generator)
    else:  # validation: the posterior mean, deterministic
        cond = core.condition(points, anchor, shape)
        mu, logvar = core.encode(pose, cond)
        net = core.decode(mu, cond)
    net = net.float()
    w = config.loss
    out = {k: v.mean() for k, v in reconstruction_terms(net, pose).items()}
    out["kl"] = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)).float().mean()
    out["total"] = reconstruction_loss(out, w) + w.kl * _ramp(step, w.kl_warmup_steps) * out["kl"]
    if w.energy_scale == 0 and sample:  # energies unweighted: training skips them (FK is most of a step)
        return out
    decoded = decoded_pose(net, anchor_point, config.couple_joints)
    with torch.autocast(net.device.type, enabled=False):  # FK (pytorch_kinematics) needs float32
        contacts = nearest_contacts(hand, data.objects, decoded, obj, scale)
        terms: EnergyTerms = grasp_energy(hand, data.objects, decoded, contacts, obj, scale)
    out.update({name: value.mean() for name, value in terms.as_dict().items()})
    out["energy"] = terms.total(w.energy).mean()
    out["total"] = out["total"] + w.energy_scale * _ramp(step, w.energy_warmup_steps) * out["energy"]
    return out


def reconstruction_terms(net: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Per-row errors (B,) of network poses against target network poses (B, 31): squared
    translation (dm^2), squared Frobenius distance of the rotations, mean squared scaled joint."""
    rotation = rot6d_to_matrix(net[:, ROT6D_SLICE]) - rot6d_to_matrix(target[:, ROT6D_SLICE])
    return {"recon_translation": ((net[:, POS_SLICE] - target[:, POS_SLICE]) ** 2).sum(-1),
            "recon_rotation": (rotation ** 2).sum((-1, -2)),
            "recon_joints": ((net[:, JOINT_SLICE] - target[:, JOINT_SLICE]) ** 2).mean(-1)}


def reconstruction_loss(terms: dict[str, Tensor], w: LossConfig) -> Tensor:
    return (w.translation * terms["recon_translation"] + w.rotation * terms["recon_rotation"]
            + w.joints * terms["recon_joints"])


def _distributed() -> tuple[int, int]:
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclass(frozen=True)
class TrainResult:
    final: dict[str, float]  #: validation terms of the final model (the checkpoint)
    samples_per_s: float
    n_parameters: int


def _batches(cloud: Tensor, config: TrainConfig, rank: int, world: int) -> Iterator[Tensor]:
    """Row indices of each step's batch, until ``config.steps`` batches are drawn. A batch holds
    grasps of ``clouds_per_batch`` (object, scale) clouds (up to ``batch_size`` rows, a random
    share of each cloud's grasps): the PointNet, most of a step's time, then runs on those clouds
    only (16 clouds took 0.55 s per step, 128 random rows on ~50 clouds 1.56 s, on a loaded CPU). A pass visits
    every cloud once in a permutation seeded per pass; each rank takes its share of the clouds."""
    clouds = torch.unique(cloud)
    step, epoch = 0, 0
    while True:
        g = torch.Generator().manual_seed(config.seed + epoch)
        order = clouds[torch.randperm(len(clouds), generator=g)][rank::world]
        for start in range(0, len(order), config.clouds_per_batch):
            if step == config.steps:
                return
            rows = torch.nonzero(torch.isin(cloud, order[start:start + config.clouds_per_batch])).flatten()
            yield rows[torch.randperm(len(rows), generator=g)[:config.batch_size].sort().values]
            step += 1
        epoch += 1


def train(config: TrainConfig, train_data: GraspData, val_data: GraspData, checkpoint: Path,
          live=None, init: GraspCVAE | None = None) -> TrainResult:
    """Train for ``config.steps`` gradient steps and write the final model with its grasp bank
    (:func:`grasp_bank`) to ``checkpoint``. Validated every ``eval_every`` steps for the log, not
    for choosing a checkpoint: pure synthesis transfers training latents, so it needs the fit of
    the whole schedule (a best-validation checkpoint stopped at step 500 of 3 000 and passed lift
    on 19 % of re-decoded training grasps). ``live``: a dvclive.Live (rank 0 only) that receives
    the mean training terms since the last validation and every validation term. ``init``: start
    from these weights instead of the seeded initialization (the engine's warm-started rounds)."""
    rank, world = _distributed()
    device = train_data.objects.device
    deterministic_torch()
    torch.manual_seed(config.seed)
    model = GraspCVAE(config.network).to(device)
    if init is not None:
        model.load_state_dict(init.state_dict())
    if world > 1:
        model = DistributedDataParallel(model)
    core = model.module if world > 1 else model
    hand = HandModel(device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=config.amp and device.type == "cuda")
    generator = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + rank)
    val, seen, busy = {}, 0, 0.0
    sums: dict[str, float] = {}
    n_summed = 0
    model.train()
    start = time.perf_counter()
    for step, index in enumerate(_batches(train_data.cloud().cpu(), config, rank, world), start=1):
        index = index.to(device)
        with autocast:
            terms = losses(model, hand, train_data, index, config, step, generator)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        schedule.step()
        seen += len(index)
        for k in terms:
            sums[k] = sums.get(k, 0.0) + float(terms[k].detach())
        n_summed += 1
        if step % config.eval_every and step != config.steps:
            continue
        busy += time.perf_counter() - start
        if rank == 0:
            val = evaluate(core, hand, val_data, config)
            if live is not None:
                for k in LOSS_TERMS:
                    if k in sums:
                        live.log_metric(f"train/{k}", sums[k] / n_summed)
                    live.log_metric(f"val/{k}", val[k])
                live.next_step()
        sums, n_summed = {}, 0
        model.train()
        start = time.perf_counter()
    if rank == 0:
        GraspModel(core.eval(), grasp_bank(core, train_data), config.n_points, config.couple_joints, config.steps,
                   val["total"], {"train": asdict(config)}).save(checkpoint)
    if world > 1:
        dist.barrier()
    return TrainResult(val, seen * world / max(busy, 1e-9), sum(p.numel() for p in core.parameters()))


@torch.no_grad()
def evaluate(model: GraspCVAE, hand: HandModel, data: GraspData, config: TrainConfig,
             batch: int = 512) -> dict[str, float]:
    """Every loss term on ``data`` (posterior mean), averaged over grasps; the KL and energy
    weights at their full value (after warm-up), so validation losses are comparable."""
    model.eval()
    sums = dict.fromkeys(LOSS_TERMS, 0.0)
    warm = max(config.loss.kl_warmup_steps, config.loss.energy_warmup_steps)
    for start in range(0, len(data), batch):
        index = torch.arange(start, min(start + batch, len(data)), device=data.obj.device)
        terms = losses(model, hand, data, index, config, warm, None, sample=False)
        for k in LOSS_TERMS:
            sums[k] += float(terms[k]) * len(index) / len(data)
    return sums


@dataclass(frozen=True)
class ReconstructionErrors:
    """Posterior-mean decodings against their grasps, means over grasps."""

    translation_mm: float  #: palm position
    rotation_deg: float  #: geodesic angle between palm rotations
    joints_rad: float  #: mean absolute joint error


@torch.no_grad()
def reconstruction_errors(model: GraspCVAE, data: GraspData, couple: bool) -> ReconstructionErrors:
    """How well ``model`` fits ``data``: encode each grasp, decode the posterior mean, compare."""
    model.eval()
    points, shape, anchor, pose, anchor_point, _, _ = data.batch(torch.arange(len(data), device=data.obj.device))
    cond = model.condition(points, anchor, shape)
    decoded = decoded_pose(model.decode(model.encode(pose, cond)[0], cond), anchor_point, couple)
    target = decode_pose(pose, anchor_point)
    cos = ((decoded.wrist_rot.transpose(1, 2) @ target.wrist_rot).diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2
    return ReconstructionErrors(float((decoded.wrist_pos - target.wrist_pos).norm(dim=-1).mean()) * 1000,
                                float(torch.rad2deg(torch.arccos(cos.clamp(-1, 1))).mean()),
                                float((decoded.joints - target.joints).abs().mean()))


@dataclass(frozen=True)
class AdaptConfig:
    """Teaching the decoder to adapt a transferred grasp (the engine's adapt step, bench/README.md
    "What the decoder adds"): pairs (a bank latent, the condition of a point of another training
    object it was matched to) -> the grasp it became there after post-optimization, in simulation."""

    transfers_per_object: int = 32  #: bank matches per training object and scale, its own grasps left out; 0 = off
    steps: int = 9000  #: decoder-only gradient steps
    batch_size: int = 128  #: reconstruction rows and pair rows per step, each
    lr: float = 3e-4  #: AdamW, cosine decay to 0
    pair_weight: float = 1.0  #: pair loss relative to the reconstruction loss
    seed: int = 0

    def __post_init__(self) -> None:
        if self.transfers_per_object < 0 or min(self.steps, self.batch_size) < 1 or not 0 < self.lr < 1 \
                or self.pair_weight < 0:
            raise ValueError("need transfers_per_object >= 0, steps and batch_size >= 1, 0 < lr < 1, pair_weight >= 0")


@dataclass(frozen=True)
class DecoderRows:
    """What the decoder maps: latents (N, Z) at conditions (N, C) to network poses (N, 31)."""

    latent: Tensor
    condition: Tensor
    pose: Tensor

    def __len__(self) -> int:
        return len(self.latent)


def adapt_decoder(model: GraspCVAE, own: DecoderRows, pairs: DecoderRows, config: AdaptConfig,
                  loss: LossConfig) -> GraspCVAE:
    """``model`` with its decoder trained on ``pairs`` next to the reconstruction of ``own`` (the bank's
    posterior means at their own conditions). PointNet and encoder stay as they are, so the grasp bank
    (conditions and posteriors) stays valid. Trained in place; returned in eval mode."""
    deterministic_torch()
    decoder = list(model.decoder.parameters())
    optimizer = torch.optim.AdamW(decoder, lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    g = torch.Generator().manual_seed(config.seed)
    device = own.latent.device
    model.train()
    for _ in range(config.steps):
        total = 0.0
        for rows, weight in ((own, 1.0), (pairs, config.pair_weight)):
            pick = torch.randint(len(rows), (config.batch_size,), generator=g).to(device)
            net = model.decode(rows.latent[pick], rows.condition[pick]).float()
            total = total + weight * reconstruction_loss(reconstruction_terms(net, rows.pose[pick]), loss).mean()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        schedule.step()
    return model.eval()
