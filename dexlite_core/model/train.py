"""Training the grasp CVAE: reconstruction + KL + differentiable grasp energies.

Runs on CPU or CUDA (mixed precision there), in one process or several under ``torchrun``
(DistributedDataParallel; gloo on CPU, nccl on GPU). Only rank 0 logs and writes.
"""
from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from dexlite_core.conventions import HandPose
from dexlite_core.data.files import write_bytes
from dexlite_core.energy import EnergyTerms, EnergyWeights, grasp_energy, nearest_contacts
from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import GraspData
from dexlite_core.model.encoding import decode_pose
from dexlite_core.model.network import GraspCVAE, NetworkConfig
from dexlite_core.optimize.problem import couple_joints
from dexlite_core.seeding import deterministic_torch

LOSS_TERMS = ("recon_translation", "recon_rotation", "recon_joints", "kl", "E_fc", "E_dis", "E_pen", "E_spen",
              "E_joints", "energy", "total")


@dataclass(frozen=True)
class LossConfig:
    translation: float = 1.0  #: squared error, decimetres^2
    rotation: float = 1.0  #: squared Frobenius distance of the rotation matrices
    joints: float = 1.0  #: squared error of joints scaled to [-1, 1]
    kl: float = 0.01  #: per nat (recon is in dm^2: 1e-4 fits to 0.4 mm; see params.yaml)
    kl_warmup_steps: int = 60  #: the KL weight ramps linearly from 0 over these gradient steps
    energy_scale: float = 0.1  #: multiplies the weighted energy total; 0 switches the energies off
    energy_warmup_steps: int = 30  #: the energy weight ramps linearly from 0 over these gradient steps
    energy: EnergyWeights = field(default_factory=EnergyWeights)

    def __post_init__(self) -> None:
        if min(self.translation, self.rotation, self.joints, self.kl, self.energy_scale) < 0:
            raise ValueError("loss weights must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 180  #: gradient steps, whatever the data size (an epoch is one pass over the grasps)
    eval_every: int = 3  #: steps between validations (log, best checkpoint); the last step is always one
    batch_size: int = 128
    lr: float = 1e-3
    n_points: int = 512  #: network input points per object
    seed: int = 0
    device: str = "auto"
    amp: bool = True  #: bf16 autocast on CUDA (ignored on CPU)
    couple_joints: bool = True  #: decoded J0 follows J1, as in the data and the hand
    network: NetworkConfig = field(default_factory=NetworkConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if min(self.steps, self.eval_every, self.batch_size) < 1 or not 0 < self.lr < 1:
            raise ValueError(f"need steps, eval_every, batch_size >= 1 and 0 < lr < 1; got {self.steps}, "
                             f"{self.eval_every}, {self.batch_size}, {self.lr}")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the fix."""


def save_checkpoint(path: Path, model: GraspCVAE, config: TrainConfig, step: int, val_loss: float) -> None:
    # Through a buffer: torch.save names the archive after the file, and the temporary file's
    # random name would make identical checkpoints differ in bytes.
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "network": asdict(model.config), "n_points": config.n_points,
                "couple_joints": config.couple_joints, "step": step, "val_loss": val_loss}, buffer)
    write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, device="cpu") -> tuple[GraspCVAE, dict]:
    """The model and the checkpoint's metadata; loads tensors and plain data only."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there; train one with `make run` (or `dvc repro train`)")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        model = GraspCVAE(NetworkConfig(**ckpt["network"]))
        model.load_state_dict(ckpt["model"])
    except Exception as exc:  # torch raises many types for damaged or foreign files
        raise CheckpointError(f"{path}: not a usable DexLite checkpoint ({type(exc).__name__}: {str(exc)[:200]}); "
                              "retrain with `dvc repro train`") from exc
    return model.to(device).eval(), {k: v for k, v in ckpt.items() if k != "model"}


def _ramp(step: int, warmup: int) -> float:
    return 1.0 if warmup <= 0 else min(1.0, step / warmup)


def decoded_pose(net: Tensor, anchor_point: Tensor, couple: bool) -> HandPose:
    pose = decode_pose(net.float(), anchor_point)
    return HandPose(pose.wrist_pos, pose.wrist_rot, couple_joints(pose.joints)) if couple else pose


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
    target = decode_pose(pose, anchor_point)
    decoded = decoded_pose(net, anchor_point, config.couple_joints)
    w = config.loss
    out = {
        "recon_translation": ((net[:, :3] - pose[:, :3]) ** 2).sum(-1).mean(),
        "recon_rotation": ((decoded.wrist_rot - target.wrist_rot) ** 2).sum((-1, -2)).mean(),
        "recon_joints": ((net[:, 9:] - pose[:, 9:]) ** 2).mean(-1).mean(),
        "kl": (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)).mean(),
    }
    out["total"] = (w.translation * out["recon_translation"] + w.rotation * out["recon_rotation"]
                    + w.joints * out["recon_joints"] + w.kl * _ramp(step, w.kl_warmup_steps) * out["kl"])
    if w.energy_scale == 0 and sample:  # energies unweighted: training skips them (FK is most of a step)
        return out
    contacts = nearest_contacts(hand, data.objects, decoded, obj, scale)
    terms: EnergyTerms = grasp_energy(hand, data.objects, decoded, contacts, obj, scale)
    out.update({name: value.mean() for name, value in terms.as_dict().items()})
    out["energy"] = terms.total(w.energy).mean()
    out["total"] = out["total"] + w.energy_scale * _ramp(step, w.energy_warmup_steps) * out["energy"]
    return out


def _distributed() -> tuple[int, int]:
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclass(frozen=True)
class TrainResult:
    best_val_loss: float
    best_step: int
    final: dict[str, float]  #: validation terms of the best checkpoint
    samples_per_s: float
    n_parameters: int


def _batches(n: int, config: TrainConfig, rank: int, world: int, device) -> Iterator[Tensor]:
    """Row indices of each step's batch: passes over a fresh permutation (seeded per pass), each
    rank its share, until ``config.steps`` batches are drawn."""
    step, epoch = 0, 0
    while True:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed + epoch))[rank::world].to(device)
        for b in range(max(1, math.ceil(len(order) / config.batch_size))):
            if step == config.steps:
                return
            yield order[b * config.batch_size:(b + 1) * config.batch_size]
            step += 1
        epoch += 1


def train(config: TrainConfig, train_data: GraspData, val_data: GraspData, checkpoint: Path,
          live=None) -> TrainResult:
    """Train for ``config.steps`` gradient steps, keeping the checkpoint with the lowest validation
    loss (validated every ``eval_every`` steps); ``live``: a dvclive.Live (rank 0 only) that
    receives the mean training terms since the last validation and every validation term."""
    rank, world = _distributed()
    device = train_data.objects.device
    deterministic_torch()
    torch.manual_seed(config.seed)
    model = GraspCVAE(config.network).to(device)
    if world > 1:
        model = DistributedDataParallel(model)
    core = model.module if world > 1 else model
    hand = HandModel(device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=config.amp and device.type == "cuda")
    generator = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + rank)
    best, best_step, best_terms, seen, busy = math.inf, -1, {}, 0, 0.0
    sums: dict[str, float] = {}
    n_summed = 0
    model.train()
    start = time.perf_counter()
    for step, index in enumerate(_batches(len(train_data), config, rank, world, device), start=1):
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
            if val["total"] < best:
                best, best_step, best_terms = val["total"], step, val
                save_checkpoint(checkpoint, core, config, step, best)
        sums, n_summed = {}, 0
        model.train()
        start = time.perf_counter()
    if world > 1:
        dist.barrier()
    return TrainResult(best, best_step, best_terms, seen * world / max(busy, 1e-9),
                       sum(p.numel() for p in core.parameters()))


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
