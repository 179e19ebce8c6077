"""DVC stage `postopt`: refine the network's grasps by minimizing E_post, keep the best.

Usage: python stages/postopt.py RAW_PARQUET OBJECTS_DIR ALL_PARQUET OUT_PARQUET METRICS_JSON
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from dexlite_core.data.files import write_json
from dexlite_core.optimize.postopt import PostOptConfig, postopt_stage
from _press import press_config
from dexlite_core.params import build, load_params
from dexlite_core.squeeze import PressConfig


def settings(params) -> tuple[PostOptConfig, PressConfig]:
    return build(PostOptConfig, params["postopt"], "postopt"), press_config(params)


def main(raw_path, objects_dir, all_path, out_path, metrics_path) -> None:
    config, press = settings(load_params())
    metrics = postopt_stage(config, press, Path(raw_path), Path(objects_dir), Path(all_path), Path(out_path))
    write_json(metrics_path, metrics)
    print(f"postopt: {metrics['n_refined']} grasps refined in {metrics['postopt_seconds']:.1f} s "
          f"({metrics['postopt_ms_per_grasp']:.1f} ms per grasp), {metrics['n_grasps']} kept")


if __name__ == "__main__":
    main(*sys.argv[1:])
