"""Synthesis throughput with the pipeline's trained model: grasps/s for sampling alone and for
sampling + post-optimization (150 descent steps), 1024 grasps on the held-out objects.
Needs `make run` (or `dvc repro train`) first. Writes bench/results/bench_synth.json.
"""
from __future__ import annotations

import sys
import time

from common import REPO, devices, median_seconds, write_results

from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import input_point_index
from dexlite_core.model.sample import SampleConfig, synthesize
from dexlite_core.model.train import load_checkpoint
from dexlite_core.objects.store import load_object_set, read_objects
from dexlite_core.optimize.postopt import PostOptConfig, post_optimize

CHECKPOINT = REPO / "data/model/model.pt"
OBJECTS = REPO / "data/objects"
N_GRASPS = 1024


def main() -> None:
    if not CHECKPOINT.exists():
        sys.exit(f"{CHECKPOINT} is missing: run `make run` (or `dvc repro train`) first")
    table = read_objects(OBJECTS)
    codes = sorted(table.object_code[table.split == "test"])
    groups = [(c, s) for c in codes for s in (0.06, 0.08)]
    per_group = -(-N_GRASPS // len(groups))
    figures = {}
    for device in devices():
        model, meta = load_checkpoint(CHECKPOINT, device)
        objects = load_object_set(OBJECTS, codes, device=device)
        index = input_point_index(objects, meta["n_points"])
        config = SampleConfig(n_per_object=per_group, device=device)
        samples = synthesize(model, meta["bank"], objects, index, groups, config, meta["couple_joints"])
        n = len(samples.table)
        sample_s = median_seconds(lambda: synthesize(model, meta["bank"], objects, index, groups, config, meta["couple_joints"]),
                                  repeats=5, device=device)
        start = time.perf_counter()
        post_optimize(HandModel(device=device), objects, samples.table, PostOptConfig(device=device))
        post_s = time.perf_counter() - start
        figures[f"{device}_sample_grasps_per_s"] = n / sample_s
        figures[f"{device}_postopt_grasps_per_s"] = n / (sample_s + post_s)
        figures[f"{device}_postopt_ms_per_grasp"] = 1000 * post_s / n
    write_results("bench_synth", figures)


if __name__ == "__main__":
    main()
