import pytest
import torch

from dexlite_core.conventions import CANONICAL_JOINTS, HandPose, random_rotations
from dexlite_core.hand.model import CONTACT_LINKS, FINGERTIP_LINKS


def canonical_pose(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    joints = torch.tensor(CANONICAL_JOINTS).expand(n, 22) + 0.2 * torch.randn(n, 22, generator=g)
    return HandPose(0.05 * torch.randn(n, 3, generator=g), random_rotations(n, g), joints)


def test_contact_candidates_lie_on_the_palmar_surface(hand):
    pose = canonical_pose(8)
    frames = hand.link_frames(pose)
    points = hand.all_contact_candidates(frames)
    assert {hand.link_names[i] for i in hand.contact_link.tolist()} == set(CONTACT_LINKS)
    idx = torch.arange(hand.n_contact_candidates).expand(8, -1)
    _, normals = hand.contact_points(frames, idx)
    # Measured against each candidate's own phalanx capsule: on its surface, normals outward.
    prim = torch.tensor([hand._capsule_of(hand.link_names[i]) for i in hand.contact_link.tolist()])
    rot, pos = hand.primitive_frames(frames)
    def own_depth(p):
        return hand.primitive_depth(rot[:, prim].reshape(-1, 3, 3), pos[:, prim].reshape(-1, 3),
                                    prim.repeat(8), p.reshape(-1, 1, 3)).view(8, -1)
    assert own_depth(points).abs().max() < 1e-6
    assert (own_depth(points + 1e-3 * normals) < 0).all()
    palmar = torch.tensor([0.0, -1.0, 0.0])  # fingers flex towards -y of their links
    finger = torch.tensor([not hand.link_names[i].startswith("robot0:th") for i in hand.contact_link.tolist()])
    assert (hand.contact_normal_local[finger] @ palmar > -1e-6).all()  # none on the back of a finger


def test_fingertips_carry_extra_candidates(hand):
    counts = {name: int((hand.contact_link == hand.link_index(name)).sum()) for name in CONTACT_LINKS}
    assert all(counts[t] > counts[CONTACT_LINKS[0]] for t in FINGERTIP_LINKS)


def test_keypoint_pairs_skip_neighbouring_links(hand):
    assert hand.keypoint_local.shape == (19, 3)
    pose = HandPose(torch.zeros(1, 3), torch.eye(3)[None], torch.zeros(1, 22))
    assert hand.self_penetration(hand.link_frames(pose)).item() == 0.0  # open flat hand
    closed = pose.joints.clone()
    closed[0, 0], closed[0, 4] = 0.349, -0.349  # FF and MF abducted towards each other
    assert hand.self_penetration(hand.link_frames(HandPose(pose.wrist_pos, pose.wrist_rot, closed))).item() > 0


def test_sparse_penetration_equals_dense(hand, small_objects):
    from dexlite_core.objects.store import load_object_set

    objects = load_object_set(small_objects)
    n = 64
    pose = canonical_pose(n, seed=2)
    obj = torch.arange(n) % len(objects)
    scale = torch.full((n,), 0.08)
    frames = hand.link_frames(pose)
    dense = hand.signed_distance(frames, objects.surface(obj, scale)[0]).clamp(min=0)
    args = (frames, objects.chunked_points, objects.chunk_centers, objects.chunk_radii, obj, scale)
    assert dense.sum() > 0  # the random poses do penetrate
    torch.testing.assert_close(hand.penetration(*args), dense.sum(-1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(hand.penetration(*args, reduce="max"), dense.max(-1).values, atol=1e-7, rtol=1e-6)
