"""DVC stage `report`: reports/index.html, self-contained and offline.

Usage: python stages/report.py METRICS_DIR EVAL_DIR TRAIN_LIVE_DIR OBJECTS_DIR OUT_HTML
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from dexlite_core.params import build, load_params
from dexlite_core.pipeline.report import ReportConfig, ReportInputs, run


def settings(params) -> ReportConfig:
    return build(ReportConfig, params["report"], "report")


def main(metrics_dir, eval_dir, train_live, objects_dir, out_html) -> None:
    run(settings(load_params()), ReportInputs(Path(metrics_dir), Path(eval_dir), Path(train_live), Path(objects_dir)),
        Path(out_html))
    print(f"report: wrote {out_html} ({Path(out_html).stat().st_size / 1e6:.1f} MB, offline)")


if __name__ == "__main__":
    main(*sys.argv[1:])
