"""Post-optimization on the friction-aware staged schedule vs the shipped E_post descent (issue 33 item 1).

On the validation objects (never trained on; the test objects stay untouched), the shipped model
(``data/refine/model.pt``) synthesizes ``--n`` pure samples per stable object and scale (synth's
sampler, temperature 0). The same candidates are then

- ``raw``: as decoded, with squeeze.py's pressed triples (params' press);
- ``shipped``: the postopt stage's E_post descent (params' postopt), pressed triples;
- ``staged_<variant>``: :func:`optimize.staged.staged_refine` from each candidate's pose (VARIANTS),
  each grasp with its own pre-grasp and squeeze from the schedule;

and every set runs through the DexGraspBench-like test (sim.dgb, friction 0.6). Per set: success of
all, of the ``--keep`` lowest-energy per object and scale (E_post for shipped, the staged energy at
the grasp for staged), mean pre-grasp penetration in MuJoCo, and optimizer seconds (1 thread).
Writes bench/results/staged_postopt_probe.json.

Usage: .venv/bin/python bench/probes/staged_postopt_probe.py [--n 32] [--keep 8] [--variants a,b]
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for common.py
from common import REPO, write_results  # noqa: E402

from dexlite_core.data.grasps import GraspTable
from dexlite_core.hand.model import HandModel
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.sample import SampleConfig
from dexlite_core.objects.store import load_object_set
from dexlite_core.optimize.postopt import PostOptConfig, post_optimize
from dexlite_core.optimize.staged import StagedConfig, staged_refine
from dexlite_core.params import build, load_params
from dexlite_core.sim.runner import SimConfig, simulate
from dexlite_core.sim.stability import stable_groups
from dexlite_core.squeeze import PressConfig, with_triples

DATA = REPO / "data"
VARIANTS = {
    "default": {},
    "short": {"qp_steps": 60, "step_size": 0.003},
    "short_pre20": {"qp_steps": 60, "pregrasp_steps": 20, "grasp_steps": 20, "step_size": 0.003},
    "long": {"qp_steps": 300},
    "nearest5": {"contacts": "nearest", "n_contacts": 5},
}


def keep_lowest(table: GraspTable, energy: np.ndarray, per_group: int) -> np.ndarray:
    """Rows of the ``per_group`` lowest ``energy`` of each (object, scale)."""
    keep = np.zeros(len(table), bool)
    for key in set(zip(table.object_code, table.scale.tolist())):
        rows = np.flatnonzero((table.object_code == key[0]) & (table.scale == key[1]))
        keep[rows[np.argsort(energy[rows], kind="stable")[:per_group]]] = True
    return keep


def judge(name: str, table: GraspTable, kept: np.ndarray, seconds: float) -> dict[str, float]:
    run = simulate(table, DATA / "objects", SimConfig(tests=("dgb",)), desc=None)
    passed = np.asarray(run.passed["dgb"], bool)
    figures = {f"{name}_n": len(table), f"{name}_dgb_success": float(passed.mean()),
               f"{name}_kept_dgb_success": float(passed[kept].mean()),
               f"{name}_pregrasp_penetration_mm": 1000 * float(np.nanmean(run.table.sim.pen_depth)),
               f"{name}_seconds": seconds}
    print({k: round(v, 4) for k, v in figures.items()}, flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=32, help="pure samples per validation object and scale")
    parser.add_argument("--keep", type=int, default=8, help="lowest-energy grasps kept per object and scale")
    parser.add_argument("--variants", default="default,short", help=f"staged variants: {', '.join(VARIANTS)}")
    parser.add_argument("--no-shipped", action="store_true", help="skip raw and the shipped descent")
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_params()
    groups = stable_groups(DATA / "objects", DATA / "stability", ("val",))
    objects = load_object_set(DATA / "objects", sorted({c for c, _ in groups}))
    hand, press = HandModel(), build(PressConfig, params["press"], "press")
    sample = SampleConfig(n_per_object=args.n, seed=1, device="cpu")
    raw = GraspModel.load(DATA / "refine" / "model.pt", "cpu").synthesize(objects, groups, sample).table
    figures: dict[str, float] = {"groups": len(groups), "n_per_object": args.n, "keep": args.keep}
    if not args.no_shipped:
        all_rows = np.ones(len(raw), bool)
        figures.update(judge("raw", with_triples(raw, hand, objects, press), all_rows, 0.0))
        config = replace(build(PostOptConfig, params["postopt"], "postopt"), device="cpu")
        start = time.perf_counter()
        shipped = with_triples(post_optimize(hand, objects, raw, config).table, hand, objects, press)
        seconds = time.perf_counter() - start
        w = config.weights
        e_post = np.nan_to_num(shipped.energies, nan=np.inf) @ np.array([w.fc, w.dis, w.pen, w.spen, w.joints])
        kept = keep_lowest(shipped, e_post, args.keep)
        figures.update(judge("shipped", shipped, kept, seconds))
    for name in filter(None, args.variants.split(",")):
        config = StagedConfig(device="cpu", **VARIANTS[name])
        start = time.perf_counter()
        table, energy = staged_refine(hand, objects, raw, config)
        figures.update(judge(f"staged_{name}", table, keep_lowest(table, energy, args.keep),
                             time.perf_counter() - start))
    write_results("staged_postopt_probe", figures)


if __name__ == "__main__":
    main()
