"""The ``evaluate`` stage: fit, generalization and post-optimization, measured side by side in MuJoCo.

Seven sets of grasps, each simulated with the same tests and measured by :func:`table_metrics`:

- ``recon``: up to ``recon_max`` of the ``dataset`` grasps, each encoded by the CVAE and its
  posterior mean decoded at the grasp's own anchor point. Does the model fit its training data?
- ``train_raw``: pure synthesis (the synthesize stage's sampler: bank grasps transferred to their best
  matching points, then the refiner) on every training object and scale that has filtered grasps,
  ``train_raw_per_object`` each. Does synthesis give grasps where the model was trained?
- ``decoded``: the ``raw`` rows as the CVAE decoded them, before the refiner: what the refiner adds.
- ``raw``: the synthesize stage's grasps on held-out objects, a seeded subset of ``raw_max``.
- ``postopt_all``: the same ``raw`` candidates after post-optimization, none dropped.
- ``postopt``: the postopt stage's selection (lowest E_post per object and scale).
- ``dataset``: up to ``dataset_max`` filtered grasps on training objects, as stored.

Beside the tests, a seeded subset of at most ``dgb_max`` grasps of each set goes through the
DexGraspBench-like test (``sim.dgb``, :mod:`dexlite_core.sim.dgb`), each grasp replayed with its own
pre-grasp and squeeze: ``dgb_success``, a figure comparable with the success rates BODex and
DexGraspBench report, and ``dgb_no_contact``, how many of its passes touch nothing at the grasp
(the protocol's known false positive: a hand that closes onto the object only during the squeeze).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dexlite_core.conventions import resolve_device
from dexlite_core.data.files import atomic_path
from dexlite_core.data.grasps import ENERGY_COLUMNS, GraspTable, read_grasps, write_grasps
from dexlite_core.energy import score_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.metrics import contacts_near_surface, joint_entropy, pca_top3_share, q1_epsilon
from dexlite_core.model.data import grasp_data, split_rows
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.sample import SampleConfig
from dexlite_core.objects.object_set import ObjectSet
from dexlite_core.objects.store import load_object_set, read_objects, split_of
from dexlite_core.sim.runner import SimConfig, SimRun, simulate
from dexlite_core.squeeze import PressConfig, touches, with_triples

#: The measured sets, in the order the metrics and the report show them.
SETS = ("recon", "train_raw", "decoded", "raw", "postopt_all", "postopt", "dataset")


@dataclass(frozen=True)
class EvaluateConfig:
    raw_max: int = 640  #: raw grasps simulated (a seeded random subset when there are more), post-optimized and not
    dataset_max: int = 400  #: filtered training grasps simulated for the "dataset" set
    recon_max: int = 200  #: of those, grasps re-decoded for the "recon" set
    dgb_max: int = 256  #: grasps of each set (seeded subset) through the DexGraspBench-like test
    train_raw_per_object: int = 16  #: pure samples per training object and scale ("train_raw")
    contact_threshold: float = 0.005  #: m; candidates this close to the surface count as contacts (Q1)
    friction: float = 0.6  #: Q1 friction cone
    cone_edges: int = 8
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if min(self.raw_max, self.dataset_max, self.recon_max, self.train_raw_per_object) < 1:
            raise ValueError("raw_max, dataset_max, recon_max and train_raw_per_object must be >= 1")
        if self.dgb_max < 0:
            raise ValueError(f"dgb_max must be >= 0 (0: no DexGraspBench-like test), got {self.dgb_max}")


@dataclass(frozen=True)
class EvaluateSettings:
    evaluate: EvaluateConfig
    sim: SimConfig  #: with evaluate.tests
    sample: SampleConfig  #: train_raw samples as the synthesize stage does
    press: PressConfig  #: the pre-grasp and squeeze of the sets this stage makes (recon, train_raw)


@dataclass(frozen=True)
class EvaluateInputs:
    checkpoint: Path  #: data/refine/model.pt (the data engine's final model with its refiner)
    decoded: Path  #: the synthesize stage's grasps before the refiner
    raw: Path  #: the synthesize stage's grasps
    postopt_all: Path  #: every raw grasp post-optimized, rows as in ``raw``
    postopt: Path  #: the post-optimized grasps kept
    dataset: Path  #: the filter stage's passed grasps
    objects_dir: Path
    synth_metrics: Path  #: JSON with sample_grasps_per_s
    postopt_metrics: Path  #: JSON with postopt_grasps_per_s


def table_metrics(table: GraspTable, passed: dict[str, np.ndarray], hand: HandModel, objects: ObjectSet,
                  config: EvaluateConfig, device) -> dict[str, float]:
    """Success, penetration, contact distance, Q1 and diversity of one set of grasps. Contact distance
    is the mean |signed distance| of the nearest contact candidates (4, on distinct links), the same
    for every set whatever contacts its stored energies used."""
    pose = table.poses(device=device)
    obj = objects.index_of(list(table.object_code))
    scale = torch.as_tensor(table.scale, device=device)
    with torch.no_grad():
        depth = hand.penetration(hand.link_frames(pose), objects.chunked_points, objects.chunk_centers,
                                 objects.chunk_radii, obj, scale, reduce="max").cpu().numpy()
    contact_sum = score_grasps(hand, objects, pose, obj, scale).dis.cpu().numpy()  # |d| over the 4 nearest contacts
    contacts = contacts_near_surface(hand, objects, pose, obj, scale, config.contact_threshold)
    q1 = [q1_epsilon(p, n, float(s), config.friction, config.cone_edges) for (p, n), s in zip(contacts, table.scale)]
    return {
        "lift_success": float(passed["lift"].mean()),
        "six_dir_suc1": float((table.sim.dirs_passed >= 1).mean()),
        "six_dir_suc6": float(passed["six_dir"].mean()),
        "penetration_mean_mm": float(depth.mean() * 1000), "penetration_max_mm": float(depth.max() * 1000),
        "contact_distance_mm": float(contact_sum.mean() / 4 * 1000),
        "q1": float(np.mean(q1)),
        "h_mean": joint_entropy(table.joints), "pca_top3_share": pca_top3_share(table.joints),
        "n_grasps": len(table),
    }


def run(settings: EvaluateSettings, inputs: EvaluateInputs, out_dir: Path) -> dict:
    """Simulate and measure the seven sets (module docstring); metrics side by side, one dict per set.
    The sets this stage makes (recon, train_raw) get their own pre-grasp and squeeze (``settings.press``)."""
    config, sim, sample, press = settings.evaluate, settings.sim, settings.sample, settings.press
    device = resolve_device(config.device)
    objects_table = read_objects(inputs.objects_dir)
    training = split_rows(read_grasps(inputs.dataset), split_of(inputs.objects_dir), "train")
    raw, optimized, decoded = (read_grasps(p) for p in (inputs.raw, inputs.postopt_all, inputs.decoded))
    for path, table in ((inputs.postopt_all, optimized), (inputs.decoded, decoded)):
        if len(table) != len(raw):
            raise ValueError(f"{path} has {len(table)} rows, {inputs.raw} {len(raw)}: re-run `dvc repro evaluate`")
    objects = load_object_set(inputs.objects_dir, sorted(set(training.object_code) | set(raw.object_code)),
                              device=device)
    hand = HandModel(device=device)
    dataset = _subset(training, config.dataset_max, config.seed)
    pick = _subset_index(len(raw), config.raw_max, config.seed)
    made = model_sets(inputs.checkpoint, objects, training, _subset(dataset, config.recon_max, config.seed),
                      replace(sample, mode="pure", n_per_object=config.train_raw_per_object), device)
    sets = {**{name: with_triples(table, hand, objects, press) for name, table in made.items()},
            "decoded": decoded.select(pick), "raw": raw.select(pick), "postopt_all": optimized.select(pick),
            "postopt": read_grasps(inputs.postopt), "dataset": dataset}
    runs = simulate_sets(sets, inputs.objects_dir, sim)  # in SETS order
    metrics = {name: table_metrics(simulated.table, simulated.passed, hand, objects, config, device)
               for name, simulated in runs.items()}
    if config.dgb_max:
        for name, figures in dgb_success(sets, inputs.objects_dir, sim, config.dgb_max, config.seed, hand,
                                         objects).items():
            metrics[name].update(figures)
    metrics["gain_lift_points"] = 100 * (metrics["postopt"]["lift_success"] - metrics["raw"]["lift_success"])
    synth, post = (json.loads(Path(path).read_text()) for path in (inputs.synth_metrics, inputs.postopt_metrics))
    metrics["throughput"] = {"sample_grasps_per_s": synth.get("sample_grasps_per_s", float("nan")),
                             "postopt_grasps_per_s": post.get("postopt_grasps_per_s", float("nan"))}
    out_dir = Path(out_dir)
    for name, simulated in runs.items():
        write_grasps(out_dir / f"{name}_simulated.parquet", simulated.table)
    _write_success_by_object(out_dir / "success_by_object.csv", runs, dict(zip(objects_table.object_code,
                                                                               objects_table["shape"])))
    _write_energy_histograms(out_dir, sets)
    return metrics


def model_sets(checkpoint: Path, objects: ObjectSet, training: GraspTable, known: GraspTable, sample: SampleConfig,
               device) -> dict[str, GraspTable]:
    """``recon`` (the ``known`` grasps re-decoded from their posterior means) and ``train_raw``
    (``sample`` on every (object, scale) of ``training``, refined when the checkpoint has a refiner)."""
    model = GraspModel.load(checkpoint, device)
    recon = model.reconstruct(grasp_data(known, objects, model.point_index(objects)), known.grasp_id, sample.batch_size)
    groups = sorted(set(zip(training.object_code, training.scale.tolist())))
    return {"recon": recon, "train_raw": model.synthesize(objects, groups, sample).table}


def simulate_sets(sets: dict[str, GraspTable], objects_dir: Path, sim: SimConfig) -> dict[str, SimRun]:
    """One simulation run over all sets (one worker pool, each object's scene compiled once per
    chunk), split back by set."""
    simulated = simulate(GraspTable.concat([replace(t, sim=None) for t in sets.values()]), objects_dir, sim,
                   desc="evaluate: simulating")
    runs, start = {}, 0
    for name, table in sets.items():
        rows = np.arange(start, start + len(table))
        runs[name] = SimRun(simulated.table.select(rows), {t: p[rows] for t, p in simulated.passed.items()})
        start += len(table)
    return runs


def dgb_success(sets: dict[str, GraspTable], objects_dir: Path, sim: SimConfig, at_most: int, seed: int,
                hand: HandModel, objects: ObjectSet) -> dict[str, dict[str, float]]:
    """Per set, on a seeded subset of at most ``at_most`` grasps (one simulation run over all sets): the share
    that passes the DexGraspBench-like test, the subset's size, and the passes that touch nothing."""
    subsets = {name: _subset(table, at_most, seed) for name, table in sets.items()}
    runs = simulate_sets(subsets, objects_dir, replace(sim, tests=("dgb",)))
    figures = {}
    for name, simulated in runs.items():
        passed, table = simulated.passed["dgb"], simulated.table
        touching = touches(hand, objects, table.poses(device=objects.device), objects.index_of(list(table.object_code)),
                           torch.as_tensor(table.scale, device=objects.device)).cpu().numpy()
        figures[name] = {"dgb_success": float(passed.mean()) if len(table) else float("nan"), "dgb_n": len(table),
                         "dgb_no_contact": int((passed & ~touching).sum())}
    return figures


def _subset_index(n: int, at_most: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of at most ``at_most`` of ``n`` rows."""
    if n <= at_most:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, at_most, replace=False))


def _subset(table: GraspTable, at_most: int, seed: int) -> GraspTable:
    return table.select(_subset_index(len(table), at_most, seed))


def _write_success_by_object(path: Path, runs: dict[str, SimRun], shape_of: dict[str, str]) -> None:
    """Lift success per held-out object (and its shape family): decoded, raw (refined by the network),
    every post-optimized candidate, the kept ones."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["object_code", "shape", "stage", "lift_success"])
        for name in ("decoded", "raw", "postopt_all", "postopt"):
            simulated = runs[name]
            for code in sorted(set(simulated.table.object_code)):
                mask = simulated.table.object_code == code
                writer.writerow([code, shape_of[code], name, f"{simulated.passed['lift'][mask].mean():.4f}"])


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
