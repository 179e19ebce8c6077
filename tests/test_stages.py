"""Stages run by DVC on a tiny configuration; same params give the same bytes."""
import json

import pytest

from dexlite_core.data.grasps import read_grasps
from pipeline_workspace import dvc, make_workspace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = make_workspace(tmp_path_factory.mktemp("pipeline"))
    dvc(root, "repro", "filter")
    return root


def test_curate_stage_writes_grasps_and_metrics(workspace):
    table = read_grasps(workspace / "data/curated/grasps.parquet")
    metrics = json.loads((workspace / "data/metrics/curate.json").read_text())
    assert metrics["attempts"] == 16 * 2  # two train objects (one held out as test), one scale
    assert metrics["n_grasps"] == len(table) and set(table.source) <= {"optimize"}
    assert 0 <= metrics["acceptance_rate"] <= 1
    assert set(table.object_code) <= {"proc-box-brick", "proc-cyl-can", "pyb-duck"}
    shown = dvc(workspace, "metrics", "show").stdout
    assert "acceptance_rate" in shown


def test_same_params_give_identical_bytes(workspace):
    first = (workspace / "data/curated/grasps.parquet").read_bytes()
    dvc(workspace, "repro", "--force", "curate")
    assert (workspace / "data/curated/grasps.parquet").read_bytes() == first


def test_filter_stage_keeps_passed_grasps_with_results(workspace):
    tested = read_grasps(workspace / "data/filtered/all.parquet")
    passed = read_grasps(workspace / "data/filtered/grasps.parquet")
    metrics = json.loads((workspace / "data/metrics/filter.json").read_text())
    assert tested.sim is not None and len(tested) == metrics["n_tested"]
    assert len(passed) == metrics["n_passed"] == int(tested.sim.success.sum()) > 0
    assert passed.sim.success.all()
    assert set(metrics["by_object"]) == set(tested.object_code)
    assert sum(metrics["fail_reasons"].values()) == len(tested) - len(passed)
    assert (workspace / "data/filtered/pass_by_object.csv").read_text().startswith("object_code,pass_rate")
