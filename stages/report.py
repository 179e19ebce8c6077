"""DVC stage `report`: reports/index.html, self-contained and offline.

Usage: python stages/report.py METRICS_DIR EVAL_DIR TRAIN_LIVE_DIR OBJECTS_DIR OUT_HTML
"""
import sys
from pathlib import Path

from _bootstrap import use_project_python

use_project_python()  # before dexlite_core is imported

from dexlite_core.params import load_params
from dexlite_core.report.build import ReportInputs, build_report


def settings(params) -> int:
    """PNG renders per held-out object."""
    return int(params["report"]["thumbs_per_object"])


def main(metrics_dir, eval_dir, train_live, objects_dir, out_html) -> None:
    thumbs = settings(load_params())
    build_report(ReportInputs(Path(metrics_dir), Path(eval_dir), Path(train_live), Path(objects_dir)), Path(out_html),
                 thumbs)
    print(f"report: wrote {out_html} ({Path(out_html).stat().st_size / 1e6:.1f} MB, offline)")


if __name__ == "__main__":
    main(*sys.argv[1:])
