"""The ``synthesize`` stage: grasps from the trained model, by pure synthesis on the test objects or by
expansion of the training grasps, each scored and given its own pre-grasp and squeeze."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dexlite_core.conventions import resolve_device
from dexlite_core.data.grasps import GraspTable, read_grasps, write_grasps
from dexlite_core.energy import with_energies
from dexlite_core.hand.model import HandModel
from dexlite_core.model.data import grasp_data, split_rows
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.sample import SampleConfig
from dexlite_core.objects.store import load_object_set, split_of
from dexlite_core.sim.stability import stable_groups
from dexlite_core.squeeze import PressConfig, with_triples


@dataclass(frozen=True)
class SynthesizeSettings:
    sample: SampleConfig
    press: PressConfig  #: each grasp's own pre-grasp and squeeze


@dataclass(frozen=True)
class SynthesizeInputs:
    checkpoint: Path  #: the refine stage's model.pt
    objects_dir: Path
    stability_dir: Path  #: pure synthesis: which test objects and scales are stable
    filtered: Path  #: expansion: the filter stage's passed grasps


def run(settings: SynthesizeSettings, inputs: SynthesizeInputs, out_path: Path, decoded_path: Path) -> dict:
    """Pure synthesis on every stable test object and scale (refined when the checkpoint has a refiner;
    ``decoded_path``: the same grasps before it), or expansion of the training grasps (``decoded_path``
    then holds them too). Two files, not a folder: the postopt stage writes beside them in data/synth."""
    config, press, objects_dir = settings.sample, settings.press, inputs.objects_dir
    device = resolve_device(config.device)
    model = GraspModel.load(inputs.checkpoint, device)
    hand = HandModel(device=device)
    if config.mode == "pure":
        groups = stable_groups(objects_dir, inputs.stability_dir, ("test",))
        objects = load_object_set(objects_dir, sorted({c for c, _ in groups}), device=device)
        samples = model.synthesize(objects, groups, config)
    else:
        training = split_rows(read_grasps(inputs.filtered), split_of(objects_dir), "train")
        objects = load_object_set(objects_dir, sorted(set(training.object_code)), device=device)
        samples = model.expand(grasp_data(training, objects, model.point_index(objects)), config)
    def scored(grasps: GraspTable) -> GraspTable:
        return with_triples(with_energies(grasps, hand, objects, device), hand, objects, press)

    table = scored(samples.table)
    write_grasps(out_path, table)
    write_grasps(decoded_path, table if samples.decoded is None else scored(samples.decoded))
    return {"n_grasps": len(table), "n_objects": len(set(table.object_code)), "mode": config.mode,
            "sample_grasps_per_s": len(table) / max(samples.seconds, 1e-9)}
