"""dvc.yaml cannot drift from the code: every stage declares the files its script imports and the
params keys its ``settings`` reads, and nothing it no longer reads."""
import copy

from imports import REPO
from stage_reads import code_read, params_read, stages

from dexlite_core.params import load_params


def _covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep.rstrip("/") + "/")


def dep_problems(declared: dict) -> list[str]:
    problems = []
    for name, spec in declared.items():
        code = {str(p) for p in code_read(spec["cmd"])}
        deps = [d for d in spec.get("deps", []) if not d.startswith("data/")]
        problems += [f"{name}: imports {path}, not in its deps" for path in sorted(code)
                     if not any(_covers(d, path) for d in deps)]
        problems += [f"{name}: dep {d} is code it does not import" for d in deps
                     if not any(_covers(d, path) for path in code)]
    return problems


def _key_covers(declared: str, key: str) -> bool:
    return key == declared or key.startswith(declared + ".")


def params_problems(declared: dict) -> list[str]:
    params, problems = load_params(REPO / "params.yaml"), []
    for name, spec in declared.items():
        read, keys = params_read(spec["cmd"], params), spec.get("params", [])
        problems += [f"{name}: reads params {key}, not in its params" for key in sorted(read)
                     if not any(_key_covers(k, key) for k in keys)]
        problems += [f"{name}: declares params {k}, which it does not read" for k in keys
                     if not any(_key_covers(k, key) for key in read)]
    return problems


def test_every_stage_declares_the_code_it_imports():
    assert dep_problems(stages()) == []


def test_every_stage_declares_the_params_it_reads():
    assert params_problems(stages()) == []


def test_a_missing_dep_or_param_is_caught():
    """The checks themselves, on a dvc.yaml with an import and params dropped and a stale dep added."""
    broken = copy.deepcopy(stages())
    broken["filter"]["deps"].remove("dexlite_core/conventions.py")
    broken["train"]["deps"].append("dexlite_core/report")
    broken["engine"]["params"].remove("filter.tests")
    broken["refine"]["params"].remove("postopt.seed")  # a key of the descent (stages/_configs.DESCENT_KEYS)
    assert dep_problems(broken) == ["filter: imports dexlite_core/conventions.py, not in its deps",
                                    "train: dep dexlite_core/report is code it does not import"]
    assert params_problems(broken) == ["engine: reads params filter.tests, not in its params",
                                       "refine: reads params postopt.seed, not in its params"]
