"""Make a stage script run with the project's interpreter, or say in one line how to get one.

`dvc repro` runs `python stages/<stage>.py` with whichever `python` comes first on PATH. Without
an activated venv (e.g. `.venv/bin/dvc repro`) that interpreter lacks dexlite_core and its
dependencies: the script then re-runs itself with `.venv/bin/python` when `make install` made
one, and otherwise stops naming the fix. `dvc exp run --temp` runs the stages in a copy of the
checkout under `.dvc/tmp/exps/`, which has no .venv of its own: there the repository's .venv is
used, with the copy first on PYTHONPATH so that the copy's code runs. Standard library only: it
runs before anything else.
"""
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_MARK = "DEXLITE_STAGE_REEXEC"  # set on the re-run, so a broken venv cannot loop


def _venv_python() -> Path | None:
    """This checkout's .venv python, or, in a DVC experiment's temporary copy, the repository's."""
    homes = [ROOT]
    if ".dvc" in ROOT.parts:  # <repository>/.dvc/tmp/exps/<copy>
        homes.append(Path(*ROOT.parts[:ROOT.parts.index(".dvc")]))
    return next((h / ".venv/bin/python" for h in homes if (h / ".venv/bin/python").exists()), None)


def use_project_python() -> None:
    if importlib.util.find_spec("dexlite_core") is not None:
        return
    python = _venv_python()
    if python is not None and _MARK not in os.environ:
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        os.execve(python, [str(python), *sys.argv], {**os.environ, _MARK: "1", "PYTHONPATH": path})
    sys.exit(f"{sys.argv[0]}: {sys.executable} cannot import dexlite_core; run `make install` "
             "(it creates .venv, which stages then use), or `pip install -e .` in this environment")
