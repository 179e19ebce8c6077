import numpy as np
import pytest
import torch
import trimesh

from dexlite_core.objects.sdf import SdfSpec, exact_signed_distance
from dexlite_core.objects.store import load_object_set
from dexlite_core.pipeline.objects import DatasetSource, ObjectsConfig, run as build_objects


def test_exact_signed_distance_sign_and_value():
    box = trimesh.creation.box((1.0, 1.0, 1.0))
    q = np.array([[0.0, 0, 0], [0.7, 0, 0], [0.6, 0.6, 0.6]])
    expected = [-0.5, 0.2, np.sqrt(3) * 0.1]
    np.testing.assert_allclose(exact_signed_distance(box, q), expected, atol=1e-9)
    np.testing.assert_allclose(exact_signed_distance(box, q[:1]), [-0.5], atol=1e-9)  # single-point queries too


def near_surface_queries(mesh, n, band, seed):
    pts, face = trimesh.sample.sample_surface(mesh, n, seed=seed)
    offset = np.random.default_rng(seed).uniform(-band, band, (n, 1))
    return pts + mesh.face_normals[face] * offset


@pytest.fixture(scope="module")
def default_resolution_objects(tmp_path_factory):
    out = tmp_path_factory.mktemp("sdf128")
    build_objects(ObjectsConfig(codes=("proc-box-brick", "pyb-duck", "pyb-mug")), DatasetSource(), out)
    return out


def test_grid_lookup_matches_exact_distance(default_resolution_objects):
    """Default resolution: within 1 mm of the exact signed distance for points within 5 mm of
    the surface, at the 0.10 m scale."""
    root = default_resolution_objects
    objects = load_object_set(root)
    assert objects.resolution == SdfSpec().resolution
    scale = 0.10
    for i, code in enumerate(objects.codes):
        mesh = trimesh.load(root / code / "mesh.obj", force="mesh")
        q = near_surface_queries(mesh, 3000, band=0.005 / scale, seed=i)
        exact = exact_signed_distance(mesh, q) * scale
        got = objects.signed_distance(torch.tensor(q * scale, dtype=torch.float32), torch.full((len(q),), i),
                                      torch.full((len(q),), scale)).numpy()
        err = np.abs(got - exact)
        assert err.max() < 1e-3, f"{code}: max error {err.max() * 1000:.2f} mm"


def test_normals_point_outwards(small_objects):
    objects = load_object_set(small_objects)
    obj = torch.zeros(objects.points.shape[1], dtype=torch.long)
    scale = torch.full(obj.shape, 0.08)
    points = objects.points[0] * 0.08 + 0.004 * objects.normals[0]
    d, n = objects.distance_and_normal(points, obj, scale)
    assert (d > 0).float().mean() > 0.98
    assert ((n * objects.normals[0]).sum(-1) > 0.8).float().mean() > 0.95


def test_far_points_pull_inwards(small_objects):
    objects = load_object_set(small_objects)
    far = torch.tensor([[1.0, 0.0, 0.0]], requires_grad=True)
    d = objects.signed_distance(far, torch.zeros(1, dtype=torch.long), torch.tensor([0.08]))
    d.backward()
    assert d.item() > 0.9 and far.grad[0, 0] > 0.9
