"""Training throughput: samples/s of the CVAE with the default losses (reconstruction + KL; the
energies are off by default), on the pipeline's filtered grasps; also with the energy losses
(energy_scale 0.1, FK included), for scale. Default model (1.16 M parameters), batches of up to
128 grasps from 8 clouds, 512 input points, 20 steps (the first validation included).
Steps to the fit: the default configuration trained from scratch on 16 filtered grasps for 150,
300, 600, ... steps; the first budget whose posterior-mean reconstructions come within 1 mm,
1 deg and 0.02 rad (mean over the grasps) is ``<device>_steps_to_fit_16``.
Needs `make run` (or `dvc repro filter`) first. Writes bench/results/bench_train.json.
"""
from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from common import REPO, devices, write_results

from dexlite_core.data.grasps import read_grasps
from dexlite_core.model.data import grasp_data, input_point_index
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.train import LossConfig, TrainConfig, reconstruction_errors, train
from dexlite_core.objects.store import load_object_set

FILTERED = REPO / "data/filtered/grasps.parquet"
OBJECTS = REPO / "data/objects"
FIT_BUDGETS = (150, 300, 600, 1200, 2400, 4800)


def steps_to_fit(data, config: TrainConfig) -> int:
    """The first of FIT_BUDGETS after which ``data`` is fitted (module docstring); 0 if none."""
    for steps in FIT_BUDGETS:
        with tempfile.TemporaryDirectory() as tmp:
            train(replace(config, steps=steps, eval_every=steps), data, data, Path(tmp) / "model.pt")
            errors = reconstruction_errors(GraspModel.load(Path(tmp) / "model.pt", config.device).network, data,
                                           config.couple_joints)
        print(f"{steps} steps: {errors}", flush=True)
        if errors.translation_mm < 1 and errors.rotation_deg < 1 and errors.joints_rad < 0.02:
            return steps
    return 0


def main() -> None:
    if not FILTERED.exists():
        sys.exit(f"{FILTERED} is missing: run `make run` (or `dvc repro filter`) first")
    table = read_grasps(FILTERED)
    figures = {}
    for device in devices():
        objects = load_object_set(OBJECTS, sorted(set(table.object_code)), device=device)
        config = TrainConfig(steps=20, eval_every=20, device=device)
        data = grasp_data(table, objects, input_point_index(objects, config.n_points))
        val = grasp_data(table.select(slice(0, 32)), objects, data.point_index)
        for name, cfg in (("", config), ("_energy", replace(config, loss=LossConfig(energy_scale=0.1)))):
            with tempfile.TemporaryDirectory() as tmp:
                result = train(cfg, data, val, Path(tmp) / "model.pt")
            figures[f"{device}_b{cfg.batch_size}_samples_per_s{name}"] = result.samples_per_s
        figures[f"{device}_samples_per_s"] = figures[f"{device}_b{config.batch_size}_samples_per_s"]
        figures["n_parameters"] = result.n_parameters
        sixteen = grasp_data(table.select(slice(0, 16)), objects, data.point_index)
        figures[f"{device}_steps_to_fit_16"] = steps_to_fit(sixteen, config)
    write_results("bench_train", figures)


if __name__ == "__main__":
    main()
