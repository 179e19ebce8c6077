"""DVC stage `evaluate`: simulate and measure raw, post-optimized and dataset grasps.

Usage: python stages/evaluate.py RAW POSTOPT DATASET OBJECTS_DIR SYNTH_METRICS POSTOPT_METRICS OUT_DIR METRICS_JSON
"""
import json
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from dexlite_core.data.files import write_json
from dexlite_core.evaluate import EvaluateConfig, evaluate_stage
from dexlite_core.params import build, load_params
from dexlite_core.sim.runner import SimConfig


def main(raw, postopt, dataset, objects_dir, synth_metrics, postopt_metrics, out_dir, metrics_path) -> None:
    params = load_params()
    section = dict(params["evaluate"])
    sim = build(SimConfig, {**params["sim"], "tests": section.pop("tests")}, "sim")
    config = build(EvaluateConfig, section, "evaluate")
    metrics = evaluate_stage(config, sim, Path(raw), Path(postopt), Path(dataset), Path(objects_dir),
                             json.loads(Path(synth_metrics).read_text()), json.loads(Path(postopt_metrics).read_text()),
                             Path(out_dir))
    write_json(metrics_path, metrics)
    print(f"evaluate: lift success raw {metrics['raw']['lift_success']:.1%} -> post-opt "
          f"{metrics['postopt']['lift_success']:.1%} ({metrics['gain_lift_points']:+.1f} points); "
          f"dataset {metrics['dataset']['lift_success']:.1%}")


if __name__ == "__main__":
    main(*sys.argv[1:])
