"""DVC stage `evaluate`: simulate and measure the recon, train_raw, decoded, raw, postopt_all, postopt and dataset
grasps.

Usage: python stages/evaluate.py CHECKPOINT DECODED RAW POSTOPT_ALL POSTOPT DATASET OBJECTS_DIR SYNTH_METRICS POSTOPT_METRICS
       OUT_DIR METRICS_JSON
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from _configs import sim_config
from _press import press_config
from dexlite_core.data.files import write_json
from dexlite_core.model.sample import SampleConfig
from dexlite_core.params import build, load_params
from dexlite_core.pipeline.evaluate import SETS, EvaluateConfig, EvaluateInputs, EvaluateSettings, run


def settings(params) -> EvaluateSettings:
    section = dict(params["evaluate"])
    sim = sim_config(params, section.pop("tests"))
    # train_raw samples as the synthesize stage does
    return EvaluateSettings(build(EvaluateConfig, section, "evaluate"), sim,
                            build(SampleConfig, params["synth"], "synth"), press_config(params))


def main(*paths: str) -> None:
    config = settings(load_params())
    *inputs, out_dir, metrics_path = map(Path, paths)
    metrics = run(config, EvaluateInputs(*inputs), out_dir)
    write_json(metrics_path, metrics)
    print("evaluate: lift success " + ", ".join(f"{name} {metrics[name]['lift_success']:.1%}" for name in SETS)
          + f" ({metrics['gain_lift_points']:+.1f} points from post-optimization)")
    if config.evaluate.dgb_max:
        print("evaluate: DexGraspBench-like success " + ", ".join(
            f"{name} {metrics[name]['dgb_success']:.1%} of {metrics[name]['dgb_n']}" for name in SETS))


if __name__ == "__main__":
    main(*sys.argv[1:])
