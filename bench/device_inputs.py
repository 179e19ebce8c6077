"""Inputs of the benchmarks for a GPU machine that gets a copy of the working tree (bench/device.sh).

``prepare`` (here, after `make run`): writes the ignored folder .device_inputs/ (about 10 MiB)::

    objects/             data/objects without its 4 MiB sdf.npy grids (mesh.obj, cloud.npy, tables)
    filtered/, curated/  grasps.parquet of the pipeline (bench_train, bench/device_train.py)
    refine/model.pt      the pipeline's final checkpoint, its refiner included (bench_synth)
    dexgraspnet-sample/  ../shared/dexgraspnet-sample, when there (bench_energy's *_dgn_* keys)
    site/                data files of two locked packages that the benchmarked code reads but never
                         imports: the catalog meshes of pybullet_data (pybullet's wheel is ~100 MiB)
                         and gymnasium_robotics' Shadow Hand asset with its licence (its wheel 26 MiB)
    manifest.json        sha256 of every sdf.npy, to count the regenerated grids that match

``install`` (there): copies them to data/ (only what is missing: an existing data/objects is used
as it is) and recomputes each sdf.npy from mesh.obj with the objects stage's own
``compute_sdf_grid`` (~0.6 s per object and core; a few grid values may differ by one float16
step from the grids written by the stage, which read the mesh before it was saved with 9 digits).
``--smoke N`` keeps N objects with grasps plus one test object, for a short CPU rehearsal.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GRASP_TABLES = ("filtered/grasps.parquet", "curated/grasps.parquet")
PYBULLET_FILES = ("__init__.py", "objects/mug_col.obj", "duck_vhacd.obj", "teddy2_VHACD_CHs.obj", "bunny.obj")
HAND_ASSET = ("__init__.py", "envs/assets/hand", "envs/assets/stls/hand", "envs/assets/LICENSE.md")


def _package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{name} is not installed here (make install)")
    return Path(list(spec.submodule_search_locations)[0])


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(src, dst)


def prepare(out: Path) -> None:
    from dexlite_core.objects.catalog import RANDOM_URDF_IDS

    data = REPO / "data"
    needed = [data / "objects" / "objects.parquet", data / "refine" / "model.pt"] + [data / t for t in GRASP_TABLES]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        sys.exit(f"missing {missing}: run `make run` first")
    if out.exists():
        shutil.rmtree(out)
    if out.resolve().parent == REPO:  # keep it out of git (and so out of what travels uncarried)
        import subprocess

        exclude = REPO / subprocess.run(["git", "rev-parse", "--git-path", "info/exclude"], cwd=REPO,
                                        capture_output=True, text=True, check=True).stdout.strip()
        entry = f"/{out.name}/"
        if entry not in (exclude.read_text().split() if exclude.exists() else []):
            with open(exclude, "a") as f:
                f.write(entry + "\n")
    objects = data / "objects"
    manifest = {"sdf_sha256": {}}
    for path in sorted(objects.iterdir()):
        if path.is_file():
            _copy(path, out / "objects" / path.name)
        else:
            for name in ("mesh.obj", "cloud.npy"):
                _copy(path / name, out / "objects" / path.name / name)
            manifest["sdf_sha256"][path.name] = hashlib.sha256((path / "sdf.npy").read_bytes()).hexdigest()
    for table in GRASP_TABLES:
        _copy(data / table, out / table)
    _copy(data / "refine" / "model.pt", out / "refine" / "model.pt")
    sample = REPO.parent / "shared" / "dexgraspnet-sample"
    if (sample / "dataset").is_dir():
        _copy(sample, out / "dexgraspnet-sample")
    pyb = _package_dir("pybullet_data")
    for rel in PYBULLET_FILES + tuple(f"random_urdfs/{i:03d}/{i:03d}.obj" for i in RANDOM_URDF_IDS):
        _copy(pyb / rel, out / "site" / "pybullet_data" / rel)
    gym = _package_dir("gymnasium_robotics")
    for rel in HAND_ASSET:
        _copy(gym / rel, out / "site" / "gymnasium_robotics" / rel)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {size / 2 ** 20:.1f} MiB, {len(manifest['sdf_sha256'])} objects")


def _sdf(job: tuple[Path, int, float]) -> tuple[str, str]:
    import numpy as np

    from dexlite_core.data.files import write_npy
    from dexlite_core.objects.sdf import SdfSpec, compute_sdf_grid
    from dexlite_core.objects.store import read_pieces

    folder, resolution, extent = job
    grid = compute_sdf_grid(read_pieces(folder / "mesh.obj")[0], SdfSpec(resolution=resolution, extent=extent))
    write_npy(folder / "sdf.npy", grid.astype(np.float16))
    return folder.name, hashlib.sha256((folder / "sdf.npy").read_bytes()).hexdigest()


def _smoke_codes(src: Path, n: int) -> list[str]:
    import pandas as pd

    objects = pd.read_parquet(src / "objects" / "objects.parquet")
    grasps = pd.read_parquet(src / GRASP_TABLES[0], columns=["object_code"])
    split = dict(zip(objects.object_code, objects.split))
    counts = grasps.object_code.value_counts()
    val = [c for c in counts.index if split[c] == "val"][:1]
    train = [c for c in counts.index if split[c] == "train"][:max(1, n - 1)]
    test = sorted(objects.object_code[objects.split == "test"])[:1]
    return train + val + test


def install(src: Path, workers: int, smoke: int) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = REPO / "data"
    objects = data / "objects"
    if (objects / "objects.parquet").exists():
        print(f"{objects} exists: used as it is")
    else:
        start = time.perf_counter()
        codes = _smoke_codes(src, smoke) if smoke else None
        staging = data / ".objects.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(src / "objects", staging)
        table = pq.read_table(staging / "objects.parquet")
        if codes:
            keep = pd.Series(table.column("object_code").to_pylist()).isin(codes).to_numpy()
            table = table.filter(pa.array(keep))
            pq.write_table(table, staging / "objects.parquet")
            for folder in staging.iterdir():
                if folder.is_dir() and folder.name not in codes:
                    shutil.rmtree(folder)
        rows = table.to_pylist()
        jobs = [(staging / r["object_code"], int(r["sdf_resolution"]), float(r["sdf_extent"])) for r in rows]
        with ProcessPoolExecutor(max(1, workers)) as pool:
            sums = dict(pool.map(_sdf, jobs))
        staging.rename(objects)
        expected = json.loads((src / "manifest.json").read_text())["sdf_sha256"]
        same = sum(expected.get(code) == digest for code, digest in sums.items())
        print(f"{objects}: {len(rows)} objects, sdf.npy recomputed in {time.perf_counter() - start:.1f} s "
              f"with {workers} processes; {same} of {len(rows)} grids bit-identical to the stage's")
    for rel in GRASP_TABLES + ("refine/model.pt",):
        if not (data / rel).exists():
            _copy(src / rel, data / rel)
            if smoke and rel.endswith(".parquet"):
                table = pq.read_table(data / rel)
                codes = set(pq.read_table(objects / "objects.parquet").column("object_code").to_pylist())
                keep = pd.Series(table.column("object_code").to_pylist()).isin(codes).to_numpy()
                pq.write_table(table.filter(pa.array(keep)), data / rel)
            print(f"{data / rel}: copied")
    sample = REPO.parent / "shared" / "dexgraspnet-sample"
    if not sample.exists() and (src / "dexgraspnet-sample").is_dir():
        _copy(src / "dexgraspnet-sample", sample)
        print(f"{sample}: copied")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, default=REPO / ".device_inputs")
    i = sub.add_parser("install")
    i.add_argument("--src", type=Path, default=REPO / ".device_inputs")
    i.add_argument("--workers", type=int, default=2)
    i.add_argument("--smoke", type=int, default=0, help="keep this many objects with grasps (+1 test object)")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.out)
    else:
        install(args.src, args.workers, args.smoke)


if __name__ == "__main__":
    main()
