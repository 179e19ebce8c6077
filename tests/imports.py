"""The project's own imports, read from the source (never executed): for the layering and dvc.yaml tests."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "dexlite_core"


def module_path(name: str, root: Path = REPO) -> Path | None:
    """The file of module ``name`` (dotted) under ``root``, or None when it is not the project's."""
    base = root / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(path: Path, root: Path = REPO) -> set[str]:
    """The project modules ``path`` imports anywhere in it (function-local imports too): dexlite_core
    modules by dotted name, and for a stage script its siblings in stages/ (``stages._bootstrap``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}  # `from package import module`
    local = {n for n in names if n.split(".")[0] == PACKAGE}
    if path.parent.name == "stages":
        local |= {f"stages.{n}" for n in names if (path.parent / f"{n}.py").is_file()}
    return {n for n in local if module_path(n, root) is not None}


def with_packages(name: str) -> set[str]:
    """``name`` and the packages above it, whose ``__init__`` runs first."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def import_closure(path: Path, root: Path = REPO) -> set[Path]:
    """Every project file that running ``path`` imports, transitively, package ``__init__`` files included."""
    seen, todo = set(), [path]
    while todo:
        current = todo.pop()
        for name in imported_modules(current, root):
            for module in with_packages(name):
                file = module_path(module, root)
                if file is not None and file not in seen:
                    seen.add(file)
                    todo.append(file)
    return seen
