"""Kinematic equivalence of the DexGraspBench export (not a timing): our hand posed by a grasp vs
Menagerie's Shadow Hand posed by the exported qpos, link origins compared over 500 random joint
configurations and palm poses. Needs a DexGraspBench checkout (its assets/hand/shadow/right_hand.xml;
meshes are not needed): `bench/bench_export.py PATH`, or DEXLITE_DGB_ROOT, or ../shared/DexGraspBench.
Writes bench/results/bench_export.json.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
from common import REPO, write_results

from dexlite_core.conventions import JOINT_LOWER, JOINT_UPPER, matrix_to_quat, random_rotations
from dexlite_core.sim.dexgraspbench import link_residuals, menagerie_kinematics, to_menagerie

N = 500


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DEXLITE_DGB_ROOT", REPO.parent / "shared" / "DexGraspBench"))
    xml = root / "assets" / "hand" / "shadow" / "right_hand.xml"
    if not xml.exists():
        sys.exit(f"bench_export: no DexGraspBench checkout at {root} (its {xml.relative_to(root)} is missing)")
    rng = np.random.default_rng(0)
    joints = rng.uniform(JOINT_LOWER, JOINT_UPPER, (N, 22))
    quat = matrix_to_quat(random_rotations(N, torch.Generator().manual_seed(0), torch.float64)).numpy()
    pos = rng.uniform(-0.2, 0.2, (N, 3))
    links, mm = link_residuals(menagerie_kinematics(xml), to_menagerie(pos, quat, joints), pos, quat, joints)
    mm = mm * 1000
    thumb = [i for i, n in enumerate(links) if ":th" in n]
    little = [i for i, n in enumerate(links) if ":lf" in n]
    others = [i for i in range(len(links)) if i not in thumb + little]
    write_results("bench_export", {
        "residual_mean_mm": mm.mean(), "residual_max_mm": mm.max(),
        "residual_thumb_max_mm": mm[:, thumb].max(), "residual_little_finger_max_mm": mm[:, little].max(),
        "residual_ff_mf_rf_palm_max_mm": mm[:, others].max(), "configurations": N, "links": len(links)})


if __name__ == "__main__":
    main()
