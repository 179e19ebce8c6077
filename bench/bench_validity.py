"""Validity of the MuJoCo grasp tests (not a timing), overall and per shape family.

1. DexGraspNet's released grasps (the sample beside the checkout, 699 grasps, uncoupled hand),
   the same grasps with the palm 3 cm back, and with the fingers opened; lift and six-direction,
   params.yaml's `sim` settings. Keys ``cpu_<rate>`` over all grasps, ``cpu_<group>_<rate>`` per
   group: the shape family of the object (objects/mesh.py `shape_of`), ``large`` (scale >= 0.12 m)
   and ``palm_down`` (the palm faces down, so the lift pulls the object out of the hand).
2. Shapes made here, every family (the catalog's flat, thin and concave objects and two compact
   ones) at DexGraspNet's scales 0.06-0.15: our seed optimizer's grasps, the same spoilers, and
   the DexGraspBench-like test (sim.dgb) as an outside reference. Keys ``cpu_made_<shape>_<rate>``,
   ``cpu_made_<shape>_dgb_released`` and ``..._lift_agrees_dgb`` (share of grasps both verdicts match).
3. The lever of large objects, controlled: 150 of DexGraspNet's released grasps, the object's
   centre of mass moved 0-14 cm from the grasp point in a random direction; same geometry, mass
   and inertia tensor; lift as in 1. Large and flat objects are held far from their centre (a
   DexGraspNet plate at scale 0.15 held at its rim: 14 cm). Keys ``cpu_lever_<d>cm_lift``.

Writes bench/results/bench_validity.json. 3-4 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from common import REPO, shape_masks, write_results

from dexlite_core.data.dexgraspnet import read_dexgraspnet_file
from dexlite_core.data.grasps import GraspTable, write_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.store import load_object_set, read_objects, read_pieces
from dexlite_core.optimize.seed import SeedConfig, seed_grasps
from dexlite_core.params import build, load_params
from dexlite_core.pipeline.objects import DatasetSource, ObjectsConfig, run as build_objects
from dexlite_core.sim.grasp import GraspSimulator
from dexlite_core.sim.runner import SimConfig, simulate
from dexlite_core.sim.validity import validity_rates

SAMPLE = REPO.parent / "shared" / "dexgraspnet-sample"
SCALES = (0.06, 0.08, 0.10, 0.12, 0.15)  #: DexGraspNet's
LARGE = 0.12  #: m, scales from here up are "large"
MADE = ("proc-box-plate", "proc-box-tablet", "proc-cyl-coaster", "proc-cyl-handle", "proc-capsule-handle",
        "proc-bowl-shallow", "proc-bowl-deep", "proc-box-cube", "proc-cyl-can")


def released_sample(objects_dir: Path) -> GraspTable:
    """DexGraspNet's released grasps of the sample, its objects built into ``objects_dir``."""
    build_objects(ObjectsConfig(scales=SCALES), DatasetSource("dexgraspnet", str(SAMPLE)), objects_dir)
    return GraspTable.concat([read_dexgraspnet_file(p).table for p in sorted((SAMPLE / "dataset").glob("*.npy"))])


def released_grasps(config: SimConfig, tmp: Path) -> dict[str, float]:
    table = released_sample(tmp)
    palm_normal_z = -table.poses().wrist_rot[:, 2, 1].numpy()  # the palm faces -y
    groups = {**shape_masks(table.object_code, tmp), "large": table.scale >= LARGE - 1e-6, "palm_down": palm_normal_z < -0.7}
    return validity_rates(table, tmp, config, groups)


def made_shapes(config: SimConfig, tmp: Path) -> dict[str, float]:
    build_objects(ObjectsConfig(codes=MADE, scales=SCALES, val_fraction=0, test_fraction=0), DatasetSource(), tmp)
    objects = read_objects(tmp)
    pairs = [(c, float(s)) for c, scales in zip(objects.object_code, objects.scales) for s in scales]
    table = seed_grasps(HandModel(), load_object_set(tmp), pairs, SeedConfig(n_per_object=192), progress=False).accepted
    write_grasps(tmp / "grasps.parquet", table)  # with --made-dir, for bench_dexgraspbench --set
    groups = shape_masks(table.object_code, tmp)
    rates = validity_rates(table, tmp, config, groups)
    uncoupled = replace(config, tests=("lift", "dgb"), grasp=replace(config.grasp, coupling=False))  # as validity_rates
    passed = simulate(table, tmp, uncoupled, desc="validity: dgb").passed
    lift, dgb = passed["lift"], passed["dgb"]
    for shape, mask in groups.items():
        rates[f"{shape}_n"] = int(mask.sum())
        rates[f"{shape}_dgb_released"] = float(dgb[mask].mean())
        rates[f"{shape}_lift_agrees_dgb"] = float((lift == dgb)[mask].mean())
    return {"made_" + k: v for k, v in rates.items()}


def grasp_point(sim: GraspSimulator, pose: tuple[np.ndarray, ...]) -> np.ndarray | None:
    """The grasp point after closing (object frame, m); None for a grasp that fails the
    initial-penetration gate or closes on nothing (no lever to speak of)."""
    if sim.close(*pose) > sim.config.max_penetration:
        return None
    return sim.grasp_point()


def lever_arm(config: SimConfig, tmp: Path, n: int = 150, offsets_cm: tuple[int, ...] = (0, 3, 6, 10, 14)) -> dict[str, float]:
    table = released_sample(tmp)
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(table), n, replace=False))
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    grasp = replace(config.grasp, coupling=False)
    passed = {d: [] for d in offsets_cm}
    for row, direction in zip(rows, directions):
        code, scale = table.object_code[row], float(table.scale[row])
        pieces, solid = read_pieces(tmp / code / "decomposed.obj"), read_pieces(tmp / code / "mesh.obj")[0]
        pose = table.wrist_pos[row].astype(float), table.wrist_quat[row].astype(float), table.joints[row].astype(float)
        point = grasp_point(GraspSimulator(pieces, solid, scale, grasp), pose)
        if point is None:
            continue
        for d in offsets_cm:
            # The object frame re-centred on the moved centre of mass; same inertia tensor (the
            # scene reads only these three of the solid).
            com = point + d / 100 * direction
            moved = [p.copy().apply_translation(-com / scale) for p in pieces]
            mass = SimpleNamespace(center_mass=np.zeros(3), moment_inertia=solid.moment_inertia, volume=solid.volume)
            passed[d].append(GraspSimulator(moved, mass, scale, grasp).lift(pose[0] - com, *pose[1:]).success)
    return {f"lever_{d}cm_lift": float(np.mean(p)) for d, p in passed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--made-dir", type=Path, help="keep part 2's objects and grasps (grasps.parquet) here")
    args = parser.parse_args()
    if not (SAMPLE / "dataset").is_dir():
        sys.exit(f"bench_validity: the DexGraspNet sample is not at {SAMPLE}")
    config = build(SimConfig, {**load_params(REPO / "params.yaml")["sim"], "tests": ["lift", "six_dir"]}, "sim")
    rates = {}
    for part in (released_grasps, made_shapes, lever_arm):
        with tempfile.TemporaryDirectory() as tmp:
            rates.update(part(config, args.made_dir if part is made_shapes and args.made_dir else Path(tmp)))
    write_results("bench_validity", {"cpu_" + k: v for k, v in rates.items()})


if __name__ == "__main__":
    main()
