"""Each grasp's own pre-grasp and squeeze (dexlite_core/squeeze.py): touching links pressed along the normal."""
import numpy as np
import pytest
import torch

from dexlite_core.conventions import CANONICAL_JOINTS, JOINT_LOWER, JOINT_UPPER, HandPose
from dexlite_core.energy import link_contacts
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.store import load_object_set
from dexlite_core.squeeze import PressConfig, pressed_offsets, pressed_triple

SCALE = 0.07


@pytest.fixture(scope="module")
def scene(small_objects):
    """The brick, and hands around it (canonical joints, wrists on a seeded shell) of which some links touch it."""
    hand, objects = HandModel(), load_object_set(small_objects, ["proc-box-brick"])
    g = torch.Generator().manual_seed(0)
    n = 512
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    pose = HandPose(direction * (0.05 + 0.05 * torch.rand(n, 1, generator=g)), torch.eye(3).repeat(n, 1, 1),
                    torch.tensor(CANONICAL_JOINTS, dtype=torch.float32).repeat(n, 1))
    obj, scale = torch.zeros(n, dtype=torch.long), torch.full((n,), SCALE)
    return hand, objects, pose, obj, scale


def surface_distance(hand, objects, pose, obj, scale, index):
    """Signed distance of the contact candidates ``index`` (B, L) at ``pose``."""
    index = index.clamp(max=hand.n_contact_candidates - 1)  # links without candidates: any, unused
    points = hand.link_frames(pose).apply(hand.contact_link[index], hand.contact_local[index])
    b, links, _ = points.shape
    return objects.signed_distance(points.reshape(-1, 3), obj.repeat_interleave(links),
                                   scale.repeat_interleave(links)).view(b, links)


def test_squeeze_presses_touching_links_in_and_pregrasp_backs_them_off(scene):
    hand, objects, pose, obj, scale = scene
    index, signed = link_contacts(hand, objects, pose, obj, scale)
    touching = (signed <= PressConfig().reach) & (signed > -0.003)
    rows = touching.any(1)
    assert 20 < rows.sum() < len(pose)  # the shell holds both kinds
    dq = pressed_offsets(hand, objects, pose, obj, scale)
    step = 0.1  # a small part of the offset: the motion is first order
    for sign, closer in ((1, True), (-1, False)):
        moved = HandPose(pose.wrist_pos, pose.wrist_rot, pose.joints + sign * step * dq)
        after = surface_distance(hand, objects, moved, obj, scale, index)
        change = (after - signed)[touching]
        assert ((change < 0) if closer else (change > 0)).float().mean() > 0.9
    assert (dq[~rows] == 0).all()  # nothing touches: nothing is pressed


def test_the_offset_is_force_over_gain_and_the_triple_respects_the_limits(scene):
    hand, objects, pose, obj, scale = scene
    base = pressed_offsets(hand, objects, pose, obj, scale, PressConfig(force=10.0, kp=5.0))
    torch.testing.assert_close(pressed_offsets(hand, objects, pose, obj, scale, PressConfig(force=20.0, kp=5.0)), 2 * base)
    torch.testing.assert_close(pressed_offsets(hand, objects, pose, obj, scale, PressConfig(force=10.0, kp=10.0)), base / 2)
    assert (pressed_offsets(hand, objects, pose, obj, scale, PressConfig(force=0.0)) == 0).all()
    pre, squeeze = pressed_triple(hand, objects, pose, obj, scale, batch=100)
    lower, upper = torch.as_tensor(JOINT_LOWER), torch.as_tensor(JOINT_UPPER)
    for joints in (pre, squeeze):
        assert joints.shape == pose.joints.shape and (joints >= lower).all() and (joints <= upper).all()
    expected = torch.clamp(pose.joints + base, lower, upper)
    torch.testing.assert_close(squeeze, expected)
    assert not np.shares_memory(pre.numpy(), pose.joints.numpy())
