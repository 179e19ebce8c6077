"""Validity of the MuJoCo grasp tests (not a timing): pass rates of DexGraspNet's released
grasps (the sample beside the checkout, 699 grasps, uncoupled hand), of the same grasps with
the palm 3 cm back, and with the fingers opened; lift and six-direction, params.yaml's `sim`
settings. Writes bench/results/bench_validity.json.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import REPO, write_results

from dexlite_core.data.dexgraspnet import read_dexgraspnet_file
from dexlite_core.data.grasps import GraspTable
from dexlite_core.objects.pipeline import DatasetSource, ObjectsConfig, build_objects
from dexlite_core.params import build, load_params
from dexlite_core.sim.runner import SimConfig
from dexlite_core.sim.validity import validity_rates

SAMPLE = REPO.parent / "shared" / "dexgraspnet-sample"


def main() -> None:
    if not (SAMPLE / "dataset").is_dir():
        sys.exit(f"bench_validity: the DexGraspNet sample is not at {SAMPLE}")
    table = GraspTable.concat([read_dexgraspnet_file(p).table for p in sorted((SAMPLE / "dataset").glob("*.npy"))])
    config = build(SimConfig, {**load_params(REPO / "params.yaml")["sim"], "tests": ["lift", "six_dir"]}, "sim")
    with tempfile.TemporaryDirectory() as tmp:
        build_objects(ObjectsConfig(scales=(0.06, 0.08, 0.10, 0.12, 0.15)), DatasetSource("dexgraspnet", str(SAMPLE)), Path(tmp))
        rates = validity_rates(table, Path(tmp), config)
    write_results("bench_validity", {"cpu_" + k: v for k, v in rates.items()})


if __name__ == "__main__":
    main()
