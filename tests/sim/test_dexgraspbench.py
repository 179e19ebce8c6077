import os
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch

from dexlite_core.conventions import CANONICAL_JOINTS, JOINT_LOWER, JOINT_UPPER, matrix_to_quat, random_rotations
from dexlite_core.data.grasps import GraspTable
from dexlite_core.sim.dexgraspbench import (GRASP_KEYS, MENAGERIE_JOINT_NAMES, QPOS_DIM, ExportError,
                                             export_dexgraspbench, from_menagerie, grasp_path, link_residuals,
                                             menagerie_kinematics, read_grasp_file, read_info, to_menagerie)
from dexlite_core.sim.dgb import PregraspSqueeze

REPO = Path(__file__).resolve().parents[2]
SMALL_CATALOG = ("proc-box-brick", "proc-cyl-can", "pyb-duck")  # conftest's small_objects
#: DexGraspBench's Shadow Hand (Menagerie's, modified); meshes are not needed for kinematics.
DGB_ROOT = Path(os.environ.get("DEXLITE_DGB_ROOT", REPO.parent / "shared" / "DexGraspBench"))
DGB_HAND = DGB_ROOT / "assets" / "hand" / "shadow" / "right_hand.xml"


def random_grasps(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    joints = rng.uniform(JOINT_LOWER, JOINT_UPPER, (n, 22))
    quat = matrix_to_quat(random_rotations(n, torch.Generator().manual_seed(seed), torch.float64)).numpy()
    return rng.uniform(-0.2, 0.2, (n, 3)), quat, joints


def table_for(codes, per_object: int = 3) -> GraspTable:
    n = len(codes) * per_object
    pos, quat, joints = random_grasps(n)
    joints = np.clip(CANONICAL_JOINTS + 0.3 * (joints - joints.mean(0)), JOINT_LOWER, JOINT_UPPER)
    return GraspTable(
        object_code=np.repeat(np.array(codes, dtype=object), per_object), scale=np.full(n, 0.08, np.float32),
        grasp_id=np.tile(np.arange(per_object), len(codes)).astype(np.int64), source=np.full(n, "postopt", dtype=object),
        wrist_pos=pos.astype(np.float32), wrist_quat=quat.astype(np.float32), joints=joints.astype(np.float32),
        energies=np.full((n, 5), np.nan, np.float32))


def test_mapping_round_trips_exactly():
    pos, quat, joints = random_grasps(200)
    qpos = to_menagerie(pos, quat, joints)
    assert qpos.shape == (200, QPOS_DIM) and qpos.dtype == np.float64
    back = from_menagerie(qpos)
    np.testing.assert_allclose(back[0], pos, atol=1e-12)
    np.testing.assert_allclose(back[1], quat, atol=1e-12)
    np.testing.assert_array_equal(back[2], joints)
    # The palm origin is 3.4 cm up the root's z; the quaternion is kept.
    np.testing.assert_allclose(np.linalg.norm(qpos[:, :3] - pos, axis=1), 0.034)
    np.testing.assert_allclose(qpos[:, 3:7], quat, atol=1e-12)
    assert MENAGERIE_JOINT_NAMES[:4] == ("rh_FFJ4", "rh_FFJ3", "rh_FFJ2", "rh_FFJ1")
    assert MENAGERIE_JOINT_NAMES[12] == "rh_LFJ5" and MENAGERIE_JOINT_NAMES[-1] == "rh_THJ1"


def test_export_writes_what_dexgraspbench_reads(small_objects, tmp_path):
    table = table_for(list(SMALL_CATALOG))
    stages = PregraspSqueeze(pregrasp_open=0.05, squeeze=0.075)
    summary = export_dexgraspbench(table, small_objects, tmp_path, stages)
    assert (summary.grasp_files, summary.objects) == (len(table), len(SMALL_CATALOG))
    pre, squeeze = stages.joints(table.joints.astype(np.float64))
    for i in range(len(table)):
        path = grasp_path(tmp_path, table.object_code[i], table.scale[i], table.grasp_id[i])
        raw = np.load(path, allow_pickle=True).item()  # exactly how DexGraspBench loads it
        assert set(GRASP_KEYS) <= set(raw)
        record = read_grasp_file(path)
        assert record["obj_scale"] == pytest.approx(0.08)
        np.testing.assert_array_equal(record["obj_pose"], [0, 0, 0, 1, 0, 0, 0])
        pos, quat, joints = from_menagerie(record["grasp_qpos"][None])
        np.testing.assert_allclose(pos[0], table.wrist_pos[i], atol=1e-6)
        np.testing.assert_allclose(quat[0], table.wrist_quat[i], atol=1e-6)
        np.testing.assert_allclose(joints[0], table.joints[i], atol=1e-7)
        np.testing.assert_allclose(from_menagerie(record["pregrasp_qpos"][None])[2][0], pre[i], atol=1e-12)
        np.testing.assert_allclose(from_menagerie(record["squeeze_qpos"][None])[2][0], squeeze[i], atol=1e-12)
        np.testing.assert_array_equal(record["squeeze_qpos"][:7], record["grasp_qpos"][:7])  # the palm holds still
        assert Path(record["obj_path"]).is_absolute()


def test_object_assets_give_dexgraspbench_the_set_mass(small_objects, tmp_path):
    """DexGraspBench derives the density from info/simplified.json and loads every file of
    urdf/meshes at obj_scale: the object must come out at its 0.1 kg."""
    export_dexgraspbench(table_for(["pyb-duck"], 1), small_objects, tmp_path)
    folder = tmp_path / "object" / "pyb-duck"
    info, scale = read_info(folder), 0.08
    density = 0.1 / (info["mass"] / (info["density"] * info["scale"] ** 3) * scale ** 3)
    pieces = sorted((folder / "urdf" / "meshes").iterdir())
    assert pieces and all(p.name.startswith("convex_piece_") and p.suffix == ".obj" for p in pieces)
    assets = "".join(f'<mesh name="p{i}" file="{p}" scale="{scale} {scale} {scale}"/>' for i, p in enumerate(pieces))
    geoms = "".join(f'<geom type="mesh" mesh="p{i}" density="{density}"/>' for i in range(len(pieces)))
    model = mujoco.MjModel.from_xml_string(
        f'<mujoco><asset>{assets}</asset><worldbody><body><freejoint/>{geoms}</body></worldbody></mujoco>')
    assert model.body_mass[1] == pytest.approx(0.1, rel=1e-3)
    assert (folder / "mesh" / "simplified.obj").exists()


def test_export_errors_name_the_file_and_fix(small_objects, tmp_path):
    with pytest.raises(ExportError, match="nowhere/proc-box-brick/decomposed.obj.*dvc repro objects"):
        export_dexgraspbench(table_for(["proc-box-brick"]), tmp_path / "nowhere", tmp_path / "out")
    table = table_for(["proc-box-brick"])
    twice = GraspTable.concat([table, table])
    with pytest.raises(ExportError, match="same \\(object_code, scale, grasp_id\\)"):
        export_dexgraspbench(twice, small_objects, tmp_path / "out")
    bad = tmp_path / "bad.npy"
    np.save(bad, {"grasp_qpos": np.zeros(3)}, allow_pickle=True)
    with pytest.raises(ExportError, match="bad.npy.*lacks"):
        read_grasp_file(bad)


@pytest.mark.skipif(not DGB_HAND.exists(), reason=f"DexGraspBench's Shadow Hand not at {DGB_HAND} "
                                                  "(set DEXLITE_DGB_ROOT to a checkout)")
def test_exported_poses_reproduce_our_links_on_menagerie_hand(small_objects, tmp_path):
    table = table_for(list(SMALL_CATALOG), per_object=4)
    export_dexgraspbench(table, small_objects, tmp_path)
    menagerie = menagerie_kinematics(DGB_HAND)
    stages = PregraspSqueeze()
    for name, joints in zip(("pregrasp_qpos", "grasp_qpos", "squeeze_qpos"),
                            (stages.joints(table.joints.astype(np.float64))[0], table.joints,
                             stages.joints(table.joints.astype(np.float64))[1])):
        qpos = np.stack([read_grasp_file(grasp_path(tmp_path, table.object_code[i], table.scale[i],
                                                    table.grasp_id[i]))[name] for i in range(len(table))])
        _, residual = link_residuals(menagerie, qpos, table.wrist_pos, table.wrist_quat, joints)
        assert residual.max() < 0.002, name
    # Without the mapping the same files would be centimetres off.
    plain = np.concatenate([table.wrist_pos, table.wrist_quat, table.joints], axis=1)
    assert link_residuals(menagerie, plain, table.wrist_pos, table.wrist_quat, table.joints)[1].max() > 0.02


def test_export_writes_each_grasps_own_pregrasp_and_squeeze(small_objects, tmp_path):
    """Rows with their own triple are exported with it; rows without fall back to the fixed stages."""
    table = table_for(["pyb-duck"], per_object=4)
    pre, squeeze = np.full((4, 22), np.nan, np.float32), np.full((4, 22), np.nan, np.float32)
    pre[:2] = np.clip(table.joints[:2] - 0.02, JOINT_LOWER, JOINT_UPPER)
    squeeze[:2] = np.clip(table.joints[:2] + 0.03, JOINT_LOWER, JOINT_UPPER)
    stages = PregraspSqueeze(pregrasp_open=0.05, squeeze=0.075)
    export_dexgraspbench(table.with_triple(pre, squeeze), small_objects, tmp_path, stages)
    fixed_pre, fixed_squeeze = stages.joints(table.joints.astype(np.float64))
    for i in range(4):
        record = read_grasp_file(grasp_path(tmp_path, "pyb-duck", table.scale[i], table.grasp_id[i]))
        own = i < 2
        np.testing.assert_allclose(from_menagerie(record["pregrasp_qpos"][None])[2][0],
                                   pre[i] if own else fixed_pre[i], atol=1e-6)
        np.testing.assert_allclose(from_menagerie(record["squeeze_qpos"][None])[2][0],
                                   squeeze[i] if own else fixed_squeeze[i], atol=1e-6)
