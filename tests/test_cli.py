import mujoco

from dexlite_core.cli import main


def test_export_hand(tmp_path, capsys):
    assert main(["export-hand", str(tmp_path)]) == 0
    assert "shadow_hand.xml" in capsys.readouterr().out
    assert mujoco.MjModel.from_xml_path(str(tmp_path / "shadow_hand.xml")).nu == 18
    assert (tmp_path / "shadow_hand.urdf").exists() and (tmp_path / "LICENSE.md").exists()
