"""DVC stage `refine`: the refiner that adapts transferred grasps to a new surface, added to the model.

Usage: python stages/refine.py CHECKPOINT OBJECTS_DIR STABILITY_DIR OUT_DIR METRICS_JSON
With params refine.transfers_per_object 0 the engine's model is copied to OUT_DIR/model.pt unchanged.
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from _configs import descent_config, sim_config
from _press import press_config
from dexlite_core.data.files import write_json
from dexlite_core.model.refine import RefinerConfig
from dexlite_core.model.sample import SampleConfig
from dexlite_core.params import build, load_params
from dexlite_core.pipeline.refine import RefineInputs, RefineSettings, run


def settings(params) -> RefineSettings:
    return RefineSettings(build(RefinerConfig, params["refine"], "refine"), build(SampleConfig, params["synth"], "synth"),
                          descent_config(params), sim_config(params, params["filter"]["tests"]), press_config(params))


def main(checkpoint, objects_dir, stability_dir, out_dir, metrics_path) -> None:
    config = settings(load_params())
    metrics = run(config, RefineInputs(Path(checkpoint), Path(objects_dir), Path(stability_dir)), Path(out_dir))
    write_json(metrics_path, metrics)
    if metrics["pairs"] == 0:
        print("refine: transfers_per_object 0, the engine's model passed through")
    else:
        check = [f"{metrics[f'check_lift_passes_{p}']:.1%}" for p in range(config.refiner.passes + 1)]
        print(f"refine: {metrics['pairs']} pairs of {metrics['transfers']} transfers; {config.refiner.check_split} "
              f"lift after 0..{config.refiner.passes} passes: {' / '.join(check)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
