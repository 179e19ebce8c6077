"""A stage script started by an interpreter that lacks the package: it re-runs with .venv or says the fix."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_probe(root: Path) -> subprocess.CompletedProcess:
    """A stage-like script under ``root/stages`` run with ``python -S`` (no site-packages: no dexlite_core)."""
    (root / "stages").mkdir()
    shutil.copy(REPO / "stages/_bootstrap.py", root / "stages/_bootstrap.py")
    probe = root / "stages/probe.py"
    probe.write_text("from _bootstrap import use_project_python\nuse_project_python()\n"
                     "import dexlite_core\nprint('imported', dexlite_core.__name__)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DEXLITE_STAGE_REEXEC")}
    return subprocess.run([sys.executable, "-S", str(probe)], cwd=root, env=env, capture_output=True, text=True)


def test_without_a_venv_the_stage_says_what_to_do(tmp_path):
    result = run_probe(tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "make install" in result.stderr, result.stderr


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the tests are not running in a venv")
def test_with_a_venv_the_stage_reruns_itself_there(tmp_path):
    (tmp_path / ".venv").symlink_to(sys.prefix)
    result = run_probe(tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "imported dexlite_core", result.stderr


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the tests are not running in a venv")
def test_in_a_dvc_temp_experiment_the_repository_venv_runs_the_copy(tmp_path):
    """`dvc exp run --temp` copies the checkout to .dvc/tmp/exps/<name>: the stage runs with the
    repository's .venv and imports the copy's dexlite_core, not the installed one."""
    (tmp_path / ".venv").symlink_to(sys.prefix)
    copy = tmp_path / ".dvc/tmp/exps/tmp123"
    (copy / "dexlite_core").mkdir(parents=True)
    (copy / "dexlite_core/__init__.py").write_text("")
    result = run_probe(copy)
    assert result.returncode == 0 and result.stdout.strip() == "imported dexlite_core", result.stderr
    probe = copy / "stages/where.py"
    probe.write_text("from _bootstrap import use_project_python\nuse_project_python()\n"
                     "import dexlite_core\nprint(dexlite_core.__file__)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DEXLITE_STAGE_REEXEC")}
    where = subprocess.run([sys.executable, "-S", str(probe)], cwd=copy, env=env, capture_output=True, text=True)
    assert where.stdout.strip() == str(copy / "dexlite_core/__init__.py"), where.stderr
