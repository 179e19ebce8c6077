"""Can the decoder learn to adapt a transferred grasp? (issue 10, bench/README.md "What the decoder adds")

Pure synthesis decodes a training grasp's latent at a new object's point and gets back a rigid copy
of that grasp (bench/probes/transfer_probe.py). This probe gives the decoder targets for the adaptation:
every training grasp of the bank is transferred to the *other* training objects (synth's 32 best
matches per object and scale, its own object excluded), post-optimized as the postopt stage does
and simulated (lift); each one that passes is a pair (source latent, new condition) -> grasp. The
decoder alone is then fine-tuned on those pairs next to its usual reconstruction (PointNet and
encoder frozen, so the bank's conditions and latents stay valid), and the held-out objects get
synth's 32 matches each: raw and post-optimized lift, before and after. The engine's adapt step
does the same with the engine round's model (dexlite_core/pipeline/engine.py ``adapt``); this probe
isolates it on the train stage's model. Needs `make run`'s data; ~8 min on 2 cores. Writes bench/results/cross_reconstruction_probe.json.

With ``--extra-objects N`` it also asks whether pairs on objects the bank does not hold help: the
next N random_urdfs (after the catalog's) are built into a scratch object set beside the pipeline's,
the bank is transferred to them as well (they need no seed grasps), and the decoder is adapted
on the training objects' pairs alone and on those plus the new objects' (weight 1 both).

With ``--train-pointnet`` the pairs also train the PointNet (a variant ``pairs_x1_pointnet``): the
decoder alone can only read adaptation out of features made for reconstruction, where one point's
local feature knows nothing of the object's thickness around it. The bank's latents stay fixed
(the encoder is not used for transfer), its conditions are recomputed after training, and the
held-out objects are matched again with them.

Usage: .venv/bin/python bench/probes/cross_reconstruction_probe.py [--extra-objects N] [--train-pointnet]
"""
import argparse
import copy
from dataclasses import replace
import sys
import tempfile
import time
from pathlib import Path

import pybullet_data
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for common.py
from common import REPO, write_results  # noqa: E402

from dexlite_core.sim.stability import stable_groups
from dexlite_core.data.grasps import GraspTable, read_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import GraspData, grasp_data, split_rows
from dexlite_core.model.encoding import decoded_pose, encode_pose
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.network import GraspCVAE
from dexlite_core.model.sample import GraspBank, SampleConfig, Transfers, synthesize
from dexlite_core.model.train import (AdaptConfig, DecoderRows, LossConfig, adapt_decoder, reconstruction_loss,
                                      reconstruction_terms)
from dexlite_core.objects.catalog import RANDOM_URDF_IDS
from dexlite_core.objects.store import (OBJECT_SCHEMA, BuildJob, GeometrySpec, build_object, load_object_set,
                                        read_objects, split_of, write_table)
from dexlite_core.objects.object_set import ObjectSet
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


def with_extra_objects(n: int, out_dir: Path) -> list[str]:
    """``out_dir``: the pipeline's objects (linked) plus the next ``n`` random_urdfs, split ``extra``."""
    table = read_objects(DATA / "objects")
    for code in table.object_code:
        (out_dir / code).symlink_to((DATA / "objects" / code).resolve())
    spec = GeometrySpec(n_points=int(table.n_points.iloc[0]))
    root = Path(pybullet_data.getDataPath()) / "random_urdfs"
    rows = []
    for i in [i for i in range(max(RANDOM_URDF_IDS) + 1, 1000) if i != 168][:n]:
        job = BuildJob(f"pyb-random-{i:03d}", "random", "pybullet_data", str(root / f"{i:03d}" / f"{i:03d}.obj"))
        built = build_object(job, spec, out_dir)
        if built.row is not None:
            rows.append({**built.row, "split": "extra", "scales": list(table.scales.iloc[0])})
    write_table(out_dir / "objects.parquet", table.to_dict("records") + rows, OBJECT_SCHEMA)
    return [r["object_code"] for r in rows]


def transfer_pairs(model, bank, objects, point_index, groups, sample, couple, bank_codes, hand, post, sim,
                   objects_dir) -> tuple[DecoderRows, GraspData, torch.Tensor, int]:
    """The bank transferred to ``groups`` (each object's own grasps left out), post-optimized and
    simulated: the pairs (source latent, condition) -> grasp of the transfers that pass lift, also as
    rows at their points, with their source bank rows; and how many transfers there were."""
    moved = synthesize(model, bank, objects, point_index, groups, sample, couple, bank_codes=bank_codes)
    optimized = post_optimize(hand, objects, moved.table, post).table
    passed = torch.as_tensor(simulate(optimized, objects_dir, sim, desc=None).passed["lift"])
    t = moved.transfers
    return (DecoderRows(bank.mu[t.source[passed]], t.condition[passed],
                        encode_pose(optimized.poses().index(passed), t.anchor_point[passed])),
            pair_data(optimized, t, passed, objects, point_index), t.source[passed], len(passed))


def pair_data(table: GraspTable, transfers: Transfers, passed: torch.Tensor, objects: ObjectSet,
              point_index: torch.Tensor) -> GraspData:
    """The passing transfers as training rows at the points they were decoded at (the refined grasp
    encoded relative to that point), so their conditions can be recomputed by a changing PointNet."""
    rows = table.select(passed.numpy())
    obj = objects.index_of(list(rows.object_code))
    scale = torch.as_tensor(rows.scale)
    anchor_point = transfers.anchor_point[passed]
    points = objects.points[obj.unsqueeze(1), point_index[obj]] * scale.view(-1, 1, 1)
    anchor = (points - anchor_point.unsqueeze(1)).norm(dim=-1).argmin(dim=1)  # the matched point itself
    return GraspData(objects, point_index, obj, scale, anchor, encode_pose(rows.poses(), anchor_point), anchor_point)


def cloud_key(data: GraspData) -> torch.Tensor:
    """(N,) an id of each row's (object, scale) cloud, comparable across GraspData of one object set."""
    return data.obj * 10 ** 6 + (data.scale * 1e5).round().long()


def adapt_with_pointnet(model: GraspCVAE, own: GraspData, own_latent: torch.Tensor, pairs: GraspData,
                        pair_latent: torch.Tensor, config: AdaptConfig, loss: LossConfig,
                        clouds_per_step: int = 8) -> GraspCVAE:
    """PointNet and decoder trained on the pairs next to the reconstruction of ``own`` (fixed
    latents), each step on the rows of ``clouds_per_step`` random (object, scale) clouds."""
    params = list(model.pointnet.parameters()) + list(model.decoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    g = torch.Generator().manual_seed(config.seed)
    own_key, pair_key = cloud_key(own), cloud_key(pairs)
    clouds = torch.unique(torch.cat([own_key, pair_key]))
    model.train()
    for _ in range(config.steps):
        chosen = clouds[torch.randperm(len(clouds), generator=g)[:clouds_per_step]]
        total = 0.0
        for data, latent, keys, weight in ((own, own_latent, own_key, 1.0),
                                           (pairs, pair_latent, pair_key, config.pair_weight)):
            rows = torch.nonzero(torch.isin(keys, chosen)).flatten()
            if len(rows) == 0:
                continue
            rows = rows[torch.randperm(len(rows), generator=g)[:config.batch_size]]
            points, shape, anchor, pose, _, _, _ = data.batch(rows)
            net = model.decode(latent[rows], model.condition(points, anchor, shape)).float()
            total = total + weight * reconstruction_loss(reconstruction_terms(net, pose), loss).mean()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


@torch.no_grad()
def recomputed_bank(model: GraspCVAE, bank: GraspBank, own: GraspData) -> GraspBank:
    """``bank`` with each grasp's condition at its own anchor recomputed by ``model``'s PointNet."""
    points, shape, anchor, _, _, _, _ = own.batch(torch.arange(len(own)))
    return replace(bank, condition=model.condition(points, anchor, shape).float())


def concat_rows(a: DecoderRows, b: DecoderRows) -> DecoderRows:
    return DecoderRows(torch.cat([a.latent, b.latent]), torch.cat([a.condition, b.condition]),
                       torch.cat([a.pose, b.pose]))


def held_out(name: str, model: GraspCVAE, raw: GraspTable, own: DecoderRows, hand, objects, objects_dir, post,
             sim) -> dict[str, float]:
    """Lift of the held-out candidates ``raw`` as they are and post-optimized; the training grasps'
    re-decoding error."""
    raw_run = simulate(raw, objects_dir, sim, desc=None)
    optimized_run = simulate(post_optimize(hand, objects, raw, post).table, objects_dir, sim, desc=None)
    with torch.no_grad():  # network translation is in decimetres
        recon_mm = float((model.decode(own.latent, own.condition)[:, :3] - own.pose[:, :3]).norm(dim=-1).mean()) * 100
    out = {f"{name}_raw_lift": float(raw_run.passed["lift"].mean()),
           f"{name}_postopt_all_lift": float(optimized_run.passed["lift"].mean()),
           f"{name}_recon_translation_mm": recon_mm}
    print(f"{name:10s} held-out lift raw {100 * out[f'{name}_raw_lift']:.1f} %, post-optimized "
          f"{100 * out[f'{name}_postopt_all_lift']:.1f} %; training grasps re-decoded within {recon_mm:.2f} mm")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra-objects", type=int, default=0, help="random_urdfs added as pair-only objects")
    parser.add_argument("--train-pointnet", action="store_true", help="also adapt with the PointNet trained")
    args = parser.parse_args()
    torch.set_num_threads(1)
    objects_dir, extra = DATA / "objects", []
    if args.extra_objects:
        scratch = tempfile.TemporaryDirectory()  # lives as long as main: the probe reads the objects to the end
        objects_dir = Path(scratch.name)
        extra = with_extra_objects(args.extra_objects, objects_dir)
        print(f"{len(extra)} extra objects built in {objects_dir}")
    params = load_params()
    grasp_model = GraspModel.load(DATA / "model" / "model.pt")
    model, couple, bank = grasp_model.network, grasp_model.couple_joints, grasp_model.bank
    table = read_grasps(DATA / "filtered" / "grasps.parquet")
    test_groups = stable_groups(DATA / "objects", DATA / "stability", ("test",))
    objects = load_object_set(objects_dir, sorted(set(table.object_code) | {c for c, _ in test_groups} | set(extra)))
    point_index = grasp_model.point_index(objects)
    train_rows = split_rows(table, split_of(DATA / "objects"), "train")
    train = grasp_data(train_rows, objects, point_index)
    if len(bank.mu) != len(train):
        sys.exit("data/model/model.pt was not trained on data/filtered's training grasps: run `dvc repro train`")
    hand = HandModel()
    post = build(PostOptConfig, params["postopt"], "postopt")
    sim = build(SimConfig, {**params["sim"], "tests": ["lift"]}, "sim")
    sample = SampleConfig(n_per_object=params["synth"]["n_per_object"])

    start = time.perf_counter()
    groups = sorted(set(zip(train_rows.object_code, train_rows.scale.tolist())))
    pairs, pair_rows, pair_source, n_transfers = transfer_pairs(model, bank, objects, point_index, groups, sample,
                                                                couple, train_rows.object_code, hand, post, sim,
                                                                objects_dir)
    own = DecoderRows(bank.mu, bank.condition, train.pose)
    results = {"transfers_to_training_objects": n_transfers, "pairs": len(pairs)}
    print(f"{len(pairs)} of {n_transfers} transfers to other training objects pass lift after "
          f"post-optimization: the pairs ({time.perf_counter() - start:.0f} s)")
    variants = [("base", None, None)] + [(f"pairs_x{w:g}", w, pairs) for w in PAIR_WEIGHTS]
    if extra:
        start = time.perf_counter()
        scales = [float(s) for s in params["objects"]["scales"]]
        extra_groups = [(c, s) for c in extra for s in scales]
        extra_pairs, _, _, n_extra = transfer_pairs(model, bank, objects, point_index, extra_groups, sample, couple,
                                                    train_rows.object_code, hand, post, sim, objects_dir)
        results.update({"extra_objects": len(extra), "transfers_to_extra_objects": n_extra,
                        "extra_pairs": len(extra_pairs)})
        print(f"{len(extra_pairs)} of {n_extra} transfers to {len(extra)} extra objects pass "
              f"({time.perf_counter() - start:.0f} s)")
        variants = variants[:2] + [("pairs_x1_extra", 1.0, concat_rows(pairs, extra_pairs))]

    to_test = synthesize(model, bank, objects, point_index, test_groups, sample, couple)
    for name, weight, rows in variants:
        m = model if weight is None else adapt_decoder(copy.deepcopy(model), own, rows, AdaptConfig(pair_weight=weight),
                                                       LossConfig())
        raw = redecoded(m, to_test.table, to_test.transfers, bank.mu, couple)
        results.update(held_out(name, m, raw, own, hand, objects, objects_dir, post, sim))
    if args.train_pointnet:
        start = time.perf_counter()
        m = adapt_with_pointnet(copy.deepcopy(model), train, bank.mu, pair_rows, bank.mu[pair_source],
                                AdaptConfig(), LossConfig())
        new_bank = recomputed_bank(m, bank, train)
        print(f"PointNet and decoder adapted ({time.perf_counter() - start:.0f} s)")
        raw = synthesize(m, new_bank, objects, point_index, test_groups, sample, couple).table
        own_now = DecoderRows(bank.mu, new_bank.condition, train.pose)
        results.update(held_out("pairs_x1_pointnet", m, raw, own_now, hand, objects, objects_dir, post, sim))
    write_results("cross_reconstruction_probe" + (f"_extra{len(extra)}" if extra else "")
                  + ("_pointnet" if args.train_pointnet else ""), results)


if __name__ == "__main__":
    main()
