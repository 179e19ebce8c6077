import json
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from dexlite_core.conventions import JOINT_LOWER, JOINT_NAMES, JOINT_UPPER, HandPose, random_rotations
from dexlite_core.data.dexgraspnet import read_dexgraspnet_file
from dexlite_core.data.grasps import GraspTable, GraspTableError, SimColumns, read_grasps, write_grasps


def make_table(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    joints = torch.as_tensor(JOINT_LOWER) + torch.rand(n, 22, generator=g) * torch.as_tensor(JOINT_UPPER - JOINT_LOWER)
    pose = HandPose(torch.randn(n, 3, generator=g) * 0.1, random_rotations(n, g), joints)
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


def with_some_triple(table):
    """``table`` with pre-grasp/squeeze targets on every row but rows 1 and 3."""
    open_, close = np.full(22, -0.05, np.float32), np.full(22, 0.05, np.float32)
    pregrasp = np.clip(table.joints + open_, JOINT_LOWER, JOINT_UPPER)
    squeeze = np.clip(table.joints + close, JOINT_LOWER, JOINT_UPPER)
    pregrasp[[1, 3]] = squeeze[[1, 3]] = np.nan
    return table.with_triple(pregrasp, squeeze)


def test_triple_round_trips_with_null_rows(tmp_path):
    table = with_some_triple(make_table())
    write_grasps(tmp_path / "g.parquet", table)
    arrow = pq.read_table(tmp_path / "g.parquet")
    assert arrow.column("pregrasp_joints").null_count == arrow.column("squeeze_joints").null_count == 2
    back, expected = read_grasps(tmp_path / "g.parquet"), table.sorted()
    np.testing.assert_array_equal(back.pregrasp, expected.pregrasp)  # NaN rows stay NaN
    np.testing.assert_array_equal(back.squeeze, expected.squeeze)
    write_grasps(tmp_path / "none.parquet", make_table())
    assert pq.read_table(tmp_path / "none.parquet").column("squeeze_joints").null_count == 5
    back = read_grasps(tmp_path / "none.parquet")
    assert back.pregrasp is None and back.squeeze is None


def test_row_operations_carry_the_triple():
    table = with_some_triple(make_table())
    order = table.sort_order()
    np.testing.assert_array_equal(table.sorted().squeeze, table.squeeze[order])
    np.testing.assert_array_equal(table.select(np.array([4, 0])).pregrasp, table.pregrasp[[4, 0]])
    both = GraspTable.concat([table, make_table(2, seed=1)])
    np.testing.assert_array_equal(both.pregrasp[:5], table.pregrasp)
    assert np.isnan(both.pregrasp[5:]).all() and np.isnan(both.squeeze[5:]).all()
    assert GraspTable.concat([make_table(), make_table(2)]).pregrasp is None
    assert table.with_triple(None, None).pregrasp is None
    with pytest.raises(GraspTableError, match="pregrasp"):
        table.with_triple(table.pregrasp[:, :21], table.squeeze)
    with pytest.raises(GraspTableError, match="squeeze"):
        table.with_triple(table.pregrasp, None)
    with pytest.raises(GraspTableError, match="same rows"):
        table.with_triple(table.pregrasp, table.joints)


def test_schema_version_1_table_still_reads(tmp_path):
    path = tmp_path / "g.parquet"
    write_grasps(path, make_table())
    arrow = pq.read_table(path)
    meta = json.loads(arrow.schema.metadata[b"dexlite"])

    def stamped(table, version):
        return table.replace_schema_metadata({b"dexlite": json.dumps({**meta, "schema_version": version}).encode()})

    old = arrow.drop_columns(["pregrasp_joints", "squeeze_joints"])
    pq.write_table(stamped(old, "1"), path)
    back = read_grasps(path)
    assert back.pregrasp is None and back.squeeze is None
    np.testing.assert_array_equal(back.joints, make_table().sorted().joints)
    pq.write_table(stamped(arrow, "3"), path)
    with pytest.raises(GraspTableError, match="g.parquet.*schema_version.*update DexLite"):
        read_grasps(path)
    pq.write_table(stamped(old, "2"), path)  # version 2 without its columns
    with pytest.raises(GraspTableError, match="g.parquet: columns differ"):
        read_grasps(path)


@pytest.mark.parametrize("column, value", [("joints", 50.0), ("squeeze", 50.0), ("joints", np.nan),
                                           ("pregrasp", JOINT_UPPER[4] + 0.01)])
def test_joints_outside_the_limits_are_refused(tmp_path, column, value):
    table = with_some_triple(make_table()).sorted()  # row 2, a-obj grasp 2, has a triple
    values = getattr(table, column).copy()
    values[2, 4] = value
    path = tmp_path / "bad.parquet"
    write_grasps(path, replace(table, **{column: values}))
    name = {"joints": "joints", "pregrasp": "pregrasp_joints", "squeeze": "squeeze_joints"}[column]
    with pytest.raises(GraspTableError, match=rf"bad.parquet: {name} of a-obj grasp 2: {JOINT_NAMES[4]} = "):
        read_grasps(path)


def test_dexgraspnet_grasps_past_the_limits_still_read(dgn_root, tmp_path):
    """The release exceeds the joint limits by up to 0.58 rad; ingestion keeps them as released."""
    table = read_dexgraspnet_file(sorted((dgn_root / "dataset").glob("*.npy"))[0]).table
    assert ((table.joints < JOINT_LOWER - 0.1) | (table.joints > JOINT_UPPER + 0.1)).any()
    write_grasps(tmp_path / "g.parquet", table)
    np.testing.assert_array_equal(read_grasps(tmp_path / "g.parquet").joints, table.sorted().joints)
