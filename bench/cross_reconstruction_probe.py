"""Can the decoder learn to adapt a transferred grasp? (issue 10, bench/README.md "What the decoder adds")

Pure synthesis decodes a training grasp's latent at a new object's point and gets back a rigid copy
of that grasp (bench/transfer_probe.py). This probe gives the decoder targets for the adaptation:
every training grasp of the bank is transferred to the *other* training objects (synth's 32 best
matches per object and scale, its own object excluded), post-optimized as the postopt stage does
and simulated (lift); each one that passes is a pair (source latent, new condition) -> grasp. The
decoder alone is then fine-tuned on those pairs next to its usual reconstruction (PointNet and
encoder frozen, so the bank's conditions and latents stay valid), and the held-out objects get
synth's 32 matches each: raw and post-optimized lift, before and after. Needs `make run`'s data
(the train stage's model); ~8 min on 2 cores. Writes bench/results/cross_reconstruction_probe.json.

Usage: .venv/bin/python bench/cross_reconstruction_probe.py
"""
import copy
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dexlite_core.conventions import rot6d_to_matrix  # noqa: E402
from dexlite_core.data.curate import stable_groups  # noqa: E402
from dexlite_core.data.grasps import GraspTable, read_grasps  # noqa: E402
from dexlite_core.hand.model import HandModel  # noqa: E402
from dexlite_core.model.data import anchor_points, distinct_clouds, grasp_data, input_point_index, split_rows  # noqa: E402
from dexlite_core.model.encoding import encode_pose  # noqa: E402
from dexlite_core.model.network import GraspCVAE  # noqa: E402
from dexlite_core.model.sample import best_matches  # noqa: E402
from dexlite_core.model.train import decoded_pose, load_checkpoint  # noqa: E402
from dexlite_core.objects.store import load_object_set, read_objects  # noqa: E402
from dexlite_core.optimize.postopt import PostOptConfig, post_optimize  # noqa: E402
from dexlite_core.params import build, load_params  # noqa: E402
from dexlite_core.sim.runner import SimConfig, simulate  # noqa: E402

DATA = REPO / "data"
PAIR_WEIGHTS = (1.0, 3.0)  #: pair loss / reconstruction loss
STEPS, BATCH, LR = 3000, 128, 3e-4  #: decoder fine-tuning


@dataclass
class Transfers:
    """Bank grasps matched to object points, as pure synthesis does it."""

    source: torch.Tensor  #: (M,) bank rows
    condition: torch.Tensor  #: (M, C) the matched points' conditions
    point: torch.Tensor  #: (M, 3) the matched points, metres
    code: list[str]
    scale: list[float]

    def decoded(self, model: GraspCVAE, mu: torch.Tensor, couple: bool) -> GraspTable:
        with torch.no_grad():
            pose = decoded_pose(model.decode(mu[self.source], self.condition), self.point, couple)
        return GraspTable.from_poses(np.array(self.code, dtype=object), np.array(self.scale),
                                     np.arange(len(self.code)), "probe", pose)


@torch.no_grad()
def transfers(model: GraspCVAE, bank: dict, objects, point_index, groups, bank_object: torch.Tensor, n: int,
              exclude_own: bool) -> Transfers:
    """The ``n`` best matches per (object, scale) of ``groups``; with ``exclude_own`` an object's own
    grasps are left out of its bank."""
    parts = []
    for code, scale in groups:
        obj, s = objects.index_of([code]), torch.tensor([scale])
        conditions = model.point_conditions(distinct_clouds(objects, point_index, obj, s)[0])[0]
        ids = torch.nonzero(bank_object != obj[0]).flatten() if exclude_own else torch.arange(len(bank_object))
        best, point = best_matches(bank["condition"][ids], conditions, n)
        parts.append((ids[best], conditions[point], anchor_points(objects, point_index, obj.repeat(n), s.repeat(n), point)))
    return Transfers(*(torch.cat(p) for p in zip(*parts)), [c for c, _ in groups for _ in range(n)],
                     [s for _, s in groups for _ in range(n)])


def pose_loss(net: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The training reconstruction loss (squared dm, rotation matrices, scaled joints), batch mean."""
    rotation = ((rot6d_to_matrix(net[:, 3:9]) - rot6d_to_matrix(target[:, 3:9])) ** 2).sum((-1, -2))
    return (((net[:, :3] - target[:, :3]) ** 2).sum(-1) + rotation + ((net[:, 9:] - target[:, 9:]) ** 2).mean(-1)).mean()


def fine_tuned(model: GraspCVAE, own: tuple, pairs: tuple, pair_weight: float) -> GraspCVAE:
    """A copy of ``model`` whose decoder alone is trained on (z, condition) -> network pose rows of
    ``own`` (reconstruction) and ``pairs``."""
    tuned = copy.deepcopy(model)
    for p in tuned.parameters():
        p.requires_grad_(False)
    decoder = list(tuned.decoder.parameters())
    for p in decoder:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(decoder, lr=LR)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, STEPS)
    g = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        a, b = torch.randint(len(own[0]), (BATCH,), generator=g), torch.randint(len(pairs[0]), (BATCH,), generator=g)
        loss = (pose_loss(tuned.decode(own[0][a], own[1][a]), own[2][a])
                + pair_weight * pose_loss(tuned.decode(pairs[0][b], pairs[1][b]), pairs[2][b]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return tuned.eval()


def main() -> None:
    torch.set_num_threads(1)
    params = load_params()
    model, meta = load_checkpoint(DATA / "model" / "model.pt")
    couple, bank = meta["couple_joints"], meta["bank"]
    table = read_grasps(DATA / "filtered" / "grasps.parquet")
    split_of = dict(zip(*read_objects(DATA / "objects")[["object_code", "split"]].T.values))
    test_groups = stable_groups(DATA / "objects", DATA / "stability", ("test",))
    objects = load_object_set(DATA / "objects", sorted(set(table.object_code) | {c for c, _ in test_groups}))
    point_index = input_point_index(objects, meta["n_points"])
    train_rows = split_rows(table, split_of, "train")
    train = grasp_data(train_rows, objects, point_index)
    if len(bank["mu"]) != len(train):
        sys.exit("data/model/model.pt was not trained on data/filtered's training grasps: run `dvc repro train`")
    hand = HandModel()
    post = build(PostOptConfig, params["postopt"], "postopt")
    sim = build(SimConfig, {**params["sim"], "tests": ["lift"]}, "sim")
    n = params["synth"]["n_per_object"]

    start = time.perf_counter()
    groups = sorted(set(zip(train_rows.object_code, train_rows.scale.tolist())))
    to_train = transfers(model, bank, objects, point_index, groups, train.obj, n, exclude_own=True)
    refined = post_optimize(hand, objects, to_train.decoded(model, bank["mu"], couple), post).table
    passed = torch.as_tensor(simulate(refined, DATA / "objects", sim, desc=None).passed["lift"])
    pairs = (bank["mu"][to_train.source[passed]], to_train.condition[passed],
             encode_pose(refined.poses().index(passed), to_train.point[passed]))
    own = (bank["mu"], bank["condition"], train.pose)
    results = {"transfers_to_training_objects": len(passed), "pairs": int(passed.sum())}
    print(f"{results['pairs']} of {len(passed)} transfers to other training objects pass lift after "
          f"post-optimization: the pairs ({time.perf_counter() - start:.0f} s)")

    to_test = transfers(model, bank, objects, point_index, test_groups, train.obj, n, exclude_own=False)
    for name, weight in [("base", None)] + [(f"pairs_x{w:g}", w) for w in PAIR_WEIGHTS]:
        m = model if weight is None else fine_tuned(model, own, pairs, weight)
        raw = to_test.decoded(m, bank["mu"], couple)
        raw_run = simulate(raw, DATA / "objects", sim, desc=None)
        refined_run = simulate(post_optimize(hand, objects, raw, post).table, DATA / "objects", sim, desc=None)
        with torch.no_grad():  # network translation is in decimetres
            recon_mm = float((m.decode(own[0], own[1])[:, :3] - own[2][:, :3]).norm(dim=-1).mean()) * 100
        results.update({f"{name}_raw_lift": float(raw_run.passed["lift"].mean()),
                        f"{name}_postopt_all_lift": float(refined_run.passed["lift"].mean()),
                        f"{name}_recon_translation_mm": recon_mm})
        print(f"{name:10s} held-out lift raw {100 * results[f'{name}_raw_lift']:.1f} %, post-optimized "
              f"{100 * results[f'{name}_postopt_all_lift']:.1f} %; training grasps re-decoded within {recon_mm:.2f} mm")
    out = REPO / "bench" / "results" / "cross_reconstruction_probe.json"
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
