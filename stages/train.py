"""DVC stage `train`: the PointNet + CVAE with energy losses.

Usage: python stages/train.py FILTERED_PARQUET OBJECTS_DIR OUT_DIR LIVE_DIR METRICS_JSON
Several processes: torchrun --nproc_per_node N stages/train.py ... (DDP; rank 0 writes); in the
pipeline, set params `train.launcher` to that torchrun prefix.
"""
import os
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from dexlite_core.data.files import write_json
from dexlite_core.model.train import TrainConfig
from dexlite_core.params import build, load_params
from dexlite_core.pipeline.train import TrainInputs, run


def settings(params) -> TrainConfig:
    section = dict(params["train"])
    section.pop("launcher", None)  # consumed by dvc.yaml's command line
    return build(TrainConfig, section, "train")


def main(filtered: str, objects_dir: str, out_dir: str, live_dir: str, metrics_path: str) -> None:
    config = settings(load_params())
    metrics = run(config, TrainInputs(Path(filtered), Path(objects_dir)), Path(out_dir), Path(live_dir))
    if int(os.environ.get("RANK", "0")) == 0:
        write_json(metrics_path, metrics)
        print(f"train: {config.steps} steps, final val loss {metrics['val_total']:.4f}, "
              f"{metrics['samples_per_s']:.0f} samples/s, {metrics['n_parameters']} parameters")


if __name__ == "__main__":
    main(*sys.argv[1:])
