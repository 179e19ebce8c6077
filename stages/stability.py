"""DVC stage `stability`: keep the (object, scale) pairs that come to rest on a table in PyBullet.

Usage: python stages/stability.py OBJECTS_DIR OUT_DIR METRICS_JSON
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from dexlite_core.data.files import write_json
from dexlite_core.params import build, load_params
from dexlite_core.pipeline.stability import StabilityInputs, run
from dexlite_core.sim.stability import StabilityConfig


def settings(params) -> StabilityConfig:
    return build(StabilityConfig, params["stability"], "stability")


def main(objects_dir: str, out_dir: str, metrics_path: str) -> None:
    config = settings(load_params())
    metrics = run(config, StabilityInputs(Path(objects_dir)), Path(out_dir))
    write_json(metrics_path, metrics)
    failed = {k[2:]: v for k, v in metrics.items() if k.startswith("n_") and k not in ("n_pairs", "n_stable") and v}
    print(f"stability: {metrics['n_stable']}/{metrics['n_pairs']} object-scale pairs stable "
          f"({metrics['stable_rate']:.1%}); failed: {failed or 'none'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
