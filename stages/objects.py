"""DVC stage `objects`: build the object set (meshes, SDF grids, point clouds, splits).

Usage: python stages/objects.py OUT_DIR METRICS_JSON
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from dexlite_core.data.files import write_json
from dexlite_core.params import build, load_params
from dexlite_core.pipeline.objects import DatasetSource, ObjectsConfig, run


def settings(params) -> tuple[ObjectsConfig, DatasetSource]:
    curate = params["curate"]
    source = {"kind": curate["source"], "dexgraspnet_root": curate["dexgraspnet_root"]}
    return build(ObjectsConfig, params["objects"], "objects"), build(DatasetSource, source, "curate")


def main(out_dir: str, metrics_path: str) -> None:
    config, source = settings(load_params())
    metrics = run(config, source, Path(out_dir))
    write_json(metrics_path, metrics)
    print(f"objects: {metrics['n_objects']} built ({metrics['n_train']} train / {metrics['n_val']} val / "
          f"{metrics['n_test']} test), {metrics['n_rejected']} rejected")


if __name__ == "__main__":
    main(*sys.argv[1:])
