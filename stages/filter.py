"""DVC stage `filter`: MuJoCo grasp tests on the curated grasps; keep those that pass.

Usage: python stages/filter.py CURATED_PARQUET OBJECTS_DIR OUT_DIR METRICS_JSON
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from dexlite_core.data.files import write_json
from _configs import sim_config
from dexlite_core.params import load_params
from dexlite_core.pipeline.filter import FilterInputs, run
from dexlite_core.sim.runner import SimConfig


def settings(params) -> SimConfig:
    return sim_config(params, params["filter"]["tests"])


def main(curated: str, objects_dir: str, out_dir: str, metrics_path: str) -> None:
    config = settings(load_params())
    metrics = run(config, FilterInputs(Path(curated), Path(objects_dir)), Path(out_dir))
    write_json(metrics_path, metrics)
    print(f"filter: {metrics['n_passed']}/{metrics['n_tested']} grasps passed {list(config.tests)} "
          f"({metrics['pass_rate']:.1%}); failures: {metrics['fail_reasons']}")


if __name__ == "__main__":
    main(*sys.argv[1:])
