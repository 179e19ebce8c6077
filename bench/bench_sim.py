"""MuJoCo grasp-test throughput: lift, six-direction and DexGraspBench-like tests per second on 1
and 2 local processes (wall time of `simulate`, process start-up included).

Grasps: the DexGraspNet sample when it lies beside the checkout (uncoupled hand, as
DexGraspNet validated them), else the pipeline's curated grasps.
Writes bench/results/bench_sim.json.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, write_results

from dexlite_core.data.dexgraspnet import read_dexgraspnet_file
from dexlite_core.data.grasps import GraspTable, read_grasps
from dexlite_core.parallel import ParallelConfig
from dexlite_core.pipeline.objects import DatasetSource, ObjectsConfig, run as build_objects
from dexlite_core.sim.grasp import GraspTestConfig
from dexlite_core.sim.runner import SimConfig, simulate

DGN_SAMPLE = REPO.parent / "shared" / "dexgraspnet-sample"
N_LIFT, N_SIX, N_DGB = 480, 240, 120


def grasps(tmp: str) -> tuple[GraspTable, Path, GraspTestConfig]:
    if (DGN_SAMPLE / "dataset").is_dir():
        build_objects(ObjectsConfig(sdf_resolution=32, n_points=256), DatasetSource("dexgraspnet", str(DGN_SAMPLE)), Path(tmp))
        table = GraspTable.concat([read_dexgraspnet_file(p).table for p in sorted((DGN_SAMPLE / "dataset").glob("*.npy"))])
        return table, Path(tmp), GraspTestConfig(coupling=False)
    return read_grasps(REPO / "data/curated/grasps.parquet"), REPO / "data/objects", GraspTestConfig()


def rate(table: GraspTable, objects: Path, test: str, grasp: GraspTestConfig, workers: int) -> float:
    config = SimConfig(tests=(test,), grasp=grasp, parallel=ParallelConfig(n_workers=workers), chunk=16)
    start = time.perf_counter()
    simulate(table, objects, config, desc=None)
    return len(table) / (time.perf_counter() - start)


def main() -> None:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        table, objects, grasp = grasps(tmp)
        for test, n in (("lift", N_LIFT), ("six_dir", N_SIX), ("dgb", N_DGB)):
            sample = table.select(np.linspace(0, len(table) - 1, min(n, len(table))).astype(int))
            for workers in (1, 2):
                suffix = "" if workers == 2 else "_1worker"
                figures[f"cpu_{test}_tests_per_s{suffix}"] = rate(sample, objects, test, grasp, workers)
            figures[f"cpu_{test}_scaling_1_to_2"] = figures[f"cpu_{test}_tests_per_s"] / figures[f"cpu_{test}_tests_per_s_1worker"]
    write_results("bench_sim", figures)


if __name__ == "__main__":
    main()
