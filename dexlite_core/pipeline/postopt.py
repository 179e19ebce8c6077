"""The ``postopt`` stage: every synthesized grasp post-optimized, the lowest-energy ones kept."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dexlite_core.conventions import resolve_device
from dexlite_core.data.grasps import read_grasps, write_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.store import load_object_set
from dexlite_core.optimize.postopt import PostOptConfig, keep_lowest_energy, post_optimize
from dexlite_core.squeeze import PressConfig


@dataclass(frozen=True)
class PostOptSettings:
    postopt: PostOptConfig
    press: PressConfig  #: method anneal: each grasp's pressed pre-grasp and squeeze


@dataclass(frozen=True)
class PostOptInputs:
    raw: Path  #: the synthesize stage's grasps
    objects_dir: Path


def run(settings: PostOptSettings, inputs: PostOptInputs, all_path: Path, out_path: Path) -> dict:
    """Post-optimize every raw grasp (all written to ``all_path``, rows as in the raw table, each with its own
    pre-grasp and squeeze), then keep the ``keep_per_object`` of lowest energy per object and scale
    (``out_path``). Two files, not a folder: they sit beside the synthesize stage's in data/synth."""
    config = settings.postopt
    device = resolve_device(config.device)
    raw = read_grasps(inputs.raw)
    objects = load_object_set(inputs.objects_dir, sorted(set(raw.object_code)), device=device)
    result = post_optimize(HandModel(device=device), objects, raw, config, settings.press)
    kept = keep_lowest_energy(result.table, result.energy, config.keep_per_object)
    write_grasps(all_path, result.table)
    write_grasps(out_path, kept)
    return {"n_refined": len(result.table), "n_grasps": len(kept), "postopt_seconds": result.seconds,
            "postopt_grasps_per_s": len(result.table) / max(result.seconds, 1e-9),
            "postopt_ms_per_grasp": 1000 * result.seconds / max(len(result.table), 1)}
