"""Stages run by DVC on a tiny configuration; same params give the same bytes."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from dexlite_core.data.grasps import read_grasps
from dexlite_core.pipeline.evaluate import SETS
from pipeline_workspace import dvc


@pytest.fixture(scope="module")
def workspace(pipeline):
    return pipeline


def test_curate_stage_writes_grasps_and_metrics(workspace):
    table = read_grasps(workspace / "data/curated/grasps.parquet")
    metrics = json.loads((workspace / "data/metrics/curate.json").read_text())
    assert metrics["attempts"] == 16 * 2  # two train objects (one held out as test), one scale
    assert metrics["n_grasps"] == len(table) and set(table.source) <= {"optimize"}
    assert 0 <= metrics["acceptance_rate"] <= 1
    assert set(table.object_code) <= {"proc-box-brick", "proc-cyl-can", "pyb-duck"}
    shown = dvc(workspace, "metrics", "show").stdout
    assert "acceptance_rate" in shown


def test_curate_with_the_annealed_baseline_presses_its_triples(workspace, tmp_path):
    """curate.optimizer anneal (the baseline): its grasps get the pressed pre-grasp and squeeze."""
    from dexlite_core.params import build
    from dexlite_core.pipeline.curate import CurateConfig, CurateInputs, CurateSettings, run

    params = yaml.safe_load((workspace / "params.yaml").read_text())["curate"]
    baseline = build(CurateConfig, {"optimizer": "anneal", "optimize": params["optimize"]}, "curate")
    inputs = CurateInputs(workspace / "data/objects", workspace / "data/stability")
    metrics = run(CurateSettings(baseline), inputs, tmp_path)
    table = read_grasps(tmp_path / "grasps.parquet")
    assert metrics["attempts"] == 16 * 2 and metrics["accepted"] == len(table) > 0 and "pruned" in metrics
    assert not np.isnan(table.pregrasp).any() and not np.isnan(table.squeeze).any()
    with pytest.raises(ValueError, match="curate.optimizer must be one of"):
        CurateConfig(optimizer="bodex")


def test_same_params_give_identical_bytes(workspace):
    """Every stage up to post-optimization, training included, re-run from scratch."""
    tables = ["data/curated/grasps.parquet", "data/filtered/all.parquet", "data/model/model.pt",
              "data/engine/round_1/candidates.parquet", "data/engine/round_1/simulated.parquet",
              "data/engine/round_1/train.parquet", "data/engine/model.pt", "data/refine/pairs.parquet",
              "data/refine/model.pt", "data/synth/decoded.parquet", "data/synth/raw.parquet",
              "data/synth/postopt_all.parquet", "data/synth/postopt.parquet"]
    first = {t: (workspace / t).read_bytes() for t in tables}
    dvc(workspace, "repro", "--force", "postopt")
    assert {t: (workspace / t).read_bytes() for t in tables} == first


def test_filter_stage_keeps_passed_grasps_with_results(workspace):
    tested = read_grasps(workspace / "data/filtered/all.parquet")
    passed = read_grasps(workspace / "data/filtered/grasps.parquet")
    metrics = json.loads((workspace / "data/metrics/filter.json").read_text())
    assert tested.sim is not None and len(tested) == metrics["n_tested"]
    assert len(passed) == metrics["n_passed"] == int(tested.sim.success.sum()) > 0
    assert passed.sim.success.all()
    assert sum(metrics["fail_reasons"].values()) == len(tested) - len(passed)
    # per-object rates are a plot, not metrics: `dvc exp show` stays a few columns wide
    assert "by_object" not in metrics and "by_object" not in dvc(workspace, "metrics", "show").stdout
    by_object = (workspace / "data/filtered/pass_by_object.csv").read_text().splitlines()
    assert by_object[0] == "object_code,pass_rate"
    assert {line.split(",")[0] for line in by_object[1:]} == set(tested.object_code)


def test_train_synthesize_postopt_evaluate(workspace):
    assert (workspace / "data/model/model.pt").exists()
    assert (workspace / "data/train_live/plots/metrics/train/total.tsv").exists()
    raw = read_grasps(workspace / "data/synth/raw.parquet")
    optimized = read_grasps(workspace / "data/synth/postopt_all.parquet")
    post = read_grasps(workspace / "data/synth/postopt.parquet")
    assert set(raw.source) == {"cvae"} and set(post.source) == set(optimized.source) == {"postopt"}
    # post-optimization changes every candidate (postopt_all) and keeps the best of each object and scale
    assert list(zip(optimized.object_code, optimized.grasp_id)) == list(zip(raw.object_code, raw.grasp_id))
    assert 0 < len(post) < len(raw)
    assert set(zip(post.object_code, post.grasp_id)) <= set(zip(raw.object_code, raw.grasp_id))


def test_engine_runs_one_round_end_to_end(workspace):
    """expand -> post-optimize -> filter -> merge -> retrain, once; synthesize reads the retrained model."""
    metrics = json.loads((workspace / "data/metrics/engine.json").read_text())
    assert metrics["rounds"] == 1
    round_keys = {"candidates", "simulated", "passed", "pass_rate", "training_set_size", "val_total",
                  "heldout_success", "heldout_kept_success", "heldout_n", "heldout_seconds",
                  "expand_filter_seconds", "train_seconds", "adapt_transfers", "adapt_pairs", "adapt_seconds"}
    assert round_keys == set(metrics["round_1"])
    assert {"training_set_size", "heldout_success", "heldout_kept_success", "heldout_n",
            "heldout_seconds"} == set(metrics["round_0"])
    for r in ("round_0", "round_1"):
        assert all(np.isfinite(v) for v in metrics[r].values()), metrics[r]
    one = metrics["round_1"]
    out = workspace / "data/engine/round_1"
    filtered = read_grasps(workspace / "data/filtered/grasps.parquet")
    candidates, simulated = read_grasps(out / "candidates.parquet"), read_grasps(out / "simulated.parquet")
    passed, merged = read_grasps(out / "passed.parquet"), read_grasps(out / "train.parquet")
    # tiny config: 2 expansions of each training grasp, half of each object's candidates simulated
    n_train = metrics["round_0"]["training_set_size"]
    assert one["candidates"] == len(candidates) == 2 * n_train and set(candidates.source) == {"postopt"}
    assert one["simulated"] == len(simulated) and 0 < len(simulated) < len(candidates)
    assert one["passed"] == len(passed) == int(simulated.sim.success.sum())
    assert one["pass_rate"] == pytest.approx(len(passed) / len(simulated))
    assert len(merged) == len(filtered) + len(passed) and one["training_set_size"] == n_train + len(passed)
    assert (merged.source == "expand").sum() == len(passed)
    assert len(set(zip(merged.object_code, merged.scale.tolist(), merged.grasp_id.tolist()))) == len(merged)
    # adapt: 2 transfers from the other objects' grasps per training object and scale, simulated
    adapted = read_grasps(out / "adapt.parquet")
    n_groups = len(set(zip(filtered.object_code, filtered.scale.tolist())))
    assert one["adapt_transfers"] == len(adapted) > 0 and one["adapt_pairs"] == int(adapted.sim.success.sum())
    assert len(adapted) <= 2 * n_groups
    assert metrics["round_0"]["heldout_n"] == one["heldout_n"] == 4  # 1 test object, 1 scale, 4 samples
    # the round continued from the train stage's model for retrain_steps (6), validated every 2 steps
    assert len((out / "live/plots/metrics/val/total.tsv").read_text().splitlines()) == 1 + 3
    assert (workspace / "data/engine/model.pt").read_bytes() == (out / "model.pt").read_bytes()
    assert (workspace / "data/engine/rounds.csv").read_text().splitlines()[0] == \
        "round,training_set_size,heldout_success,heldout_kept_success"
    shown = dvc(workspace, "metrics", "show").stdout
    assert "round_1.heldout_success" in shown and "round_1.pass_rate" in shown, shown


def test_refine_adds_a_refiner_that_synthesis_applies(workspace):
    """Pairs from transfers between the training objects, a refiner in the checkpoint, its check on the
    test object; synthesis writes the decoded grasps beside the refined ones, row for row."""
    import torch

    metrics = json.loads((workspace / "data/metrics/refine.json").read_text())
    assert set(metrics) == {"transfers", "pairs", "train_seconds", "check_lift_passes_0", "check_lift_passes_1",
                            "check_lift_passes_2"}
    pairs = read_grasps(workspace / "data/refine/pairs.parquet")
    assert metrics["transfers"] == len(pairs) > 0 and metrics["pairs"] == int(pairs.sim.success.sum()) > 0
    assert all(0 <= metrics[f"check_lift_passes_{p}"] <= 1 for p in range(3))
    checkpoint = torch.load(workspace / "data/refine/model.pt", weights_only=True)
    assert checkpoint["refiner"]["passes"] == 2 and "refiner" not in torch.load(
        workspace / "data/engine/model.pt", weights_only=True)
    decoded, raw = (read_grasps(workspace / f"data/synth/{name}.parquet") for name in ("decoded", "raw"))
    assert list(zip(decoded.object_code, decoded.grasp_id)) == list(zip(raw.object_code, raw.grasp_id))
    assert not np.allclose(decoded.wrist_pos, raw.wrist_pos)
    assert "check_lift_passes_2" in dvc(workspace, "metrics", "show").stdout


def run_engine(workspace: Path, config, out: Path) -> dict:
    """The engine stage's run on the tiny pipeline's outputs, with the library's default stage configs."""
    from dexlite_core.pipeline.engine import EngineInputs, EngineSettings, SharedConfigs, run
    from dexlite_core.model.train import TrainConfig
    from dexlite_core.optimize.postopt import PostOptConfig
    from dexlite_core.sim.runner import SimConfig

    data = workspace / "data"
    inputs = EngineInputs(data / "model/model.pt", data / "filtered/grasps.parquet", data / "objects",
                          data / "stability")
    return run(EngineSettings(config, SharedConfigs(TrainConfig(), PostOptConfig(), SimConfig())), inputs, out)


def test_engine_with_no_rounds_passes_the_model_through(workspace, tmp_path):
    from dexlite_core.pipeline.engine import EngineConfig

    assert run_engine(workspace, EngineConfig(rounds=0), tmp_path) == {"rounds": 0}
    assert (tmp_path / "model.pt").read_bytes() == (workspace / "data/model/model.pt").read_bytes()
    header = "round,training_set_size,heldout_success,heldout_kept_success"
    assert (tmp_path / "rounds.csv").read_text().splitlines() == [header]


def test_engine_check_needs_objects_of_its_split(workspace, tmp_path):
    """The tiny set has no validation objects: the default check split fails with the fix named."""
    from dexlite_core.pipeline.engine import EngineConfig

    with pytest.raises(ValueError, match="engine.check_split val.*val_fraction"):
        run_engine(workspace, EngineConfig(rounds=1), tmp_path)
    with pytest.raises(ValueError, match="check_split must be val or test"):
        EngineConfig(check_split="train")


def test_evaluate_reports_every_set_side_by_side(workspace):
    metrics = json.loads((workspace / "data/metrics/evaluate.json").read_text())
    keys = {"lift_success", "six_dir_suc1", "six_dir_suc6", "penetration_mean_mm", "penetration_max_mm",
            "contact_distance_mm", "q1", "h_mean", "pca_top3_share", "n_grasps", "dgb_success", "dgb_n",
            "dgb_no_contact"}
    assert set(SETS) == {"recon", "train_raw", "decoded", "raw", "postopt_all", "postopt", "dataset"}
    for name in SETS:
        assert keys == set(metrics[name]), name
        assert all(np.isfinite(metrics[name][k]) for k in keys), (name, metrics[name])
        assert metrics[name]["n_grasps"] > 0, name
        # the DexGraspBench-like test ran on a tiny seeded subset of every set
        assert metrics[name]["dgb_n"] == min(3, metrics[name]["n_grasps"]) and 0 <= metrics[name]["dgb_success"] <= 1
    assert np.isfinite(metrics["throughput"]["sample_grasps_per_s"]) and np.isfinite(metrics["gain_lift_points"])
    # sizes in the tiny config: 2 training objects at one scale, 1 held-out object
    filtered = read_grasps(workspace / "data/filtered/grasps.parquet")
    assert metrics["recon"]["n_grasps"] == min(6, metrics["dataset"]["n_grasps"])
    assert metrics["train_raw"]["n_grasps"] == 4 * len(set(zip(filtered.object_code, filtered.scale)))
    assert metrics["decoded"]["n_grasps"] == metrics["raw"]["n_grasps"] == metrics["postopt_all"]["n_grasps"] == 4
    recon = read_grasps(workspace / "data/eval/recon_simulated.parquet")
    dataset = read_grasps(workspace / "data/eval/dataset_simulated.parquet")
    assert set(recon.source) == {"recon"} and recon.sim is not None
    assert set(zip(recon.object_code, recon.grasp_id)) <= set(zip(dataset.object_code, dataset.grasp_id))
    shown = dvc(workspace, "metrics", "show").stdout
    assert all(f"{name}.lift_success" in shown and f"{name}.dgb_success" in shown for name in SETS), shown


def test_expansion_mode_produces_valid_rows(workspace):
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["synth"]["mode"] = "expand"
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        dvc(workspace, "repro", "synthesize")
        table = read_grasps(workspace / "data/synth/raw.parquet")
        filtered = read_grasps(workspace / "data/filtered/grasps.parquet")
        assert set(table.source) == {"expand"} and len(table) > 0
        assert set(table.object_code) <= set(filtered.object_code)
        assert np.isfinite(table.energies).all()
    finally:
        params["synth"]["mode"] = "pure"
        (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
