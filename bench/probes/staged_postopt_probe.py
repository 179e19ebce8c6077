"""Post-optimization on the friction-aware staged schedule vs the E_post descent (issue 33 item 1).

On the validation objects (never trained on; the test objects stay untouched), the shipped model
(``data/refine/model.pt``) synthesizes ``--n`` pure samples per stable object and scale (synth's
sampler, temperature 0). The same candidates are then

- ``raw``: as decoded, with squeeze.py's pressed triples (params' press);
- ``anneal``: the E_post descent (params' postopt, method anneal), pressed triples;
- ``staged_<variant>``: the staged schedule (method staged) with VARIANTS' settings, from each
  candidate's pose, each grasp with its own pre-grasp and squeeze from the schedule;

and every set runs through the DexGraspBench-like test (sim.dgb, friction 0.6). Per set: success of
all, of the ``--keep`` lowest-energy per object and scale (each method's energy), mean pre-grasp
penetration in MuJoCo, and post-optimization seconds (1 thread).
Writes bench/results/staged_postopt_probe_<split>.json.

Usage: .venv/bin/python bench/probes/staged_postopt_probe.py [--n 32] [--keep 8] [--variants a,b] [--split val]
"""
from __future__ import annotations

import argparse
import sys
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
from dexlite_core.optimize.postopt import PostOptConfig, lowest_energy_rows, post_optimize
from dexlite_core.optimize.staged import StagedSchedule
from dexlite_core.params import build, load_params
from dexlite_core.sim.runner import SimConfig, simulate
from dexlite_core.sim.stability import stable_groups
from dexlite_core.squeeze import PressConfig, with_triples

DATA = REPO / "data"
#: Schedules tried (overrides of optimize.staged.StagedSchedule's defaults, the seed optimizer's).
VARIANTS = {
    "seed_schedule": {},
    "short": {"qp_steps": 60, "step_size": 0.003},
    "short_pre20": {"qp_steps": 60, "pregrasp_steps": 20, "grasp_steps": 20, "step_size": 0.003},
    "long": {"qp_steps": 300},
    "mid_small": {"qp_steps": 150, "step_size": 0.003},
    "long_small": {"qp_steps": 300, "step_size": 0.003},
    "xlong": {"qp_steps": 500},
    "long_smaller": {"qp_steps": 300, "step_size": 0.002},
    "xlong_small": {"qp_steps": 500, "step_size": 0.003},
    "qp30": {"qp_steps": 30, "step_size": 0.003},
    "short_mu02": {"qp_steps": 60, "step_size": 0.003, "qp": {"mu": 0.2}},
    "short_grasp80": {"qp_steps": 60, "step_size": 0.003, "grasp_steps": 80},
}


def judge(name: str, table: GraspTable, kept: np.ndarray, seconds: float) -> dict[str, float]:
    run = simulate(table, DATA / "objects", SimConfig(tests=("dgb",)), desc=None)
    passed = np.asarray(run.passed["dgb"], bool)
    figures = {f"{name}_n": len(table), f"{name}_dgb_success": float(passed.mean()),
               f"{name}_kept_dgb_success": float(passed[kept].mean()),
               f"{name}_pregrasp_penetration_mm": 1000 * float(np.nanmean(run.table.sim.pen_depth)),
               f"{name}_seconds": seconds}
    print({k: round(v, 4) for k, v in figures.items()}, flush=True)
    return figures


def schedule(overrides: dict) -> StagedSchedule:
    qp = overrides.pop("qp", {})
    return replace(StagedSchedule(**overrides), qp=replace(StagedSchedule().qp, **qp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=32, help="pure samples per validation object and scale")
    parser.add_argument("--keep", type=int, default=8, help="lowest-energy grasps kept per object and scale")
    parser.add_argument("--variants", default="seed_schedule,short", help=f"staged schedules: {', '.join(VARIANTS)}")
    parser.add_argument("--split", default="val", help="objects: val (choose on these) or test (report only)")
    parser.add_argument("--no-baseline", action="store_true", help="skip raw and the anneal")
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_params()
    groups = stable_groups(DATA / "objects", DATA / "stability", (args.split,))
    objects = load_object_set(DATA / "objects", sorted({c for c, _ in groups}))
    hand, press = HandModel(), build(PressConfig, params["press"], "press")
    sample = SampleConfig(n_per_object=args.n, seed=1, device="cpu")
    raw = GraspModel.load(DATA / "refine" / "model.pt", "cpu").synthesize(objects, groups, sample).table
    figures: dict[str, float] = {"groups": len(groups), "n_per_object": args.n, "keep": args.keep}
    config = replace(build(PostOptConfig, params["postopt"], "postopt"), device="cpu")
    runs = {} if args.no_baseline else {"anneal": replace(config, method="anneal")}
    runs.update({f"staged_{name}": replace(config, method="staged", staged=schedule(dict(VARIANTS[name])))
                 for name in filter(None, args.variants.split(","))})
    if not args.no_baseline:
        figures.update(judge("raw", with_triples(raw, hand, objects, press), np.ones(len(raw), bool), 0.0))
    for name, run_config in runs.items():
        result = post_optimize(hand, objects, raw, run_config, press)
        kept = lowest_energy_rows(result.table, result.energy, lambda n: args.keep)
        figures.update(judge(name, result.table, kept, result.seconds))
    write_results(f"staged_postopt_probe_{args.split}", figures)


if __name__ == "__main__":
    main()
