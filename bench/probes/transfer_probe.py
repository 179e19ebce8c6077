"""What does the decoder add to pure synthesis? (issue 10, bench/README.md "What the decoder adds")

Pure synthesis matches each bank grasp (a training grasp's condition and latent) to the held-out
object's point whose condition is nearest, and decodes the latent there. This probe simulates the
same 32 matches per held-out object and scale (synth's sampler, temperature 0) made three ways:

- ``decoder``: as shipped (the train stage's model, ``data/model/model.pt``);
- ``copy``: the source training grasp itself, moved rigidly so its anchor lands on the matched point;
- ``copy_aligned``: the same, also turned so the source anchor's normal meets the matched point's;

and the decoder once more with a bank of half the training objects (two halves): how raw success
grows with the data to transfer from. Lift only (sim params as shipped); needs `make run`'s data.
Writes bench/results/transfer_probe.json.

Usage: .venv/bin/python bench/probes/transfer_probe.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for common.py
from common import REPO, write_results  # noqa: E402

from dexlite_core.conventions import HandPose
from dexlite_core.sim.stability import stable_groups
from dexlite_core.data.grasps import GraspTable, read_grasps
from dexlite_core.model.data import anchor_points, distinct_clouds, grasp_data, input_point_index, split_rows
from dexlite_core.model.encoding import decode_pose, decoded_pose
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.sample import best_matches
from dexlite_core.objects.store import load_object_set, split_of
from dexlite_core.params import build, load_params
from dexlite_core.sim.runner import SimConfig, simulate

DATA = REPO / "data"


def rotation_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3): the smallest rotations taking unit vectors a (B, 3) onto b (B, 3)."""
    v, c = torch.cross(a, b, dim=-1), (a * b).sum(-1)
    skew = torch.zeros(len(a), 3, 3)
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    skew = skew - skew.transpose(1, 2)
    return torch.eye(3) + skew + skew @ skew / (1 + c).clamp(min=1e-3).view(-1, 1, 1)


def moved(pose: HandPose, source_point: torch.Tensor, target_point: torch.Tensor,
          turn: torch.Tensor | None = None) -> HandPose:
    """``pose`` moved rigidly so ``source_point`` lands on ``target_point``, turned by ``turn`` about it."""
    turn = torch.eye(3).expand(len(pose), 3, 3) if turn is None else turn
    offset = torch.einsum("bij,bj->bi", turn, pose.wrist_pos - source_point)
    return HandPose(offset + target_point, turn @ pose.wrist_rot, pose.joints)


@torch.no_grad()
def main() -> None:
    torch.set_num_threads(1)
    grasp_model = GraspModel.load(DATA / "model" / "model.pt")
    model = grasp_model.network
    table = read_grasps(DATA / "filtered" / "grasps.parquet")
    objects = load_object_set(DATA / "objects", sorted(set(table.object_code)))
    train = grasp_data(split_rows(table, split_of(DATA / "objects"), "train"), objects,
                       input_point_index(objects, grasp_model.n_points))
    bank = grasp_model.bank
    if len(bank.mu) != len(train):
        sys.exit("data/model/model.pt was not trained on data/filtered's training grasps: run `dvc repro train`")
    source_pose = decode_pose(train.pose, train.anchor_point)
    source_normal = objects.normals[train.obj, train.point_index[train.obj, train.anchor]]
    bank_objects = train.obj.unique()
    halves = bank_objects[torch.randperm(len(bank_objects), generator=torch.Generator().manual_seed(0))]
    banks = {"all": torch.ones(len(train), dtype=torch.bool),
             "half_a": torch.isin(train.obj, halves[:len(halves) // 2]),
             "half_b": torch.isin(train.obj, halves[len(halves) // 2:])}

    groups = stable_groups(DATA / "objects", DATA / "stability", ("test",))
    test = load_object_set(DATA / "objects", sorted({c for c, _ in groups}))
    test_index = input_point_index(test, grasp_model.n_points)
    n = load_params()["synth"]["n_per_object"]
    made: dict[str, list[GraspTable]] = {}
    angles = []
    for code, scale in groups:
        obj, s = test.index_of([code]), torch.tensor([scale])
        conditions = model.point_conditions(distinct_clouds(test, test_index, obj, s)[0])[0]
        for bank_name, keep in banks.items():
            ids = torch.nonzero(keep).flatten()
            best, point = best_matches(bank.condition[ids], conditions, n)
            best = ids[best]
            target = anchor_points(test, test_index, obj.repeat(n), s.repeat(n), point)
            poses = {f"decoder_{bank_name}_bank": decoded_pose(model.decode(bank.mu[best], conditions[point]),
                                                                target, grasp_model.couple_joints)}
            if bank_name == "all":
                normal = test.normals[obj.repeat(n), test_index[obj.repeat(n), point]]
                angles.append(torch.rad2deg(torch.arccos((source_normal[best] * normal).sum(-1).clamp(-1, 1))))
                src = source_pose.index(best)
                poses["copy"] = moved(src, train.anchor_point[best], target)
                poses["copy_aligned"] = moved(src, train.anchor_point[best], target,
                                              rotation_between(source_normal[best], normal))
            for name, pose in poses.items():
                made.setdefault(name, []).append(GraspTable.from_poses(
                    np.array([code] * n, dtype=object), np.full(n, scale), np.arange(n), "probe", pose))

    sim = build(SimConfig, {**load_params()["sim"], "tests": ["lift"]}, "sim")
    angle = torch.cat(angles)
    results = {"n_grasps": len(angle), "normal_angle_median_deg": float(angle.median())}
    for name, tables in made.items():
        run = simulate(GraspTable.concat(tables), DATA / "objects", sim, desc=None)
        reasons = run.table.sim.fail_reason
        results[f"{name}_lift"] = float(run.passed["lift"].mean())
        results[f"{name}_penetration_failures"] = float(np.mean(reasons == "lift:penetration"))
        print(f"{name:22s} lift {100 * results[f'{name}_lift']:.1f} %, fails the penetration gate "
              f"{100 * results[f'{name}_penetration_failures']:.1f} %")
    write_results("transfer_probe", results)
    print(f"normal angle source -> matched point: median {results['normal_angle_median_deg']:.1f} deg")


if __name__ == "__main__":
    main()
