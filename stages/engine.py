"""DVC stage `engine`: Dex1B's data engine, rounds of expand -> post-optimize -> filter -> merge -> retrain.

Usage: python stages/engine.py CHECKPOINT FILTERED_PARQUET OBJECTS_DIR STABILITY_DIR OUT_DIR METRICS_JSON
With params engine.rounds 0 the train stage's model is copied to OUT_DIR/model.pt unchanged.
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from _configs import descent_config, sim_config
from _press import press_config
from dexlite_core.data.files import write_json
from dexlite_core.model.train import TrainConfig
from dexlite_core.params import build, load_params
from dexlite_core.pipeline.engine import EngineConfig, EngineInputs, EngineSettings, SharedConfigs, run


def settings(params) -> EngineSettings:
    train = dict(params["train"])
    train.pop("launcher", None)  # the engine retrains in this process
    shared = SharedConfigs(train=build(TrainConfig, train, "train"), postopt=descent_config(params),
                          sim=sim_config(params, params["filter"]["tests"]), press=press_config(params),
                          synth_temperature=float(params["synth"]["temperature"]))
    return EngineSettings(build(EngineConfig, params["engine"], "engine"), shared)


def main(checkpoint, filtered, objects_dir, stability_dir, out_dir, metrics_path) -> None:
    config = settings(load_params())
    metrics = run(config, EngineInputs(*map(Path, (checkpoint, filtered, objects_dir, stability_dir))), Path(out_dir))
    write_json(metrics_path, metrics)
    last = metrics.get(f"round_{config.engine.rounds}", {})
    if config.engine.rounds == 0:
        print("engine: rounds 0, the train stage's model passed through")
    else:
        print(f"engine: {config.engine.rounds} round(s); training set {metrics['round_0']['training_set_size']} -> "
              f"{last['training_set_size']} grasps; held-out success {metrics['round_0']['heldout_success']:.1%} -> "
              f"{last['heldout_success']:.1%}")


if __name__ == "__main__":
    main(*sys.argv[1:])
