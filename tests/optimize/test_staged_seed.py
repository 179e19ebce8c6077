"""The staged QP seed optimizer (optimize/staged.py) on a tiny run."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from dexlite_core.conventions import JOINT_LOWER, JOINT_UPPER, HandPose
from dexlite_core.energy import link_contacts
from dexlite_core.hand.model import FINGERTIP_LINKS, HandModel
from dexlite_core.objects.store import load_object_set
from dexlite_core.optimize.staged import (StagedConfig, StagedSchedule, StagedThresholds, staged_post_optimize,
                                          staged_seed_grasps)

GROUPS = [("proc-box-brick", 0.07), ("pyb-duck", 0.09)]
TINY = StagedConfig(n_per_object=24, device="cpu",
                    schedule=StagedSchedule(qp_steps=60, pregrasp_steps=20, grasp_steps=20),
                    thresholds=StagedThresholds(qp=0.05, contact_distance=0.005, pen=0.003, spen=0.003))


@pytest.fixture(scope="module")
def objects(small_objects):
    return load_object_set(small_objects)


@pytest.fixture(scope="module")
def result(hand, objects):
    return staged_seed_grasps(hand, objects, GROUPS, TINY)


def surface_distance(hand, objects, table, joints):
    """(N,) mean |d| of the fingertip contacts' nearest candidates with the grasps' wrists and ``joints``."""
    pose = table.poses()
    pose = HandPose(pose.wrist_pos, pose.wrist_rot, torch.as_tensor(joints, dtype=torch.float32))
    _, signed = link_contacts(hand, objects, pose, objects.index_of(list(table.object_code)),
                              torch.as_tensor(table.scale))
    return signed[:, [hand.link_index(n) for n in FINGERTIP_LINKS]].abs().mean(1).numpy()


def test_accepts_grasps_with_finite_triples_in_limits(result):
    table = result.accepted
    assert result.attempts == 48 and 0 < len(table) <= 48
    assert set(table.source) == {"optimize"} and set(table.object_code) <= {c for c, _ in GROUPS}
    for joints in (table.joints, table.pregrasp, table.squeeze):
        assert np.isfinite(joints).all()
        assert (joints >= np.array(JOINT_LOWER) - 1e-5).all() and (joints <= np.array(JOINT_UPPER) + 1e-5).all()
    assert np.isfinite(table.energies).all()
    assert set(result.stage_seconds) == {"init", "qp", "pregrasp", "grasp", "finish"}


def test_pregrasp_is_farther_from_the_surface(hand, objects, result):
    table = result.accepted
    pre = surface_distance(hand, objects, table, table.pregrasp)
    grasp = surface_distance(hand, objects, table, table.joints)
    assert (pre > grasp).all()
    assert np.median(pre - grasp) > 0.003  # about the 1 cm stand-off


def test_same_seed_same_table(hand, objects, result):
    again = staged_seed_grasps(hand, objects, GROUPS, TINY).accepted
    for name in ("object_code", "grasp_id", "wrist_pos", "wrist_quat", "joints", "pregrasp", "squeeze"):
        assert np.array_equal(getattr(again, name), getattr(result.accepted, name)), name


def test_pressed_squeeze_replaces_the_triple(hand, objects, result):
    pressed = staged_seed_grasps(hand, objects, GROUPS, replace(TINY, schedule=replace(TINY.schedule, squeeze="pressed"))).accepted
    assert np.array_equal(pressed.joints, result.accepted.joints)
    assert not np.array_equal(pressed.squeeze, result.accepted.squeeze)


def test_pruning_after_the_qp_stage_leaves_the_other_grasps_as_they_are(hand, objects, result):
    unpruned = staged_seed_grasps(hand, objects, GROUPS, replace(TINY, prune_qp=float("inf"))).accepted
    key = lambda t: list(zip(t.object_code, t.grasp_id))  # noqa: E731
    assert set(key(result.accepted)) <= set(key(unpruned))
    rows = np.isin(unpruned.grasp_id * 2 + (unpruned.object_code == GROUPS[1][0]),
                   result.accepted.grasp_id * 2 + (result.accepted.object_code == GROUPS[1][0]))
    assert np.array_equal(unpruned.joints[rows], result.accepted.joints)


@pytest.mark.parametrize("bad", [dict(n_per_object=0), dict(prune_qp=0.0), dict(n_per_object=64, batch_size=32)])
def test_config_is_validated(bad):
    with pytest.raises(ValueError):
        StagedConfig(**bad)


@pytest.mark.parametrize("bad", [dict(contacts="palm"), dict(squeeze="fixed"), dict(standoff=0.0),
                                 dict(solve_every=0), dict(contacts="nearest", n_contacts=1)])
def test_schedule_is_validated(bad):
    with pytest.raises(ValueError):
        StagedSchedule(**bad)


@pytest.mark.cuda
def test_cuda_runs_the_same_code(small_objects, result):
    objects = load_object_set(small_objects, device="cuda")
    table = staged_seed_grasps(HandModel(device="cuda"), objects, GROUPS, replace(TINY, device="cuda")).accepted
    assert len(table) > 0 and np.isfinite(table.squeeze).all()
    assert abs(len(table) - len(result.accepted)) <= max(3, len(result.accepted) // 3)  # float paths differ slightly


def test_post_optimize_closes_opened_grasps_keeping_rows_with_their_own_triples(hand, objects, result):
    """Post-optimization's path: the schedule from given poses, every row kept in order."""
    table = result.accepted
    opened = replace(table.with_triple(None, None),
                     joints=np.clip(table.joints - 0.3, JOINT_LOWER, JOINT_UPPER).astype(np.float32))
    optimized, energy = staged_post_optimize(hand, objects, opened, TINY.schedule)
    assert list(optimized.grasp_id) == list(table.grasp_id) and set(optimized.source) == {"postopt"}
    assert np.isfinite(energy).all() and len(energy) == len(table)
    assert np.isfinite(optimized.pregrasp).all() and np.isfinite(optimized.squeeze).all()
    start = surface_distance(hand, objects, opened, opened.joints)
    assert np.median(surface_distance(hand, objects, optimized, optimized.joints)) < 0.5 * np.median(start)
    again, energy_again = staged_post_optimize(hand, objects, opened, TINY.schedule)
    assert np.array_equal(again.joints, optimized.joints) and np.array_equal(energy, energy_again)
