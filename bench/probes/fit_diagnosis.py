"""Can the CVAE fit its training grasps? Trains on N real seed grasps and reports the
posterior-mean reconstruction error (mm, degrees, joint rad), the KL, the energy of the
reconstructions, and for decodings at each grasp's own anchor from several latents (the
posterior mean, z ~ N(0, I), ...; see LATENTS) how far they land from the grasp and how many
pass the MuJoCo lift test.

The data (built once into --data, ~1 min on 1 core): 3 catalog objects at scales 0.06 and
0.08, the seed optimizer with the default thresholds (256 attempts per object and scale), then
the lift filter. Prints one JSON line per run; bench/README.md ("CVAE fit: diagnosis") keeps
the figures.

    OMP_NUM_THREADS=1 .venv/bin/python bench/probes/fit_diagnosis.py --n 16 --steps 600
    ... --steps 180 --eval-every 1 --kl 0.01 --kl-warmup 20 --energy 0.1 --energy-warmup 10   # as shipped before
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for common.py
from common import REPO  # noqa: E402, F401  (puts the checkout first on sys.path)

from dexlite_core.data.grasps import GraspTable, read_grasps, write_grasps
from dexlite_core.energy import EnergyWeights
from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import GraspData, grasp_data, input_point_index
from dexlite_core.model.encoding import PALM_CENTER, decode_pose, decoded_pose
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.network import GraspCVAE
from dexlite_core.model.train import LossConfig, TrainConfig, reconstruction_errors, train
from dexlite_core.objects.store import load_object_set
from dexlite_core.optimize.seed import SeedConfig, seed_grasps
from dexlite_core.parallel import ParallelConfig
from dexlite_core.pipeline.objects import DatasetSource, ObjectsConfig, run as build_objects
from dexlite_core.sim.runner import SimConfig, simulate

CODES = ("proc-box-brick", "proc-cyl-can", "pyb-duck")
SCALES = (0.06, 0.08)
SIM = SimConfig(parallel=ParallelConfig(executor="inline"))


def build_data(root: Path) -> None:
    """Objects, seed grasps and the lift-filtered table under ``root``."""
    if not (root / "objects").exists():
        build_objects(ObjectsConfig(codes=CODES, scales=SCALES, val_fraction=0.0, test_fraction=0.0, n_workers=1),
                      DatasetSource(), root / "objects")
    objects = load_object_set(root / "objects", list(CODES))
    seeds = seed_grasps(HandModel(), objects, [(c, s) for c in CODES for s in SCALES],
                        SeedConfig(n_per_object=256, device="cpu")).accepted
    run = simulate(seeds, root / "objects", SIM, desc=None)
    write_grasps(root / "filtered.parquet", run.table.select(run.passed["lift"]))
    print(f"data: {len(seeds)} seed grasps, {run.passed['lift'].sum()} pass lift")


def lift_rate(table: GraspTable, objects_dir: Path) -> float:
    return float(simulate(table, objects_dir, SIM, desc=None).passed["lift"].mean())


def pose_distance(a, b) -> tuple[float, float]:
    """Mean palm distance (mm) and rotation angle (deg) between HandPoses ``a`` and ``b``."""
    cos = ((a.wrist_rot.transpose(1, 2) @ b.wrist_rot).diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2
    return (float((a.wrist_pos - b.wrist_pos).norm(dim=-1).mean()) * 1000,
            float(torch.rad2deg(torch.arccos(cos.clamp(-1, 1))).mean()))


#: Latents decoded at each grasp's own anchor: the posterior mean; the prior N(0, I); its mode
#: z = 0; a Gaussian fitted to the training grasps' posterior means (the aggregate posterior);
#: the posterior mean of another training grasp.
LATENTS = ("posterior", "prior", "zero", "aggregate", "other")


def latents(kind: str, mu: Tensor, g: torch.Generator) -> Tensor:
    if kind == "posterior":
        return mu
    if kind == "prior":
        return torch.randn(mu.shape, generator=g)
    if kind == "zero":
        return torch.zeros_like(mu)
    if kind == "aggregate":
        # Random combinations of the centred means: a Gaussian with their mean and covariance.
        centred = mu - mu.mean(0)
        return mu.mean(0) + torch.randn(len(mu), len(mu), generator=g) @ centred / (len(mu) - 1) ** 0.5
    return mu[torch.randperm(len(mu), generator=g)]


@torch.no_grad()
def decodings(model: GraspCVAE, data: GraspData, couple: bool, kind: str, per: int = 1):
    """Decodings of every grasp, ``per`` each, from latents of ``kind``: the decoded HandPose,
    the target HandPose, object index and scale per row, per-dim KL of the posterior."""
    index = torch.arange(len(data)).repeat(per)
    points, shape, anchor, pose, anchor_point, obj, scale = data.batch(index)
    cond = model.condition(points, anchor, shape)
    mu, logvar = model.encode(pose, cond)
    z = latents(kind, mu, torch.Generator().manual_seed(0))
    kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).mean(0)
    return decoded_pose(model.decode(z, cond), anchor_point, couple), decode_pose(pose, anchor_point), obj, scale, kl


@torch.no_grad()
def anchor_figures(data: GraspData) -> dict[str, float]:
    """What the anchor says about a grasp: the angle between the palm's approach and the anchor's
    inward normal, and how often the approach ray hits the object at all (within 15 cm)."""
    pose = decode_pose(data.pose, data.anchor_point)
    normal = data.objects.normals[data.obj, data.point_index[data.obj, data.anchor]]
    approach = -pose.wrist_rot[:, :, 1]  # the palm normal is -y
    angle = torch.rad2deg(torch.arccos((approach * -normal).sum(-1).clamp(-1, 1)))
    origin = pose.wrist_pos + torch.einsum("bij,j->bi", pose.wrist_rot, torch.tensor(PALM_CENTER))
    ray = origin.unsqueeze(1) + torch.linspace(0, 0.15, 151).view(1, -1, 1) * approach.unsqueeze(1)
    sdf = data.objects.signed_distance(ray.reshape(-1, 3), data.obj.repeat_interleave(151),
                                       data.scale.repeat_interleave(151)).view(len(data), -1)
    return {"anchor_normal_deg_median": float(angle.median()),
            "anchor_ray_hits": float((sdf.min(1).values < 0).float().mean()),
            "palm_to_surface_mm_median": float(sdf[:, 0].median()) * 1000}


def as_table(data: GraspData, pose, obj, scale) -> GraspTable:
    codes = np.array(data.objects.codes, dtype=object)[obj.numpy()]
    return GraspTable.from_poses(codes, scale.numpy(), np.arange(len(obj)), "cvae", pose)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("/tmp/dexlite-fit"))
    p.add_argument("--n", type=int, default=16, help="training grasps (a seeded random subset)")
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--eval-every", type=int, default=TrainConfig.eval_every)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--kl", type=float, default=LossConfig.kl)
    p.add_argument("--kl-warmup", type=int, default=LossConfig.kl_warmup_steps)
    p.add_argument("--energy", type=float, default=LossConfig.energy_scale)
    p.add_argument("--energy-warmup", type=int, default=LossConfig.energy_warmup_steps)
    p.add_argument("--weights", type=float, nargs=5, default=[1.0, 100.0, 100.0, 10.0, 1.0],
                   metavar=("FC", "DIS", "PEN", "SPEN", "JOINTS"), help="energy weights")
    p.add_argument("--translation", type=float, default=LossConfig.translation)
    p.add_argument("--no-lift", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(1)
    if not (a.data / "filtered.parquet").exists():
        build_data(a.data)
    table = read_grasps(a.data / "filtered.parquet")
    if a.n < len(table):
        table = table.select(np.sort(np.random.default_rng(0).choice(len(table), a.n, replace=False)))
    objects = load_object_set(a.data / "objects", sorted(set(table.object_code)))
    config = TrainConfig(steps=a.steps, eval_every=a.eval_every, batch_size=a.batch, lr=a.lr, device="cpu",
                         loss=LossConfig(translation=a.translation, kl=a.kl, kl_warmup_steps=a.kl_warmup,
                                         energy_scale=a.energy, energy_warmup_steps=a.energy_warmup,
                                         energy=EnergyWeights(*a.weights)))
    data = grasp_data(table, objects, input_point_index(objects, config.n_points))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, data, data, Path(tmp) / "model.pt")
        model = GraspModel.load(Path(tmp) / "model.pt").network
    seconds = time.perf_counter() - start
    errors = reconstruction_errors(model, data, config.couple_joints)
    out = {**{k: v for k, v in vars(a).items() if k not in ("data", "no_lift")}, "train_s": round(seconds),
           "mm": errors.translation_mm, "deg": errors.rotation_deg, "joint_rad": errors.joints_rad}
    for kind in LATENTS:
        per = 1 if kind == "posterior" else 4
        pose, target, obj, scale, kl = decodings(model, data, config.couple_joints, kind, per)
        out[f"{kind}_mm"], out[f"{kind}_deg"] = pose_distance(pose, target)
        if not a.no_lift:
            out[f"{kind}_lift"] = lift_rate(as_table(data, pose, obj, scale), a.data / "objects")
    out.update(anchor_figures(data))
    out.update({"kl_nats": float(kl.sum()), "kl_dims_over_0.1": int((kl > 0.1).sum()),
                "E_total": result.final["energy"], **{k: result.final[k] for k in ("E_fc", "E_dis", "E_pen")}})
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
