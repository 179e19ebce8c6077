"""Seed optimizers: the staged QP optimizer (optimize/staged.py, curate's default) against the E_fc
anneal (``curate.optimizer: anneal``, the baseline), judged by
the DexGraspBench-like test: grasps that pass per CPU second of optimizer plus simulation (issue 32).

On 8 training object-scale pairs of the pipeline's objects (box slab, bottle, mug, a random mesh at
0.06 and 0.08 m), the same per-group seeds, one run:

- ``baseline_``: the anneal's ``seed_grasps`` with params.yaml's curate.optimize, its accepted grasps
  given squeeze.py's pressed triples (params' press), as curate writes them;
- ``staged_``: ``staged_seed_grasps`` at its defaults (fingertip contacts, squeeze 2 q - q_pre);
- ``staged_pressed_``: the same grasps with squeeze.py's pressed triples instead (no new optimizer time);
- ``--variants``: staged configs by name (VARIANTS), each optimised and tested the same way.

Per optimizer: attempts, accepted, optimizer seconds, DGB-like pass rate with its own triples, DGB
seconds, mean MuJoCo penetration (the deepest hand-object or hand-hand contact) at the pre-grasp
and at the grasp, the staged optimizer's seconds per stage, and passing grasps per second of
optimizer plus DGB: ``cpu_dgb_passed_per_s`` in CPU seconds (this process's and the 2 simulation
workers', which this shared machine's load barely moves) and ``wall_dgb_passed_per_s`` in wall
seconds (the same DGB work measured 62-125 s here as the load changed). One thread per process.
Writes bench/results/bench_seed.json (keys merged).
"""
from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bench_anneal import seed_config
from common import write_results

from dexlite_core.data.grasps import GraspTable
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.store import load_object_set, read_pieces
from dexlite_core.optimize.seed import seed_grasps
from dexlite_core.optimize.staged import StagedConfig, staged_seed_grasps
from dexlite_core.sim.dgb import DgbSimulator, DgbTestConfig
from dexlite_core.sim.runner import SimConfig, simulate
from dexlite_core.squeeze import PressConfig, with_triples

OBJECTS = Path("/work/main/data/objects")
GROUPS = [(code, scale) for code in ("proc-box-slab", "proc-cyl-bottle", "pyb-mug", "pyb-random-000")
          for scale in (0.06, 0.08)]
VARIANTS = {
    "nearest4": dict(contacts="nearest", n_contacts=4),
    "nearest6": dict(contacts="nearest", n_contacts=6),
    "qp_steps100": dict(qp_steps=100),
    "qp_steps200": dict(qp_steps=200),
    "solve_every10": dict(solve_every=10),
    "cold_solves": dict(warm_iterations=50),
}


def grasp_depth_mm(table: GraspTable, objects_dir: Path) -> float:
    """Mean MuJoCo depth (mm) of the deepest hand contact with each grasp's own joints (the DGB scene)."""
    depths = []
    for code, scale in sorted(set(zip(table.object_code, table.scale.tolist()))):
        rows = np.flatnonzero((table.object_code == code) & (table.scale == scale))
        folder = objects_dir / code
        sim = DgbSimulator(read_pieces(folder / "decomposed.obj"), read_pieces(folder / "mesh.obj")[0], scale,
                           DgbTestConfig())
        for r in rows:  # DgbSimulator has no public call that only poses the hand
            sim._reset(*(getattr(table, name)[r].astype(float) for name in ("wrist_pos", "wrist_quat", "joints")))
            depths.append(sim.pregrasp_contact_depth())
    return 1000 * float(np.mean(depths)) if depths else float("nan")


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the simulation pool's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def judge(prefix: str, table: GraspTable, attempts: int, optimizer_s: float, optimizer_cpu_s: float,
          objects_dir: Path) -> dict[str, float]:
    """The DGB-like figures of ``table`` (its own triples) under ``prefix``."""
    start, start_cpu = time.perf_counter(), cpu_seconds()
    run = simulate(table, objects_dir, SimConfig(tests=("dgb",)), desc=None)
    dgb_s, dgb_cpu_s = time.perf_counter() - start, cpu_seconds() - start_cpu
    passed = int(run.passed["dgb"].sum())
    return {f"{prefix}attempts": attempts, f"{prefix}accepted": len(table),
            f"{prefix}dgb_pass_rate": passed / max(len(table), 1), f"{prefix}dgb_passed": passed,
            f"{prefix}optimizer_s": optimizer_s, f"{prefix}dgb_s": dgb_s,
            f"{prefix}optimizer_cpu_s": optimizer_cpu_s, f"{prefix}dgb_cpu_s": dgb_cpu_s,
            f"{prefix}pregrasp_penetration_mm": 1000 * float(np.nanmean(run.table.sim.pen_depth)),
            f"{prefix}grasp_penetration_mm": grasp_depth_mm(table, objects_dir),
            f"{prefix}cpu_dgb_passed_per_s": passed / (optimizer_cpu_s + dgb_cpu_s),
            f"{prefix}wall_dgb_passed_per_s": passed / (optimizer_s + dgb_s)}


def staged(prefix: str, hand: HandModel, objects, config: StagedConfig, objects_dir: Path) -> tuple[dict, GraspTable]:
    start_cpu = cpu_seconds()
    result = staged_seed_grasps(hand, objects, GROUPS, config)
    figures = judge(prefix, result.accepted, result.attempts, result.seconds, cpu_seconds() - start_cpu, objects_dir)
    figures.update({f"{prefix}stage_{name}_s": s for name, s in result.stage_seconds.items()})
    return figures, result.accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=192, help="attempts per object-scale pair, both optimizers")
    parser.add_argument("--variants", default="", help=f"comma-separated staged variants: {', '.join(VARIANTS)}")
    parser.add_argument("--objects", type=Path, default=OBJECTS, help="an objects-stage output holding GROUPS")
    parser.add_argument("--seed", type=int, default=0, help="both optimizers' seed (per-group streams as curate's)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the shipped optimizer")
    args = parser.parse_args()
    torch.set_num_threads(1)
    hand = HandModel()
    objects = load_object_set(args.objects, sorted({c for c, _ in GROUPS}))
    figures: dict[str, float] = {"pairs": len(GROUPS), "seed": args.seed}
    if not args.no_baseline:
        start_cpu = cpu_seconds()
        shipped_config = replace(seed_config("cpu"), n_per_object=args.attempts, seed=args.seed)
        shipped = seed_grasps(hand, objects, GROUPS, shipped_config, progress=False)
        table = with_triples(shipped.accepted, hand, objects, PressConfig())
        base = judge("baseline_", table, shipped.attempts, shipped.seconds, cpu_seconds() - start_cpu, args.objects)
        figures.update(base, baseline_cpu_dgb_passed_per_s=base["baseline_cpu_dgb_passed_per_s"])
    config = StagedConfig(n_per_object=args.attempts, device="cpu", seed=args.seed)
    new, table = staged("staged_", hand, objects, config, args.objects)
    figures.update(new, cpu_dgb_passed_per_s=new["staged_cpu_dgb_passed_per_s"])
    pressed = judge("staged_pressed_", with_triples(table, hand, objects, PressConfig()), new["staged_attempts"],
                    new["staged_optimizer_s"], new["staged_optimizer_cpu_s"], args.objects)
    figures.update(pressed)
    for name in filter(None, args.variants.split(",")):
        variant = replace(config, schedule=replace(config.schedule, **VARIANTS[name]))
        figures.update(staged(f"{name}_", hand, objects, variant, args.objects)[0])
    if "baseline_cpu_dgb_passed_per_s" in figures:
        figures["speedup_vs_baseline"] = figures["cpu_dgb_passed_per_s"] / figures["baseline_cpu_dgb_passed_per_s"]
        figures["wall_speedup_vs_baseline"] = (figures["staged_wall_dgb_passed_per_s"]
                                               / figures["baseline_wall_dgb_passed_per_s"])
    write_results("bench_seed", figures)


if __name__ == "__main__":
    main()
