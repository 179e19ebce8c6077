"""Does a grasp's own squeeze make it hold? The DexGraspBench-like test (``sim.dgb``, friction 0.6) on
the same grasps replayed with the fixed pre-grasp and squeeze (``sim.dgb.stages``) and with the
contact-derived ones (:mod:`dexlite_core.squeeze`: every touching link pressed with F newtons), F swept.

Sets: a seeded subset of the pipeline's filtered training grasps and its kept post-optimized grasps
(`make run` first; ``--data`` reads another run's data/). Also counts the passes whose grasp touches nothing (no contact candidate within
2 mm of the surface): the protocol's known false positive, a hand that closes onto the object only
during the squeeze. Usage: python bench/bench_squeeze.py [--n 200] [--forces 5,10,20] [--data DIR]
Writes bench/results/bench_squeeze.json: ``cpu_<set>_dgb_fixed``, ``cpu_<set>_dgb_pressed_<F>n``, their
``_no_contact`` counts, ``cpu_<set>_n``, and the derivation's speed ``cpu_b1024_triples_per_s``.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import REPO, median_seconds, write_results

from dexlite_core.data.grasps import GraspTable, read_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.store import load_object_set
from dexlite_core.params import build, load_params
from dexlite_core.sim.runner import SimConfig, simulate
from dexlite_core.squeeze import PressConfig, pressed_triple, touches

SETS = {"filtered": "filtered/grasps.parquet", "postopt": "synth/postopt.parquet"}


def subset(table: GraspTable, n: int) -> GraspTable:
    rows = np.sort(np.random.default_rng(0).choice(len(table), min(n, len(table)), replace=False))
    return replace(table.select(rows), pregrasp=None, squeeze=None, sim=None)


def dgb_passes(table: GraspTable, objects_dir, sim: SimConfig) -> np.ndarray:
    return simulate(table, objects_dir, replace(sim, tests=("dgb",)), desc=None).passed["dgb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="grasps per set (seeded subset)")
    parser.add_argument("--forces", default="5,10,20", help="N per touching link, comma-separated")
    parser.add_argument("--data", default=str(REPO / "data"), help="a pipeline run's data/ folder")
    args = parser.parse_args()
    data = Path(args.data)
    torch.set_num_threads(1)
    sim = build(SimConfig, load_params(REPO / "params.yaml")["sim"], "sim")
    hand, figures = HandModel(), {}
    for name, path in SETS.items():
        table = subset(read_grasps(data / path), args.n)
        objects = load_object_set(data / "objects", sorted(set(table.object_code)))
        pose, obj = table.poses(), objects.index_of(list(table.object_code))
        scale = torch.as_tensor(table.scale)
        touching = touches(hand, objects, pose, obj, scale).numpy()
        variants = {"fixed": table}
        for force in (float(f) for f in args.forces.split(",")):
            config = PressConfig(force=force, kp=sim.dgb.actuator_kp)
            pre, squeeze = pressed_triple(hand, objects, pose, obj, scale, config)
            variants[f"pressed_{force:g}n"] = table.with_triple(pre.numpy(), squeeze.numpy())
        figures[f"cpu_{name}_n"] = len(table)
        for variant, grasps in variants.items():
            passed = dgb_passes(grasps, data / "objects", sim)
            figures[f"cpu_{name}_dgb_{variant}"] = passed.mean()
            figures[f"cpu_{name}_dgb_{variant}_no_contact"] = int((passed & ~touching).sum())
            print(f"{name} {variant}: {passed.mean():.1%} of {len(grasps)}", flush=True)
    table = read_grasps(data / SETS["filtered"])
    rows = np.arange(1024) % len(table)
    big = table.select(rows)
    objects = load_object_set(data / "objects", sorted(set(big.object_code)))
    args_b = (hand, objects, big.poses(), objects.index_of(list(big.object_code)), torch.as_tensor(big.scale))
    figures["cpu_b1024_triples_per_s"] = 1024 / median_seconds(lambda: pressed_triple(*args_b), repeats=3, warmup=1)
    write_results("bench_squeeze", figures)


if __name__ == "__main__":
    main()
