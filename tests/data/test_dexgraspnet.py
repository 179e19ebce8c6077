import os
import pickle

import numpy as np
import pytest
import torch

from dexlite_core.conventions import DGN_QPOS_KEYS
from dexlite_core.data.dexgraspnet import DexGraspNetError, load_records, read_dexgraspnet_file, write_dexgraspnet


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def save_object_array(path, records):
    np.save(path, np.array(records, dtype=object), allow_pickle=True)


def valid_record(**overrides):
    qpos = {k: 0.1 for k in DGN_QPOS_KEYS}
    qpos.update(overrides)
    return {"qpos": qpos, "scale": 0.08}


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "core-evil.npy"
    save_object_array(path, [valid_record(), {"qpos": Exploit(marker), "scale": 0.1}])
    with pytest.raises(DexGraspNetError, match="core-evil.npy.*refused to unpickle.*system"):
        load_records(path)
    assert not marker.exists()


def test_non_plain_objects_are_refused(tmp_path):
    path = tmp_path / "sets.npy"
    save_object_array(path, [{"qpos": {1, 2}, "scale": 0.1}])  # a set needs no global but is not plain data
    with pytest.raises(DexGraspNetError, match="sets.npy"):
        load_records(path)
    raw = tmp_path / "raw.npy"
    raw.write_bytes(b"\x93NUMPY" + b"\x00" * 20)
    with pytest.raises(DexGraspNetError, match="raw.npy"):
        load_records(raw)


def test_bad_records_become_rejects(tmp_path):
    path = tmp_path / "obj.npy"
    missing = valid_record()
    del missing["qpos"]["robot0:THJ0"]
    save_object_array(path, [valid_record(), valid_record(**{"robot0:FFJ1": float("nan")}), missing,
                             valid_record(**{"robot0:EXTRA": 0.0})])
    result = read_dexgraspnet_file(path)
    assert len(result.table) == 1 and list(result.table.grasp_id) == [0]
    reasons = " ".join(r["reason"] for r in result.rejects)
    assert len(result.rejects) == 3 and "non-finite" in reasons and "THJ0" in reasons and "EXTRA" in reasons


def test_sample_ingests_to_the_raw_poses_and_round_trips(dgn_root, tmp_path):
    from dexlite_core.conventions import qpos_to_pose

    for path in sorted((dgn_root / "dataset").glob("*.npy")):
        result = read_dexgraspnet_file(path)
        raw = np.load(path, allow_pickle=True)  # trusted here: the reference we compare against
        assert len(result.table) == len(raw) and not result.rejects
        for i in (0, len(raw) // 2, len(raw) - 1):
            expected = qpos_to_pose(raw[i]["qpos"])
            row = result.table.select(np.array([i]))
            pose = row.poses(dtype=torch.float64)
            np.testing.assert_allclose(pose.wrist_pos.numpy(), expected.wrist_pos.numpy(), atol=1e-7)
            np.testing.assert_allclose(pose.wrist_rot.numpy(), expected.wrist_rot.numpy(), atol=1e-6)
            np.testing.assert_allclose(pose.joints.numpy(), expected.joints.numpy(), atol=1e-7)
            assert row.scale[0] == np.float32(raw[i]["scale"])
        write_dexgraspnet(result.table, tmp_path)
        again = read_dexgraspnet_file(tmp_path / path.name).table
        for name in ("scale", "grasp_id", "wrist_pos", "wrist_quat", "joints"):
            np.testing.assert_array_equal(getattr(again, name), getattr(result.table, name))
