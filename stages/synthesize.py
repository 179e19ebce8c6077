"""DVC stage `synthesize`: grasps from the trained CVAE (pure synthesis or dataset expansion).

Usage: python stages/synthesize.py CHECKPOINT OBJECTS_DIR STABILITY_DIR FILTERED_PARQUET OUT_PARQUET DECODED_PARQUET
       METRICS_JSON
DECODED_PARQUET: pure synthesis's grasps before the checkpoint's refiner (the same rows).
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from dexlite_core.data.files import write_json
from dexlite_core.model.sample import SampleConfig
from _press import press_config
from dexlite_core.params import build, load_params
from dexlite_core.pipeline.synthesize import SynthesizeInputs, SynthesizeSettings, run


def settings(params) -> SynthesizeSettings:
    return SynthesizeSettings(build(SampleConfig, params["synth"], "synth"), press_config(params))


def main(checkpoint, objects_dir, stability_dir, filtered, out_path, decoded_path, metrics_path) -> None:
    config = settings(load_params())
    inputs = SynthesizeInputs(Path(checkpoint), Path(objects_dir), Path(stability_dir), Path(filtered))
    metrics = run(config, inputs, Path(out_path), Path(decoded_path))
    write_json(metrics_path, metrics)
    print(f"synthesize ({config.sample.mode}): {metrics['n_grasps']} grasps on {metrics['n_objects']} objects, "
          f"{metrics['sample_grasps_per_s']:.0f} grasps/s")


if __name__ == "__main__":
    main(*sys.argv[1:])
