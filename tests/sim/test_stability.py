import math
import shutil

import numpy as np
import pandas as pd
import pytest

from dexlite_core.params import ParamsError, build
from dexlite_core.pipeline.objects import DatasetSource, ObjectsConfig, run as build_objects
from dexlite_core.pipeline.stability import StabilityInputs, run as run_stability
from dexlite_core.sim.stability import LOAD_ERROR, REASONS, StabilityConfig, object_stability, read_stability

UPRIGHT = ("pyb-mug", "proc-box-cube", "proc-box-brick", "proc-cyl-can", "proc-cyl-bottle")
CODES = (*UPRIGHT, "proc-sphere")


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    out = tmp_path_factory.mktemp("stability_objects")
    build_objects(ObjectsConfig(codes=CODES, sdf_resolution=32, n_points=256), DatasetSource(), out)
    return out


@pytest.fixture(scope="module")
def run(objects, tmp_path_factory):
    out = tmp_path_factory.mktemp("stability")
    return out, run_stability(StabilityConfig(), StabilityInputs(objects), out)


def test_upright_objects_rest_standing(run):
    table = read_stability(run[0]).set_index(["object_code", "scale"])
    for code in UPRIGHT:
        for scale in (0.06, 0.08):
            row = table.loc[(code, np.float32(scale))]
            assert row.stable and pd.isna(row.reason), (code, scale, row.reason)
            w, x, y, z = row.quat
            up = 1 - 2 * (x * x + y * y)  # z of the object's own z axis after the rotation
            assert up > math.cos(math.radians(10)), (code, scale, row.quat)
            assert row.drift <= 0.05 and row.tilt_deg <= 15.0


def test_every_pair_has_an_outcome(run):
    out, metrics = run
    table = read_stability(out)
    assert len(table) == metrics["n_pairs"] == 2 * len(CODES)
    assert list(table.object_code) == sorted(table.object_code)
    assert (table.stable | table.reason.fillna("").str.len().gt(0)).all()
    assert table.stable.sum() == metrics["n_stable"]
    sphere = table[table.object_code == "proc-sphere"]
    assert (sphere.stable | sphere.reason.isin(REASONS)).all()
    assert all(len(q) == 4 and abs(np.linalg.norm(q) - 1) < 1e-5 and q[0] >= 0 for q in table.quat)


def test_output_is_deterministic(run, objects, tmp_path):
    run_stability(StabilityConfig(), StabilityInputs(objects), tmp_path)
    assert (tmp_path / "stability.parquet").read_bytes() == (run[0] / "stability.parquet").read_bytes()


def test_failures_give_reasons(objects):
    strict = StabilityConfig(max_drift=1e-9, max_tilt_deg=1e-9, n_orientations=2, settle_seconds=0.2, test_seconds=0.2)
    rows = object_stability(strict, objects, "proc-box-cube", (0.06,))
    assert not rows[0]["stable"] and rows[0]["reason"] in ("drift", "tilt")


def test_bad_object_is_a_failed_row_not_a_crash(objects, tmp_path):
    shutil.copytree(objects / "proc-box-cube", tmp_path / "broken")
    (tmp_path / "broken" / "mesh.obj").write_text("not a mesh\n")
    rows = object_stability(StabilityConfig(), tmp_path, "broken", (0.06, 0.08))
    assert [r["stable"] for r in rows] == [False, False]
    assert all(r["reason"].startswith(LOAD_ERROR) and "broken" in r["reason"] for r in rows)


def test_missing_output_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="dvc repro stability"):
        read_stability(tmp_path)


@pytest.mark.parametrize("key, value", [("mass", 0.0), ("lateral_friction", -1.0), ("test_seconds", 0.0),
                                        ("max_drift", -0.01), ("max_tilt_deg", 200.0), ("n_orientations", 0),
                                        ("timestep", 0.1), ("drop_height", -0.01), ("n_workers", 0)])
def test_bad_config_is_rejected(key, value):
    with pytest.raises(ValueError, match=key):
        StabilityConfig(**{key: value})
    with pytest.raises(ParamsError, match=f"stability.{key}"):
        build(StabilityConfig, {key: value}, "stability")
