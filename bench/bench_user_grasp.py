"""What a user of `dexlite grasp` gets (issue 33): grasps on shapes the pipeline never saw, judged by the
DexGraspBench-like test and, with a DexGraspBench checkout, by the real one on the same files.

Shapes made here at real size, in metres (none is in the catalog): a flat plate, a thin rod, a large
box, a concave bowl, a torus (a handle) and a wide flat-topped cone. For each, ``grasp_mesh`` runs the
path `dexlite grasp MESH -n 64 --simulate` runs (the pipeline's final model and the settings stored
in it: synthesis, post-optimization, keep the lowest-energy 64 of 256 candidates), and the same
grasps are exported as `--format dexgraspbench` exports them. With ``--dgb-root`` (or
$DEXLITE_DGB_ROOT) and ``--dgb-python`` (bench_dexgraspbench's environment), DexGraspBench's own
evaluator runs on each export at friction 0.6 and agreement with our preset is reported.
Writes bench/results/bench_user_grasp.json: per shape and over all, ``dgb_like_success`` (ours, 0.6),
``dexgraspbench_success`` (theirs), agreement and kappa, ``lift_success`` (ours, friction 2.0) and
seconds per shape.

    .venv/bin/python bench/bench_user_grasp.py [--n 64] [--dgb-root DIR --dgb-python PY]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

from bench_dexgraspbench import agreement, run_dgb
from common import REPO, write_results

from dexlite_core.grasp_mesh import MeshGraspRequest, grasp_mesh
from dexlite_core.sim.dexgraspbench import export_dexgraspbench


def shapes() -> dict[str, trimesh.Trimesh]:
    """Hand-sized shapes in metres: flat, thin, large, concave, a handle, a wide cone."""
    t = np.linspace(0.0, np.pi / 2, 16)
    bowl_profile = np.concatenate([np.stack([0.07 * np.sin(t), 0.05 * (1 - np.cos(t))], 1),
                                   np.stack([0.064 * np.sin(t), 0.006 + 0.044 * (1 - np.cos(t))], 1)[::-1]])
    return {"flat_plate": trimesh.creation.box((0.16, 0.10, 0.012)),
            "thin_rod": trimesh.creation.cylinder(radius=0.008, height=0.18, sections=32),
            "large_box": trimesh.creation.box((0.14, 0.12, 0.16)),
            "concave_bowl": trimesh.creation.revolve(bowl_profile, sections=48),
            "torus_handle": trimesh.creation.torus(major_radius=0.045, minor_radius=0.012),
            "wide_cone": trimesh.creation.cone(radius=0.06, height=0.07, sections=48)}


def dgb_environment(root: Path | None, python: str) -> bool:
    if root is None or not (root / "src" / "main.py").exists():
        return False
    probe = subprocess.run([python, "-c", "import numpy, mujoco, hydra, transforms3d"], capture_output=True)
    return probe.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=64, help="grasps per shape (dexlite grasp -n)")
    parser.add_argument("--checkpoint", type=Path, default=REPO / "data" / "refine" / "model.pt")
    parser.add_argument("--dgb-root", type=Path, default=os.environ.get("DEXLITE_DGB_ROOT"))
    parser.add_argument("--dgb-python", default=os.environ.get("DEXLITE_DGB_PYTHON", sys.executable))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dexlite_bench_user_grasp")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with_dgb = dgb_environment(args.dgb_root, args.dgb_python)
    if not with_dgb:
        print("bench_user_grasp: no DexGraspBench checkout and environment: our DGB-like figures only")
    figures: dict[str, float] = {"n_per_shape": args.n}
    ours_all, theirs_all, lift_all = [], [], []
    for name, mesh in shapes().items():
        work = args.work / name
        work.mkdir(parents=True, exist_ok=True)
        path = work / f"{name}.obj"
        mesh.export(path)
        start = time.perf_counter()
        result = grasp_mesh(MeshGraspRequest(path, args.checkpoint, n=args.n, device="cpu", simulate=True),
                            work / "objects")
        figures[f"{name}_seconds"] = time.perf_counter() - start
        ours, lift = result.passed["dgb"], result.passed["lift"] & result.passed["six_dir"]
        figures[f"{name}_dgb_like_success"], figures[f"{name}_lift_success"] = ours.mean(), lift.mean()
        ours_all.append(ours)
        lift_all.append(lift)
        if with_dgb:
            export = (work / "dexgraspbench").resolve()
            export_dexgraspbench(result.table, work / "objects", export)
            theirs, _, _ = run_dgb(args.dgb_root, args.dgb_python, export, 0.6, 2, result.table)
            theirs_all.append(theirs)
            for key, value in agreement(ours, theirs).items():
                figures[f"{name}_preset_vs_dexgraspbench_{key}"] = value
        print(f"bench_user_grasp: {name}: DGB-like {ours.mean():.1%}"
              + (f", DexGraspBench {theirs_all[-1].mean():.1%}" if with_dgb else ""), flush=True)
    ours_all, lift_all = np.concatenate(ours_all), np.concatenate(lift_all)
    figures.update(all_dgb_like_success=ours_all.mean(), all_lift_success=lift_all.mean(), all_n=len(ours_all))
    if with_dgb:
        for key, value in agreement(ours_all, np.concatenate(theirs_all)).items():
            figures[f"all_preset_vs_dexgraspbench_{key}"] = value
    write_results("bench_user_grasp", figures)


if __name__ == "__main__":
    main()
