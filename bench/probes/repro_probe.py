"""Does this process's environment change the seed optimizer's output? A hash of its grasps.

Seed-grasp optimization (the curate stage's code path) on the first 6 training objects of
``data/objects`` at scale 0.06, 32 attempts each, default params; prints one JSON line with the
number of accepted grasps and a hash of their poses. Run it under different settings and compare
hashes, e.g.:

    .venv/bin/python bench/probes/repro_probe.py                          # reference
    OMP_NUM_THREADS=1 .venv/bin/python bench/probes/repro_probe.py        # thread count
    ATEN_CPU_CAPABILITY=avx2 .venv/bin/python bench/probes/repro_probe.py # torch's CPU kernels
    .venv/bin/python bench/probes/repro_probe.py --scale 0.0600001        # sensitivity: a 2e-6 change

The optimizer is chaotic (the last line changes the result), so an equal hash means the setting
did not change a single rounding on this path. Findings: bench/README.md, "Reproducibility".
"""
import argparse
import hashlib
import json
import time

import torch

from dexlite_core.hand.model import HandModel
from dexlite_core.objects.store import load_object_set, read_objects
from dexlite_core.optimize.seed import SeedConfig, seed_grasps
from dexlite_core.params import build, load_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", default="data/objects")
    parser.add_argument("--scale", type=float, default=0.06)
    args = parser.parse_args()
    table = read_objects(args.objects)
    codes = sorted(c for c, split in zip(table.object_code, table.split) if split == "train")[:6]
    config = build(SeedConfig, {**load_section("curate")["optimize"], "n_per_object": 32, "device": "cpu"},
                   "curate.optimize")
    start = time.perf_counter()
    accepted = seed_grasps(HandModel(), load_object_set(args.objects, codes), [(c, args.scale) for c in codes],
                           config, progress=False).accepted
    poses = accepted.wrist_pos.tobytes() + accepted.wrist_quat.tobytes() + accepted.joints.tobytes()
    print(json.dumps({"threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "accepted": len(accepted), "poses_sha256": hashlib.sha256(poses).hexdigest()[:16],
                      "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
