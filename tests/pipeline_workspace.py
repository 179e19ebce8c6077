"""A throwaway copy of the pipeline with tiny params, for end-to-end `dvc repro` tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

#: Overrides that make every stage take seconds: 3 objects, few grasps, few steps.
TINY = {
    "objects": {"codes": ["proc-box-brick", "proc-cyl-can", "pyb-duck"], "sdf_resolution": 48, "n_points": 512,
                "val_fraction": 0.0, "test_fraction": 0.34, "scales": [0.07]},
    "stability": {"settle_seconds": 0.3, "test_seconds": 0.5, "n_orientations": 1},
    # Generous thresholds: the tiny run checks the plumbing, not grasp quality.
    "curate": {"staged": {"n_per_object": 16, "schedule": {"qp_steps": 40, "pregrasp_steps": 15, "grasp_steps": 15},
                          "thresholds": {"qp": 0.05, "contact_distance": 0.01}},
               "optimize": {"n_per_object": 16, "batch_size": 64, "anneal": {
                   "steps": 120, "thresholds": {"fc": 3.0, "dis": 0.03, "pen": 0.03, "spen": 0.02, "joints": 0.05}}}},
    # Permissive lift: downstream stages need passed grasps; real criteria are tested elsewhere.
    "filter": {"tests": ["lift"]},
    "sim": {"grasp": {"lift_ratio": 0.01, "max_slip": 1.0, "max_rotation_deg": 180.0, "max_penetration": 1.0,
                      "lift_time": 0.2, "six_dir_time": 0.1}},
    "train": {"steps": 4, "eval_every": 2, "batch_size": 16, "n_points": 128,
              "network": {"local_dim": 16, "global_dim": 32, "hidden": 32, "latent": 8}},
    # One data-engine round, end to end (the default may be 0), continuing from the train stage's model.
    # The tiny object set has no validation objects: the held-out check runs on the test object.
    "engine": {"rounds": 1, "expansions": 2, "check_split": "test", "heldout_per_object": 4, "heldout_keep": 2,
               "retrain_steps": 6, "adapt": {"transfers_per_object": 2, "steps": 3, "batch_size": 8}},
    "refine": {"transfers_per_object": 2, "steps": 3, "batch_size": 8, "hidden": 16, "passes": 2, "check_split": "test"},
    "synth": {"n_per_object": 4},
    "postopt": {"staged": {"qp_steps": 10, "pregrasp_steps": 5, "grasp_steps": 5}, "keep_per_object": 2},
    # dgb_max 3: the DexGraspBench-like test (sim.dgb, DexGraspBench's own values) on 3 grasps per set.
    "evaluate": {"dataset_max": 8, "recon_max": 6, "train_raw_per_object": 4, "dgb_max": 3},
    "report": {"thumbs_per_object": 1},
}


def deep_update(base: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def make_workspace(root: Path, overrides: dict | None = None) -> Path:
    """Copy dvc.yaml, stages/ and dexlite_core/ into ``root`` with tiny params; dvc init there."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "dexlite_core", root / "dexlite_core", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    deep_update(params, TINY)
    deep_update(params, overrides or {})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(root, "init", "--no-scm", "-q")
    dvc(root, "config", "core.analytics", "false")
    return root


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run dvc in ``root`` with this interpreter's environment first on PATH."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(root), DVC_NO_ANALYTICS="1")
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result
