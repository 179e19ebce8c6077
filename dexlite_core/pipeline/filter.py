"""The ``filter`` stage: simulate the curated grasps, keep those that pass."""
from __future__ import annotations

import collections
import csv
from dataclasses import dataclass
from pathlib import Path

from dexlite_core.data.files import atomic_path
from dexlite_core.data.grasps import GraspTable, read_grasps, write_grasps
from dexlite_core.sim.runner import SimConfig, SimRun, coupling_violation, simulate


@dataclass(frozen=True)
class FilterInputs:
    curated: Path  #: the curate stage's grasps.parquet
    objects_dir: Path  #: the objects stage's output


def pass_metrics(run: SimRun) -> dict:
    """Pass rates overall and by test (lift; six_dir as Suc.1 and Suc.6) and a histogram of failure
    reasons (per object: :func:`write_by_object`, a plot, not a metric)."""
    table = run.table
    metrics = {"n_tested": len(table), "n_passed": int(table.sim.success.sum()),
               "pass_rate": float(table.sim.success.mean())}
    if "lift" in run.passed:
        metrics["lift_rate"] = float(run.passed["lift"].mean())
    if "six_dir" in run.passed:
        metrics["six_dir_suc1"] = float((table.sim.dirs_passed >= 1).mean())
        metrics["six_dir_suc6"] = float(run.passed["six_dir"].mean())
    metrics["fail_reasons"] = dict(sorted(collections.Counter(r for r in table.sim.fail_reason if r).items()))
    return metrics


def write_by_object(path: Path, table: GraspTable) -> None:
    """Pass rate per object of a simulated table as CSV, for `dvc plots show`."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["object_code", "pass_rate"])
        for code in sorted(set(table.object_code)):
            writer.writerow([code, float(table.sim.success[table.object_code == code].mean())])


def run(config: SimConfig, inputs: FilterInputs, out_dir: Path) -> dict:
    """Writes ``all.parquet`` (every grasp with its results) and ``grasps.parquet`` (passed)."""
    curated = inputs.curated
    table = read_grasps(curated)
    violating = coupling_violation(table)
    if config.grasp.coupling and violating > 0.5:
        print(f"filter: warning: {violating:.0%} of the grasps in {curated} break the J0/J1 tendon coupling "
              "(DexGraspNet's do); the coupled hand cannot reach them. To test them as DexGraspNet did, set "
              "sim.grasp.coupling: false")
    simulated = simulate(table, inputs.objects_dir, config, desc="filter: simulating")
    out_dir = Path(out_dir)
    write_grasps(out_dir / "all.parquet", simulated.table)
    passed = simulated.table.select(simulated.table.sim.success)
    if len(passed) == 0:
        reasons = collections.Counter(simulated.table.sim.fail_reason).most_common(3)
        raise ValueError(f"filter: none of the {len(table)} grasps in {curated} passed {list(config.tests)}; "
                         f"most common failures: {reasons}")
    write_grasps(out_dir / "grasps.parquet", passed)
    metrics = pass_metrics(simulated)
    metrics["coupling_violation"] = violating
    write_by_object(out_dir / "pass_by_object.csv", simulated.table)
    return metrics
