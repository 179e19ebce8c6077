import numpy as np
import pytest
import trimesh

from dexlite_core.objects.mesh import NORMALIZE_MARGIN, MeshError, load_mesh, normalize, prepare_mesh, repair


def test_empty_file(tmp_path):
    path = tmp_path / "empty.obj"
    path.write_text("")
    with pytest.raises(MeshError, match="empty.obj.*empty"):
        load_mesh(path)


def test_not_a_mesh(tmp_path):
    path = tmp_path / "notes.obj"
    path.write_text("this is a shopping list\nmilk\n")
    with pytest.raises(MeshError, match="notes.obj"):
        load_mesh(path)
    other = tmp_path / "mesh.txt"
    other.write_text("v 0 0 0\n")
    with pytest.raises(MeshError, match="unsupported mesh format"):
        load_mesh(other)


def test_nan_vertices(tmp_path):
    path = tmp_path / "nan.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv nan 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n")
    with pytest.raises(MeshError, match="nan.obj.*NaN"):
        load_mesh(path)


def test_unrepairable_open_mesh(tmp_path):
    cup = trimesh.creation.cylinder(radius=1, height=1, sections=32)
    top = cup.face_normals[:, 2] > 0.9  # drop the top cap: a 32-edge hole
    cup.update_faces(~top)
    path = tmp_path / "cup.stl"
    cup.export(path)
    with pytest.raises(MeshError, match="cup.stl.*not watertight.*closed solid"):
        prepare_mesh(path)


def test_small_holes_are_closed_and_shells_united():
    box = trimesh.creation.box()
    box.update_faces(np.arange(len(box.faces)) != 0)  # one missing triangle
    solid, shells = repair(box)
    assert solid.is_watertight and solid.volume == pytest.approx(1.0)
    overlapping = trimesh.util.concatenate([trimesh.creation.box(), trimesh.creation.box().apply_translation([0.5, 0, 0])])
    solid, shells = repair(overlapping)
    assert len(shells) == 2 and solid.is_watertight and solid.volume == pytest.approx(1.5)


def test_normalization_follows_dexgraspnet():
    mesh = trimesh.creation.box((2, 1, 1)).apply_translation([3, 4, 5])
    prepared = normalize(mesh)
    assert np.allclose(prepared.mesh.bounds.mean(0), 0)
    assert np.linalg.norm(prepared.mesh.vertices, axis=1).max() == pytest.approx(1 / NORMALIZE_MARGIN)
    assert np.allclose(prepared.mesh.vertices * prepared.radius + prepared.center, mesh.vertices)
