"""Synthesis throughput with the pipeline's final model: grasps/s for sampling as shipped (decoding
and the refiner's passes), for decoding alone (no refiner, the same run), and for sampling +
post-optimization: the default (``postopt_``: the staged QP schedule, 300 + 40 + 40 steps) and the
E_post anneal it replaced (``anneal_postopt_``: 150 steps), 1024 grasps on the held-out objects.
Needs `make run` (or `dvc repro refine`) first. Writes bench/results/bench_synth.json.
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace

import torch

from common import REPO, devices, median_seconds, write_results

from dexlite_core.hand.model import HandModel
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.sample import SampleConfig
from dexlite_core.objects.store import load_object_set, read_objects
from dexlite_core.optimize.postopt import PostOptConfig, post_optimize
from dexlite_core.squeeze import PressConfig

CHECKPOINT = REPO / "data/refine/model.pt"
OBJECTS = REPO / "data/objects"
N_GRASPS = 1024


def main() -> None:
    if not CHECKPOINT.exists():
        sys.exit(f"{CHECKPOINT} is missing: run `make run` (or `dvc repro refine`) first")
    torch.set_num_threads(1)  # a busy 2-core machine runs the batched energy far slower with 2
    table = read_objects(OBJECTS)
    codes = sorted(table.object_code[table.split == "test"])
    groups = [(c, s) for c in codes for s in (0.06, 0.08)]
    per_group = -(-N_GRASPS // len(groups))
    figures = {}
    for device in devices():
        model = GraspModel.load(CHECKPOINT, device)
        objects = load_object_set(OBJECTS, codes, device=device)
        config = SampleConfig(n_per_object=per_group, device=device)
        refinement = model.refinement

        def sample(grasp_model=model):
            return grasp_model.synthesize(objects, groups, config)

        samples = sample()
        n = len(samples.table)
        sample_s = median_seconds(sample, repeats=5, device=device)
        bare = replace(model, refiner=None)
        figures[f"{device}_decode_grasps_per_s"] = n / median_seconds(lambda: sample(bare), repeats=5, device=device)
        figures[f"{device}_refiner_passes"] = 0 if refinement is None else refinement.passes
        figures[f"{device}_sample_grasps_per_s"] = n / sample_s
        for prefix, method in (("", "staged"), ("anneal_", "anneal")):
            start = time.perf_counter()
            post_optimize(HandModel(device=device), objects, samples.table, PostOptConfig(method=method, device=device),
                          PressConfig())
            post_s = time.perf_counter() - start
            figures[f"{device}_{prefix}postopt_grasps_per_s"] = n / (sample_s + post_s)
            figures[f"{device}_{prefix}postopt_ms_per_grasp"] = 1000 * post_s / n
    write_results("bench_synth", figures)


if __name__ == "__main__":
    main()
