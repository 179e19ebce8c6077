"""dexlite_core is layered: the libraries never import upward, and only pipeline/ (one module per DVC
stage) ties them together. Every module belongs to a unit (a subpackage, or a top-level module) in
LAYERS, and imports only its own unit and units of lower layers; units of one layer are independent of
each other. The check reads the source (tests/imports.py), function-local imports included."""
import shutil
from pathlib import Path

from imports import PACKAGE, REPO, imported_modules

#: Bottom to top. The package's own __init__ sits at the bottom: importing any module runs it.
LAYERS = (
    ("__init__", "conventions", "params", "seeding", "parallel"),  # no project imports
    ("data",),  # grasp tables, DexGraspNet reader and writer, atomic files
    ("hand", "objects"),
    ("energy", "metrics", "grasp_qp"),
    ("squeeze",),  # each grasp's own pre-grasp and squeeze, from the energy's contacts
    ("optimize",),
    ("sim",),
    ("model",),
    ("report", "grasp_mesh"),  # the report's pieces; `dexlite grasp`'s synthesize -> post-optimize -> simulate
    ("pipeline",),  # one module per DVC stage: the only layer that ties the libraries together
    ("cli",),
)
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str:
    """``dexlite_core.optimize.postopt`` -> ``optimize``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_problems(root: Path = REPO) -> list[str]:
    """One line per module outside LAYERS and per upward (or sideways) import, naming the arrow."""
    problems = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        module, rel = module_name(path, root), path.relative_to(root)
        unit = unit_of(module)
        if unit not in RANK:
            problems.append(f"{rel}: unit {unit} is in no layer of tests/test_layers.py LAYERS")
            continue
        for target in sorted(imported_modules(path, root)):
            other = unit_of(target)
            if other != unit and RANK.get(other, len(LAYERS)) >= RANK[unit]:
                problems.append(f"{rel} imports {target}: {unit} (layer {RANK[unit]}) -> {other} "
                                f"(layer {RANK.get(other, '?')}), not below it")
    return problems


def test_no_module_imports_upward():
    assert layer_problems() == []


def test_an_upward_import_is_named(tmp_path):
    """The check itself, on a copy of the package with one library importing the pipeline layer."""
    shutil.copytree(REPO / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    mesh = tmp_path / PACKAGE / "objects" / "mesh.py"
    mesh.write_text(mesh.read_text() + "\n\ndef _late():\n    from dexlite_core.pipeline.train import run\n")
    assert layer_problems(tmp_path) == [
        "dexlite_core/objects/mesh.py imports dexlite_core.pipeline.train: objects (layer 2) -> pipeline (layer 9), "
        "not below it"]
