"""Seed-grasp optimization throughput: accepted grasps (meeting the energy thresholds) per
wall second, on the default catalog (all objects x both default scales, 32 attempts each),
with params.yaml's curate.optimize.

Compared in the same run with the same settings without pruning (``noprune_``) and with a
DexGraspNet-style configuration at the same step budget (``dgn_style_``): uniform contact
re-draws with probability 0.5, its RMSProp weighting (0.98 on the newest gradient) and its
step/temperature schedules (0.005 x 0.95^(k/50), 18 x 0.95^(k/30)) cut at the last step. Those
two run once; the shipped setting three times (the same grasps each time, only the seconds vary on
a shared machine): its figures are the median run's, with ``*_slowest`` and ``*_fastest`` beside.
Writes bench/results/bench_anneal.json.
"""
from __future__ import annotations

import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from common import REPO, devices, write_results

from dexlite_core.hand.model import HandModel
from dexlite_core.objects.store import load_object_set, read_objects
from dexlite_core.optimize.anneal import AnnealConfig
from dexlite_core.optimize.seed import SeedConfig, seed_grasps
from dexlite_core.params import build, load_section
from dexlite_core.pipeline.objects import DatasetSource, ObjectsConfig, run as build_objects


SHIPPED_REPEATS = 3


def seed_config(device: str) -> SeedConfig:
    """params.yaml's curate.optimize at 32 attempts per object and scale."""
    section = load_section("curate", REPO / "params.yaml")["optimize"]
    return build(SeedConfig, {**section, "n_per_object": 32, "device": device}, "curate.optimize")


def dexgraspnet_style(steps: int) -> AnnealConfig:
    return AnnealConfig(steps=steps, switch_probability=0.5, switch_temperature=0.0, rms_decay=0.98,
                        step_size=0.005, step_size_end=0.005 * 0.95 ** (steps / 50), temperature=18.0,
                        temperature_end=18.0 * 0.95 ** (steps / 30))


def objects_dir(tmp: str) -> Path:
    """The pipeline's object set if it was built, else the default catalog built here."""
    built = REPO / "data" / "objects"
    if (built / "objects.parquet").exists():
        return built
    build_objects(ObjectsConfig(), DatasetSource(), Path(tmp))
    return Path(tmp)


def main() -> None:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = objects_dir(tmp)
        table = read_objects(root)
        groups = [(c, float(s)) for c, scales in zip(table.object_code, table.scales) for s in scales]
        for device in devices():
            hand, objects = HandModel(device=device), load_object_set(root, device=device)
            config = seed_config(device)
            variants = {"": config.anneal, "noprune_": replace(config.anneal, prune=()),
                        "dgn_style_": dexgraspnet_style(config.anneal.steps)}
            for name, anneal in variants.items():
                runs = [seed_grasps(hand, objects, groups, replace(config, anneal=anneal))
                        for _ in range(SHIPPED_REPEATS if name == "" else 1)]
                seconds = sorted(r.seconds for r in runs)
                result = runs[0]
                figures[f"{device}_{name}accepted_per_s"] = len(result.accepted) / statistics.median(seconds)
                figures[f"{device}_{name}acceptance_rate"] = len(result.accepted) / result.attempts
                figures[f"{device}_{name}attempts_per_s"] = result.attempts / statistics.median(seconds)
                if len(runs) > 1:
                    figures[f"{device}_accepted_per_s_slowest"] = len(result.accepted) / seconds[-1]
                    figures[f"{device}_accepted_per_s_fastest"] = len(result.accepted) / seconds[0]
    write_results("bench_anneal", figures)


if __name__ == "__main__":
    main()
