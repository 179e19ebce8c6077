import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from dexlite_core.conventions import HandPose, random_rotations
from dexlite_core.data.grasps import GraspTable, GraspTableError, SimColumns, read_grasps, write_grasps


def make_table(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    pose = HandPose(torch.randn(n, 3, generator=g) * 0.1, random_rotations(n, g), torch.rand(n, 22, generator=g))
    codes = np.array(["b-obj", "a-obj", "b-obj", "a-obj", "a-obj"][:n], dtype=object)
    energies = np.random.default_rng(seed).random((n, 5)).astype(np.float32)
    energies[0, 2] = np.nan
    return GraspTable.from_poses(codes, [0.08, 0.06, 0.06, 0.06, 0.08][:n], [3, 1, 0, 0, 2][:n], "optimize", pose, energies)


def test_round_trip_sorted_and_exact(tmp_path):
    table = make_table()
    path = tmp_path / "grasps.parquet"
    write_grasps(path, table)
    back = read_grasps(path)
    assert list(back.object_code) == ["a-obj", "a-obj", "a-obj", "b-obj", "b-obj"]
    assert list(back.grasp_id) == [0, 1, 2, 0, 3]
    expected = table.sorted()
    for name in ("scale", "grasp_id", "wrist_pos", "wrist_quat", "joints"):
        np.testing.assert_array_equal(getattr(back, name), getattr(expected, name))
    np.testing.assert_array_equal(back.energies, expected.energies)  # NaN stays NaN (null in Parquet)
    assert back.sim is None
    assert pq.read_table(path).column("E_pen").null_count == 1
    torch.testing.assert_close(back.poses().wrist_rot, expected.poses().wrist_rot)


def test_sim_columns_round_trip(tmp_path):
    table = make_table(3)
    sim = SimColumns(success=np.array([True, False, True]), dirs_passed=np.array([6, 2, -1], np.int8),
                     obj_disp=np.array([0.001, 0.05, 0.0], np.float32), obj_rot=np.zeros(3, np.float32),
                     pen_depth=np.array([0.0, 0.002, 0.0], np.float32),
                     fail_reason=np.array(["", "slipped", ""], dtype=object))
    write_grasps(tmp_path / "g.parquet", table.with_sim(sim))
    back = read_grasps(tmp_path / "g.parquet")
    order = np.lexsort((table.grasp_id, table.scale, table.object_code.astype(str)))
    np.testing.assert_array_equal(back.sim.success, sim.success[order])
    assert list(back.sim.fail_reason) == list(sim.fail_reason[order])


def test_reader_rejects_other_conventions(tmp_path):
    path = tmp_path / "g.parquet"
    write_grasps(path, make_table())
    arrow = pq.read_table(path)
    meta = json.loads(arrow.schema.metadata[b"dexlite"])
    meta["joint_names"] = list(reversed(meta["joint_names"]))
    bad = tmp_path / "bad.parquet"
    pq.write_table(arrow.replace_schema_metadata({b"dexlite": json.dumps(meta).encode()}), bad)
    with pytest.raises(GraspTableError, match="bad.parquet.*joint_names"):
        read_grasps(bad)
    pq.write_table(arrow.replace_schema_metadata({}), bad)
    with pytest.raises(GraspTableError, match="not a DexLite grasp table"):
        read_grasps(bad)
    bad.write_bytes(b"garbage")
    with pytest.raises(GraspTableError, match="not a readable Parquet"):
        read_grasps(bad)
    with pytest.raises(GraspTableError, match="no such grasp table"):
        read_grasps(tmp_path / "missing.parquet")


def test_wrong_joint_count_is_refused():
    table = make_table()
    with pytest.raises(GraspTableError, match="joints"):
        GraspTable(**{**table.__dict__, "joints": table.joints[:, :21]})
