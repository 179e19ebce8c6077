"""The friction-aware force-closure energy (dexlite_core.grasp_qp, issue 32 item 1): speed and accuracy.

Contacts: thumb-against-fingers sets with jitter on a 10 x 7 x 5 cm ellipsoid (every energy from
~0 to ~1 occurs). Keys ``<device>_b<batch>_k<contacts>_...``:

* ``it<N>_grasps_per_s``: energy forward + backward, QP solved cold with N ADMM iterations;
  ``residual_only_grasps_per_s``: the same with the forces of an earlier solve (the steps between
  re-solves); ``it50_every5_grasps_per_s``: one solve every 5th step (BODex's interval), per step;
  ``force_closure_grasps_per_s``: the simplest alternative, energy.force_closure, same contacts.
* ``it<N>_abs_err_mean`` / ``_max``: |E(N iterations) - E(1000 iterations)|, float32;
  ``float32_vs_float64_abs_err_max``: the 1000-iteration energies in both precisions;
  ``it50_rho<r>_abs_err_mean``: the same at other ADMM penalties (rho = 1 is the default).
* ``move<j>_warm_iters_to_1e-3_<q>`` / ``_cold_...``: after the contacts move (directions jittered
  by j, mean move ``move<j>_mean_mm``: a few optimizer steps), ADMM iterations until
  |E - E_ref| <= 1e-3 from then on, from the previous solution (50 iterations) or from zero
  (median, 90th percentile and max over grasps; 301 = not within 1e-3 for good by 300).
Writes bench/results/grasp_qp.json. torch runs on 1 thread (2 threads stall on this machine).
"""
from __future__ import annotations

import torch
from common import devices, median_seconds, write_results

from dexlite_core.energy import force_closure
from dexlite_core.grasp_qp import QpConfig, QpState, cold_state, grasp_matrix, qp_energy, solve_forces, wrench_residuals

AXES = (0.05, 0.035, 0.025)
REFERENCE_ITERATIONS = 1000


def directions(b: int, k: int, seed: int) -> torch.Tensor:
    """(B, K, 3) contact directions: a thumb opposite K - 1 fingers, all jittered."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(b, 1, 3, generator=g).expand(b, k, 3).clone()
    d[:, 0] *= -1
    return d + 0.6 * d.norm(dim=-1, keepdim=True) * torch.randn(b, k, 3, generator=g)


def contacts(d: torch.Tensor, device: str, dtype=torch.float32) -> tuple[torch.Tensor, ...]:
    """Points along directions ``d`` on the ellipsoid, inward normals, centres, half diagonals."""
    axes = torch.tensor(AXES, dtype=torch.float64)
    d = d.double()
    points = d / ((d / axes) ** 2).sum(-1, keepdim=True).sqrt()
    outward = torch.nn.functional.normalize(points / axes ** 2, dim=-1)
    b = len(d)
    out = points, -outward, torch.zeros(b, 3, dtype=torch.float64), axes.norm().expand(b).clone()
    return tuple(t.to(device=device, dtype=dtype) for t in out)


def energy_of(grasp: torch.Tensor, state: QpState) -> torch.Tensor:
    return wrench_residuals(grasp, state.x).mean(-1)


def speed(points, normals, center, half, cfg: QpConfig, device: str, solve: bool = True) -> float:
    """Grasps per second, energy forward + backward with respect to the points."""
    state = solve_forces(grasp_matrix(points, normals, center, half), cfg)

    def step():
        p = points.clone().requires_grad_()
        qp_energy(p, normals, center, half, cfg, state=None if solve else state, solve=solve)[0].sum().backward()

    return len(points) / median_seconds(step, device=device)


def force_closure_speed(points, normals, device: str) -> float:
    def step():
        p = points.clone().requires_grad_()
        force_closure(p, -normals).sum().backward()

    return len(points) / median_seconds(step, device=device)


def iterations_to(grasp: torch.Tensor, reference: torch.Tensor, start: QpState | None, tol: float = 1e-3,
                  cap: int = 300) -> torch.Tensor:
    """Per grasp, the iteration count from which on (up to ``cap``) the energy stays within ``tol``
    of ``reference`` (one iteration per solve: chained solves equal one long solve)."""
    cfg = QpConfig(iterations=1)
    state = start if start is not None else cold_state(len(grasp), grasp.shape[-1] // 3, cfg, grasp)
    needed = torch.zeros(len(grasp), device=grasp.device)
    for done in range(cap + 1):
        needed[(energy_of(grasp, state) - reference).abs() > tol] = done + 1
        state = solve_forces(grasp, cfg, state)
    return needed


def accuracy(grasp: torch.Tensor, reference: torch.Tensor, prefix: str, cfg: QpConfig) -> dict[str, float]:
    err = (energy_of(grasp, solve_forces(grasp, cfg)) - reference).abs()
    return {f"{prefix}_abs_err_mean": err.mean().item(), f"{prefix}_abs_err_max": err.max().item()}


def profile_k(device: str, b: int, k: int, iteration_counts: tuple[int, ...]) -> dict[str, float]:
    points, normals, center, half = contacts(directions(b, k, seed=k), device)
    grasp = grasp_matrix(points, normals, center, half)
    reference = energy_of(grasp, solve_forces(grasp, QpConfig(iterations=REFERENCE_ITERATIONS)))
    tag = f"{device}_b{b}_k{k}"
    figures = {f"{tag}_energy_median": reference.median().item()}
    for n in iteration_counts:
        cfg = QpConfig(iterations=n)
        figures[f"{tag}_it{n}_grasps_per_s"] = speed(points, normals, center, half, cfg, device)
        figures.update(accuracy(grasp, reference, f"{tag}_it{n}", cfg))
    return figures


def profile_k4(device: str, b: int = 1024) -> dict[str, float]:
    """Everything beyond the iteration sweep, at K = 4: baseline, solve interval, precision, rho, warm start."""
    tag = f"{device}_b{b}_k4"
    d = directions(b, 4, seed=4)
    points, normals, center, half = contacts(d, device)
    grasp = grasp_matrix(points, normals, center, half)
    reference = energy_of(grasp, solve_forces(grasp, QpConfig(iterations=REFERENCE_ITERATIONS)))
    figures = {f"{tag}_force_closure_grasps_per_s": force_closure_speed(points, normals, device),
               f"{tag}_residual_only_grasps_per_s": speed(points, normals, center, half, QpConfig(), device, False)}
    solve_s = b / speed(points, normals, center, half, QpConfig(), device)
    rest_s = b / figures[f"{tag}_residual_only_grasps_per_s"]
    figures[f"{tag}_it50_every5_grasps_per_s"] = 5 * b / (solve_s + 4 * rest_s)
    grasp64 = grasp_matrix(*contacts(d, device, torch.float64))
    reference64 = energy_of(grasp64, solve_forces(grasp64, QpConfig(iterations=REFERENCE_ITERATIONS)))
    figures[f"{tag}_float32_vs_float64_abs_err_max"] = (reference.double() - reference64).abs().max().item()
    for rho in (0.3, 3.0):
        figures.update(accuracy(grasp, reference, f"{tag}_it50_rho{rho:g}", QpConfig(rho=rho)))
    figures.update(warm_start(d, device, tag))
    return figures


def warm_start(d: torch.Tensor, device: str, tag: str) -> dict[str, float]:
    """Iterations to the moved contacts' reference energy, from the previous solution (the
    optimizer's last solve, 50 iterations) vs from zero, for a small and a larger move."""
    points, *rest = contacts(d, device)
    old = grasp_matrix(points, *rest)
    previous = solve_forces(old, QpConfig())
    figures = {}
    for jitter in (0.03, 0.1):
        noise = torch.randn(d.shape, generator=torch.Generator().manual_seed(9))
        moved_points, *moved_rest = contacts(d + jitter * d.norm(dim=-1, keepdim=True) * noise, device)
        moved = grasp_matrix(moved_points, *moved_rest)
        reference = energy_of(moved, solve_forces(moved, QpConfig(iterations=REFERENCE_ITERATIONS)))
        key = f"{tag}_move{jitter:g}"
        figures[f"{key}_mean_mm"] = 1000 * (moved_points - points).norm(dim=-1).mean().item()
        for name, start in (("warm", previous), ("cold", None)):
            needed = iterations_to(moved, reference, start)
            figures[f"{key}_{name}_iters_to_1e-3_median"] = needed.median().item()
            figures[f"{key}_{name}_iters_to_1e-3_p90"] = needed.quantile(0.9).item()
            figures[f"{key}_{name}_iters_to_1e-3_max"] = needed.max().item()
    return figures


def main() -> None:
    torch.set_num_threads(1)
    figures = {}
    for device in devices():
        for k in (4, 5, 6):
            figures.update(profile_k(device, 1024, k, (25, 50, 100) if k == 4 else (50,)))
        for b in (256, 4096):
            figures.update(profile_k(device, b, 4, (50,)))
        figures.update(profile_k4(device))
    write_results("grasp_qp", figures)


if __name__ == "__main__":
    main()
