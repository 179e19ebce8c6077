"""The grasp table: one row per grasp, exchanged between stages as Parquet.

Rows are sorted by (object_code, scale, grasp_id). The schema metadata records the joint
order, frame and rotation conventions, the hand model and the writer's version; a reader
rejects a table whose metadata disagree with this code (it still reads schema version 1, from
before the pre-grasp and squeeze columns) or whose joints are non-finite or outside the hand's
limits.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from dexlite_core.conventions import (HAND_MODEL_NAME, JOINT_LOWER, JOINT_NAMES, JOINT_UPPER, NUM_JOINTS, HandPose,
                                      matrix_to_quat, quat_to_matrix)
from dexlite_core.data.files import atomic_path

SCHEMA_VERSION = "2"  #: 2 added pregrasp_joints and squeeze_joints
SOURCES = ("dexgraspnet", "optimize", "cvae", "postopt", "expand", "recon")
ENERGY_COLUMNS = ("E_fc", "E_dis", "E_pen", "E_spen", "E_joints")
CONVENTIONS = {
    "frame": "palm (robot0:palm) pose in the scaled object frame, metres: x_obj = R x_palm + t",
    "quaternion": "w, x, y, z",
    "joints": "radians, joint_names order",
    "object_normalization": "bbox centre at origin, divided by 1.03 x max vertex radius, times scale",
}


class GraspTableError(ValueError):
    """A grasp table that this version cannot use; the message names the file and the fix."""


def _metadata() -> dict[bytes, bytes]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        writer = version("dexlite")
    except PackageNotFoundError:
        writer = "unknown"
    meta = {"schema_version": SCHEMA_VERSION, "joint_names": JOINT_NAMES, "hand_model": HAND_MODEL_NAME,
            "conventions": CONVENTIONS, "writer": f"dexlite {writer}"}
    return {b"dexlite": json.dumps(meta, sort_keys=True).encode()}


_CHECKED_KEYS = ("joint_names", "hand_model", "conventions")

SCHEMA_V1 = pa.schema([
    ("object_code", pa.string()),
    ("scale", pa.float32()),
    ("grasp_id", pa.int64()),
    ("source", pa.string()),
    ("wrist_pos", pa.list_(pa.float32(), 3)),
    ("wrist_quat", pa.list_(pa.float32(), 4)),
    ("joints", pa.list_(pa.float32(), NUM_JOINTS)),
    *[(c, pa.float32()) for c in ENERGY_COLUMNS],
    ("sim_success", pa.bool_()),
    ("sim_dirs_passed", pa.int8()),
    ("obj_disp", pa.float32()),
    ("obj_rot", pa.float32()),
    ("pen_depth", pa.float32()),
    ("fail_reason", pa.string()),
])
#: Each grasp's own pre-grasp and squeeze targets, null where it has none (the simulators then
#: derive them from the grasp with the fixed ``sim.dgb.stages``).
TRIPLE_COLUMNS = {"pregrasp": "pregrasp_joints", "squeeze": "squeeze_joints"}
SCHEMA = pa.schema([*SCHEMA_V1, *[(c, pa.list_(pa.float32(), NUM_JOINTS)) for c in TRIPLE_COLUMNS.values()]])
_SCHEMAS = {"1": SCHEMA_V1, SCHEMA_VERSION: SCHEMA}
#: rad a stored joint may pass its limit by before a reader refuses the table. Pre-grasp and squeeze
#: targets are clipped to the limits: only float32 rounding is allowed. The grasp itself is not
#: clipped everywhere yet: DexGraspNet's release exceeds the limits by up to 0.58 rad (its optimizer
#: only penalized them) and the CVAE decoder is unbounded; the simulators clip. Its slack still
#: refuses garbage such as degrees or 50 rad.
JOINT_LIMIT_SLACK = {"joints": 1.0, "pregrasp_joints": 1e-3, "squeeze_joints": 1e-3}


@dataclass(frozen=True)
class SimColumns:
    """Simulation results, one entry per grasp."""

    success: np.ndarray  #: (N,) bool
    dirs_passed: np.ndarray  #: (N,) int8, six-direction test: directions held (-1: not run)
    obj_disp: np.ndarray  #: (N,) float32, metres the object moved relative to the hand
    obj_rot: np.ndarray  #: (N,) float32, degrees the object turned relative to the hand
    pen_depth: np.ndarray  #: (N,) float32, initial object-into-hand depth, metres
    fail_reason: np.ndarray  #: (N,) object: str, "" when it passed


@dataclass(frozen=True)
class GraspTable:
    object_code: np.ndarray  #: (N,) object (str)
    scale: np.ndarray  #: (N,) float32
    grasp_id: np.ndarray  #: (N,) int64
    source: np.ndarray  #: (N,) object (str), one of SOURCES
    wrist_pos: np.ndarray  #: (N, 3) float32, metres, object frame
    wrist_quat: np.ndarray  #: (N, 4) float32, w x y z
    joints: np.ndarray  #: (N, 22) float32, JOINT_NAMES order
    energies: np.ndarray  #: (N, 5) float32, ENERGY_COLUMNS, NaN where not computed
    sim: SimColumns | None = None  #: None until simulated
    #: (N, 22) float32 pre-grasp and squeeze joint targets (the grasp is ``joints``), NaN rows where a
    #: grasp has none; None: no grasp has them
    pregrasp: np.ndarray | None = None
    squeeze: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.object_code)
        shapes = {"scale": (n,), "grasp_id": (n,), "source": (n,), "wrist_pos": (n, 3), "wrist_quat": (n, 4),
                  "joints": (n, NUM_JOINTS), "energies": (n, len(ENERGY_COLUMNS))}
        if self.pregrasp is not None or self.squeeze is not None:
            shapes.update(pregrasp=(n, NUM_JOINTS), squeeze=(n, NUM_JOINTS))
        for name, shape in shapes.items():
            got = None if getattr(self, name) is None else getattr(self, name).shape
            if got != shape:
                raise GraspTableError(f"grasp table column {name} has shape {got}, expected {shape}")
        if "pregrasp" in shapes and not np.array_equal(_missing_rows(self.pregrasp), _missing_rows(self.squeeze)):
            raise GraspTableError("grasp table: pregrasp and squeeze must be missing (NaN) in the same rows")

    def __len__(self) -> int:
        return len(self.object_code)

    @staticmethod
    def from_poses(object_code, scale, grasp_id, source: str, pose: HandPose,
                   energies: np.ndarray | None = None) -> "GraspTable":
        n = len(pose)
        return GraspTable(
            object_code=np.asarray(object_code, dtype=object), scale=np.asarray(scale, dtype=np.float32),
            grasp_id=np.asarray(grasp_id, dtype=np.int64), source=np.full(n, source, dtype=object),
            wrist_pos=pose.wrist_pos.detach().cpu().numpy().astype(np.float32),
            wrist_quat=_canonical_quat32(matrix_to_quat(pose.wrist_rot.detach().double()).cpu().numpy()),
            joints=pose.joints.detach().cpu().numpy().astype(np.float32),
            energies=np.full((n, len(ENERGY_COLUMNS)), np.nan, np.float32) if energies is None
            else np.asarray(energies, dtype=np.float32),
        )

    def poses(self, device="cpu", dtype=torch.float32) -> HandPose:
        return HandPose(torch.as_tensor(self.wrist_pos, dtype=dtype, device=device),
                        quat_to_matrix(torch.as_tensor(self.wrist_quat, dtype=torch.float64)).to(device, dtype),
                        torch.as_tensor(self.joints, dtype=dtype, device=device))

    def select(self, index) -> "GraspTable":
        """Rows by boolean mask or integer index."""
        sim = None if self.sim is None else SimColumns(*(getattr(self.sim, f.name)[index] for f in fields(SimColumns)))
        rows = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sim"}
        return replace(self, **{name: None if v is None else v[index] for name, v in rows.items()}, sim=sim)

    def with_sim(self, sim: SimColumns) -> "GraspTable":
        return replace(self, sim=sim)

    def with_triple(self, pregrasp: np.ndarray | None, squeeze: np.ndarray | None) -> "GraspTable":
        """A copy with these pre-grasp and squeeze targets ((N, 22), NaN rows where none; None: none at all)."""
        return replace(self, pregrasp=_float32_or_none(pregrasp), squeeze=_float32_or_none(squeeze))

    def triple_or_nan(self, name: str) -> np.ndarray:
        """``pregrasp`` or ``squeeze``, all-NaN rows when the table has none."""
        values = getattr(self, name)
        return np.full((len(self), NUM_JOINTS), np.nan, np.float32) if values is None else values

    def sort_order(self) -> np.ndarray:
        """Row order by (object, scale, grasp id)."""
        return np.lexsort((self.grasp_id, self.scale, self.object_code.astype(str)))

    def sorted(self) -> "GraspTable":
        return self.select(self.sort_order())

    @staticmethod
    def concat(tables: list["GraspTable"]) -> "GraspTable":
        if not tables:
            raise GraspTableError("nothing to concatenate")
        with_sim = [t.sim is not None for t in tables]
        if any(with_sim) and not all(with_sim):
            raise GraspTableError("cannot concatenate simulated and unsimulated grasp tables")
        sim = None if not all(with_sim) else SimColumns(
            *(np.concatenate([getattr(t.sim, f.name) for t in tables]) for f in fields(SimColumns)))
        triple = {}
        if any(t.pregrasp is not None for t in tables):  # a table without them contributes NaN rows
            triple = {name: np.concatenate([t.triple_or_nan(name) for t in tables]) for name in TRIPLE_COLUMNS}
        return GraspTable(**{f.name: np.concatenate([getattr(t, f.name) for t in tables])
                             for f in fields(GraspTable) if f.name not in ("sim", *TRIPLE_COLUMNS)}, sim=sim, **triple)


def _missing_rows(joints: np.ndarray) -> np.ndarray:
    return np.isnan(joints).all(axis=1)


def _float32_or_none(values) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=np.float32)


def _canonical_quat32(q: np.ndarray) -> np.ndarray:
    """float32 quaternions that survive "normalize in float64, round to float32" unchanged, so
    conversions through other rotation formats (DexGraspNet's Euler angles) round-trip exactly."""
    q32 = q.astype(np.float32)
    for _ in range(4):
        q64 = q32.astype(np.float64)
        again = (q64 / np.linalg.norm(q64, axis=-1, keepdims=True)).astype(np.float32)
        if np.array_equal(again, q32):
            break
        q32 = again
    return q32


def _fixed_list(values: np.ndarray, width: int) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()), width)


def _nullable(values: np.ndarray, kind) -> pa.Array:
    return pa.array(values, kind, from_pandas=True)  # NaN -> null


def _nullable_joints(values: np.ndarray | None, n: int) -> pa.Array:
    """(N, 22) with NaN rows -> null rows; None -> all null."""
    if values is None:
        return pa.nulls(n, pa.list_(pa.float32(), NUM_JOINTS))
    missing = _missing_rows(values)
    values = np.where(missing[:, None], 0.0, values)  # a partly NaN row stays NaN: the reader refuses it
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()), NUM_JOINTS,
                                             mask=pa.array(missing))


def to_arrow(table: GraspTable) -> pa.Table:
    n = len(table)
    columns = {
        "object_code": pa.array(table.object_code.astype(str), pa.string()),
        "scale": pa.array(table.scale, pa.float32()),
        "grasp_id": pa.array(table.grasp_id, pa.int64()),
        "source": pa.array(table.source.astype(str), pa.string()),
        "wrist_pos": _fixed_list(table.wrist_pos, 3),
        "wrist_quat": _fixed_list(table.wrist_quat, 4),
        "joints": _fixed_list(table.joints, NUM_JOINTS),
        **{c: _nullable(table.energies[:, i], pa.float32()) for i, c in enumerate(ENERGY_COLUMNS)},
        **{c: _nullable_joints(getattr(table, name), n) for name, c in TRIPLE_COLUMNS.items()},
    }
    sim = table.sim
    if sim is None:
        columns.update({name: pa.nulls(n, SCHEMA.field(name).type)
                        for name in ("sim_success", "sim_dirs_passed", "obj_disp", "obj_rot", "pen_depth", "fail_reason")})
    else:
        columns.update(
            sim_success=pa.array(sim.success, pa.bool_()), sim_dirs_passed=pa.array(sim.dirs_passed, pa.int8()),
            obj_disp=_nullable(sim.obj_disp, pa.float32()), obj_rot=_nullable(sim.obj_rot, pa.float32()),
            pen_depth=_nullable(sim.pen_depth, pa.float32()), fail_reason=pa.array(sim.fail_reason.astype(str), pa.string()))
    return pa.table(columns, schema=SCHEMA.with_metadata(_metadata()))


def write_grasps(path: str | Path, table: GraspTable) -> None:
    """Sort and write atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(to_arrow(table.sorted()), tmp)


def _check_metadata(path: Path, schema: pa.Schema) -> pa.Schema:
    """The schema a table with this metadata must have."""
    raw = (schema.metadata or {}).get(b"dexlite")
    if raw is None:
        raise GraspTableError(f"{path}: not a DexLite grasp table (no dexlite metadata); "
                              "convert DexGraspNet files with the curate stage")
    meta = json.loads(raw)
    version = meta.get("schema_version")
    if version not in _SCHEMAS:
        raise GraspTableError(f"{path}: its schema_version ({version}) is not one this version reads "
                              f"({', '.join(_SCHEMAS)}); update DexLite or regenerate it with `dvc repro`")
    expected = json.loads(_metadata()[b"dexlite"])
    for key in _CHECKED_KEYS:
        if meta.get(key) != expected[key]:
            raise GraspTableError(f"{path}: its {key} ({str(meta.get(key))[:80]}) differs from this version's "
                                  f"({str(expected[key])[:80]}); regenerate it with `dvc repro`")
    return _SCHEMAS[version]


def _check_joints(path: Path, table: GraspTable) -> None:
    """Refuse non-finite joints and joints outside the hand's limits, naming the first such value."""
    columns = {"joints": table.joints, **{c: getattr(table, name) for name, c in TRIPLE_COLUMNS.items()}}
    for column, joints in columns.items():
        if joints is None:
            continue
        present = ~_missing_rows(joints) if column != "joints" else np.ones(len(joints), bool)
        slack = JOINT_LIMIT_SLACK[column]
        bad = present[:, None] & ~((joints >= JOINT_LOWER - slack) & (joints <= JOINT_UPPER + slack))  # NaN: bad
        if bad.any():
            row, j = np.argwhere(bad)[0]
            raise GraspTableError(
                f"{path}: {column} of {table.object_code[row]} grasp {table.grasp_id[row]}: {JOINT_NAMES[j]} = "
                f"{joints[row, j]:.4g} rad is not within its limits [{JOINT_LOWER[j]:.4g}, {JOINT_UPPER[j]:.4g}] "
                f"({int(bad.any(axis=1).sum())} such rows); regenerate it with `dvc repro`")


def read_grasps(path: str | Path) -> GraspTable:
    path = Path(path)
    if not path.exists():
        raise GraspTableError(f"{path}: no such grasp table; run `dvc repro` to produce it")
    try:
        arrow = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise GraspTableError(f"{path}: not a readable Parquet file ({exc}); regenerate it with `dvc repro`") from exc
    schema = _check_metadata(path, arrow.schema)
    if arrow.schema.remove_metadata() != schema:
        raise GraspTableError(f"{path}: columns differ from the grasp table schema; regenerate it with `dvc repro`")

    def floats(name, width=None):
        col = arrow.column(name).combine_chunks()
        if width is None:
            return col.to_numpy(zero_copy_only=False).astype(np.float32)
        return col.flatten().to_numpy().astype(np.float32).reshape(-1, width)

    def nullable_joints(name):
        if name not in schema.names:  # schema version 1
            return None
        col = arrow.column(name).combine_chunks()
        if col.null_count == len(col):
            return None
        out = np.full((len(col), NUM_JOINTS), np.nan, np.float32)
        out[~col.is_null().to_numpy(zero_copy_only=False)] = floats(name, NUM_JOINTS)  # flatten skips null rows
        return out

    sim = None
    if arrow.num_rows and arrow.column("sim_success").null_count == 0:
        sim = SimColumns(
            success=arrow.column("sim_success").to_numpy().astype(bool),
            dirs_passed=arrow.column("sim_dirs_passed").to_numpy(zero_copy_only=False).astype(np.int8),
            obj_disp=floats("obj_disp"), obj_rot=floats("obj_rot"), pen_depth=floats("pen_depth"),
            fail_reason=np.array(arrow.column("fail_reason").to_pylist(), dtype=object))
    try:
        table = GraspTable(
            object_code=np.array(arrow.column("object_code").to_pylist(), dtype=object),
            scale=floats("scale"), grasp_id=arrow.column("grasp_id").to_numpy().astype(np.int64),
            source=np.array(arrow.column("source").to_pylist(), dtype=object),
            wrist_pos=floats("wrist_pos", 3), wrist_quat=floats("wrist_quat", 4), joints=floats("joints", NUM_JOINTS),
            energies=np.stack([floats(c) for c in ENERGY_COLUMNS], axis=1) if arrow.num_rows
            else np.zeros((0, len(ENERGY_COLUMNS)), np.float32),
            sim=sim, **{name: nullable_joints(c) for name, c in TRIPLE_COLUMNS.items()},
        )
    except GraspTableError as exc:
        raise GraspTableError(f"{path}: {exc}; regenerate it with `dvc repro`") from exc
    if not (np.isfinite(table.wrist_pos).all() and np.isfinite(table.wrist_quat).all()):
        raise GraspTableError(f"{path}: contains NaN wrist poses; regenerate it with `dvc repro`")
    _check_joints(path, table)
    return table
