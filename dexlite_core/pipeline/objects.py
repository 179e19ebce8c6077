"""The ``objects`` stage: build the object set from the catalog or a DexGraspNet release. Its inputs are
no files but the source, :class:`DatasetSource`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dexlite_core.objects.catalog import default_catalog, split_objects
from dexlite_core.objects.mesh import SHAPES
from dexlite_core.objects.sdf import SdfSpec
from dexlite_core.objects.store import (OBJECT_SCHEMA, REJECT_SCHEMA, BuildJob, BuildResult, GeometrySpec,
                                        build_object, write_table)
from dexlite_core.parallel import ParallelConfig, parallel_map

SOURCES = ("optimize", "dexgraspnet")
DEXGRASPNET_SCALES = (0.06, 0.08, 0.10, 0.12, 0.15)


@dataclass(frozen=True)
class ObjectsConfig:
    codes: tuple[str, ...] = ()  #: catalog subset (empty: the whole catalog)
    scales: tuple[float, ...] = (0.06, 0.08)  #: object sizes (m, bounding radius x 1.03) to grasp at
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0
    sdf_resolution: int = 128
    n_points: int = 2000
    n_workers: int = 2

    def __post_init__(self) -> None:
        if not self.scales or not all(0.01 <= s <= 0.5 for s in self.scales):
            raise ValueError(f"scales must be a non-empty list of sizes in [0.01, 0.5] m, got {self.scales}")


@dataclass(frozen=True)
class DatasetSource:
    """Where curated grasps come from (params ``curate.source`` / ``curate.dexgraspnet_root``)."""

    kind: str = "optimize"  #: optimize: seed grasps on the built-in catalog; dexgraspnet: a release
    dexgraspnet_root: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SOURCES:
            raise ValueError(f"curate.source must be one of {SOURCES}, got {self.kind!r}")
        if self.kind == "dexgraspnet":
            root = Path(self.dexgraspnet_root or "")
            if not self.dexgraspnet_root or not (root / "dataset").is_dir() or not (root / "meshdata").is_dir():
                raise ValueError(
                    f"curate.dexgraspnet_root={self.dexgraspnet_root!r} must be a DexGraspNet release folder "
                    "holding dataset/ and meshdata/ (set it with `dvc exp run -S curate.dexgraspnet_root=PATH`)")


def catalog_jobs(codes: tuple[str, ...]) -> list[BuildJob]:
    entries = default_catalog()
    known = {e.code for e in entries}
    unknown = sorted(set(codes) - known)
    if unknown:
        raise ValueError(f"objects.codes names objects not in the catalog: {unknown}; known: {sorted(known)}")
    return [BuildJob(e.code, e.family, e.source, str(e.path or e.code), mesh=None if e.path else e.mesh())
            for e in entries if not codes or e.code in codes]


def dexgraspnet_jobs(root: Path, codes: tuple[str, ...] = ()) -> list[BuildJob]:
    """One job per ``dataset/<code>.npy``; the mesh is ``meshdata/<code>/coacd/decomposed.obj``,
    already normalized by DexGraspNet (its grasps live in that frame, so it is kept)."""
    root = Path(root)
    found = sorted(p.stem for p in (root / "dataset").glob("*.npy"))
    return [BuildJob(code, code.split("-")[0], "dexgraspnet",
                     str(root / "meshdata" / code / "coacd" / "decomposed.obj"), prenormalized=True)
            for code in found if not codes or code in codes]


def run(config: ObjectsConfig, source: DatasetSource, out_dir: Path) -> dict:
    """Build every object of ``source`` in parallel, split them, write the tables; returns summary metrics."""
    out_dir = Path(out_dir)
    jobs = (catalog_jobs(config.codes) if source.kind == "optimize"
            else dexgraspnet_jobs(Path(source.dexgraspnet_root), config.codes))
    if not jobs:
        raise ValueError(f"no objects to build (source {source.kind}, codes {list(config.codes)})")
    spec = GeometrySpec(SdfSpec(resolution=config.sdf_resolution), n_points=config.n_points, seed=config.seed)
    results: list[BuildResult] = parallel_map(_Builder(spec, out_dir), jobs,
                                              ParallelConfig(n_workers=config.n_workers), desc="objects")
    rows = [r.row for r in results if r.row is not None]
    rejects = [dict(object_code=r.code, source_path=job.source_path, reason=r.reason)
               for r, job in zip(results, jobs) if r.row is None]
    if not rows:
        raise ValueError(f"none of the {len(jobs)} objects could be built; first reason: {rejects[0]['reason']}")
    split = split_objects([r["object_code"] for r in rows], config.val_fraction, config.test_fraction, config.seed)
    for row in rows:
        row.update(split=split[row["object_code"]], scales=list(config.scales))
    rows.sort(key=lambda r: r["object_code"])
    write_table(out_dir / "objects.parquet", rows, OBJECT_SCHEMA)
    write_table(out_dir / "rejects.parquet", rejects, REJECT_SCHEMA)
    return {
        "n_objects": len(rows), "n_rejected": len(rejects),
        **{f"n_{s}": sum(r["split"] == s for r in rows) for s in ("train", "val", "test")},
        **{f"n_{shape}": sum(r["shape"] == shape for r in rows) for shape in SHAPES},
        "n_object_scales": len(rows) * len(config.scales),
    }


@dataclass(frozen=True)
class _Builder:
    """Picklable ``build_object`` with its spec bound, for the process pool."""

    spec: GeometrySpec
    out_dir: Path

    def __call__(self, job: BuildJob) -> BuildResult:
        return build_object(job, self.spec, self.out_dir)
