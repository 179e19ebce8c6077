"""DVC stage `postopt`: post-optimize the network's grasps, keep the lowest-energy ones.

Usage: python stages/postopt.py RAW_PARQUET OBJECTS_DIR ALL_PARQUET OUT_PARQUET METRICS_JSON
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from dexlite_core.data.files import write_json
from dexlite_core.optimize.postopt import PostOptConfig
from _press import press_config
from dexlite_core.params import build, load_params
from dexlite_core.pipeline.postopt import PostOptInputs, PostOptSettings, run


def settings(params) -> PostOptSettings:
    return PostOptSettings(build(PostOptConfig, params["postopt"], "postopt"), press_config(params))


def main(raw_path, objects_dir, all_path, out_path, metrics_path) -> None:
    config = settings(load_params())
    metrics = run(config, PostOptInputs(Path(raw_path), Path(objects_dir)), Path(all_path), Path(out_path))
    write_json(metrics_path, metrics)
    print(f"postopt ({config.postopt.method}): {metrics['n_refined']} grasps post-optimized in "
          f"{metrics['postopt_seconds']:.1f} s ({metrics['postopt_ms_per_grasp']:.1f} ms per grasp), "
          f"{metrics['n_grasps']} kept")


if __name__ == "__main__":
    main(*sys.argv[1:])
