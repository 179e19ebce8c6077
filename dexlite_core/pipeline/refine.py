"""The ``refine`` stage: the refiner (:mod:`dexlite_core.model.refine`) trained on transfers between training
objects, checked on the ``check_split`` objects, and added to the model."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dexlite_core.conventions import resolve_device
from dexlite_core.data.grasps import GraspTable, write_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.refine import Refinement, RefinerConfig, RefinerPairs, refiner_state, train_refiner
from dexlite_core.model.sample import SampleConfig
from dexlite_core.objects.store import load_object_set
from dexlite_core.optimize.postopt import PostOptConfig
from dexlite_core.pipeline.passers import find_passers
from dexlite_core.seeding import stable_seed
from dexlite_core.sim.runner import SimConfig, simulate
from dexlite_core.sim.stability import stable_groups
from dexlite_core.squeeze import PressConfig


@dataclass(frozen=True)
class RefineSettings:
    refiner: RefinerConfig
    sample: SampleConfig  #: the synthesize stage's sampler (the check, and what the shipped model samples with)
    postopt: PostOptConfig  #: the postopt stage's descent, on the transfers
    sim: SimConfig  #: with the filter stage's tests, on the post-optimized transfers
    press: PressConfig  #: each post-optimized transfer's own pre-grasp and squeeze


@dataclass(frozen=True)
class RefineInputs:
    checkpoint: Path  #: the engine stage's model.pt
    objects_dir: Path
    stability_dir: Path  #: which training and check_split objects and scales are stable


def run(settings: RefineSettings, inputs: RefineInputs, out_dir: Path) -> dict:
    """``inputs.checkpoint`` with a refiner written to ``out_dir/model.pt``.
    Pairs: on every stable training object and scale, its ``transfers_per_object`` best matches from the
    other objects' bank grasps, post-optimized (``postopt``) and simulated (``sim``; ``pairs.parquet``); each
    that passes is a pair (transfer -> the grasp it became), and that grasp is also a fixed point.
    Check: ``sample``'s pure synthesis on the ``check_split`` objects after 0 .. ``passes`` passes, lift."""
    config, sample, postopt, sim = settings.refiner, settings.sample, settings.postopt, settings.sim
    press = settings.press
    checkpoint, objects_dir, stability_dir = inputs.checkpoint, inputs.objects_dir, inputs.stability_dir
    device = resolve_device(config.device)
    out_dir = Path(out_dir)
    # What `dexlite grasp` then samples, post-optimizes and simulates with, as this pipeline did.
    model = GraspModel.load(checkpoint, device).with_configs(synth=asdict(sample), postopt=asdict(postopt),
                                                             sim=asdict(sim), press=asdict(press))
    if config.transfers_per_object == 0:
        model.save(out_dir / "model.pt")
        return {"pairs": 0}
    train_groups = stable_groups(objects_dir, stability_dir, ("train",))
    try:
        check_groups = stable_groups(objects_dir, stability_dir, (config.check_split,))
    except ValueError as exc:
        raise ValueError(f"refine.check_split {config.check_split}: {exc} (split val needs objects.val_fraction > 0; "
                         "or set refine.check_split: test)") from exc
    codes = sorted({c for c, _ in train_groups + check_groups} | set(model.bank.codes))
    objects = load_object_set(objects_dir, codes, device=device)
    hand = HandModel(device=device)
    transfers = model.synthesize(objects, train_groups, SampleConfig(n_per_object=config.transfers_per_object,
                                                                     seed=stable_seed(config.seed, "refine")),
                                 other_objects_only=True).table
    found = find_passers(hand, objects, transfers, settings, objects_dir, ("refine",), "refine: pairs")
    write_grasps(out_dir / "pairs.parquet", found.simulated)
    optimized, passed = found.optimized.table, found.passed
    if not passed.any():
        raise ValueError(f"refine: none of {len(optimized)} transfers passed {sim.tests}; set refine.transfers_per_object"
                         " to 0 to ship the model without a refiner")
    start, target = transfers.select(passed), optimized.select(passed)
    pairs = RefinerPairs(start.poses(device=device), target.poses(device=device),
                         objects.index_of(list(start.object_code)), torch.as_tensor(start.scale, device=device))
    refiner, seconds = train_refiner(hand, objects, pairs.with_fixed_points(), config, model.couple_joints)
    replace(model, refiner=refiner_state(refiner, config)).save(out_dir / "model.pt")
    check = {f"check_lift_passes_{p}": lift for p, lift in enumerate(
        _check_passes(model, Refinement(refiner, config.passes, hand), objects, check_groups, sample, objects_dir, sim))}
    return {"transfers": len(optimized), "pairs": len(pairs), "train_seconds": seconds, **check}


def _check_passes(model: GraspModel, refinement: Refinement, objects, groups, sample: SampleConfig,
                  objects_dir: Path, sim: SimConfig) -> list[float]:
    """Lift success of pure synthesis on ``groups`` (``model`` without a refiner) after 0 .. ``refinement.passes``
    refinement passes."""
    decoded = model.synthesize(objects, groups, replace(sample, mode="pure")).table
    obj = objects.index_of(list(decoded.object_code))
    scale = torch.as_tensor(decoded.scale, device=objects.device)
    tables, pose = [decoded], decoded.poses(device=objects.device)
    for _ in range(refinement.passes):
        pose = replace(refinement, passes=1)(objects, pose, obj, scale)
        tables.append(GraspTable.from_poses(decoded.object_code, decoded.scale, decoded.grasp_id, "cvae", pose))
    simulated = simulate(GraspTable.concat(tables), objects_dir, replace(sim, tests=("lift",)), desc="refine: check")
    return [float(part.mean()) for part in np.split(simulated.passed["lift"], len(tables))]
