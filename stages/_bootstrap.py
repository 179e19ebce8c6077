"""Make a stage script run with the project's interpreter, or say in one line how to get one.

`dvc repro` runs `python stages/<stage>.py` with whichever `python` comes first on PATH. Without
an activated venv (e.g. `.venv/bin/dvc repro`) that interpreter lacks dexlite_core and its
dependencies: the script then re-runs itself with `.venv/bin/python` when `make install` made
one, and otherwise stops naming the fix. Standard library only: it runs before anything else.
"""
import importlib.util
import os
import sys
from pathlib import Path

VENV_PYTHON = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
_MARK = "DEXLITE_STAGE_REEXEC"  # set on the re-run, so a broken venv cannot loop


def use_project_python() -> None:
    if importlib.util.find_spec("dexlite_core") is not None:
        return
    if VENV_PYTHON.exists() and _MARK not in os.environ:
        os.execve(VENV_PYTHON, [str(VENV_PYTHON), *sys.argv], {**os.environ, _MARK: "1"})
    sys.exit(f"{sys.argv[0]}: {sys.executable} cannot import dexlite_core; run `make install` "
             "(it creates .venv, which stages then use), or `pip install -e .` in this environment")
