"""Shared fixtures: the hand, small object sets built through the real objects pipeline."""
from __future__ import annotations

from pathlib import Path

import pytest

import dexlite_core  # noqa: F401  (first: sets OpenMP's wait policy before torch loads)
import torch

from dexlite_core.hand.model import HandModel
from dexlite_core.pipeline.objects import DatasetSource, ObjectsConfig, run as build_objects

REPO = Path(__file__).resolve().parents[1]
DGN_SAMPLE = REPO.parent / "shared" / "dexgraspnet-sample"
#: Small, varied catalog subset used across unit tests.
SMALL_CATALOG = ("proc-box-brick", "proc-cyl-can", "pyb-duck")


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs CUDA")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def hand() -> HandModel:
    return HandModel()


@pytest.fixture(scope="session")
def small_objects(tmp_path_factory) -> Path:
    """The objects-stage output for SMALL_CATALOG at SDF resolution 64."""
    out = tmp_path_factory.mktemp("objects")
    build_objects(ObjectsConfig(codes=SMALL_CATALOG, sdf_resolution=64, n_points=1024, test_fraction=0.34,
                                val_fraction=0.0), DatasetSource(), out)
    return out


@pytest.fixture(scope="session")
def dgn_root() -> Path:
    if not (DGN_SAMPLE / "dataset").is_dir():
        pytest.skip("DexGraspNet sample not found beside the checkout (../shared/dexgraspnet-sample)")
    return DGN_SAMPLE


@pytest.fixture(scope="session")
def dgn_objects(dgn_root, tmp_path_factory) -> Path:
    """The objects-stage output for the DexGraspNet sample at the default resolution."""
    out = tmp_path_factory.mktemp("dgn_objects")
    build_objects(ObjectsConfig(scales=(0.06, 0.08, 0.10, 0.12, 0.15)),
                  DatasetSource("dexgraspnet", str(dgn_root)), out)
    return out


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Path:
    """The whole DAG (objects -> report) run by `dvc repro` on the tiny configuration."""
    from pipeline_workspace import dvc, make_workspace

    root = make_workspace(tmp_path_factory.mktemp("pipeline"))
    dvc(root, "repro")
    return root
