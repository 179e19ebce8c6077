"""Safe reading and writing of DexGraspNet's ``dataset/<object_code>.npy`` files.

Those files are pickled numpy object arrays of dicts, so ``np.load(allow_pickle=True)`` would
run whatever code a crafted file names. Here the pickle stream is read by an unpickler that
admits only numpy's array and scalar reconstructors (no other global is ever imported or
called), and the result must be plain data: dicts, lists, strings, numbers, numeric arrays.
"""
from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.lib.format as npy_format
import torch

from dexlite_core.conventions import HandPose, PoseError, pose_to_qpos, qpos_to_pose
from dexlite_core.data.files import atomic_path
from dexlite_core.data.grasps import ENERGY_COLUMNS, GraspTable

#: The only globals a DexGraspNet pickle needs (numpy 1.x and 2.x module paths).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles spell raw bytes
}


class DexGraspNetError(ValueError):
    """A DexGraspNet file that cannot be used; the message names the file and the cause."""


class _PlainDataUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise DexGraspNetError(
                f"{self.source}: refused to unpickle '{module}.{name}': DexGraspNet files hold only plain "
                "data, so this file is corrupt or crafted; nothing in it was run")
        return super().find_class(module, name)


def _check_plain(value, source: str, depth: int = 0) -> None:
    if depth > 4:
        raise DexGraspNetError(f"{source}: nested deeper than a DexGraspNet grasp record")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise DexGraspNetError(f"{source}: dict key {k!r} is not a string")
            _check_plain(v, source, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_plain(v, source, depth + 1)
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise DexGraspNetError(f"{source}: holds a non-numeric array ({value.dtype})")
    elif not isinstance(value, (str, bool, int, float, np.number, np.bool_)):
        raise DexGraspNetError(f"{source}: holds a {type(value).__name__}, not plain data")


def load_object_array(path: str | Path) -> np.ndarray:
    """A ``.npy`` object array (any shape), unpickled safely and checked to be plain data.
    Raises DexGraspNetError naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = npy_format.read_magic(f)
            read_header = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
            if version not in read_header:
                raise DexGraspNetError(f"{path}: unsupported .npy version {version}")
            shape, _, dtype = read_header[version](f)
            if not dtype.hasobject:
                raise DexGraspNetError(f"{path}: expected an object array of grasp dicts, got dtype {dtype}")
            array = _PlainDataUnpickler(io.BytesIO(f.read()), str(path)).load()
    except DexGraspNetError:
        raise
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, AttributeError, TypeError, IndexError) as exc:
        raise DexGraspNetError(f"{path}: not a readable DexGraspNet .npy file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(array, np.ndarray) or array.dtype != object or array.shape != shape:
        raise DexGraspNetError(f"{path}: expected an object array of grasp dicts")
    for i, record in enumerate(array.reshape(-1)):
        if not isinstance(record, dict):
            raise DexGraspNetError(f"{path}[{i}]: a grasp record must be a dict, got {type(record).__name__}")
        _check_plain(record, f"{path}[{i}]")
    return array


def load_records(path: str | Path) -> list[dict]:
    """The grasp records of one ``.npy`` file, unpickled safely. Raises DexGraspNetError."""
    array = load_object_array(path)
    if array.ndim != 1:
        raise DexGraspNetError(f"{path}: expected a 1-D object array of grasp dicts")
    return list(array)


@dataclass(frozen=True)
class IngestResult:
    table: GraspTable
    rejects: list[dict]  #: {object_code, grasp_id, reason}


def records_to_table(code: str, records: list[dict], source: str) -> IngestResult:
    """Grasp records -> a GraspTable (source ``dexgraspnet``); unusable records are rejected."""
    poses, ids, scales, energies, rejects = [], [], [], [], []
    for i, record in enumerate(records):
        where = f"{source}[{i}]"
        try:
            if "qpos" not in record or "scale" not in record:
                raise PoseError(f"{where}: record lacks 'qpos' or 'scale'")
            scale = float(record["scale"])
            if not 0 < scale < 10:
                raise PoseError(f"{where}: scale {scale} is not a positive size in metres")
            poses.append(qpos_to_pose(record["qpos"], where))
        except (PoseError, TypeError, ValueError) as exc:
            rejects.append({"object_code": code, "grasp_id": i, "reason": str(exc)})
            continue
        ids.append(i)
        scales.append(scale)
        energies.append([float(record.get(c, np.nan)) for c in ENERGY_COLUMNS])
    if not poses:
        empty = HandPose(torch.zeros(0, 3), torch.zeros(0, 3, 3), torch.zeros(0, 22))
        return IngestResult(GraspTable.from_poses([], [], [], "dexgraspnet", empty), rejects)
    pose = HandPose.concat(poses)
    table = GraspTable.from_poses([code] * len(ids), scales, ids, "dexgraspnet", pose, np.array(energies))
    return IngestResult(table, rejects)


def read_dexgraspnet_file(path: str | Path) -> IngestResult:
    path = Path(path)
    return records_to_table(path.stem, load_records(path), str(path))


def write_dexgraspnet_file(table: GraspTable, path: str | Path) -> Path:
    """Write grasps as one DexGraspNet ``.npy``: records ``{qpos, scale}`` plus the energies
    that were computed."""
    qpos = pose_to_qpos(table.poses(dtype=torch.float64))
    records = []
    for i, q in enumerate(qpos):
        record = {"qpos": q, "scale": float(table.scale[i])}
        record.update({c: float(v) for c, v in zip(ENERGY_COLUMNS, table.energies[i]) if np.isfinite(v)})
        records.append(record)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.array(records, dtype=object), allow_pickle=True)
    return Path(path)


def write_dexgraspnet(table: GraspTable, dataset_dir: str | Path) -> list[Path]:
    """Write a grasp table as ``dataset_dir/<object_code>.npy`` files in DexGraspNet's layout."""
    return [write_dexgraspnet_file(table.select(table.object_code == code), Path(dataset_dir) / f"{code}.npy")
            for code in sorted(set(table.object_code))]
