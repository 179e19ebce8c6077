"""bench/same_results.py: tables, checkpoint tensors and non-timing metrics decide; the rest does not."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("same_results", REPO / "bench" / "same_results.py")
same_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(same_results)


def make_run(root: Path, *, value: float = 0.5, weight: float = 1.0, step: int = 10, elapsed: float = 3.0,
             success: float = 0.25) -> Path:
    """A tiny fake run: a table, a checkpoint, a metrics JSON and a CSV under root/data."""
    (root / "data" / "model").mkdir(parents=True)
    (root / "data" / "metrics").mkdir()
    pd.DataFrame({"code": ["a", "b"], "x": [value, float("nan")], "n": [1, 2]}).to_parquet(
        root / "data" / "model" / "grasps.parquet")
    torch.save({"model": {"w": torch.full((2, 3), weight), "b": [torch.zeros(2)]}, "step": step},
               root / "data" / "model" / "model.pt")
    metrics = {"train_seconds": elapsed, "eval": {"success": success, "samples_per_s": 100.0 / elapsed}}
    (root / "data" / "metrics" / "train.json").write_text(json.dumps(metrics))
    (root / "data" / "model" / "rounds.csv").write_text("round,success,train_seconds\n0,0.5000,%s\n" % elapsed)
    return root


def compare(tmp_path: Path, capsys, **changes) -> tuple[int, str]:
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b", **changes)
    code = same_results.main([str(a), str(b)])
    return code, capsys.readouterr().out


def test_identical_runs_are_the_same(tmp_path, capsys):
    code, out = compare(tmp_path, capsys)
    assert code == 0 and out.startswith("SAME: 2 tables, 1 checkpoints, 1 metric files"), out


@pytest.mark.parametrize("changes, path", [({"value": 0.75}, "data/model/grasps.parquet"),
                                           ({"weight": 2.0}, "data/model/model.pt"),
                                           ({"success": 0.5}, "data/metrics/train.json")])
def test_a_changed_result_is_named(tmp_path, capsys, changes, path):
    code, out = compare(tmp_path, capsys, **changes)
    assert code == 1 and f"DIFFERENT: {path}:" in out, out
    assert out.count("DIFFERENT") == 1


def test_table_difference_names_column_and_row(tmp_path, capsys):
    _, out = compare(tmp_path, capsys, value=0.75)
    assert "column x, row 0: 0.5 vs 0.75" in out


@pytest.mark.parametrize("changes", [{"elapsed": 7.0}, {"step": 11}])
def test_timing_keys_and_non_tensor_entries_do_not_count(tmp_path, capsys, changes):
    code, out = compare(tmp_path, capsys, **changes)
    assert code == 0 and out.startswith("SAME"), out


def test_a_file_on_one_side_only_is_a_difference(tmp_path, capsys):
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    (b / "data" / "metrics" / "extra.json").write_text("{}")
    assert same_results.main([str(a), str(b)]) == 1
    assert "DIFFERENT: data/metrics/extra.json: only in" in capsys.readouterr().out


def test_a_missing_folder_is_a_usage_error(tmp_path, capsys):
    assert same_results.main([str(make_run(tmp_path / "a")), str(tmp_path / "nowhere")]) == 2


def test_timing_rule():
    timing = ["optimize_seconds", "round_1.adapt_seconds", "throughput.sample_grasps_per_s", "postopt_ms_per_grasp",
              "samples_per_s", "elapsed", "step_time", "duration_minutes", "timestamp"]
    other = ["accepted", "dgb_success", "heldout_n", "penetration_mean_mm", "val_E_spen", "fail_reasons.lift:slipped",
             "step", "pass_rate"]
    assert all(same_results.is_timing_key(k) for k in timing)
    assert not any(same_results.is_timing_key(k) for k in other)
