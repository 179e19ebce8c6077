"""Says whether two runs of the pipeline produced the same results.

    python bench/same_results.py RUN_A RUN_B     # two repository roots, each with data/

Compares, under each root's data/ (reports/ and other kinds of file are not read):

- tables: ``*.parquet`` (and ``*.csv`` / ``*.tsv``): same columns, dtypes and rows, every value exactly
  equal (NaN equals NaN). A Parquet file's schema metadata (e.g. the writer's version) is not compared.
- checkpoints: ``*.pt``: every tensor at the same nested key path (through dicts, lists and tuples) must
  exist on both sides with the same dtype, shape and values. Non-tensor entries (stored configs, step,
  validation loss, ...) are NOT compared: a checkpoint's format may change while its tensors may not.
- metric files: ``*.json``: nested dicts flattened to dotted keys; every key and value must match exactly
  (same type; floats exact), except timing keys.

A timing key (JSON key, or CSV/TSV column) is one whose last dotted component, split at ``_``, has a word
in TIMING_WORDS (seconds, minutes, ms, time, timestamp, elapsed, duration) or ends in ``_s`` (a rate per
second). In data/metrics/*.json that catches exactly: curate optimize_seconds, accepted_per_s;
engine round_*.heldout_seconds, adapt_seconds, expand_filter_seconds, train_seconds; evaluate
throughput.postopt_grasps_per_s, throughput.sample_grasps_per_s; postopt postopt_grasps_per_s,
postopt_ms_per_grasp, postopt_seconds; refine train_seconds; synthesize sample_grasps_per_s;
train samples_per_s.

A file of these kinds on one side only is a difference. Prints one line per differing file (its first
difference) and exits 1; else prints ``SAME: ...`` with the counts and exits 0. A missing folder exits 2.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import torch

TIMING_WORDS = frozenset({"seconds", "minutes", "ms", "time", "timestamp", "elapsed", "duration"})
CATEGORIES = {"tables": (".parquet", ".csv", ".tsv"), "checkpoints": (".pt",), "metric files": (".json",)}


def is_timing_key(key: str) -> bool:
    last = key.rsplit(".", 1)[-1].lower()
    return last.endswith("_s") or not TIMING_WORDS.isdisjoint(last.split("_"))


def same_value(a: Any, b: Any) -> bool:
    """Exact equality of plain values, of the same type; NaN equals NaN; lists and dicts element-wise."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def read_table(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path).replace_schema_metadata(None)
    delimiter = "\t" if path.suffix == ".tsv" else ","
    table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter))
    return table.select([c for c in table.column_names if not is_timing_key(c)])


def table_difference(a: Path, b: Path) -> str | None:
    ta, tb = read_table(a), read_table(b)
    if ta.column_names != tb.column_names:
        return f"columns {ta.column_names} vs {tb.column_names}"
    if ta.num_rows != tb.num_rows:
        return f"{ta.num_rows} vs {tb.num_rows} rows"
    for name in ta.column_names:
        ca, cb = ta.column(name), tb.column(name)
        if ca.type != cb.type:
            return f"column {name}: dtype {ca.type} vs {cb.type}"
        if ca.equals(cb):
            continue
        for row, (x, y) in enumerate(zip(ca.to_pylist(), cb.to_pylist())):  # slow path: NaN, or a difference
            if not same_value(x, y):
                return f"column {name}, row {row}: {x!r} vs {y!r}"
    return None


def load_checkpoint(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a checkpoint holding other objects than tensors and plain containers; ours, so trusted
        return torch.load(path, map_location="cpu", weights_only=False)


def tensors_by_key(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return {prefix or "<root>": obj}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    found: dict[str, torch.Tensor] = {}
    for key, value in items:
        found.update(tensors_by_key(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def checkpoint_difference(a: Path, b: Path) -> str | None:
    ta, tb = tensors_by_key(load_checkpoint(a)), tensors_by_key(load_checkpoint(b))
    if ta.keys() != tb.keys():
        return f"tensors only in one side: {sorted(ta.keys() ^ tb.keys())[:5]}"
    for key, x in ta.items():
        y = tb[key]
        if x.dtype != y.dtype or x.shape != y.shape:
            return f"tensor {key}: {x.dtype} {tuple(x.shape)} vs {y.dtype} {tuple(y.shape)}"
        if not (torch.equal(x, y) or (x.is_floating_point() and torch.allclose(x, y, 0.0, 0.0, equal_nan=True))):
            return f"tensor {key}: values differ"
    return None


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(obj, dict):
        return {prefix: obj}
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def metrics_difference(a: Path, b: Path) -> str | None:
    ma, mb = ({k: v for k, v in flatten(json.loads(p.read_text())).items() if not is_timing_key(k)} for p in (a, b))
    if ma.keys() != mb.keys():
        return f"keys only in one side: {sorted(ma.keys() ^ mb.keys())[:5]}"
    for key, value in ma.items():
        if not same_value(value, mb[key]):
            return f"{key}: {value!r} vs {mb[key]!r}"
    return None


COMPARE: dict[str, Callable[[Path, Path], str | None]] = {
    "tables": table_difference, "checkpoints": checkpoint_difference, "metric files": metrics_difference}


def files_of(root: Path, suffixes: tuple[str, ...]) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in suffixes and p.is_file()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python bench/same_results.py RUN_A RUN_B", file=sys.stderr)
        return 2
    data = [Path(a) / "data" for a in args]
    for folder in data:
        if not folder.is_dir():
            print(f"same_results: no folder {folder}", file=sys.stderr)
            return 2
    counts, differing = {}, 0
    for category, suffixes in CATEGORIES.items():
        in_a, in_b = files_of(data[0], suffixes), files_of(data[1], suffixes)
        counts[category] = len(in_a & in_b)
        for rel in sorted(in_a | in_b):
            side = None if rel in in_a and rel in in_b else args[0] if rel in in_a else args[1]
            what = f"only in {side}" if side else COMPARE[category](data[0] / rel, data[1] / rel)
            if what:
                differing += 1
                print(f"DIFFERENT: data/{rel}: {what}")
    summary = ", ".join(f"{n} {category}" for category, n in counts.items())
    print(f"{differing} files differ ({summary} compared)" if differing else f"SAME: {summary}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
