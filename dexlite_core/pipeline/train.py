"""The ``train`` stage: the CVAE trained on the filtered grasps of the training objects and validated on
the validation objects' grasps (the engine's rounds retrain through it too)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dexlite_core.conventions import resolve_device
from dexlite_core.data.grasps import GraspTable, read_grasps
from dexlite_core.model.data import grasp_data, input_point_index, split_rows
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.train import TrainConfig, train
from dexlite_core.objects.store import load_object_set, split_of


@dataclass(frozen=True)
class TrainInputs:
    filtered: Path  #: the filter stage's passed grasps
    objects_dir: Path  #: the objects stage's output (the split)
    init: Path | None = None  #: a checkpoint whose weights training starts from (the engine's rounds)


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


def run(config: TrainConfig, inputs: TrainInputs, out_dir: Path, live_dir: Path) -> dict:
    """Train on the train split's grasps, validate on the val split's; writes ``model.pt``, and the dvclive
    logs into ``live_dir``. ``inputs.init``'s network sizes must match ``config``'s."""
    filtered, objects_dir, init = inputs.filtered, inputs.objects_dir, inputs.init
    device = resolve_device(config.device)
    if device.type == "cpu" and "LOCAL_RANK" in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    elif device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        # A step is hundreds of small ops, each a thread barrier: on a 2-core machine that others
        # share, 2 threads took 1.37 s per step and 1 thread 0.09 s (bench/README.md, "CVAE fit").
        torch.set_num_threads(1)
    table = read_grasps(filtered)
    train_rows, val_rows = train_val_rows(table, split_of(objects_dir), filtered)
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
