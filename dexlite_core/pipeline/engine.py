"""The ``engine`` stage, Dex1B's data engine: rounds of expand -> post-optimize -> filter -> merge -> retrain.

Each round r (1..``rounds``) starts from the previous round's model and training table (round 0:
the train stage's model and the filter stage's grasps):

1. expand: every grasp of the table on a training object is encoded and decoded ``expansions``
   times, its posterior mean plus noise, at its own or a neighbouring anchor
   (:func:`dexlite_core.model.sample.expand`);
2. post-optimize every candidate (the postopt stage's descent), then keep the ``keep_fraction`` of
   lowest post-optimization energy per object and scale;
3. simulate those with the filter stage's tests; the ones that pass get fresh grasp ids (after the
   table's largest) and source ``expand``;
4. merge them into the table;
5. retrain on the merged table with the train stage's config: from scratch (same seed, same step
   budget), so a round's model depends only on its table and the train params, or, with
   ``retrain_steps`` > 0, continuing from the previous round's model for that many steps;
5b. adapt (``adapt.transfers_per_object`` > 0): transfer every training object's best matches from
   the other objects' grasps, post-optimize, simulate, and train the decoder on the pairs that pass
   (:func:`adapt`): without targets the decoder returns a rigid copy of the grasp it transfers;
6. measure held-out success: pure samples on every stable object and scale of ``check_split``
   (the validation objects: never trained on, and not the test objects that evaluate reports),
   post-optimized and simulated; the same draws every round (common random numbers), so rounds
   differ only by the model.

Every draw is seeded by round (:func:`dexlite_core.seeding.stable_seed`), so a round re-run gives
the same bytes. Outputs under ``out_dir``: ``round_<r>/`` with ``candidates.parquet`` (every
post-optimized candidate), ``simulated.parquet`` (the kept ones with their results), ``passed.parquet``,
``train.parquet`` (the merged table), ``adapt.parquet`` (the adapt step's simulated transfers),
``model.pt`` and ``live/`` (dvclive logs); ``model.pt``
(the last round's, or with ``rounds`` 0 the train stage's, byte for byte) and ``rounds.csv`` (one row
per round, none with ``rounds`` 0).
"""
from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from dexlite_core.conventions import resolve_device
from dexlite_core.data.files import atomic_path, write_bytes
from dexlite_core.data.grasps import GraspTable, read_grasps, write_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import grasp_data, split_rows
from dexlite_core.model.encoding import encode_pose
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.sample import SampleConfig
from dexlite_core.model.train import AdaptConfig, DecoderRows, TrainConfig, adapt_decoder
from dexlite_core.objects.object_set import ObjectSet
from dexlite_core.objects.store import load_object_set, split_of
from dexlite_core.optimize.postopt import PostOptConfig, keep_lowest_energy
from dexlite_core.pipeline import train as train_stage
from dexlite_core.pipeline.passers import find_passers
from dexlite_core.pipeline.train import TrainInputs, train_val_rows
from dexlite_core.seeding import stable_seed
from dexlite_core.sim.runner import SimConfig
from dexlite_core.sim.stability import stable_groups
from dexlite_core.squeeze import PressConfig


@dataclass(frozen=True)
class EngineConfig:
    rounds: int = 1  #: expand -> post-optimize -> filter -> merge -> retrain rounds; 0 = off (model passed through)
    expansions: int = 4  #: decodings per training grasp and round
    temperature: float = 1.0  #: std of the noise added to the posterior mean
    neighbour_fraction: float = 0.5  #: share of decodings moved to one of the 8 nearest network points
    keep_fraction: float = 0.5  #: share of each (object, scale)'s post-optimized candidates, lowest energy first,
    #: simulated
    check_split: str = "val"  #: objects of the held-out check: val (unseen in training, so the rounds can be
    #: chosen on it without touching the test objects) or test
    heldout_per_object: int = 32  #: held-out check: pure samples per stable object of check_split and scale
    heldout_keep: int = 8  #: of those, the lowest-energy per object and scale (heldout_kept_success)
    batch_size: int = 4096  #: network decodings per batch
    retrain_steps: int = 2000  #: 0: each round retrains from scratch (train.steps); > 0: continues from the previous model
    seed: int = 0
    device: str = "auto"  #: sampling (training and post-optimization use their own sections' devices)
    adapt: AdaptConfig = field(default_factory=AdaptConfig)  #: after each retraining (transfers_per_object 0: off)

    def __post_init__(self) -> None:
        if min(self.rounds, self.retrain_steps) < 0 or self.expansions < 1 or self.batch_size < 1:
            raise ValueError("need rounds >= 0, retrain_steps >= 0, expansions >= 1 and batch_size >= 1")
        if self.temperature < 0 or not 0 <= self.neighbour_fraction <= 1 or not 0 < self.keep_fraction <= 1:
            raise ValueError("need temperature >= 0, neighbour_fraction in [0, 1] and keep_fraction in (0, 1]")
        if self.check_split not in ("val", "test"):
            raise ValueError(f"check_split must be val or test, got {self.check_split!r}")
        if self.heldout_per_object < 1 or not 1 <= self.heldout_keep <= self.heldout_per_object:
            raise ValueError("need heldout_per_object >= 1 and 1 <= heldout_keep <= heldout_per_object")


@dataclass(frozen=True)
class EngineInputs:
    checkpoint: Path  #: the train stage's model.pt
    filtered: Path  #: the filter stage's passed grasps: the round-0 training table
    objects_dir: Path
    stability_dir: Path  #: which objects and scales of the check split are stable (held-out check)


@dataclass(frozen=True)
class SharedConfigs:
    """The other stages' settings the engine re-uses, as those stages read them."""

    train: TrainConfig  #: retraining, as the train stage
    postopt: PostOptConfig  #: the descent (its keep_per_object is not used: see keep_fraction)
    sim: SimConfig  #: with the filter stage's tests
    press: PressConfig = field(default_factory=PressConfig)  #: each post-optimized grasp's own pre-grasp and squeeze
    synth_temperature: float = 0.0  #: held-out pure samples: the synthesize stage's temperature


@dataclass(frozen=True)
class EngineSettings:
    engine: EngineConfig
    shared: SharedConfigs


def merge(table: GraspTable, passed: GraspTable) -> GraspTable:
    """``table`` plus ``passed`` (source ``expand``, ids after ``table``'s largest, in row order)."""
    ids = int(table.grasp_id.max()) + 1 + np.arange(len(passed), dtype=np.int64)
    new = replace(passed, grasp_id=ids, source=np.full(len(passed), "expand", dtype=object))
    return GraspTable.concat([table, new]).sorted()


def heldout_success(checkpoint: Path, hand: HandModel, objects: ObjectSet, groups: list[tuple[str, float]],
                    config: EngineConfig, shared: SharedConfigs, objects_dir: Path) -> dict[str, float]:
    """Pure samples of ``checkpoint`` on ``groups``, post-optimized and simulated: the success of all of
    them and of the ``heldout_keep`` of lowest post-optimization energy per object and scale. Seeds do not depend on the
    round, so every round is measured on the same draws."""
    sample = SampleConfig(mode="pure", n_per_object=config.heldout_per_object, temperature=shared.synth_temperature,
                          batch_size=config.batch_size, seed=stable_seed(config.seed, "engine", "heldout"))
    raw = GraspModel.load(checkpoint, objects.device).synthesize(objects, groups, sample).table
    found = find_passers(hand, objects, raw, shared, objects_dir, ("engine", "heldout"), "engine: held-out")
    kept = keep_lowest_energy(found.simulated, found.optimized.energy, config.heldout_keep)  # rows as simulated
    return {"heldout_success": float(found.passed.mean()),
            "heldout_kept_success": float(kept.sim.success.mean()), "heldout_n": len(found.simulated)}


def run_round(r: int, checkpoint: Path, table: GraspTable, split_of: dict[str, str], hand: HandModel,
              objects: ObjectSet, config: EngineConfig, shared: SharedConfigs, inputs: EngineInputs,
              round_dir: Path) -> tuple[GraspTable, dict]:
    """Expand ``table``'s training grasps with ``checkpoint``, post-optimize, simulate, merge, retrain into
    ``round_dir/model.pt``; returns the merged table and the round's figures (held-out check excluded)."""
    start = time.perf_counter()
    model = GraspModel.load(checkpoint, objects.device)
    data = grasp_data(split_rows(table, split_of, "train"), objects, model.point_index(objects))
    sample = SampleConfig(mode="expand", n_per_object=config.expansions, temperature=config.temperature,
                          neighbour_fraction=config.neighbour_fraction, batch_size=config.batch_size,
                          seed=stable_seed(config.seed, "engine", r))
    candidates = model.expand(data, sample).table
    found = find_passers(hand, objects, candidates, shared, inputs.objects_dir, ("engine", r), f"engine: round {r}",
                         config.keep_fraction)
    write_grasps(round_dir / "candidates.parquet", found.optimized.table)
    write_grasps(round_dir / "simulated.parquet", found.simulated)
    passed = found.simulated.select(found.passed)
    write_grasps(round_dir / "passed.parquet", passed)
    merged = merge(table, passed) if len(passed) else table
    write_grasps(round_dir / "train.parquet", merged)
    expand_seconds = time.perf_counter() - start
    warm = config.retrain_steps > 0
    trained = train_stage.run(replace(shared.train, steps=config.retrain_steps) if warm else shared.train,
                              TrainInputs(round_dir / "train.parquet", inputs.objects_dir,
                                          init=checkpoint if warm else None), round_dir, round_dir / "live")
    figures = {
        "candidates": len(found.optimized.table), "simulated": len(found.simulated), "passed": len(passed),
        "pass_rate": float(found.passed.mean()) if len(found.simulated) else 0.0,
        "training_set_size": len(split_rows(merged, split_of, "train")), "val_total": trained["val_total"],
        "expand_filter_seconds": expand_seconds, "train_seconds": time.perf_counter() - start - expand_seconds,
    }
    if config.adapt.transfers_per_object > 0:
        start = time.perf_counter()
        bank_rows, _ = train_val_rows(merged, split_of, round_dir / "train.parquet")
        figures.update(adapt(r, round_dir / "model.pt", bank_rows, hand, objects, config, shared, inputs, round_dir))
        figures["adapt_seconds"] = time.perf_counter() - start
    return merged, figures


def adapt(r: int, checkpoint: Path, training: GraspTable, hand: HandModel, objects: ObjectSet, config: EngineConfig,
          shared: SharedConfigs, inputs: EngineInputs, round_dir: Path) -> dict:
    """The decoder of ``checkpoint`` (whose grasp bank holds the rows of ``training``) taught to
    adapt transferred grasps, in place: each training object and scale gets its
    ``transfers_per_object`` best matches from the *other* objects' grasps, as pure synthesis
    transfers them to a new object; they are post-optimized and simulated (``adapt.parquet``); each
    one that passes is a pair (bank latent, the condition it was decoded at) -> that grasp, which
    the decoder then learns next to its reconstruction (:func:`dexlite_core.model.train.adapt_decoder`)."""
    model = GraspModel.load(checkpoint, objects.device)
    data = grasp_data(training, objects, model.point_index(objects))
    if not np.array_equal(model.bank.codes, training.object_code):
        raise ValueError(f"{checkpoint}: its grasp bank ({len(model.bank)} grasps) is not the round's training table "
                         f"({len(data)}); rerun the engine stage (`dvc repro engine`)")
    groups = sorted(set(zip(training.object_code, training.scale.tolist())))
    sample = SampleConfig(mode="pure", n_per_object=config.adapt.transfers_per_object, batch_size=config.batch_size,
                          seed=stable_seed(config.seed, "engine", "adapt", r))
    samples = model.synthesize(objects, groups, sample, other_objects_only=True)
    found = find_passers(hand, objects, samples.table, shared, inputs.objects_dir, ("engine", "adapt", r),
                         f"engine: round {r}: adapt")
    write_grasps(round_dir / "adapt.parquet", found.simulated)
    passed = torch.as_tensor(found.passed, device=objects.device)
    figures = {"adapt_transfers": len(found.simulated), "adapt_pairs": int(passed.sum())}
    if figures["adapt_pairs"] == 0:
        return figures
    transfers, bank = samples.transfers, model.bank.to(objects.device)
    pairs = DecoderRows(bank.mu[transfers.source[passed]], transfers.condition[passed],
                        encode_pose(found.optimized.table.poses(device=objects.device).index(passed),
                                    transfers.anchor_point[passed]))
    own = DecoderRows(bank.mu, bank.condition, data.pose)
    adapted = adapt_decoder(model.network, own, pairs, config.adapt, shared.train.loss)
    replace(model, network=adapted).save(checkpoint)
    return figures


def run(settings: EngineSettings, inputs: EngineInputs, out_dir: Path) -> dict:
    """Run ``settings.engine.rounds`` rounds (module docstring); returns the metrics: ``rounds`` and, per round,
    ``round_<r>`` figures (round 0: the input model's training-set size and held-out success)."""
    config, shared = settings.engine, settings.shared
    out_dir = Path(out_dir)
    if config.rounds == 0:
        write_bytes(out_dir / "model.pt", Path(inputs.checkpoint).read_bytes())
        _write_rounds_csv(out_dir / "rounds.csv", [])  # header only: `dvc plots show` still finds the file
        return {"rounds": 0}
    device = resolve_device(config.device)
    splits = split_of(inputs.objects_dir)
    table = read_grasps(inputs.filtered)
    try:
        groups = stable_groups(inputs.objects_dir, inputs.stability_dir, (config.check_split,))  # the held-out check
    except ValueError as exc:
        raise ValueError(f"engine.check_split {config.check_split}: {exc} (split val needs objects.val_fraction > 0; "
                         "or set engine.check_split: test)") from exc
    if len(split_rows(table, splits, "train")) == 0:
        raise ValueError(f"{inputs.filtered}: no grasps on training objects to expand")
    objects = load_object_set(inputs.objects_dir, sorted(set(table.object_code) | {c for c, _ in groups}),
                              device=device)
    hand = HandModel(device=device)
    start = time.perf_counter()
    metrics: dict = {"rounds": config.rounds, "round_0": {
        "training_set_size": len(split_rows(table, splits, "train")),
        **heldout_success(inputs.checkpoint, hand, objects, groups, config, shared, inputs.objects_dir),
        "heldout_seconds": time.perf_counter() - start}}
    checkpoint = Path(inputs.checkpoint)
    for r in range(1, config.rounds + 1):
        round_dir = out_dir / f"round_{r}"
        table, figures = run_round(r, checkpoint, table, splits, hand, objects, config, shared, inputs, round_dir)
        checkpoint = round_dir / "model.pt"
        start = time.perf_counter()
        figures.update(heldout_success(checkpoint, hand, objects, groups, config, shared, inputs.objects_dir))
        figures["heldout_seconds"] = time.perf_counter() - start
        metrics[f"round_{r}"] = figures
        print(f"engine: round {r}: {figures['passed']}/{figures['simulated']} of {figures['candidates']} candidates "
              f"passed {list(shared.sim.tests)} ({figures['pass_rate']:.1%}); "
              f"training set {figures['training_set_size']}; "
              f"held-out success {figures['heldout_success']:.1%} (kept {figures['heldout_kept_success']:.1%})")
    write_bytes(out_dir / "model.pt", checkpoint.read_bytes())
    _write_rounds_csv(out_dir / "rounds.csv", [metrics[f"round_{r}"] for r in range(config.rounds + 1)])
    return metrics


def _write_rounds_csv(path: Path, rounds: list[dict]) -> None:
    """One row per round (0: before the engine) for `dvc plots show`: training-set size, held-out success."""
    columns = ["training_set_size", "heldout_success", "heldout_kept_success"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["round", *columns])
        for r, row in enumerate(rounds):
            writer.writerow([r, *(row[c] for c in columns)])
