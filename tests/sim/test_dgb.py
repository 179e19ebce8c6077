"""The DexGraspBench-like test (sim.dgb): its scene carries DexGraspBench's physics, its protocol runs on a tiny table."""
import mujoco
import numpy as np
import pytest
import trimesh

from dexlite_core.conventions import JOINT_LOWER, JOINT_UPPER
from dexlite_core.data.grasps import GraspTable
from dexlite_core.params import build, load_params
from dexlite_core.parallel import ParallelConfig
from dexlite_core.sim.dgb import DgbSimulator, DgbTestConfig, PregraspSqueeze, replay_joints
from dexlite_core.sim.runner import SimConfig, simulate

from conftest import REPO

BOX = trimesh.creation.box((1.0, 1.0, 1.0))  # unit size, scaled by the test
IDENTITY = np.array([1.0, 0, 0, 0])


@pytest.fixture(scope="module")
def box_sim() -> DgbSimulator:
    return DgbSimulator([BOX], BOX, 0.05, DgbTestConfig())


def test_params_yaml_holds_dexgraspbench_values():
    config = build(SimConfig, load_params(REPO / "params.yaml")["sim"], "sim").dgb
    assert config == DgbTestConfig()  # the dataclass defaults are DexGraspBench's (main @1e7a5a6)
    assert (config.friction, config.object_mass, config.actuator_kp, config.actuator_force) == (0.6, 0.1, 5.0, 3.0)
    assert (config.push_accel * config.object_mass, config.push_time, config.max_displacement,
            config.max_rotation_deg, config.max_penetration) == (1.0, 2.0, 0.05, 15.0, 0.01)


def test_scene_has_dexgraspbench_physics(box_sim):
    m = box_sim.model
    assert m.opt.timestep == 0.004 and not m.opt.gravity.any() and m.opt.noslip_iterations == 2
    assert m.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC and m.opt.impratio == 10
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    assert np.allclose(m.geom_friction[:, :2], [0.6, 0.02]) and (m.geom_condim == 4).all()
    assert abs(m.body_mass[box_sim.obj] - 0.1) < 1e-9
    hinges = m.jnt_type == mujoco.mjtJoint.mjJNT_HINGE
    assert np.allclose(m.dof_damping[m.jnt_dofadr[hinges]], 0.05) and np.allclose(m.dof_frictionloss[m.jnt_dofadr[hinges]], 0.01)
    assert m.nu == 18 and np.allclose(m.actuator_gainprm[:, 0], 5) and np.allclose(m.actuator_forcerange, [-3, 3])
    assert not m.actuator_ctrllimited.any()
    tendon_acts = np.flatnonzero(m.actuator_trntype == mujoco.mjtTrn.mjTRN_TENDON)
    assert len(tendon_acts) == 4  # J1 + J0 of FF, MF, RF, LF driven as a sum, as Menagerie's hand
    for a in tendon_acts:
        assert box_sim.ctrl_matrix[a].sum() == 2


def test_a_grasp_that_misses_fails_and_deep_penetration_is_refused(box_sim):
    joints = (JOINT_LOWER + JOINT_UPPER) / 2
    pre, squeeze = PregraspSqueeze().joints(joints)
    away = box_sim.dgb(np.array([0.0, 0.5, 0.0]), IDENTITY, joints, pre, squeeze)  # the hand 0.5 m from the box
    assert not away.success and away.reason == "held_0_of_6" and away.obj_disp >= 0.05
    inside = box_sim.dgb(np.zeros(3), IDENTITY, joints, pre, squeeze)  # the palm in the box's middle
    assert not inside.success and inside.reason == "penetration" and inside.penetration > 0.01


def test_runs_on_a_tiny_table_through_the_runner(small_objects):
    """Three grasps on a catalog object, the DexGraspBench-like test alone, on the process pool."""
    n = 3
    joints = np.tile((JOINT_LOWER + JOINT_UPPER) / 2, (n, 1))
    table = GraspTable(object_code=np.array(["proc-box-brick"] * n, dtype=object),
                       scale=np.full(n, 0.07, np.float32), grasp_id=np.arange(n),
                       source=np.array(["optimize"] * n, dtype=object),
                       wrist_pos=np.array([[0, 0.3, 0], [0, 0.06, -0.06], [0, 0, 0]], np.float32),
                       wrist_quat=np.tile(IDENTITY, (n, 1)).astype(np.float32),
                       joints=joints.astype(np.float32), energies=np.zeros((n, 5), np.float32))
    run = simulate(table, small_objects, SimConfig(tests=("dgb",), parallel=ParallelConfig(n_workers=2), chunk=2),
                   desc=None)
    assert run.passed["dgb"].dtype == bool and run.passed["dgb"].shape == (n,)
    assert not run.passed["dgb"][0] and run.table.sim.fail_reason[0] == "dgb:held_0_of_6"
    assert run.table.sim.fail_reason[2] == "dgb:penetration"  # the palm at the brick's centre


def test_replay_uses_each_grasps_own_pregrasp_and_squeeze_and_the_fixed_stages_elsewhere():
    n = 3
    joints = np.tile((JOINT_LOWER + JOINT_UPPER) / 2, (n, 1)).astype(np.float32)
    table = GraspTable(object_code=np.array(["a"] * n, dtype=object), scale=np.full(n, 0.07, np.float32),
                       grasp_id=np.arange(n), source=np.array(["optimize"] * n, dtype=object),
                       wrist_pos=np.zeros((n, 3), np.float32), wrist_quat=np.tile(IDENTITY, (n, 1)).astype(np.float32),
                       joints=joints, energies=np.zeros((n, 5), np.float32))
    stages = PregraspSqueeze()
    fixed = stages.joints(joints.astype(np.float64))
    assert all(np.array_equal(a, b) for a, b in zip(replay_joints(table, stages), fixed))  # a table without triples
    own_pre, own_squeeze = joints - 0.01, joints + 0.02
    own_pre[1], own_squeeze[1] = np.nan, np.nan  # row 1 has none
    pre, squeeze = replay_joints(table.with_triple(own_pre, own_squeeze), stages)
    np.testing.assert_allclose(pre[[0, 2]], own_pre[[0, 2]])
    np.testing.assert_allclose(pre[1], fixed[0][1])
    np.testing.assert_allclose(squeeze[[0, 2]], own_squeeze[[0, 2]])
    np.testing.assert_allclose(squeeze[1], fixed[1][1])
