"""The ``stability`` stage: which (object, scale) pairs rest on a table (:mod:`dexlite_core.sim.stability`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dexlite_core.objects.store import read_objects, write_table
from dexlite_core.parallel import ParallelConfig, parallel_map
from dexlite_core.sim.stability import LOAD_ERROR, REASONS, STABILITY_SCHEMA, StabilityConfig, object_stability


@dataclass(frozen=True)
class StabilityInputs:
    objects_dir: Path  #: the objects stage's output


@dataclass(frozen=True)
class _Tester:
    """Picklable ``object_stability`` with its config bound, for the process pool."""

    config: StabilityConfig
    objects_dir: Path

    def __call__(self, item: tuple[str, tuple[float, ...]]) -> list[dict]:
        return object_stability(self.config, self.objects_dir, *item)


def run(config: StabilityConfig, inputs: StabilityInputs, out_dir: Path) -> dict:
    """Test every object of the objects stage's output at each of its scales, in parallel; writes
    ``out_dir/stability.parquet`` and returns summary metrics."""
    objects_dir = Path(inputs.objects_dir)
    table = read_objects(objects_dir).sort_values("object_code")
    items = [(code, tuple(float(s) for s in scales)) for code, scales in zip(table.object_code, table.scales)]
    results = parallel_map(_Tester(config, objects_dir), items, ParallelConfig(n_workers=config.n_workers),
                           desc="stability")
    rows = sorted((r for rows in results for r in rows), key=lambda r: (r["object_code"], r["scale"]))
    write_table(Path(out_dir) / "stability.parquet", rows, STABILITY_SCHEMA)
    n_stable = sum(r["stable"] for r in rows)
    kinds = [r["reason"].split(":")[0] for r in rows if r["reason"]]
    return {"n_pairs": len(rows), "n_stable": n_stable, "stable_rate": n_stable / len(rows) if rows else 0.0,
            **{f"n_{k}": kinds.count(k) for k in (*REASONS, LOAD_ERROR)}}
