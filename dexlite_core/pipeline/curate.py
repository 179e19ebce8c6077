"""The ``curate`` stage: the seed grasp table, from our optimizer or a DexGraspNet release."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from dexlite_core.conventions import resolve_device
from dexlite_core.data.dexgraspnet import DexGraspNetError, read_dexgraspnet_file
from dexlite_core.data.grasps import ENERGY_COLUMNS, GraspTable, write_grasps
from dexlite_core.energy import score_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.store import load_object_set, write_table
from dexlite_core.optimize.seed import SeedConfig, seed_grasps
from dexlite_core.optimize.staged import StagedConfig, staged_seed_grasps
from dexlite_core.pipeline.objects import DatasetSource
from dexlite_core.sim.stability import stable_groups
from dexlite_core.squeeze import PressConfig, with_triples

#: Seed optimizers (source optimize): staged, BODex's staged schedule on the friction-cone QP residual
#: (optimize/staged.py); anneal, the annealed E_fc descent (optimize/seed.py), kept as the baseline.
OPTIMIZERS = ("anneal", "staged")

REJECT_SCHEMA = pa.schema([("object_code", pa.string()), ("grasp_id", pa.int64()), ("reason", pa.string())])


@dataclass(frozen=True)
class CurateConfig:
    source: DatasetSource = field(default_factory=DatasetSource)
    splits: tuple[str, ...] = ("train", "val")  #: object splits to curate grasps for
    optimizer: str = "staged"  #: one of OPTIMIZERS
    optimize: SeedConfig = field(default_factory=SeedConfig)  #: optimizer anneal
    staged: StagedConfig = field(default_factory=StagedConfig)  #: optimizer staged

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"curate.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")


@dataclass(frozen=True)
class CurateSettings:
    curate: CurateConfig
    press: PressConfig = field(default_factory=PressConfig)  #: how the annealed optimizer's grasps squeeze


@dataclass(frozen=True)
class CurateInputs:
    objects_dir: Path  #: the objects stage's output
    stability_dir: Path  #: the stability stage's output: which objects and scales get grasps


def _energy_quantiles(table: GraspTable) -> dict[str, float]:
    out = {}
    for i, name in enumerate(ENERGY_COLUMNS):
        values = table.energies[:, i]
        values = values[np.isfinite(values)]
        if len(values):
            for q in (50, 90):
                out[f"{name}_p{q}"] = float(np.percentile(values, q))
    return out


def run(settings: CurateSettings, inputs: CurateInputs, out_dir: Path) -> dict:
    """Write ``grasps.parquet`` and ``rejects.parquet`` into ``out_dir``; return metrics. Our optimizers' grasps
    get their own pre-grasp and squeeze (the staged one's from its schedule, the annealed one's pressed with
    ``settings.press``); a release's keep the fixed ones it was made for."""
    config, press, objects_dir = settings.curate, settings.press, inputs.objects_dir
    groups = stable_groups(objects_dir, inputs.stability_dir, config.splits)
    codes = sorted({c for c, _ in groups})
    device = resolve_device((config.staged if config.optimizer == "staged" else config.optimize).device)
    hand = HandModel(device=device)
    objects = load_object_set(objects_dir, codes, device=device)
    if config.source.kind == "optimize":
        if config.optimizer == "staged":  # its grasps come with their own pre-grasp and squeeze
            result = staged_seed_grasps(hand, objects, groups, config.staged)
            table, metrics = result.accepted, {}
        else:
            result = seed_grasps(hand, objects, groups, config.optimize)
            table, metrics = with_triples(result.accepted, hand, objects, press), {"pruned": result.pruned}
        rejects = []
        metrics.update(attempts=result.attempts, accepted=len(table), acceptance_rate=len(table) / max(result.attempts, 1),
                       accepted_per_s=len(table) / max(result.seconds, 1e-9), optimize_seconds=result.seconds)
    else:
        table, rejects = ingest_dexgraspnet(Path(config.source.dexgraspnet_root), codes)
        # Scales compared to 0.1 mm: DexGraspNet stores e.g. 0.0599999954 for 0.06.
        stable = {(c, round(s, 4)) for c, s in groups}
        keep = np.array([(c, round(float(s), 4)) in stable for c, s in zip(table.object_code, table.scale)], dtype=bool)
        rejects += [{"object_code": c, "grasp_id": int(g), "reason": "object does not rest stably at this scale"}
                    for c, g in zip(table.object_code[~keep], table.grasp_id[~keep])]
        table = table.select(keep)
        obj = objects.index_of(list(table.object_code))
        terms = score_grasps(hand, objects, table.poses(device=device), obj,
                             torch.as_tensor(table.scale, device=device))
        table = replace(table, energies=torch.stack([terms.fc, terms.dis, terms.pen, terms.spen, terms.joints],
                                                    1).cpu().numpy())
        metrics = {"ingested": len(table)}
    if len(table) == 0:
        raise ValueError("curate produced no usable grasps: " + (rejects[0]["reason"] if rejects else
                         "no optimization attempt met the energy thresholds; raise curate.optimize.anneal.steps"))
    out_dir = Path(out_dir)
    write_grasps(out_dir / "grasps.parquet", table)
    write_table(out_dir / "rejects.parquet", rejects, REJECT_SCHEMA)
    metrics.update(n_grasps=len(table), n_rejected=len(rejects), n_objects=len(set(table.object_code)),
                   **_energy_quantiles(table))
    return metrics


def ingest_dexgraspnet(root: Path, codes: list[str]) -> tuple[GraspTable, list[dict]]:
    """Read ``dataset/<code>.npy`` for each code; corrupt files and bad records become rejects."""
    tables, rejects = [], []
    for code in codes:
        path = root / "dataset" / f"{code}.npy"
        try:
            result = read_dexgraspnet_file(path)
        except DexGraspNetError as exc:
            rejects.append({"object_code": code, "grasp_id": -1, "reason": str(exc)})
            continue
        tables.append(result.table)
        rejects.extend(result.rejects)
    tables = [t for t in tables if len(t)]
    if not tables:
        raise ValueError(f"no usable DexGraspNet grasps under {root}/dataset: "
                         + (rejects[0]["reason"] if rejects else "no files for the built objects"))
    return GraspTable.concat(tables).sorted(), rejects
