"""DVC stage `curate`: the seed grasp table (our optimizer, or a DexGraspNet release).

Usage: python stages/curate.py OBJECTS_DIR STABILITY_DIR OUT_DIR METRICS_JSON
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from dexlite_core.data.files import write_json
from _press import press_config
from dexlite_core.params import build, load_params
from dexlite_core.pipeline.curate import CurateConfig, CurateInputs, CurateSettings, run


def settings(params) -> CurateSettings:
    section = dict(params["curate"])
    section["source"] = {"kind": section.pop("source"), "dexgraspnet_root": section.pop("dexgraspnet_root")}
    return CurateSettings(build(CurateConfig, section, "curate"), press_config(params))


def main(objects_dir: str, stability_dir: str, out_dir: str, metrics_path: str) -> None:
    metrics = run(settings(load_params()), CurateInputs(Path(objects_dir), Path(stability_dir)), Path(out_dir))
    write_json(metrics_path, metrics)
    rate = f", {metrics['acceptance_rate']:.1%} of {metrics['attempts']} attempts, {metrics['accepted_per_s']:.2f}/s" \
        if "attempts" in metrics else ""
    print(f"curate: {metrics['n_grasps']} grasps on {metrics['n_objects']} objects{rate}, {metrics['n_rejected']} rejected")


if __name__ == "__main__":
    main(*sys.argv[1:])
