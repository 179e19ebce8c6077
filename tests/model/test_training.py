import os
import subprocess
import sys
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from dexlite_core.conventions import CANONICAL_JOINTS, JOINT_LOWER, JOINT_UPPER, HandPose
from dexlite_core.data.grasps import GraspTable, write_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import grasp_data, input_point_index
from dexlite_core.model.encoding import decode_pose, encode_pose
from dexlite_core.model.network import GraspCVAE, NetworkConfig
from dexlite_core.model.grasp_model import CHECKPOINT_SCHEMA, CheckpointError, GraspModel
from dexlite_core.model.sample import SampleConfig
from dexlite_core.model.train import (AdaptConfig, DecoderRows, LossConfig, TrainConfig, adapt_decoder, evaluate, losses,
                                      reconstruction_errors, train)
from dexlite_core.objects.store import load_object_set

TINY_NET = NetworkConfig(local_dim=32, global_dim=64, hidden=64, latent=8)


def synthetic_table(objects, n_per=24, seed=0) -> GraspTable:
    """Palms 7 cm out facing each object's centre, fingers towards +z as far as the approach
    allows: the pose is a function of where the palm points, so it can be learned."""
    g = torch.Generator().manual_seed(seed)
    n = n_per * len(objects)
    y = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)  # palm normal is -y
    z = torch.nn.functional.normalize(torch.tensor([0.0, 0.0, 1.0]) - y[:, 2:] * y, dim=-1)
    rot = torch.stack([torch.linalg.cross(y, z, dim=-1), y, z], dim=-1)
    joints = torch.tensor(CANONICAL_JOINTS).expand(n, 22).clone()
    codes = np.repeat(objects.codes, n_per)
    return GraspTable.from_poses(codes, np.full(n, 0.07), np.tile(np.arange(n_per), len(objects)), "optimize",
                                 HandPose(0.07 * y, rot, joints))


@pytest.fixture(scope="module")
def data(small_objects):
    objects = load_object_set(small_objects)
    index = input_point_index(objects, 128)
    table = synthetic_table(objects)
    train_rows, val_rows = table.select(table.grasp_id % 4 != 0), table.select(table.grasp_id % 4 == 0)
    return grasp_data(train_rows, objects, index), grasp_data(val_rows, objects, index)


def test_pose_encoding_round_trips(data):
    train_data, _ = data
    pose = decode_pose(train_data.pose, train_data.anchor_point)
    again = encode_pose(pose, train_data.anchor_point)
    torch.testing.assert_close(again, train_data.pose, atol=1e-5, rtol=1e-5)


def test_anchor_lies_in_front_of_the_palm(data):
    train_data, _ = data
    pose = decode_pose(train_data.pose, train_data.anchor_point)
    rel = train_data.anchor_point - pose.wrist_pos
    assert ((rel * -pose.wrist_rot[:, :, 1]).sum(-1) > 0).float().mean() > 0.95


@pytest.mark.parametrize("term", ["E_fc", "E_dis", "E_pen", "E_spen", "E_joints"])
def test_every_energy_reaches_translation_rotation_and_joints(data, term):
    train_data, _ = data
    config = TrainConfig(network=TINY_NET, loss=LossConfig(energy_scale=0.1))
    torch.manual_seed(0)
    model = GraspCVAE(TINY_NET)
    captured = {}
    decode = model.decode

    def keep(z, cond):
        out = decode(z, cond)
        out.retain_grad()
        captured["net"] = out
        return out

    model.decode = keep
    index = torch.arange(len(train_data))
    # Push decoded joints out of their limits so that E_joints is active too.
    with torch.no_grad():
        model.decoder[-1].bias[9:] += 1.5
    out = losses(model, HandModel(), train_data, index, config, step=100, generator=torch.Generator().manual_seed(0))
    assert out[term] > 0, f"{term} is zero for this batch: the check would prove nothing"
    out[term].backward()
    grad = captured["net"].grad
    assert grad[:, 9:].abs().sum() > 0, "joints"
    if term != "E_joints":  # E_joints depends on the joints alone
        assert grad[:, :3].abs().sum() > 0, "translation"
        assert grad[:, 3:9].abs().sum() > 0, "rotation"


def test_short_training_lowers_validation_loss_and_checkpoint_round_trips(data, tmp_path):
    train_data, val_data = data
    config = TrainConfig(steps=50, eval_every=10, batch_size=32, lr=2e-3, network=TINY_NET,
                         loss=LossConfig(energy_scale=0.1, energy_warmup_steps=0, kl_warmup_steps=0))
    torch.manual_seed(config.seed)
    untrained = evaluate(GraspCVAE(TINY_NET), HandModel(), val_data, config)["total"]
    result = train(config, train_data, val_data, tmp_path / "model.pt")
    assert result.final["total"] < 0.7 * untrained
    grasp_model = GraspModel.load(tmp_path / "model.pt")
    again = evaluate(grasp_model.network, HandModel(), val_data, config)["total"]
    assert again == pytest.approx(result.final["total"], rel=1e-5)
    assert grasp_model.step == config.steps and grasp_model.n_points == config.n_points
    assert grasp_model.bank.mu.shape == (len(train_data), TINY_NET.latent) == grasp_model.bank.logvar.shape
    assert grasp_model.bank.condition.shape == (len(train_data), TINY_NET.local_dim + TINY_NET.global_dim)
    assert list(grasp_model.bank.codes) == train_data.codes() and grasp_model.refinement is None
    assert grasp_model.configs == {"train": asdict(config)} and grasp_model.val_loss == result.final["total"]
    # saved again, it reads back the same
    grasp_model.with_configs(synth={"n_per_object": 3}).save(tmp_path / "again.pt")
    reread = GraspModel.load(tmp_path / "again.pt")
    assert reread.configs["synth"] == {"n_per_object": 3} and reread.configs["train"] == asdict(config)
    for a, b in zip(reread.network.state_dict().values(), grasp_model.network.state_dict().values()):
        assert torch.equal(a, b)
    # the engine's warm start: five more steps from these weights keep their fit, five from scratch do not
    more = replace(config, steps=5)
    warm = train(more, train_data, val_data, tmp_path / "warm.pt", init=grasp_model.network)
    cold = train(more, train_data, val_data, tmp_path / "cold.pt")
    assert warm.final["total"] < 1.1 * result.final["total"] < cold.final["total"]


def test_training_fits_16_grasps(small_objects, tmp_path):
    """With a loss balance that favours reconstruction (KL 1e-4, energies off) the CVAE memorizes 16
    grasps (random joints, so the latent must carry them): posterior-mean decodings within fractions
    of a mm, degree and joint radian. Measured: 0.2 mm, 0.2 deg, 0.005 rad after 600 steps; with the
    pipeline's KL weight 0.01 2.0 mm and 0.037 rad, with energy_scale 0.1 29 mm (bench/README.md,
    "CVAE fit: diagnosis")."""
    objects = load_object_set(small_objects)
    table = synthetic_table(objects, n_per=6)
    joints = np.random.default_rng(0).uniform(JOINT_LOWER, JOINT_UPPER, (len(table), 22)).astype(np.float32)
    table = replace(table, joints=joints).select(slice(0, 16))
    data = grasp_data(table, objects, input_point_index(objects, 128))
    config = TrainConfig(steps=600, eval_every=600, batch_size=16, n_points=128, couple_joints=False,
                         network=replace(TINY_NET, hidden=256, latent=16),
                         loss=LossConfig(kl=1e-4, kl_warmup_steps=500, energy_scale=0.0))
    train(config, data, data, tmp_path / "model.pt")
    grasp_model = GraspModel.load(tmp_path / "model.pt")
    model = grasp_model.network
    errors = reconstruction_errors(model, data, couple=False)
    assert errors.translation_mm < 1.0 and errors.rotation_deg < 1.0 and errors.joints_rad < 0.02, errors
    # Pure synthesis on a training object transfers its own grasps back: each bank grasp matches
    # its own anchor best, so the samples are the grasps (in the table's row order).
    code = table.object_code[0]
    own = table.select(table.object_code == code)
    samples = grasp_model.synthesize(objects, [(code, 0.07)], SampleConfig(n_per_object=len(own)))
    gap = np.linalg.norm(samples.table.wrist_pos[:, None] - own.wrist_pos[None], axis=-1).min(axis=1)
    assert gap.max() < 0.002, gap
    # Each sample names the bank row it transfers; other_objects_only leaves an object's own grasps out.
    assert set(table.object_code[samples.transfers.source.numpy()]) == {code}
    others = grasp_model.synthesize(objects, [(code, 0.07)], SampleConfig(n_per_object=4), other_objects_only=True)
    assert code not in set(table.object_code[others.transfers.source.numpy()])
    with torch.no_grad():
        again = model.decode(grasp_model.bank.mu[others.transfers.source], others.transfers.condition)
    torch.testing.assert_close(decode_pose(again, others.transfers.anchor_point).wrist_pos,
                               torch.as_tensor(others.table.wrist_pos), atol=1e-5, rtol=0)


def test_missing_corrupt_or_older_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="missing.pt.*dvc repro train"):
        GraspModel.load(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt: not a DexLite checkpoint.*make run"):
        GraspModel.load(bad)
    older = tmp_path / "older.pt"  # the layout before the schema: no version
    torch.save({"model": GraspCVAE(TINY_NET).state_dict(), "network": asdict(TINY_NET)}, older)
    with pytest.raises(CheckpointError, match="older.pt: a checkpoint of an older DexLite.*rebuild it with `make run`"):
        GraspModel.load(older)
    damaged = tmp_path / "damaged.pt"
    torch.save({"schema": CHECKPOINT_SCHEMA, "network": asdict(TINY_NET)}, damaged)
    with pytest.raises(CheckpointError, match="damaged.pt: a damaged checkpoint.*make run"):
        GraspModel.load(damaged)


def test_torchrun_two_cpu_processes(small_objects, tmp_path, data):
    """One short epoch under torchrun with 2 processes (gloo), through the stage script."""
    from pipeline_workspace import REPO
    objects = load_object_set(small_objects)
    table = synthetic_table(objects, n_per=16)
    from dexlite_core.data.grasps import SimColumns
    write_grasps(tmp_path / "grasps.parquet", table)
    (tmp_path / "params.yaml").write_text(
        "train:\n  steps: 2\n  eval_every: 1\n  batch_size: 16\n  n_points: 64\n  device: cpu\n"
        "  network: {local_dim: 16, global_dim: 32, hidden: 32, latent: 8}\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "stages/train.py"), str(tmp_path / "grasps.parquet"), str(small_objects),
           str(tmp_path / "model"), str(tmp_path / "live"), str(tmp_path / "metrics.json")]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "model" / "model.pt").exists() and (tmp_path / "metrics.json").exists()
    assert "final val loss" in result.stdout


def test_adapt_decoder_learns_pairs_and_keeps_the_bank():
    """The decoder learns new (latent, condition) -> pose pairs next to its reconstruction; PointNet
    and encoder, hence the grasp bank, are untouched."""
    torch.manual_seed(0)
    model = GraspCVAE(TINY_NET)
    cond_dim = TINY_NET.local_dim + TINY_NET.global_dim

    def rows(n):
        return DecoderRows(torch.randn(n, TINY_NET.latent), torch.randn(n, cond_dim), torch.randn(n, 31) * 0.3)

    own, pairs = rows(16), rows(16)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("decoder.")}

    def pair_error(m):
        with torch.no_grad():
            return float(((m.decode(pairs.latent, pairs.condition) - pairs.pose) ** 2).mean())

    before = pair_error(model)
    adapt_decoder(model, own, pairs, AdaptConfig(steps=200, batch_size=16, lr=3e-3), LossConfig())
    assert pair_error(model) < 0.5 * before
    for k, v in frozen.items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0)
