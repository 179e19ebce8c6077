"""Forward+backward of the full grasp energy (FK, 4 contacts, 2000 object points, all five
terms) in pose evaluations per second, beside pytorch_kinematics' plain FK for scale.

Poses: palms 6-9 cm from the object facing it, fingers around DexGraspNet's half-closed hand
(what the seed optimizer evaluates); objects: three catalog objects at 0.06-0.08 m. When the
DexGraspNet sample lies beside the checkout, its real grasps (contact-rich, the costliest case
for E_pen) are timed too, at batch 1024 (``*_dgn_*`` keys).
Writes bench/results/bench_energy.json.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from common import devices, median_seconds, write_results

import numpy as np

from dexlite_core.conventions import CANONICAL_JOINTS, HandPose, qpos_to_pose, random_rotations
from dexlite_core.energy import grasp_energy
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.store import load_object_set
from dexlite_core.pipeline.objects import DatasetSource, ObjectsConfig, run as build_objects

BATCHES = (256, 1024, 4096)
OBJECTS = ("proc-box-brick", "proc-cyl-can", "pyb-duck")
DGN_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "dexgraspnet-sample"


def poses(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rot = random_rotations(n, g)
    pos = rot[:, :, 1] * (0.06 + 0.03 * torch.rand(n, 1, generator=g))  # palm (-y) faces the origin
    joints = torch.tensor(CANONICAL_JOINTS) + 0.2 * torch.randn(n, 22, generator=g)
    return HandPose(pos, rot, joints).to_vector()


def dexgraspnet_grasps(codes: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    vec, obj, scale = [], [], []
    for i, code in enumerate(codes):
        for g in np.load(DGN_SAMPLE / "dataset" / f"{code}.npy", allow_pickle=True):
            vec.append(qpos_to_pose(g["qpos"]).to_vector().float())
            obj.append(i)
            scale.append(float(g["scale"]))
    return torch.cat(vec), torch.tensor(obj), torch.tensor(scale, dtype=torch.float32)


def time_energy(hand: HandModel, objects, vec, obj, scale, device: str) -> float:
    """Pose evaluations (forward + backward) per second."""
    vec, obj, scale = vec.to(device), obj.to(device), scale.to(device)
    b = len(vec)
    contacts = torch.randint(0, hand.n_contact_candidates, (b, 4), generator=torch.Generator().manual_seed(1)).to(device)

    def step():
        v = vec.clone().requires_grad_()
        grasp_energy(hand, objects, HandPose.from_vector(v), contacts, obj, scale).total().sum().backward()

    return b / median_seconds(step, device=device)


def time_pk_fk(hand: HandModel, vec, device: str) -> float:
    """pytorch_kinematics' own path: forward_kinematics -> Transform3d dict, then backward."""
    th0 = vec[:, 9:].to(device)

    def step():
        th = th0.clone().requires_grad_()
        frames = hand.chain.forward_kinematics(th)
        sum(t.get_matrix().sum() for t in frames.values()).backward()

    return len(vec) / median_seconds(step, device=device)


def main() -> None:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        build_objects(ObjectsConfig(codes=OBJECTS), DatasetSource(), Path(tmp))
        for device in devices():
            objects = load_object_set(Path(tmp), device=device)
            hand = HandModel(device=device)
            for b in BATCHES:
                obj = torch.arange(b) % len(objects)
                scale = 0.06 + 0.02 * (torch.arange(b) % 2).float()
                figures[f"{device}_b{b}_evals_per_s"] = time_energy(hand, objects, poses(b), obj, scale, device)
                figures[f"{device}_b{b}_pk_fk_fwd_bwd_per_s"] = time_pk_fk(hand, poses(b), device)
            figures[f"{device}_b1024_ms"] = 1024 / figures[f"{device}_b1024_evals_per_s"] * 1000
    if (DGN_SAMPLE / "dataset").is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            build_objects(ObjectsConfig(), DatasetSource("dexgraspnet", str(DGN_SAMPLE)), Path(tmp))
            for device in devices():
                objects = load_object_set(Path(tmp), device=device)
                vec, obj, scale = dexgraspnet_grasps(objects.codes)
                idx = torch.arange(1024) % len(vec)
                figures[f"{device}_b1024_dgn_evals_per_s"] = time_energy(HandModel(device=device), objects, vec[idx],
                                                                         obj[idx], scale[idx], device)
    write_results("bench_energy", figures)


if __name__ == "__main__":
    main()
