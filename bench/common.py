"""Shared benchmark plumbing: timing by median of repeats, results merged per device."""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dexlite_core.data.files import write_json  # noqa: E402

#: DEXLITE_BENCH_RESULTS: another folder for the JSONs (bench/device.sh: only this run's keys).
RESULTS = Path(os.environ.get("DEXLITE_BENCH_RESULTS") or REPO / "bench" / "results")


def devices() -> list[str]:
    """cpu, then cuda when available; DEXLITE_BENCH_DEVICES (e.g. ``cuda``, ``cpu,cuda``) picks
    among them, so a GPU machine's run skips the CPU pass (bench/device.sh)."""
    available = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    wanted = [d.strip() for d in os.environ.get("DEXLITE_BENCH_DEVICES", "").split(",") if d.strip()]
    if not wanted:
        return available
    missing = [d for d in wanted if d not in available]
    if missing:
        sys.exit(f"DEXLITE_BENCH_DEVICES names {missing}, not available here (available: {available})")
    return wanted


def median_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 2, device: str = "cpu") -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs (CUDA synchronized)."""
    def sync():
        if device == "cuda":
            torch.cuda.synchronize()
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def write_results(name: str, figures: dict[str, float]) -> None:
    """Merge ``figures`` into bench/results/<name>.json (keys of other devices are kept) and print them."""
    path = RESULTS / f"{name}.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update({k: round(float(v), 4) for k, v in figures.items()})
    write_json(path, merged)
    print(json.dumps(figures, indent=2))


def shape_masks(object_codes: np.ndarray, objects_dir: Path) -> dict[str, np.ndarray]:
    """Row masks per shape family (objects.parquet's ``shape``) of each row's object."""
    from dexlite_core.objects.store import read_objects

    objects = read_objects(objects_dir)
    shape_of = dict(zip(objects.object_code, objects["shape"]))
    shapes = np.array([shape_of[c] for c in object_codes])
    return {str(shape): shapes == shape for shape in sorted(set(shapes))}
