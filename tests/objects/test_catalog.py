import xml.etree.ElementTree as ET

import mujoco
import pytest

from dexlite_core.objects.catalog import default_catalog, split_objects
from dexlite_core.objects.mesh import SHAPES, convex_pieces, normalize, repair, shape_of
from dexlite_core.sim.scene import ObjectPhysics, object_assets, object_body, warnings_raised

CATALOG = default_catalog()


def test_catalog_is_large_and_varied():
    assert len(CATALOG) >= 40
    assert len({e.code for e in CATALOG}) == len(CATALOG)
    families = {e.family for e in CATALOG}
    assert {"box", "cylinder", "sphere", "capsule", "ellipsoid", "cone", "bowl", "mug", "duck", "teddy", "bunny",
            "random"} <= families
    assert "pyb-random-168" not in {e.code for e in CATALOG}


def test_catalog_covers_every_shape_family():
    """The test and the model see flat, thin and concave objects, not only compact ones."""
    procedural = [e for e in CATALOG if e.source == "procedural"]
    shapes = {e.code: shape_of(repair(e.mesh(), e.code)[0]) for e in procedural}
    assert set(shapes.values()) == set(SHAPES)
    assert shapes["proc-box-plate"] == shapes["proc-cyl-coaster"] == "flat"
    assert shapes["proc-cyl-handle"] == "thin" and shapes["proc-bowl-shallow"] == "concave"
    assert shapes["proc-box-cube"] == shapes["proc-sphere"] == "compact"


@pytest.mark.parametrize("entry", CATALOG, ids=lambda e: e.code)
def test_catalog_object_is_watertight_and_simulates(entry):
    solid, shells = repair(entry.mesh(), entry.code)
    assert solid.is_watertight and solid.volume > 0
    prepared = normalize(solid, convex_pieces(solid, shells))
    root = ET.Element("mujoco")
    ET.SubElement(root, "option", timestep="0.002")
    ET.SubElement(root, "asset").extend(object_assets(list(prepared.pieces), 0.08))
    world = ET.SubElement(root, "worldbody")
    ET.SubElement(world, "geom", type="plane", size="1 1 0.1")
    body = object_body(prepared.mesh, list(prepared.pieces), 0.08, ObjectPhysics())
    body.set("pos", "0 0 0.15")
    world.append(body)
    model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
    data = mujoco.MjData(model)
    for _ in range(500):
        mujoco.mj_step(model, data)
    assert warnings_raised(data) == []
    assert 0 < data.qpos[2] < 0.15  # fell and came to rest on the plane


def test_split_is_deterministic_and_complete():
    codes = [e.code for e in CATALOG]
    a = split_objects(codes, 0.1, 0.2, seed=0)
    assert a == split_objects(list(reversed(codes)), 0.1, 0.2, seed=0)
    assert set(a) == set(codes) and {"train", "val", "test"} == set(a.values())
    assert sum(v == "test" for v in a.values()) == round(0.2 * len(codes))
    assert a != split_objects(codes, 0.1, 0.2, seed=1)
    with pytest.raises(ValueError, match="fractions"):
        split_objects(codes, 0.6, 0.5, seed=0)
