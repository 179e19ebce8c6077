"""Building, writing and reading the object set (the ``objects`` stage's output).

Layout under the stage's out directory::

    objects.parquet          one row per usable object (see OBJECT_SCHEMA)
    rejects.parquet          objects that could not be used, with the reason
    <code>/mesh.obj          the normalized watertight solid
    <code>/decomposed.obj    convex collision pieces as ``o convex_i`` groups (DexGraspNet layout)
    <code>/sdf.npy           (R, R, R) float16 signed distance grid, normalized units
    <code>/cloud.npy         (P, 6) float32 surface points and outward normals, chunk ordered
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
import trimesh

from dexlite_core.data.files import atomic_path, write_npy, write_text
from dexlite_core.objects.cloud import CHUNK_SIZE, surface_cloud
from dexlite_core.objects.mesh import MeshError, NormalizedMesh, convex_pieces, normalize, repair, shape_of
from dexlite_core.objects.object_set import ObjectGeometry, ObjectSet
from dexlite_core.objects.sdf import SdfSpec, compute_sdf_grid
from dexlite_core.seeding import stable_seed

OBJECT_SCHEMA = pa.schema([
    ("object_code", pa.string()),
    ("family", pa.string()),  # what made it: box, cylinder, ..., mug, random (a DexGraspNet code's prefix)
    ("shape", pa.string()),  # shape family from the geometry: concave, flat, thin or compact (mesh.shape_of)
    ("source", pa.string()),
    ("split", pa.string()),
    ("file_radius", pa.float64()),  # source-file units per normalized unit
    ("volume", pa.float64()),  # normalized units^3
    ("n_pieces", pa.int32()),
    ("scales", pa.list_(pa.float32())),
    ("sdf_resolution", pa.int32()),
    ("sdf_extent", pa.float32()),
    ("n_points", pa.int32()),
])
REJECT_SCHEMA = pa.schema([("object_code", pa.string()), ("source_path", pa.string()), ("reason", pa.string())])


@dataclass(frozen=True)
class GeometrySpec:
    sdf: SdfSpec = SdfSpec()
    n_points: int = 2000  #: surface points per object (a multiple of CHUNK_SIZE)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_points <= 0 or self.n_points % CHUNK_SIZE:
            raise ValueError(f"n_points must be a positive multiple of {CHUNK_SIZE}, got {self.n_points}")


@dataclass(frozen=True)
class BuildJob:
    """One object to build: a mesh source and whether it is already normalized."""

    code: str
    family: str
    source: str
    source_path: str  #: for messages and rejects
    mesh: trimesh.Trimesh | None = None  #: a raw mesh (procedural), else read from source_path
    prenormalized: bool = False  #: DexGraspNet meshes: keep their frame, the grasps live in it


@dataclass(frozen=True)
class BuildResult:
    code: str
    row: dict | None  #: objects.parquet row (without split and scales) when usable
    reason: str | None  #: why not, otherwise


def build_object(job: BuildJob, spec: GeometrySpec, out_dir: Path) -> BuildResult:
    """Repair, decompose, normalize and precompute one object; files go to ``out_dir/<code>``.

    Runs in worker processes (see parallel.py). Bad meshes come back as a reason, not a crash.
    """
    try:
        from dexlite_core.objects.mesh import load_mesh

        raw = job.mesh if job.mesh is not None else load_mesh(job.source_path)
        solid, shells = repair(raw, source=job.source_path)
        pieces = convex_pieces(solid, shells)
        prepared = (NormalizedMesh(solid, pieces, np.zeros(3), 1.0) if job.prenormalized
                    else normalize(solid, pieces))
        if np.linalg.norm(prepared.mesh.vertices, axis=1).max() >= spec.sdf.extent:
            raise MeshError(f"{job.source_path}: extends beyond the SDF grid (|x| >= {spec.sdf.extent}); "
                            "is it really normalized?")
        try:
            sdf = compute_sdf_grid(prepared.mesh, spec.sdf)
        except MeshError as exc:
            raise MeshError(f"{job.source_path}: {exc}") from exc
        points, normals = surface_cloud(prepared.mesh, spec.n_points, seed=stable_seed(spec.seed, "cloud", job.code) % 2 ** 32)
    except MeshError as exc:
        return BuildResult(job.code, None, str(exc))
    folder = Path(out_dir) / job.code
    write_mesh(folder / "mesh.obj", [prepared.mesh])
    write_mesh(folder / "decomposed.obj", list(prepared.pieces))
    write_npy(folder / "sdf.npy", sdf.astype(np.float16))
    write_npy(folder / "cloud.npy", np.concatenate([points, normals], axis=1).astype(np.float32))
    row = dict(object_code=job.code, family=job.family, shape=shape_of(prepared.mesh), source=job.source,
               file_radius=float(prepared.radius),
               volume=float(prepared.mesh.volume), n_pieces=len(prepared.pieces),
               sdf_resolution=spec.sdf.resolution, sdf_extent=spec.sdf.extent, n_points=spec.n_points)
    return BuildResult(job.code, row, None)


def write_mesh(path: Path, pieces: list[trimesh.Trimesh]) -> None:
    """OBJ with one ``o convex_i`` group per piece (a single piece for solids), 9 digits."""
    lines, offset = [], 1
    for i, piece in enumerate(pieces):
        lines.append(f"o convex_{i}")
        lines += [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in piece.vertices]
        lines += [f"f {a + offset} {b + offset} {c + offset}" for a, b, c in piece.faces]
        offset += len(piece.vertices)
    write_text(path, "\n".join(lines) + "\n")


def read_pieces(path: Path) -> list[trimesh.Trimesh]:
    """The groups of a file written by :func:`write_mesh` (or DexGraspNet's decomposed.obj)."""
    pieces, vertices, faces, base = [], [], [], 1
    for line in Path(path).read_text().splitlines():
        if line.startswith("o ") and faces:
            pieces.append(_piece(vertices, faces, base))
            base += len(vertices)
            vertices, faces = [], []
        elif line.startswith("v "):
            vertices.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            faces.append([int(x.split("/")[0]) for x in line.split()[1:4]])
    if faces:
        pieces.append(_piece(vertices, faces, base))
    return pieces


def _piece(vertices, faces, base) -> trimesh.Trimesh:
    return trimesh.Trimesh(np.array(vertices), np.array(faces) - base, process=False)


def write_table(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    """Rows as Parquet with a fixed schema, written atomically."""
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_objects(root: Path) -> pd.DataFrame:
    path = Path(root) / "objects.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `dvc repro objects` first")
    return pd.read_parquet(path)


def split_of(root: Path) -> dict[str, str]:
    """Object code -> its split (train, val or test) in the objects table under ``root``: which objects a stage
    may train on, check on or report."""
    table = read_objects(root)
    return dict(zip(table.object_code, table.split))


def load_geometry(root: Path, code: str, extent: float) -> ObjectGeometry:
    folder = Path(root) / code
    cloud = np.load(folder / "cloud.npy", allow_pickle=False)
    sdf = np.load(folder / "sdf.npy", allow_pickle=False).astype(np.float32)
    return ObjectGeometry(code, sdf, extent, cloud[:, :3], cloud[:, 3:])


def load_object_set(root: Path, codes: list[str] | None = None, device="cpu", dtype=torch.float32) -> ObjectSet:
    """The objects (all, or ``codes`` in that order) of an objects-stage output as an ObjectSet."""
    table = read_objects(root).set_index("object_code")
    codes = list(table.index) if codes is None else list(codes)
    missing = [c for c in codes if c not in table.index]
    if missing:
        raise KeyError(f"objects not in {root}/objects.parquet: {missing[:5]}")
    return ObjectSet.from_geometry([load_geometry(root, c, float(table.loc[c, "sdf_extent"])) for c in codes],
                                   device=device, dtype=dtype)
