"""A short training at the full-size configuration (params.yaml's train section with
params-full.yaml's train overrides: batch 512, validation every 200 steps) for a time budget.

The step count is what fits the budget: calibration runs (10, 10 and ``--calibrate`` steps)
give the steps/s past the warm-up, then the main run trains that many steps (at most
params-full's 20 000) with the cosine schedule over them. The data is prepared as the train
stage does it (train/val split of the objects; 512 input points), from ``--grasps`` (default
data/curated/grasps.parquet: 512 of its ~600 training grasps, so that every step has a full
batch of 512; the ~330 of data/filtered, the stage's input, would not fill one).
Writes a JSON: steps, steps/s and samples/s (without validation, as the train stage reports
them, and wall-clock with it), the final model's validation loss terms (``val_*``) and its
reconstruction errors, posterior mean against the grasp (``recon_error_{train,val}_*``: palm mm,
rotation degrees, joint radians).

    python bench/device_train.py --seconds 120 --out device_train.json
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dexlite_core.conventions import resolve_device  # noqa: E402
from dexlite_core.data.files import write_json  # noqa: E402
from dexlite_core.data.grasps import read_grasps  # noqa: E402
from dexlite_core.model.data import grasp_data, input_point_index, split_rows  # noqa: E402
from dexlite_core.model.grasp_model import GraspModel  # noqa: E402
from dexlite_core.model.train import TrainConfig, reconstruction_errors, train  # noqa: E402
from dexlite_core.objects.store import load_object_set, split_of  # noqa: E402
from dexlite_core.params import build, load_params  # noqa: E402


def merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def full_config() -> TrainConfig:
    full = load_params(REPO / "params-full.yaml").get("train", {})
    section = merged(load_params(REPO / "params.yaml")["train"], full)
    section.pop("launcher", None)
    return build(TrainConfig, section, "train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="training budget of the main run")
    parser.add_argument("--calibrate", type=int, default=40, help="steps of the longer calibration run")
    parser.add_argument("--max-steps", type=int, default=0, help="cap (0: params-full's steps)")
    parser.add_argument("--grasps", type=Path, default=REPO / "data/curated/grasps.parquet")
    parser.add_argument("--objects", type=Path, default=REPO / "data/objects")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/device_train.json")
    parser.add_argument("--save-checkpoint", type=Path, help="keep the main run's checkpoint there")
    args = parser.parse_args()

    config = full_config()
    device = resolve_device(config.device)
    table = read_grasps(args.grasps)
    splits = split_of(args.objects)
    train_rows, val_rows = split_rows(table, splits, "train"), split_rows(table, splits, "val")
    n_available = len(train_rows)
    if n_available >= config.batch_size:  # every step a full batch: a seeded subset, a multiple of it
        keep = np.random.default_rng(config.seed).permutation(n_available)
        train_rows = train_rows.select(np.sort(keep[:n_available // config.batch_size * config.batch_size]))
    objects = load_object_set(args.objects, sorted(set(table.object_code)), device=device)
    index = input_point_index(objects, config.n_points)
    train_data, val_data = grasp_data(train_rows, objects, index), grasp_data(val_rows, objects, index)
    effective_batch = min(config.batch_size, len(train_rows))
    print(f"device {device}, {len(train_rows)} training / {len(val_rows)} validation grasps from {args.grasps}, "
          f"batch {config.batch_size} (effective {effective_batch})", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        # Calibration: a first short run takes the process's warm-up (CUDA context, kernels); the busy
        # times of a second short and a longer run differ by the steps between them alone.
        short = max(1, args.calibrate // 4)
        busy = []
        start = time.perf_counter()
        for n in (short, short, max(args.calibrate, short + 1)):
            calib = train(replace(config, steps=n, eval_every=n), train_data, val_data, Path(tmp) / "calib.pt")
            busy.append((n, n * effective_batch / calib.samples_per_s))
        calib_wall = time.perf_counter() - start
        (n0, t0), (n1, t1) = busy[1:]
        steps_per_s = (n1 - n0) / (t1 - t0) if t1 > t0 else n1 / t1
        cap = args.max_steps or config.steps
        steps = int(max(1, min(cap, steps_per_s * args.seconds)))
        print(f"calibration: {short}, {n0} and {n1} steps in {calib_wall:.1f} s wall, {steps_per_s:.1f} steps/s "
              f"without validation and warm-up -> {steps} steps", flush=True)
        main_config = replace(config, steps=steps, eval_every=min(config.eval_every, steps))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = train(main_config, train_data, val_data, Path(tmp) / "model.pt")
        wall = time.perf_counter() - start
        model = GraspModel.load(Path(tmp) / "model.pt", device)
        if args.save_checkpoint:
            args.save_checkpoint.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp) / "model.pt", args.save_checkpoint)
        fit = {name: asdict(reconstruction_errors(model.network, data, model.couple_joints))
               for name, data in (("train", train_data), ("val", val_data))}
    figures = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
        "torch": torch.__version__,
        "grasps": str(args.grasps.relative_to(REPO)) if args.grasps.is_relative_to(REPO) else str(args.grasps),
        "n_train_available": n_available, "n_train": len(train_rows), "n_val": len(val_rows),
        "batch_size": config.batch_size, "effective_batch": effective_batch,
        "amp": config.amp and device.type == "cuda", "n_parameters": result.n_parameters,
        "calibration_steps": args.calibrate, "calibration_wall_s": calib_wall,
        "calibration_steps_per_s": steps_per_s,
        "budget_s": args.seconds, "steps": steps, "eval_every": main_config.eval_every, "wall_s": wall,
        "steps_per_s": result.samples_per_s / effective_batch,
        "samples_per_s": result.samples_per_s,
        "wall_steps_per_s": steps / wall,
        "wall_samples_per_s": steps * effective_batch / wall,
        **{f"val_{k}": v for k, v in result.final.items()},
        **{f"recon_error_{split}_{k}": v for split, errors in fit.items() for k, v in errors.items()},
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2 ** 20 if device.type == "cuda" else None,
    }
    figures = {k: (round(v, 5) if isinstance(v, float) and np.isfinite(v) else v) for k, v in figures.items()}
    write_json(args.out, figures)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
