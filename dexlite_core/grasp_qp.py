"""Friction-aware force-closure energy: BODex's QP wrench residual (BODEX.md sections 1-2), batched.

Contacts. A grasp has K contacts at points p_i (B, K, 3) with unit normals n_i (B, K, 3) pointing
INTO the object (the direction a finger pushes; energy.py's outward normals are their negatives).
Each contact has the frame a_i = [n_i, t1_i, t2_i] and the grasp-matrix block

    G_i = [[a_i], [r_i x a_i]]  (6 x 3),  r_i = (p_i - c) / L,

c the object centre and L the torque normaliser (BODex: half the bounding-box diagonal), so that
G = [G_1 ... G_K] (6 x 3K) maps the contact forces f = (f_1 ... f_K), f_i = (f_n, f_t1, f_t2) in
contact frame i, to the object wrench (force, normalised torque).

QP. For each of the six targets w_j = (+-e_x, +-e_y, +-e_z; 0) (B x 6 independent QPs):

    minimise_f  1/2 ||G f - k w_j||^2 + lam/2 sum_i f_n,i^2
    subject to  sin(th_e) f_t1,i + cos(th_e) f_t2,i <= mu f_n,i,  th_e = 2 pi e / E, e < E
                f_lo <= f_n,i <= f_hi
                sum_i f_n,i >= F_min

The E-edge cone circumscribes the circular one (as BODex). k is BODex's wrench scale (pinned to
0.21 there), lam its pressure penalty (0.01: spreads the load over more fingers).

Solver. OSQP's ADMM (over-relaxation alpha, fixed rho, scaled duals u, sigma = 0) on all B x 6 QPs
at once, for a fixed number of iterations: no convergence check, so no host sync and a cost known in
advance. Write the constraints l <= C f <= h (C: (M, 3K), M = (E + 1) K + 1). C does not depend on
the grasp (forces live in contact frames) and the six targets share one Hessian
H = G^T G + lam D_n (D_n: ones on the normal forces), so the KKT inverse (H + rho C^T C)^-1 is one
small batched Cholesky per grasp and solve. One iteration, from (z, u):

    f~ = (H + rho C^T C)^-1 (rho C^T (z - u) - q_j),   q_j = -k G^T w_j
    s  = alpha C f~ + (1 - alpha) z
    z+ = clamp(s + u, l, h),   u+ = u + s - z+

Stopping: after ``QpConfig.iterations`` iterations; f* = f~ of the final (z, u). The solve returns
(f*, z, u), which warm-starts the next solve (still valid after G changes, since the constraints do
not); chained solves equal one long solve.

Energy. mean_j ||G f*_j - k w_j||^2 (B,), the lam term left out (BODex). Mean, not sum, over the six
targets, as BODex: the value is one target's squared residual, so weights and acceptance thresholds
do not scale with the target count. f* is solved without gradient and held fixed (envelope
theorem), so the gradient flows only through G(p, n, c, L). float32 is enough (forces and G are
O(1); the KKT matrix is well conditioned); float64 works too. The device follows the inputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

#: The six unit force targets (zero torque), BODex's order: +z, -z, +y, -y, +x, -x.
TARGET_FORCES = ((0, 0, 1), (0, 0, -1), (0, 1, 0), (0, -1, 0), (1, 0, 0), (-1, 0, 0))


@dataclass(frozen=True)
class QpConfig:
    mu: float = 0.1  #: friction coefficient of the linearised cone (BODex synthesises at 0.1)
    cone_edges: int = 8  #: edges of the polygonal cone
    force_min: float = 0.01  #: lower bound of each normal force
    force_max: float = 1.0  #: upper bound of each normal force
    min_normal_total: float = 1.0  #: the normal forces must sum to at least this (internal squeeze)
    target_scale: float = 0.21  #: k, the wrench each QP tries to produce is k * w_j
    pressure_weight: float = 0.01  #: lam, penalty on the squared normal forces
    iterations: int = 50  #: ADMM iterations per solve
    rho: float = 1.0  #: ADMM penalty (bench: most accurate at 50 iterations among 0.1-10)
    alpha: float = 1.6  #: over-relaxation (OSQP's default)

    def __post_init__(self) -> None:
        positive = {"rho": self.rho, "force_max": self.force_max}
        non_negative = {"mu": self.mu, "force_min": self.force_min, "min_normal_total": self.min_normal_total,
                        "target_scale": self.target_scale, "pressure_weight": self.pressure_weight}
        for name, value in positive.items():
            if not (0 < value < math.inf):
                raise ValueError(f"QpConfig.{name} must be a finite number > 0, got {value}")
        for name, value in non_negative.items():
            if not (0 <= value < math.inf):
                raise ValueError(f"QpConfig.{name} must be a finite number >= 0, got {value}")
        if self.force_min > self.force_max:
            raise ValueError(f"QpConfig.force_min {self.force_min} exceeds force_max {self.force_max}")
        if not (isinstance(self.cone_edges, int) and self.cone_edges >= 3):
            raise ValueError(f"QpConfig.cone_edges must be an int >= 3, got {self.cone_edges}")
        if not (isinstance(self.iterations, int) and self.iterations >= 1):
            raise ValueError(f"QpConfig.iterations must be an int >= 1, got {self.iterations}")
        if not (0 < self.alpha < 2):
            raise ValueError(f"QpConfig.alpha must lie in (0, 2), got {self.alpha}")


@dataclass(frozen=True)
class QpState:
    """ADMM state of B x 6 QPs; ``x`` holds the forces. Pass it back in to warm-start."""
    x: Tensor  #: (B, 6, 3K) forces per target, contact i at [3i:3i+3] = (f_n, f_t1, f_t2)
    z: Tensor  #: (B, 6, M) C x clamped to the constraint bounds, M = (E + 1) K + 1
    u: Tensor  #: (B, 6, M) scaled duals of the constraints


def contact_frames(inward_normals: Tensor) -> Tensor:
    """(B, K, 3, 3) frames with columns [n, t1, t2] for unit inward normals (B, K, 3).

    t1 is e_y (e_z where n is within 8 degrees of +-e_y) made orthogonal to n. The reference axis
    is chosen and orthogonalised without gradient, then re-orthogonalised against n with it (as
    BODex): the tangents then turn only as much as n does, not about n, so the fixed tangential
    forces f* keep their meaning under the gradient."""
    n = inward_normals
    with torch.no_grad():
        e_y, e_z = n.new_tensor([0.0, 1.0, 0.0]), n.new_tensor([0.0, 0.0, 1.0])
        ref = torch.where((n[..., 1:2].abs() > 0.99), e_z, e_y)
        ref = ref - (ref * n).sum(-1, keepdim=True) * n
    t1 = ref - (ref * n).sum(-1, keepdim=True) * n
    t1 = t1 / t1.norm(dim=-1, keepdim=True)
    t2 = torch.linalg.cross(n, t1, dim=-1)
    return torch.stack([n, t1, t2], dim=-1)


def grasp_matrix(points: Tensor, inward_normals: Tensor, center: Tensor, half_diagonal: Tensor) -> Tensor:
    """(B, 6, 3K) grasp matrix for contacts (B, K, 3), inward normals (B, K, 3), object centres
    (B, 3) and torque normalisers (B,): column 3i+a is contact i's frame axis a as a wrench."""
    frames = contact_frames(inward_normals)  # (B, K, 3, 3)
    arms = (points - center[:, None]) / half_diagonal[:, None, None]
    torques = torch.linalg.cross(arms[..., None].expand_as(frames), frames, dim=-2)
    blocks = torch.cat([frames, torques], dim=-2)  # (B, K, 6, 3)
    b, k = points.shape[:2]
    return blocks.permute(0, 2, 1, 3).reshape(b, 6, 3 * k)


def targets(cfg: QpConfig, like: Tensor) -> Tensor:
    """(6, 6) the scaled target wrenches k w_j, one per row."""
    forces = like.new_tensor(TARGET_FORCES) * cfg.target_scale
    return torch.cat([forces, torch.zeros_like(forces)], dim=-1)


def constraints(k: int, cfg: QpConfig, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """C (M, 3K) and its bounds l, u (M,): K cone blocks of E rows, K normal-force bounds, one sum."""
    theta = torch.arange(cfg.cone_edges, dtype=like.dtype, device=like.device) * (2 * math.pi / cfg.cone_edges)
    cone = torch.stack([-cfg.mu * torch.ones_like(theta), theta.sin(), theta.cos()], dim=-1)  # (E, 3)
    eye = torch.eye(k, dtype=like.dtype, device=like.device)
    normal = like.new_tensor([1.0, 0.0, 0.0])
    c = torch.cat([torch.kron(eye, cone), torch.kron(eye, normal), normal.repeat(k)[None]])
    inf = math.inf
    lower = like.new_tensor([-inf] * (cfg.cone_edges * k) + [cfg.force_min] * k + [cfg.min_normal_total])
    upper = like.new_tensor([0.0] * (cfg.cone_edges * k) + [cfg.force_max] * k + [inf])
    return c, lower, upper


def cold_state(b: int, k: int, cfg: QpConfig, like: Tensor) -> QpState:
    """All-zero ADMM state (BODex's solver always starts there)."""
    m = (cfg.cone_edges + 1) * k + 1
    return QpState(like.new_zeros(b, 6, 3 * k), like.new_zeros(b, 6, m), like.new_zeros(b, 6, m))


@torch.no_grad()
def solve_forces(grasp: Tensor, cfg: QpConfig = QpConfig(), state: QpState | None = None) -> QpState:
    """``cfg.iterations`` ADMM iterations on the six QPs of each grasp matrix (B, 6, 3K), from
    ``state`` (a previous solve's) or from zero."""
    b, _, n = grasp.shape
    k = n // 3
    if k * cfg.force_max < cfg.min_normal_total:
        raise ValueError(f"{k} contacts of normal force <= {cfg.force_max} cannot sum to {cfg.min_normal_total}")
    c, lower, upper = constraints(k, cfg, grasp)
    start = cold_state(b, k, cfg, grasp) if state is None else state
    if start.z.shape != (b, 6, len(c)):
        raise ValueError(f"warm-start state of shape {tuple(start.z.shape)} does not fit {b} grasps of {k} "
                         f"contacts with {cfg.cone_edges} cone edges")
    z, u = start.z.flatten(0, 1), start.u.flatten(0, 1)  # (B * 6, M): the C-products as one matmul
    force_map, force_offset = x_update(grasp, c, cfg)
    for _ in range(cfg.iterations):
        x = torch.baddbmm(force_offset, (z - u).view(b, 6, -1), force_map).flatten(0, 1)
        w = torch.addmm(z, x, c.T, beta=1 - cfg.alpha, alpha=cfg.alpha) + u
        z = torch.clamp(w, lower, upper)
        u = w - z
    x = torch.baddbmm(force_offset, (z - u).view(b, 6, -1), force_map)
    return QpState(x, z.view(b, 6, -1), u.view(b, 6, -1))


def x_update(grasp: Tensor, c: Tensor, cfg: QpConfig) -> tuple[Tensor, Tensor]:
    """The ADMM x-update as an affine map of v = z - u: f~ = v A + b, with A (B, M, 3K), b (B, 6, 3K).

    H = G^T G + lam D_n plus rho C^T C is positive definite (the cone rows span the tangents, the
    bound rows the normal), so OSQP's proximal sigma is not needed and f~ depends on (z, u) alone."""
    hessian = grasp.transpose(1, 2) @ grasp
    hessian.diagonal(dim1=1, dim2=2)[:, 0::3] += cfg.pressure_weight
    lower = torch.linalg.cholesky(hessian + cfg.rho * (c.T @ c))
    eye = torch.eye(hessian.shape[-1], dtype=grasp.dtype, device=grasp.device).expand_as(hessian)
    lower_inv = torch.linalg.solve_triangular(lower, eye, upper=False)  # 2x faster than cholesky_inverse on CPU
    kkt_inv = lower_inv.mT @ lower_inv  # (B, 3K, 3K)
    return cfg.rho * c @ kkt_inv, (targets(cfg, grasp) @ grasp) @ kkt_inv  # b = -q K^-1, q = -k G^T w_j


def wrench_residuals(grasp: Tensor, forces: Tensor, cfg: QpConfig = QpConfig()) -> Tensor:
    """(B, 6) squared residuals ||G f_j - k w_j||^2 for grasp matrices (B, 6, 3K) and forces (B, 6, 3K)."""
    wrench = forces @ grasp.transpose(1, 2)  # (B, 6 targets, 6 wrench components)
    return ((wrench - targets(cfg, grasp)) ** 2).sum(-1)


def qp_energy(points: Tensor, inward_normals: Tensor, center: Tensor, half_diagonal: Tensor,
              cfg: QpConfig = QpConfig(), state: QpState | None = None, solve: bool = True
              ) -> tuple[Tensor, QpState]:
    """The QP residual energy (B,) (mean over the six targets) and the ADMM state.

    points, inward_normals: (B, K, 3); center: (B, 3); half_diagonal: (B,). ``state`` warm-starts
    the solve; with ``solve=False`` its forces are reused as they are (BODex re-solves every 5th
    step), for grasps whose contacts moved since. Differentiable through G only."""
    grasp = grasp_matrix(points, inward_normals, center, half_diagonal)
    if solve:
        state = solve_forces(grasp.detach(), cfg, state)
    elif state is None:
        raise ValueError("qp_energy(solve=False) needs the state of an earlier solve")
    return wrench_residuals(grasp, state.x, cfg).mean(-1), state
