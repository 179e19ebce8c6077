import numpy as np
import pytest
import torch

from dexlite_core.conventions import CANONICAL_JOINTS, HandPose, qpos_to_pose, random_rotations
from dexlite_core.energy import EnergyWeights, grasp_energy
from dexlite_core.hand.model import FINGERTIP_LINKS, HandModel
from dexlite_core.objects.store import load_object_set


def poses_near_objects(n, seed=0, dtype=torch.float64):
    """Palms 6-9 cm from the object centre facing it, half-closed fingers: every term active."""
    g = torch.Generator().manual_seed(seed)
    rot = random_rotations(n, g, dtype=dtype)
    palm_normal = -rot[:, :, 1]  # the palm faces -y of its frame
    pos = -palm_normal * (0.06 + 0.03 * torch.rand(n, 1, generator=g, dtype=dtype))
    joints = torch.tensor(CANONICAL_JOINTS, dtype=dtype) + 0.3 * torch.randn(n, 22, generator=g, dtype=dtype)
    return HandPose(pos, rot, joints)


@pytest.fixture(scope="module")
def double_setup(small_objects):
    return HandModel(dtype=torch.float64), load_object_set(small_objects, dtype=torch.float64)


@pytest.mark.parametrize("term", ["fc", "dis", "pen", "spen", "joints"])
def test_energy_gradients_pass_gradcheck(double_setup, term):
    hand, objects = double_setup
    n = 6
    base = poses_near_objects(n, seed=1)
    obj = torch.arange(n) % len(objects)
    scale = torch.full((n,), 0.07, dtype=torch.float64)
    contacts = torch.randint(0, hand.n_contact_candidates, (n, 4), generator=torch.Generator().manual_seed(0))
    values = getattr(grasp_energy(hand, objects, base, contacts, obj, scale), term)
    assert (values > 0).any(), f"E_{term} is zero on every test pose: the check would prove nothing"

    def energy(pos, rot6d, joints):
        pose = HandPose.from_vector(torch.cat([pos, rot6d, joints], dim=-1))
        return getattr(grasp_energy(hand, objects, pose, contacts, obj, scale), term)

    inputs = [t.detach().clone().requires_grad_() for t in torch.split(base.to_vector(), [3, 6, 22], dim=-1)]
    assert torch.autograd.gradcheck(energy, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_total_is_the_weighted_sum(double_setup):
    hand, objects = double_setup
    pose = poses_near_objects(4)
    terms = grasp_energy(hand, objects, pose, torch.zeros(4, 4, dtype=torch.long), torch.zeros(4, dtype=torch.long),
                         torch.full((4,), 0.07, dtype=torch.float64))
    expected = terms.fc + 100 * terms.dis + 100 * terms.pen + 10 * terms.spen + terms.joints
    torch.testing.assert_close(terms.total(), expected)
    with pytest.raises(ValueError, match="pen"):
        EnergyWeights(pen=-1)


def test_dexgraspnet_grasps_agree_with_hand_frames_and_sdf(hand, dgn_root, dgn_objects):
    """The real DexGraspNet grasps, through our conventions, hand and SDF: fingertips touch the
    surface, and the palm pushed 2 cm towards the object penetrates far more."""
    objects = load_object_set(dgn_objects)
    poses, obj, scale = [], [], []
    for i, code in enumerate(objects.codes):
        for g in np.load(dgn_root / "dataset" / f"{code}.npy", allow_pickle=True):
            poses.append(qpos_to_pose(g["qpos"], f"{code}.npy"))
            obj.append(i)
            scale.append(float(g["scale"]))
    pose = HandPose(*(torch.cat([getattr(p, f) for p in poses]).float() for f in ("wrist_pos", "wrist_rot", "joints")))
    obj, scale = torch.tensor(obj), torch.tensor(scale)
    assert len(pose) > 600
    frames = hand.link_frames(pose)
    cand = hand.all_contact_candidates(frames)
    b, k, _ = cand.shape
    d = objects.signed_distance(cand.reshape(-1, 3), obj.repeat_interleave(k), scale.repeat_interleave(k)).view(b, k)
    nearest = torch.stack([d[:, hand.contact_link == hand.link_index(t)].abs().min(1).values for t in FINGERTIP_LINKS], 1)
    assert nearest.median() < 0.005

    def pen(p):
        return hand.penetration(hand.link_frames(p), objects.chunked_points, objects.chunk_centers,
                                objects.chunk_radii, obj, scale)
    pushed = HandPose(pose.wrist_pos - 0.02 * pose.wrist_rot[:, :, 1], pose.wrist_rot, pose.joints)
    assert pen(pushed).median() > 20 * pen(pose).median()


@pytest.mark.cuda
def test_cuda_matches_cpu(small_objects):
    cpu_hand, cuda_hand = HandModel(), HandModel(device="cuda")
    cpu_obj, cuda_obj = load_object_set(small_objects), load_object_set(small_objects, device="cuda")
    pose = poses_near_objects(64, dtype=torch.float32)
    contacts = torch.randint(0, cpu_hand.n_contact_candidates, (64, 4))
    obj, scale = torch.arange(64) % len(cpu_obj), torch.full((64,), 0.07)
    a = grasp_energy(cpu_hand, cpu_obj, pose, contacts, obj, scale)
    b = grasp_energy(cuda_hand, cuda_obj, pose.to("cuda"), contacts.cuda(), obj.cuda(), scale.cuda())
    for name, value in a.as_dict().items():
        torch.testing.assert_close(b.as_dict()[name].cpu(), value, atol=1e-4, rtol=1e-3)
