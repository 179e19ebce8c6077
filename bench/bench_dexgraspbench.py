"""Agreement with DexGraspBench (not a timing): its force-closure evaluator vs our MuJoCo tests, grasp by grasp.

Three sets, each a seeded subset: the DexGraspNet sample beside the checkout (uncoupled hand, as
DexGraspNet validated them), the pipeline's post-optimized grasps (data/synth/postopt.parquet) and
its filtered seed grasps (data/filtered/grasps.parquet: they passed our lift), with data/objects.
Each is exported with ``export_dexgraspbench`` and run through DexGraspBench's
own evaluator (``src/main.py task=eval``, a subprocess in its own Python) at friction 0.6 (its
default) and at our 2.0. Our verdicts on the same grasps: the lift test (params.yaml ``sim.grasp``,
friction ``sim.grasp.object.friction``) and the DexGraspBench-like ``dgb`` test (``sim.dgb``) at
the same two frictions. For each pair: pass rates, agreement, Cohen's kappa and confusion counts;
for the preset also per shape family of the objects (``<set>_<shape>_mu<mu>_preset_...``).
Writes bench/results/bench_dexgraspbench.json.

    bench/bench_dexgraspbench.py --dgb-root /path/to/DexGraspBench --dgb-python /path/to/venv/bin/python [--n 200]

``--dgb-root`` defaults to $DEXLITE_DGB_ROOT, then ../shared/DexGraspBench; without a checkout
(its src/main.py and Menagerie's hand) the benchmark says so and exits 0. bench/README.md has the
commands that make its Python environment.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import REPO, shape_masks, write_results

from dexlite_core.data.dexgraspnet import read_dexgraspnet_file
from dexlite_core.data.grasps import GraspTable, read_grasps
from dexlite_core.parallel import ParallelConfig
from dexlite_core.params import build, load_params
from dexlite_core.sim.dexgraspbench import export_dexgraspbench, grasp_path
from dexlite_core.sim.runner import SimConfig, simulate

SAMPLE = REPO.parent / "shared" / "dexgraspnet-sample"
MUS = (0.6, 2.0)


def agreement(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
    """Pass rates, agreement, Cohen's kappa (1 when both are one constant verdict) and the confusion counts."""
    ours, theirs = np.asarray(ours, bool), np.asarray(theirs, bool)
    n = len(ours)
    agree = float((ours == theirs).mean())
    p_ours, p_theirs = ours.mean(), theirs.mean()
    chance = p_ours * p_theirs + (1 - p_ours) * (1 - p_theirs)
    kappa = (agree - chance) / (1 - chance) if chance < 1 else 1.0
    return {"ours_pass": float(p_ours), "dgb_pass": float(p_theirs), "agreement": agree, "kappa": float(kappa),
            "both_pass": int((ours & theirs).sum()), "ours_only": int((ours & ~theirs).sum()),
            "dgb_only": int((~ours & theirs).sum()), "both_fail": int((~ours & ~theirs).sum()), "n": n}


def run_dgb(root: Path, python: str, export: Path, mu: float, workers: int, table: GraspTable,
            reuse: bool = False) -> tuple[np.ndarray, int, bool]:
    """DexGraspBench's evaluator on ``export`` at friction ``mu``: success per row of ``table``
    (a grasp it could not evaluate counts as failed) and how many it failed on initial penetration.
    With ``reuse``, results already there for every grasp are read instead (same export, same n);
    the last value says whether the evaluator ran."""
    eval_dir, succ_dir = export / f"evaluation_mu{mu}", export / f"succgrasp_mu{mu}"
    paths = [eval_dir / grasp_path(Path("."), code, scale, gid).relative_to("graspdata")
             for code, scale, gid in zip(table.object_code, table.scale, table.grasp_id)]
    ran = not (reuse and all(p.exists() for p in paths))
    if ran:
        for d in (eval_dir, succ_dir):
            shutil.rmtree(d, ignore_errors=True)
        cmd = [python, "src/main.py", "task=eval", "hand=shadow", f"save_dir={export}", f"eval_dir={eval_dir}",
               f"succ_dir={succ_dir}", f"n_worker={workers}", "skip=False", f"task.miu_coef=[{mu},0.02]",
               "task.analytic_fc_metrics=null", "task.pene_contact_metrics=null"]
        subprocess.run(cmd, cwd=root, check=True, stdout=subprocess.DEVNULL)
    success, penetration, missing = np.zeros(len(table), bool), 0, 0
    for i, path in enumerate(paths):
        if not path.exists():
            missing += 1
            continue
        record = np.load(path, allow_pickle=True).item()  # written by DexGraspBench on this machine
        success[i] = bool(record["succ_flag"])
        penetration += float(record["delta_pos"]) == 100  # its marker for the pre-grasp penetration gate
    if missing:
        print(f"bench_dexgraspbench: DexGraspBench wrote no result for {missing} grasps (counted failed)")
    return success, penetration, ran


def jitter(table: GraspTable, distance: float, seed: int) -> GraspTable:
    """``table`` with every palm moved ``distance`` m along a seeded random direction."""
    step = np.random.default_rng(seed + 1).normal(size=(len(table), 3))
    step *= distance / np.linalg.norm(step, axis=1, keepdims=True)
    return replace(table, wrist_pos=(table.wrist_pos + step).astype(np.float32), sim=None)


def sets(n: dict[str, int], seed: int, ours: dict[str, tuple[Path, Path]],
         work: Path) -> dict[str, tuple[GraspTable, Path, bool]]:
    """name -> (seeded subset of at most n[name] grasps, its object store, coupled hand?)."""
    from dexlite_core.pipeline.objects import DatasetSource, ObjectsConfig, run as build_objects

    out = {}
    if (SAMPLE / "dataset").is_dir():
        table = GraspTable.concat([read_dexgraspnet_file(p).table for p in sorted((SAMPLE / "dataset").glob("*.npy"))])
        store = work / "dgn_objects"
        if not (store / "objects.parquet").exists():
            build_objects(ObjectsConfig(scales=(0.06, 0.08, 0.10, 0.12, 0.15)),
                          DatasetSource("dexgraspnet", str(SAMPLE)), store)
        out["dexgraspnet_sample"] = (table, store, False)
    else:
        print(f"bench_dexgraspbench: no DexGraspNet sample at {SAMPLE}; that set is skipped")
    for name, (path, objects) in ours.items():
        if path.exists() and (objects / "objects.parquet").exists():
            out[name] = (read_grasps(path), objects, True)
        else:
            print(f"bench_dexgraspbench: no {path} (or {objects}); that set is skipped (run the pipeline first)")
    for name, (table, store, coupled) in out.items():
        if len(table) > n[name]:
            table = table.select(np.sort(np.random.default_rng(seed).choice(len(table), n[name], replace=False)))
        out[name] = (table, store, coupled)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dgb-root", type=Path, default=Path(os.environ.get(
        "DEXLITE_DGB_ROOT", REPO.parent / "shared" / "DexGraspBench")))
    parser.add_argument("--dgb-python", default=os.environ.get("DEXLITE_DGB_PYTHON", sys.executable),
                        help="a Python with DexGraspBench's pinned dependencies (numpy 1.26.4, mujoco 3.3.2, ...)")
    parser.add_argument("--n", type=int, default=200, help="grasps per set (seeded subset)")
    parser.add_argument("--set-n", action="append", default=[], metavar="SET=N",
                        help="another size for one set (dexgraspnet_sample, postopt, filtered, a --set), repeatable")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postopt", type=Path, default=REPO / "data" / "synth" / "postopt.parquet")
    parser.add_argument("--filtered", type=Path, default=REPO / "data" / "filtered" / "grasps.parquet")
    parser.add_argument("--objects", type=Path, default=REPO / "data" / "objects")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=TABLE@OBJECTS", dest="extra",
                        help="another set of our grasps (coupled hand): a grasp table and its object store, "
                             "e.g. bench_validity's made shapes (--made-dir); repeatable")
    parser.add_argument("--only", action="append", default=[], metavar="SET",
                        help="run only these sets (repeatable; default: every set found); the JSON keeps the others'")
    parser.add_argument("--reuse-dgb", action="store_true",
                        help="read DexGraspBench's results left in --work by an earlier run with the same --n/--seed")
    parser.add_argument("--jitter-mm", type=float, default=0.0,
                        help="also run each evaluator on the grasps with the palm moved this far (mm, seeded "
                             "random directions) and report how often it agrees with itself: the ceiling")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "dexlite_bench_dgb")
    args = parser.parse_args()
    root = args.dgb_root
    if not (root / "src" / "main.py").exists() or not (root / "assets" / "hand" / "shadow" / "right_hand.xml").exists():
        print(f"bench_dexgraspbench: skipped, no DexGraspBench checkout at {root} (pass --dgb-root or set DEXLITE_DGB_ROOT)")
        return
    probe = subprocess.run([args.dgb_python, "-c", "import numpy, mujoco, hydra, transforms3d, torch; "
                            "print(numpy.__version__, mujoco.__version__)"], capture_output=True, text=True)
    versions = probe.stdout.split()
    if probe.returncode or not versions[0].startswith("1.") or not versions[1].startswith("3.3."):
        print(f"bench_dexgraspbench: skipped, {args.dgb_python} is not a DexGraspBench environment (numpy 1.26, "
              f"mujoco 3.3.x, hydra-core, transforms3d, torch; got {probe.stdout.strip() or probe.stderr.strip()[-200:]}): "
              "pass --dgb-python or set DEXLITE_DGB_PYTHON (bench/README.md)")
        return
    params = load_params(REPO / "params.yaml")
    base = build(SimConfig, {**params["sim"], "tests": ["lift"]}, "sim")
    base = replace(base, parallel=ParallelConfig(n_workers=args.workers))
    stages = base.dgb.stages
    ours_mu = base.grasp.object.friction
    results: dict[str, float] = {"ours_lift_friction": ours_mu}
    ours = {"postopt": (args.postopt, args.objects), "filtered": (args.filtered, args.objects)}
    for item in args.extra:
        name, paths = item.split("=", 1)
        table, objects = paths.split("@")
        ours[name] = (Path(table), Path(objects))
    n = {name: args.n for name in ("dexgraspnet_sample", *ours)}
    n.update({k: int(v) for k, v in (item.split("=") for item in args.set_n)})
    chosen = {k: v for k, v in sets(n, args.seed, ours, args.work).items() if not args.only or k in args.only}
    for name, (table, store, coupled) in chosen.items():
        results[f"{name}_n"] = len(table)
        export = args.work / name
        shutil.rmtree(export / "graspdata", ignore_errors=True)
        export_dexgraspbench(table, store, export, stages)
        config = replace(base, grasp=replace(base.grasp, coupling=coupled))
        jittered = None
        if args.jitter_mm > 0:
            jittered, jitter_export = jitter(table, args.jitter_mm / 1000, args.seed), args.work / f"{name}_jittered"
            shutil.rmtree(jitter_export / "graspdata", ignore_errors=True)
            export_dexgraspbench(jittered, store, jitter_export, stages)
        start = time.perf_counter()
        lift = simulate(table, store, config, desc=f"{name}: lift").passed["lift"]
        results[f"{name}_lift_s_per_grasp"] = (time.perf_counter() - start) / len(table)
        shapes = shape_masks(table.object_code, store)
        columns = {"object_code": table.object_code, "scale": table.scale, "grasp_id": table.grasp_id, "lift": lift}
        for mu in MUS:
            start = time.perf_counter()
            theirs, pene, ran = run_dgb(root, args.dgb_python, export.resolve(), mu, args.workers, table, args.reuse_dgb)
            if ran:
                results[f"{name}_dgb_s_per_grasp_mu{mu}"] = (time.perf_counter() - start) / len(table)
            preset_config = replace(config, tests=("dgb",), dgb=replace(config.dgb, friction=mu))
            start = time.perf_counter()
            preset = simulate(table, store, preset_config, desc=f"{name}: dgb preset, mu {mu}").passed["dgb"]
            results[f"{name}_preset_s_per_grasp_mu{mu}"] = (time.perf_counter() - start) / len(table)
            if jittered is not None:  # each evaluator against itself on the grasps moved a little
                again, _, _ = run_dgb(root, args.dgb_python, jitter_export.resolve(), mu, args.workers, jittered,
                                      args.reuse_dgb)
                for key in ("agreement", "kappa"):
                    results[f"{name}_mu{mu}_dgb_vs_jittered_{key}"] = agreement(again, theirs)[key]
                again = simulate(jittered, store, preset_config, desc=f"{name}: dgb preset, jittered").passed["dgb"]
                for key in ("agreement", "kappa"):
                    results[f"{name}_mu{mu}_preset_vs_jittered_{key}"] = agreement(again, preset)[key]
            results[f"{name}_dgb_penetration_fail_mu{mu}"] = pene / len(table)
            columns[f"dgb_mu{mu}"], columns[f"preset_mu{mu}"] = theirs, preset
            for ours, verdicts in (("lift", lift), ("preset", preset)):
                for key, value in agreement(verdicts, theirs).items():
                    results[f"{name}_mu{mu}_{ours}_{key}"] = value
            for shape, mask in shapes.items():  # the preset per shape family
                for key in ("dgb_pass", "ours_pass", "agreement", "kappa", "n"):
                    results[f"{name}_{shape}_mu{mu}_preset_{key}"] = agreement(preset[mask], theirs[mask])[key]
        verdicts = export / "verdicts.csv"  # grasp by grasp, for looking into disagreements
        np.savetxt(verdicts, np.column_stack([np.asarray(v).astype(str) for v in columns.values()]), fmt="%s",
                   delimiter=",", header=",".join(columns), comments="")
        print(f"bench_dexgraspbench: {name}: verdicts per grasp in {verdicts}")
    write_results("bench_dexgraspbench", results)


if __name__ == "__main__":
    main()
