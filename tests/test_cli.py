import pytest
import mujoco

from dexlite_core.cli import main


def test_export_hand(tmp_path, capsys):
    assert main(["export-hand", str(tmp_path)]) == 0
    assert "shadow_hand.xml" in capsys.readouterr().out
    assert mujoco.MjModel.from_xml_path(str(tmp_path / "shadow_hand.xml")).nu == 18
    assert (tmp_path / "shadow_hand.urdf").exists() and (tmp_path / "LICENSE.md").exists()


def test_export_dexgraspbench(small_objects, tmp_path, capsys):
    import numpy as np
    import torch

    from dexlite_core.conventions import CANONICAL_JOINTS, HandPose
    from dexlite_core.data.grasps import GraspTable, write_grasps
    from dexlite_core.sim.dexgraspbench import from_menagerie, read_grasp_file

    pose = HandPose(torch.tensor([[0.0, -0.1, 0.0]] * 2), torch.eye(3).repeat(2, 1, 1),
                    torch.tensor(CANONICAL_JOINTS).repeat(2, 1))
    table = GraspTable.from_poses(["pyb-duck"] * 2, [0.08] * 2, [0, 1], "postopt", pose)
    write_grasps(tmp_path / "t.parquet", table)
    params = tmp_path / "params.yaml"
    params.write_text("sim:\n  dgb:\n    stages:\n      pregrasp_open: 0.1\n      squeeze: 0.2\n")
    out = tmp_path / "dgb"
    assert main(["export", str(tmp_path / "t.parquet"), "--format", "dexgraspbench", "-o", str(out),
                 "--objects", str(small_objects), "--params", str(params)]) == 0
    assert "wrote 2 grasp files and 1 objects" in capsys.readouterr().out
    record = read_grasp_file(out / "graspdata" / "pyb-duck" / "scale080" / "1.npy")
    np.testing.assert_allclose(from_menagerie(record["grasp_qpos"][None])[0][0], [0, -0.1, 0], atol=1e-7)
    ffj2 = 1  # FFJ2 closes positively: opened 0.1 for the pre-grasp, closed 0.2 more for the squeeze
    assert from_menagerie(record["pregrasp_qpos"][None])[2][0, ffj2] == 0.0  # clipped at its lower limit
    assert from_menagerie(record["squeeze_qpos"][None])[2][0, ffj2] == pytest.approx(0.2)
    assert main(["export", str(tmp_path / "t.parquet"), "--format", "dexgraspbench", "-o", str(out),
                 "--objects", str(tmp_path / "none")]) == 1
    assert "decomposed.obj is missing" in capsys.readouterr().err
