"""Can the decoder learn to adapt a transferred grasp? (issue 10, bench/README.md "What the decoder adds")

Pure synthesis decodes a training grasp's latent at a new object's point and gets back a rigid copy
of that grasp (bench/transfer_probe.py). This probe gives the decoder targets for the adaptation:
every training grasp of the bank is transferred to the *other* training objects (synth's 32 best
matches per object and scale, its own object excluded), post-optimized as the postopt stage does
and simulated (lift); each one that passes is a pair (source latent, new condition) -> grasp. The
decoder alone is then fine-tuned on those pairs next to its usual reconstruction (PointNet and
encoder frozen, so the bank's conditions and latents stay valid), and the held-out objects get
synth's 32 matches each: raw and post-optimized lift, before and after. The engine's adapt step
does the same with the engine round's model (dexlite_core/engine.py ``adapt``); this probe
isolates it on the train stage's model. Needs `make run`'s data; ~8 min on 2 cores. Writes bench/results/cross_reconstruction_probe.json.

Usage: .venv/bin/python bench/cross_reconstruction_probe.py
"""
import copy
import sys
import time

import torch
from common import REPO, write_results

from dexlite_core.data.curate import stable_groups
from dexlite_core.data.grasps import GraspTable, read_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import grasp_data, input_point_index, split_rows
from dexlite_core.model.encoding import encode_pose
from dexlite_core.model.network import GraspCVAE
from dexlite_core.model.sample import SampleConfig, Transfers, synthesize
from dexlite_core.model.train import AdaptConfig, DecoderRows, LossConfig, adapt_decoder, decoded_pose, load_checkpoint
from dexlite_core.objects.store import load_object_set, read_objects
from dexlite_core.optimize.postopt import PostOptConfig, post_optimize
from dexlite_core.params import build, load_params
from dexlite_core.sim.runner import SimConfig, simulate

DATA = REPO / "data"
PAIR_WEIGHTS = (1.0, 3.0)  #: pair loss / reconstruction loss


def redecoded(model: GraspCVAE, table: GraspTable, transfers: Transfers, mu: torch.Tensor, couple: bool) -> GraspTable:
    """``table``'s transferred grasps decoded again by ``model`` (same latents, conditions, points)."""
    with torch.no_grad():
        pose = decoded_pose(model.decode(mu[transfers.source], transfers.condition), transfers.anchor_point, couple)
    return GraspTable.from_poses(table.object_code, table.scale, table.grasp_id, "probe", pose)


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
    sample = SampleConfig(n_per_object=params["synth"]["n_per_object"])

    start = time.perf_counter()
    groups = sorted(set(zip(train_rows.object_code, train_rows.scale.tolist())))
    to_train = synthesize(model, bank, objects, point_index, groups, sample, couple, bank_codes=train_rows.object_code)
    refined = post_optimize(hand, objects, to_train.table, post).table
    passed = torch.as_tensor(simulate(refined, DATA / "objects", sim, desc=None).passed["lift"])
    moved = to_train.transfers
    pairs = DecoderRows(bank["mu"][moved.source[passed]], moved.condition[passed],
                        encode_pose(refined.poses().index(passed), moved.anchor_point[passed]))
    own = DecoderRows(bank["mu"], bank["condition"], train.pose)
    results = {"transfers_to_training_objects": len(passed), "pairs": len(pairs)}
    print(f"{len(pairs)} of {len(passed)} transfers to other training objects pass lift after "
          f"post-optimization: the pairs ({time.perf_counter() - start:.0f} s)")

    to_test = synthesize(model, bank, objects, point_index, test_groups, sample, couple)
    for name, weight in [("base", None)] + [(f"pairs_x{w:g}", w) for w in PAIR_WEIGHTS]:
        m = model if weight is None else adapt_decoder(copy.deepcopy(model), own, pairs, AdaptConfig(pair_weight=weight),
                                                       LossConfig())
        raw = redecoded(m, to_test.table, to_test.transfers, bank["mu"], couple)
        raw_run = simulate(raw, DATA / "objects", sim, desc=None)
        refined_run = simulate(post_optimize(hand, objects, raw, post).table, DATA / "objects", sim, desc=None)
        with torch.no_grad():  # network translation is in decimetres
            recon_mm = float((m.decode(own.latent, own.condition)[:, :3] - own.pose[:, :3]).norm(dim=-1).mean()) * 100
        results.update({f"{name}_raw_lift": float(raw_run.passed["lift"].mean()),
                        f"{name}_postopt_all_lift": float(refined_run.passed["lift"].mean()),
                        f"{name}_recon_translation_mm": recon_mm})
        print(f"{name:10s} held-out lift raw {100 * results[f'{name}_raw_lift']:.1f} %, post-optimized "
              f"{100 * results[f'{name}_postopt_all_lift']:.1f} %; training grasps re-decoded within {recon_mm:.2f} mm")
    write_results("cross_reconstruction_probe", results)


if __name__ == "__main__":
    main()
