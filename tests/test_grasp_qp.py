import math

import pytest
import torch

from dexlite_core.energy import FC_THRESHOLD, force_closure
from dexlite_core.grasp_qp import QpConfig, contact_frames, grasp_matrix, qp_energy, solve_forces, wrench_residuals

F64 = torch.float64


def on_unit_sphere(*directions: tuple[float, float, float]) -> torch.Tensor:
    """(1, K, 3) points on the unit sphere (= their outward normals)."""
    d = torch.tensor(directions, dtype=F64)
    return (d / d.norm(dim=-1, keepdim=True))[None]


FINGERS = ((1, 0, -0.35), (1, 0, 0), (1, 0, 0.35))
OPPOSED = on_unit_sphere(*FINGERS, (-1, 0, 0))  # three fingers against a thumb
ONE_SIDE = on_unit_sphere(*FINGERS)


def sphere_energy(points: torch.Tensor, cfg: QpConfig = QpConfig()) -> torch.Tensor:
    b = len(points)
    center, half_diagonal = points.new_zeros(b, 3), points.new_full((b,), math.sqrt(3))  # unit cube's
    return qp_energy(points, -points, center, half_diagonal, cfg)[0]


def random_grasps(b: int, k: int, seed: int = 0, dtype=F64):
    """Thumb-against-fingers contacts with jitter on an ellipsoid: (points, inward normals, centre, L)."""
    g = torch.Generator().manual_seed(seed)
    axes = torch.tensor([0.05, 0.035, 0.025], dtype=dtype)
    d = torch.randn(b, 1, 3, generator=g, dtype=dtype).expand(b, k, 3).clone()
    d[:, 0] *= -1
    d = d + 0.6 * d.norm(dim=-1, keepdim=True) * torch.randn(b, k, 3, generator=g, dtype=dtype)
    points = d / ((d / axes) ** 2).sum(-1, keepdim=True).sqrt()
    outward = points / axes ** 2
    outward = outward / outward.norm(dim=-1, keepdim=True)
    return points, -outward, torch.zeros(b, 3, dtype=dtype), axes.norm().expand(b).clone()


def test_opposed_fingers_hold_where_one_side_does_not_and_fc_misranks_them():
    good, bad = sphere_energy(OPPOSED).item(), sphere_energy(ONE_SIDE).item()
    assert good < 0.002  # the probe: ~0.0009
    assert 0.7 < bad < 1.0  # ~0.87
    fc_good, fc_bad = force_closure(OPPOSED, OPPOSED).item(), force_closure(ONE_SIDE, ONE_SIDE).item()
    assert fc_good > 10 * FC_THRESHOLD  # E_fc rejects the grasp that holds (issue: 3.0)
    assert fc_bad / fc_good < 0.01 * bad / good  # and separates the two far less


def test_two_opposed_contacts_score_lower_than_three_on_one_side():
    assert sphere_energy(on_unit_sphere((1, 0, 0), (-1, 0, 0))) < sphere_energy(ONE_SIDE)


def test_gradient_is_the_residual_gradient_with_forces_held_fixed():
    points, normals, center, half = random_grasps(3, 4)
    cfg = QpConfig(iterations=200)
    p = points.clone().requires_grad_()
    energy, state = qp_energy(p, normals, center, half, cfg)
    (grad,) = torch.autograd.grad(energy.sum(), p)
    assert torch.isfinite(grad).all() and (grad.abs().amax((1, 2)) > 1e-3).all()

    def fixed(q):
        return wrench_residuals(grasp_matrix(q, normals, center, half), state.x, cfg).mean(-1)

    h = 1e-6
    for i, j in ((0, 0), (1, 2), (3, 1)):
        step = torch.zeros_like(points)
        step[:, i, j] = h
        fd = (fixed(points + step) - fixed(points - step)) / (2 * h)
        torch.testing.assert_close(grad[:, i, j], fd, rtol=1e-5, atol=1e-7)


def test_energy_passes_gradcheck_with_forces_held_fixed():
    """gradcheck in points and centre. In normals, finite differences with the tangents' reference
    axis held fixed: the tangents are transported, not turned about n (grasp_qp.contact_frames)."""
    points, normals, center, half = random_grasps(2, 4, seed=1)
    state = solve_forces(grasp_matrix(points, normals, center, half))

    def energy(p, c):
        return qp_energy(p, normals, c, half, state=state, solve=False)[0]

    inputs = (points.clone().requires_grad_(), center.clone().requires_grad_())
    assert torch.autograd.gradcheck(energy, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)
    n = normals.clone().requires_grad_()
    unit = n / n.norm(dim=-1, keepdim=True)
    (grad,) = torch.autograd.grad(qp_energy(points, unit, center, half, state=state, solve=False)[0].sum(), n)
    reference = contact_frames(normals)[..., 1]  # held fixed: the finite differences see no twist

    def transported(m: torch.Tensor) -> torch.Tensor:
        m = m / m.norm(dim=-1, keepdim=True)
        t1 = reference - (reference * m).sum(-1, keepdim=True) * m
        t1 = t1 / t1.norm(dim=-1, keepdim=True)
        frames = torch.stack([m, t1, torch.linalg.cross(m, t1, dim=-1)], -1)
        torques = torch.linalg.cross(((points - center[:, None]) / half[:, None, None])[..., None].expand_as(frames),
                                     frames, dim=-2)
        grasp = torch.cat([frames, torques], -2).permute(0, 2, 1, 3).flatten(2)
        return wrench_residuals(grasp, state.x).mean(-1)

    step = torch.zeros_like(normals)
    step[:, 2, 0] = 1e-6
    fd = (transported(normals + step) - transported(normals - step)) / 2e-6
    assert grad.abs().max() > 1e-3
    torch.testing.assert_close(grad[:, 2, 0], fd, rtol=1e-5, atol=1e-8)


def test_batch_equals_one_grasp_at_a_time():
    points, normals, center, half = random_grasps(5, 5, seed=2, dtype=torch.float32)
    batch, _ = qp_energy(points, normals, center, half)
    single = torch.cat([qp_energy(points[i:i + 1], normals[i:i + 1], center[i:i + 1], half[i:i + 1])[0]
                        for i in range(5)])
    torch.testing.assert_close(batch, single, rtol=1e-4, atol=1e-6)


def test_warm_start_from_the_solution_converges_sooner_to_the_same_value():
    points, normals, center, half = random_grasps(16, 4, seed=3)
    grasp = grasp_matrix(points, normals, center, half)
    reference = wrench_residuals(grasp, solve_forces(grasp, QpConfig(iterations=2000)).x).mean(-1)
    chained = solve_forces(grasp, QpConfig(iterations=30))
    chained = solve_forces(grasp, QpConfig(iterations=30), chained)
    torch.testing.assert_close(chained.x, solve_forces(grasp, QpConfig(iterations=60)).x)

    moved = grasp_matrix(points + 0.001, normals, center, half)  # an optimizer step later
    moved_reference = wrench_residuals(moved, solve_forces(moved, QpConfig(iterations=2000)).x).mean(-1)
    warm_start = solve_forces(grasp, QpConfig(iterations=2000))

    def error(iterations: int, start=None) -> float:
        x = solve_forces(moved, QpConfig(iterations=iterations), start).x
        return (wrench_residuals(moved, x).mean(-1) - moved_reference).abs().max().item()

    assert error(10, warm_start) < 0.1 * error(10)
    assert error(200, warm_start) < 1e-5 and error(300) < 1e-4
    assert (moved_reference - reference).abs().max() > 1e-4  # the move changed the problem


def test_solution_satisfies_cone_and_bounds():
    cfg = QpConfig(iterations=200)
    points, normals, center, half = random_grasps(32, 6, seed=4, dtype=torch.float32)
    forces = solve_forces(grasp_matrix(points, normals, center, half), cfg).x.view(32, 6, 6, 3)
    normal, tangent = forces[..., 0], forces[..., 1:]
    tol = 1e-3
    assert (normal >= cfg.force_min - tol).all() and (normal <= cfg.force_max + tol).all()
    assert (normal.sum(-1) >= cfg.min_normal_total - tol).all()
    theta = torch.arange(cfg.cone_edges) * (2 * math.pi / cfg.cone_edges)
    edges = torch.stack([theta.sin(), theta.cos()], -1)  # the cone's facet normals in (t1, t2)
    assert ((tangent @ edges.T).amax(-1) <= cfg.mu * normal + tol).all()
    assert (tangent.norm(dim=-1) > 1e-3).any()  # friction is used, not only normal forces


@pytest.mark.parametrize("bad", [dict(mu=-0.1), dict(cone_edges=2), dict(cone_edges=8.0), dict(force_min=2.0),
                                 dict(force_max=0), dict(min_normal_total=math.nan), dict(iterations=0),
                                 dict(rho=0), dict(alpha=2.0), dict(target_scale=-1), dict(pressure_weight=math.inf)])
def test_invalid_config_raises(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        QpConfig(**bad)


def test_infeasible_totals_and_mismatched_warm_start_raise():
    points, normals, center, half = random_grasps(2, 4)
    grasp = grasp_matrix(points, normals, center, half)
    with pytest.raises(ValueError, match="cannot sum"):
        solve_forces(grasp, QpConfig(min_normal_total=5.0))
    with pytest.raises(ValueError, match="does not fit"):
        solve_forces(grasp, state=solve_forces(grasp[:1]))
    with pytest.raises(ValueError, match="earlier solve"):
        qp_energy(points, normals, center, half, solve=False)


@pytest.mark.cuda
def test_cuda_matches_cpu():
    points, normals, center, half = random_grasps(8, 4, seed=5, dtype=torch.float32)
    cpu, _ = qp_energy(points, normals, center, half)
    cuda, state = qp_energy(*(t.cuda() for t in (points, normals, center, half)))
    assert state.x.is_cuda
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-3, atol=1e-5)
