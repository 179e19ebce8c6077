"""The ``train`` stage (data from the filtered table and the object split, training, metrics) and the
``synthesize`` stage (grasps from the trained model)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from dexlite_core.conventions import resolve_device
from dexlite_core.data.curate import stable_groups
from dexlite_core.data.grasps import GraspTable, read_grasps, write_grasps
from dexlite_core.energy import with_energies
from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import grasp_data, input_point_index, split_rows
from dexlite_core.model.sample import SampleConfig, expand, synthesize
from dexlite_core.model.train import TrainConfig, load_checkpoint, train
from dexlite_core.objects.store import load_object_set, read_objects


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
    start = None if init is None else load_checkpoint(init, device)[0]
    if start is not None and start.config != config.network:
        raise ValueError(f"{init}: network {start.config} differs from train.network {config.network}")
    result = train(config, train_data, val_data, out_dir / "model.pt", live, start)
    if live is not None:
        live.end()
    return {"samples_per_s": result.samples_per_s, "n_parameters": result.n_parameters, "n_train": len(train_rows),
            "n_val": len(val_rows), **{f"val_{k}": v for k, v in result.final.items()}}


def synthesize_stage(config: SampleConfig, checkpoint: Path, objects_dir: Path, stability_dir: Path,
                     filtered: Path, out_path: Path) -> dict:
    """Pure synthesis on every stable test object and scale, or expansion of the training grasps."""
    device = resolve_device(config.device)
    model, meta = load_checkpoint(checkpoint, device)
    objects_table = read_objects(objects_dir)
    split_of = dict(zip(objects_table.object_code, objects_table.split))
    hand = HandModel(device=device)
    if config.mode == "pure":
        groups = stable_groups(objects_dir, stability_dir, ("test",))
        objects = load_object_set(objects_dir, sorted({c for c, _ in groups}), device=device)
        samples = synthesize(model, meta["bank"], objects, input_point_index(objects, meta["n_points"]), groups, config,
                             meta["couple_joints"])
    else:
        training = split_rows(read_grasps(filtered), split_of, "train")
        objects = load_object_set(objects_dir, sorted(set(training.object_code)), device=device)
        data = grasp_data(training, objects, input_point_index(objects, meta["n_points"]))
        samples = expand(model, data, config, meta["couple_joints"])
    table = with_energies(samples.table, hand, objects, device)
    write_grasps(out_path, table)
    return {"n_grasps": len(table), "n_objects": len(set(table.object_code)), "mode": config.mode,
            "sample_grasps_per_s": len(table) / max(samples.seconds, 1e-9)}
