from dataclasses import replace

import numpy as np
import pytest
import torch

from dexlite_core.conventions import JOINT_LOWER, JOINT_SLICE, JOINT_UPPER
from dexlite_core.optimize.anneal import AnnealConfig, EnergyThresholds, PruneStage, anneal
from dexlite_core.optimize.init import InitConfig, hull_starts, initial_contacts, initial_poses
from dexlite_core.optimize.problem import GraspProblem, GroupRandom
from dexlite_core.objects.store import load_object_set

N = 24  #: attempts per group
GROUPS = (("proc-box-brick", 0.07), ("pyb-duck", 0.09))
#: The tiny pipeline's generous thresholds: some attempts pass within a few dozen steps.
GENEROUS = EnergyThresholds(fc=3.0, dis=0.03, pen=0.03, spen=0.02, joints=0.05)


@pytest.fixture(scope="module")
def start(hand, small_objects):
    """Two (object, scale) groups as the seed optimizer starts them: problem, poses, contacts, seeds."""
    objects = load_object_set(small_objects)
    starts, normals = zip(*(hull_starts(objects.points[objects.index_of([code])[0]].numpy() * scale, N, i)
                            for i, (code, scale) in enumerate(GROUPS)))
    seeds = [11, 12]
    pose = initial_poses(torch.tensor(np.concatenate(starts), dtype=torch.float32),
                         torch.tensor(np.concatenate(normals), dtype=torch.float32),
                         GroupRandom(seeds, [N, N], "cpu"), InitConfig(), couple=True)
    contacts = initial_contacts(GroupRandom([21, 22], [N, N], "cpu"), hand.n_contact_candidates, 4)
    problem = GraspProblem(hand, objects, objects.index_of([c for c, _ in GROUPS]).repeat_interleave(N),
                           torch.tensor([s for _, s in GROUPS]).repeat_interleave(N))
    return problem, pose, contacts, seeds


def run(start, config):
    problem, pose, contacts, seeds = start
    return anneal(problem, pose, contacts, config, GroupRandom(seeds, [N, N], "cpu"))


def assert_same(a, b):
    for x, y in ((a.pose, b.pose), (a.contacts, b.contacts), (a.accepted, b.accepted), (a.terms.fc, b.terms.fc)):
        assert torch.equal(x, y)


def test_a_prune_stage_that_stops_nothing_changes_nothing(start):
    config = AnnealConfig(steps=40, thresholds=GENEROUS)
    assert_same(run(start, config), run(start, replace(config, prune=(PruneStage(after=10, energy=1e9),))))


def test_pruned_attempts_leave_and_the_rest_map_back_to_their_rows(start):
    problem, *_ = start
    config = AnnealConfig(steps=40, thresholds=GENEROUS)
    full = run(start, config)
    pruned = run(start, replace(config, prune=(PruneStage(after=10, energy=8.0),)))
    assert not full.pruned.any() and 0 < pruned.pruned.sum() < len(pruned.pruned)
    assert pruned.pose.shape == full.pose.shape and torch.isfinite(pruned.pose).all()
    # Each accepted row is a grasp of its own object and scale, re-scored from scratch.
    accepted = pruned.accepted
    assert accepted.any()
    own = replace(problem, obj=problem.obj[accepted], scale=problem.scale[accepted])
    assert GENEROUS.passes(own.energy(pruned.pose[accepted], pruned.contacts[accepted])).all()


def test_attempts_stopped_at_the_first_step_come_back_finalized_and_rejected(start):
    strict = AnnealConfig(steps=40, prune=(PruneStage(after=1, energy=1e-6),))
    result = run(start, strict)
    assert not result.accepted.any() and result.pruned.all()
    joints = result.pose[:, JOINT_SLICE]
    assert (joints >= torch.tensor(JOINT_LOWER)).all() and (joints <= torch.tensor(JOINT_UPPER)).all()


def test_group_random_keeps_each_groups_stream_for_its_remaining_rows():
    rng = GroupRandom([1, 2], [3, 2], "cpu")
    rng.rand()
    kept = rng.select(torch.tensor([True, False, True, False, False]))
    assert kept.sizes == [2, 0]
    first = torch.Generator().manual_seed(1)
    torch.rand(3, generator=first)  # the draw before the selection
    assert torch.equal(kept.rand(), torch.rand(2, generator=first))


@pytest.mark.parametrize("stages", [(PruneStage(50, 8.0), PruneStage(50, 4.0)), (PruneStage(60, 8.0), PruneStage(50, 4.0))])
def test_prune_stages_must_come_in_order(stages):
    with pytest.raises(ValueError, match="increasing order"):
        AnnealConfig(prune=stages)


def test_a_prune_stage_needs_a_step_and_a_positive_energy():
    with pytest.raises(ValueError):
        PruneStage(after=0, energy=8.0)
    with pytest.raises(ValueError):
        PruneStage(after=50, energy=0.0)
