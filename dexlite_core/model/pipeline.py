"""The model's stages: ``train`` (data from the filtered table and the object split, training,
metrics), ``refine`` (the refiner trained on transfers between training objects, checked on the
validation objects) and ``synthesize`` (grasps from the trained model)."""
from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from dexlite_core.conventions import resolve_device
from dexlite_core.data.grasps import GraspTable, read_grasps, write_grasps
from dexlite_core.energy import with_energies
from dexlite_core.squeeze import PressConfig, with_triples
from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import grasp_data, input_point_index, split_rows
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.refine import Refinement, RefinerConfig, RefinerPairs, refiner_state, train_refiner
from dexlite_core.model.sample import SampleConfig
from dexlite_core.model.train import TrainConfig, train
from dexlite_core.objects.store import load_object_set, read_objects
from dexlite_core.optimize.postopt import PostOptConfig, post_optimize
from dexlite_core.seeding import stable_seed
from dexlite_core.sim.runner import SimConfig, simulate
from dexlite_core.sim.stability import stable_groups


def train_val_rows(table: GraspTable, split_of: dict[str, str], path: Path) -> tuple[GraspTable, GraspTable]:
    """The grasps the model trains on (its grasp bank, in this order) and validates on (``table``
    read from ``path``): the train and val splits' grasps, or, when no grasp of a validation object
    survived, every tenth training grasp held out."""
    train_rows, val_rows = split_rows(table, split_of, "train"), split_rows(table, split_of, "val")
    if len(train_rows) == 0:
        raise ValueError(f"{path}: no grasps on training objects; check the filter stage's pass rate")
    if len(val_rows) == 0:
        held = np.arange(len(train_rows)) % 10 == 0
        train_rows, val_rows = train_rows.select(~held), train_rows.select(held)
        print(f"train: no grasps on validation objects; validating on {len(val_rows)} held-out training grasps")
    return train_rows, val_rows


def train_stage(config: TrainConfig, filtered: Path, objects_dir: Path, out_dir: Path, live_dir: Path,
                init: Path | None = None) -> dict:
    """Train on the train split's grasps, validate on the val split's; writes ``model.pt``. ``init``: a
    checkpoint whose weights training starts from (its network sizes must match ``config``'s)."""
    device = resolve_device(config.device)
    if device.type == "cpu" and "LOCAL_RANK" in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    elif device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        # A step is hundreds of small ops, each a thread barrier: on a 2-core machine that others
        # share, 2 threads took 1.37 s per step and 1 thread 0.09 s (bench/README.md, "CVAE fit").
        torch.set_num_threads(1)
    table = read_grasps(filtered)
    split_of = dict(zip(*read_objects(objects_dir)[["object_code", "split"]].T.values))
    train_rows, val_rows = train_val_rows(table, split_of, filtered)
    codes = sorted(set(table.object_code))
    objects = load_object_set(objects_dir, codes, device=device)
    point_index = input_point_index(objects, config.n_points)
    train_data, val_data = grasp_data(train_rows, objects, point_index), grasp_data(val_rows, objects, point_index)
    live = None
    if int(os.environ.get("RANK", "0")) == 0:
        from dvclive import Live

        live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=None, report=None)
    out_dir = Path(out_dir)
    start = None if init is None else GraspModel.load(init, device).network
    if start is not None and start.config != config.network:
        raise ValueError(f"{init}: network {start.config} differs from train.network {config.network}")
    result = train(config, train_data, val_data, out_dir / "model.pt", live, start)
    if live is not None:
        live.end()
    return {"samples_per_s": result.samples_per_s, "n_parameters": result.n_parameters, "n_train": len(train_rows),
            "n_val": len(val_rows), **{f"val_{k}": v for k, v in result.final.items()}}


def refine_stage(config: RefinerConfig, sample: SampleConfig, postopt: PostOptConfig, sim: SimConfig, press: PressConfig,
                 checkpoint: Path, objects_dir: Path, stability_dir: Path, out_dir: Path) -> dict:
    """``checkpoint`` with a refiner (:mod:`dexlite_core.model.refine`) written to ``out_dir/model.pt``.
    Pairs: on every stable training object and scale, its ``transfers_per_object`` best matches from the
    other objects' bank grasps, post-optimized (``postopt``) and simulated (``sim``; ``pairs.parquet``); each
    that passes is a pair (transfer -> the grasp it became), and that grasp is also a fixed point.
    Check: ``sample``'s pure synthesis on the ``check_split`` objects after 0 .. ``passes`` passes, lift."""
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
    refined = post_optimize(hand, objects, transfers, replace(postopt, seed=stable_seed(postopt.seed, "refine")),
                            press).table
    run = simulate(refined, objects_dir, sim, desc="refine: pairs")
    write_grasps(out_dir / "pairs.parquet", run.table)
    passed = run.table.sim.success
    if not passed.any():
        raise ValueError(f"refine: none of {len(refined)} transfers passed {sim.tests}; set refine.transfers_per_object"
                         " to 0 to ship the model without a refiner")
    start, target = transfers.select(passed), refined.select(passed)
    pairs = RefinerPairs(start.poses(device=device), target.poses(device=device),
                         objects.index_of(list(start.object_code)), torch.as_tensor(start.scale, device=device))
    refiner, seconds = train_refiner(hand, objects, pairs.with_fixed_points(), config, model.couple_joints)
    replace(model, refiner=refiner_state(refiner, config)).save(out_dir / "model.pt")
    check = {f"check_lift_passes_{p}": lift for p, lift in enumerate(
        _check_passes(model, Refinement(refiner, config.passes, hand), objects, check_groups, sample, objects_dir, sim))}
    return {"transfers": len(refined), "pairs": len(pairs), "train_seconds": seconds, **check}


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
    run = simulate(GraspTable.concat(tables), objects_dir, replace(sim, tests=("lift",)), desc="refine: check")
    return [float(part.mean()) for part in np.split(run.passed["lift"], len(tables))]


def synthesize_stage(config: SampleConfig, press: PressConfig, checkpoint: Path, objects_dir: Path, stability_dir: Path,
                     filtered: Path, out_path: Path, decoded_path: Path) -> dict:
    """Pure synthesis on every stable test object and scale (refined when the checkpoint has a refiner;
    ``decoded_path``: the same grasps before it), or expansion of the training grasps (``decoded_path``
    then holds them too)."""
    device = resolve_device(config.device)
    model = GraspModel.load(checkpoint, device)
    objects_table = read_objects(objects_dir)
    split_of = dict(zip(objects_table.object_code, objects_table.split))
    hand = HandModel(device=device)
    if config.mode == "pure":
        groups = stable_groups(objects_dir, stability_dir, ("test",))
        objects = load_object_set(objects_dir, sorted({c for c, _ in groups}), device=device)
        samples = model.synthesize(objects, groups, config)
    else:
        training = split_rows(read_grasps(filtered), split_of, "train")
        objects = load_object_set(objects_dir, sorted(set(training.object_code)), device=device)
        samples = model.expand(grasp_data(training, objects, model.point_index(objects)), config)
    def scored(grasps: GraspTable) -> GraspTable:
        return with_triples(with_energies(grasps, hand, objects, device), hand, objects, press)

    table = scored(samples.table)
    write_grasps(out_path, table)
    write_grasps(decoded_path, table if samples.decoded is None else scored(samples.decoded))
    return {"n_grasps": len(table), "n_objects": len(set(table.object_code)), "mode": config.mode,
            "sample_grasps_per_s": len(table) / max(samples.seconds, 1e-9)}
