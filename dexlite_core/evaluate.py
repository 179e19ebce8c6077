"""The ``evaluate`` stage: raw, post-optimized and dataset grasps simulated and measured."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dexlite_core.conventions import resolve_device
from dexlite_core.data.files import atomic_path
from dexlite_core.data.grasps import ENERGY_COLUMNS, GraspTable, read_grasps, write_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.metrics import contacts_near_surface, joint_entropy, pca_top3_share, q1_epsilon
from dexlite_core.model.data import split_rows
from dexlite_core.objects.store import load_object_set, read_objects
from dexlite_core.sim.runner import SimConfig, simulate


@dataclass(frozen=True)
class EvaluateConfig:
    raw_max: int = 640  #: raw grasps simulated (a seeded random subset when there are more)
    dataset_max: int = 400  #: filtered training grasps simulated for the "dataset" column
    contact_threshold: float = 0.005  #: m; candidates this close to the surface count as contacts (Q1)
    friction: float = 0.6  #: Q1 friction cone
    cone_edges: int = 8
    seed: int = 0
    device: str = "auto"


def table_metrics(table: GraspTable, passed: dict[str, np.ndarray], hand: HandModel, objects, config: EvaluateConfig,
                  device) -> dict[str, float]:
    """Success, penetration, contact distance, Q1 and diversity of one set of grasps."""
    pose = table.poses(device=device)
    obj = objects.index_of(list(table.object_code))
    scale = torch.as_tensor(table.scale, device=device)
    with torch.no_grad():
        depth = hand.penetration(hand.link_frames(pose), objects.chunked_points, objects.chunk_centers,
                                 objects.chunk_radii, obj, scale, reduce="max").cpu().numpy()
    contacts = contacts_near_surface(hand, objects, pose, obj, scale, config.contact_threshold)
    q1 = [q1_epsilon(p, n, float(s), config.friction, config.cone_edges) for (p, n), s in zip(contacts, table.scale)]
    return {
        "lift_success": float(passed["lift"].mean()),
        "six_dir_suc1": float((table.sim.dirs_passed >= 1).mean()),
        "six_dir_suc6": float(passed["six_dir"].mean()),
        "penetration_mean_mm": float(depth.mean() * 1000), "penetration_max_mm": float(depth.max() * 1000),
        "contact_distance_mm": float(np.nanmean(table.energy("E_dis")) / 4 * 1000),
        "q1": float(np.mean(q1)),
        "h_mean": joint_entropy(table.joints), "pca_top3_share": pca_top3_share(table.joints),
        "n_grasps": len(table),
    }


def evaluate_stage(config: EvaluateConfig, sim: SimConfig, raw_path: Path, postopt_path: Path, dataset_path: Path, objects_dir: Path,
                   synth_metrics: dict, postopt_metrics: dict, out_dir: Path) -> dict:
    """Simulate and measure raw, post-optimized and dataset grasps; metrics side by side."""
    device = resolve_device(config.device)
    objects_table = read_objects(objects_dir)
    split_of = dict(zip(objects_table.object_code, objects_table.split))
    dataset = split_rows(read_grasps(dataset_path), split_of, "train")
    sets = {"raw": _subset(read_grasps(raw_path), config.raw_max, config.seed),
            "postopt": read_grasps(postopt_path), "dataset": _subset(dataset, config.dataset_max, config.seed)}
    hand = HandModel(device=device)
    codes = sorted(set().union(*(set(t.object_code) for t in sets.values())))
    objects = load_object_set(objects_dir, codes, device=device)
    metrics, runs = {}, {}
    for name, table in sets.items():
        run = simulate(table, objects_dir, sim, desc=f"evaluate: {name}")
        runs[name] = run
        metrics[name] = table_metrics(run.table, run.passed, hand, objects, config, device)
    metrics["gain_lift_points"] = 100 * (metrics["postopt"]["lift_success"] - metrics["raw"]["lift_success"])
    metrics["throughput"] = {"sample_grasps_per_s": synth_metrics.get("sample_grasps_per_s", float("nan")),
                             "postopt_grasps_per_s": postopt_metrics.get("postopt_grasps_per_s", float("nan"))}
    out_dir = Path(out_dir)
    for name in ("raw", "postopt"):
        write_grasps(out_dir / f"{name}_simulated.parquet", runs[name].table)
    _write_success_by_object(out_dir / "success_by_object.csv", runs)
    _write_energy_histograms(out_dir, sets)
    return metrics


def _subset(table: GraspTable, at_most: int, seed: int) -> GraspTable:
    """A seeded random subset of at most ``at_most`` rows (sorted), or the whole table."""
    if len(table) <= at_most:
        return table
    return table.select(np.sort(np.random.default_rng(seed).choice(len(table), at_most, replace=False)))


def _write_success_by_object(path: Path, runs) -> None:
    raw, post = runs["raw"], runs["postopt"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["object_code", "stage", "lift_success"])
        for name, run in (("raw", raw), ("postopt", post)):
            for code in sorted(set(run.table.object_code)):
                mask = run.table.object_code == code
                writer.writerow([code, name, f"{run.passed['lift'][mask].mean():.4f}"])


def _write_energy_histograms(out_dir: Path, sets: dict[str, GraspTable], bins: int = 20) -> None:
    """One CSV per energy term: the share of raw and post-optimized grasps per log10 bin."""
    for i, term in enumerate(ENERGY_COLUMNS[:3]):
        values = {k: np.log10(np.maximum(sets[k].energies[:, i], 1e-6)) for k in ("raw", "postopt")}
        edges = np.linspace(min(v.min() for v in values.values()), max(v.max() for v in values.values()) + 1e-9,
                            bins + 1)
        counts = {k: np.histogram(v, edges)[0] / max(len(v), 1) for k, v in values.items()}
        with atomic_path(out_dir / f"energy_{term}.csv") as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["log10_energy", "raw", "postopt"])
            for b in range(bins):
                writer.writerow([f"{(edges[b] + edges[b + 1]) / 2:.3f}", f"{counts['raw'][b]:.4f}",
                                 f"{counts['postopt'][b]:.4f}"])
