"""PointNet + conditional VAE (Dex1B's DexSimple design, REFERENCE.md section 1).

A PointNet encodes the object's surface points into a global feature (max-pool) and per-point
local features. The condition of a grasp is [global feature, local feature at its associated
point]. The encoder maps (pose, condition) to a Gaussian latent, the decoder (z, condition) to
a pose. Poses are encoded relative to the associated point, so the network learns local
offsets (see :mod:`dexlite_core.model.encoding`). Pure synthesis transfers training latents to
the points of a new object whose conditions are nearest (:mod:`dexlite_core.model.sample`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dexlite_core.conventions import POSE_DIM


@dataclass(frozen=True)
class NetworkConfig:
    point_features: int = 6  #: xyz + normal per input point
    local_dim: int = 128
    global_dim: int = 256
    hidden: int = 512
    latent: int = 64

    def __post_init__(self) -> None:
        if min(self.local_dim, self.global_dim, self.hidden, self.latent) < 1:
            raise ValueError("network sizes must be >= 1")


def _mlp(sizes: list[int], last_activation: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.LeakyReLU(0.1))
    return nn.Sequential(*layers)


class PointNet(nn.Module):
    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.local = _mlp([config.point_features, 64, config.local_dim], last_activation=True)
        self.globl = _mlp([config.local_dim, 256, config.global_dim])

    def forward(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """points (B, P, F) -> local features (B, P, L), global feature (B, G)."""
        local = self.local(points)
        return local, self.globl(local).max(dim=1).values


class GraspCVAE(nn.Module):
    def __init__(self, config: NetworkConfig = NetworkConfig()):
        super().__init__()
        self.config = config
        cond = config.local_dim + config.global_dim
        self.pointnet = PointNet(config)
        self.encoder = _mlp([POSE_DIM + cond, config.hidden, config.hidden], last_activation=True)
        self.to_mu = nn.Linear(config.hidden, config.latent)
        self.to_logvar = nn.Linear(config.hidden, config.latent)
        self.decoder = _mlp([config.latent + cond, config.hidden, config.hidden, POSE_DIM])

    def point_conditions(self, points: Tensor) -> Tensor:
        """The condition (S, P, C) of every point of the distinct clouds ``points`` (S, P, F)."""
        local, globl = self.pointnet(points)
        return torch.cat([globl.unsqueeze(1).expand(-1, local.shape[1], -1), local], dim=-1)

    def condition(self, points: Tensor, anchor: Tensor, shape: Tensor | None = None) -> Tensor:
        """[global, local at the anchor] (B, C) for anchor indices (B,). points (S, P, F) are the
        distinct point clouds and ``shape`` (B,) picks each row's; without it S == B."""
        shape = torch.arange(len(anchor), device=anchor.device) if shape is None else shape
        return self.point_conditions(points)[shape, anchor]

    def encode(self, pose: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(torch.cat([pose, cond], dim=-1))
        return self.to_mu(h), self.to_logvar(h).clamp(-10, 10)

    def decode(self, z: Tensor, cond: Tensor) -> Tensor:
        return self.decoder(torch.cat([z, cond], dim=-1))

    def forward(self, points: Tensor, anchor: Tensor, pose: Tensor, shape: Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction with the reparameterization trick: decoded pose, mu, logvar."""
        cond = self.condition(points, anchor, shape)
        mu, logvar = self.encode(pose, cond)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return self.decode(mu + eps * torch.exp(0.5 * logvar), cond), mu, logvar
