"""Grasps for any mesh a user hands us: the library behind ``dexlite grasp``.

The mesh is repaired, normalized and precomputed like a catalog object (in a worker process),
the trained CVAE samples candidates, post-optimization improves them and keeps the best, and the
simulator may judge them, all with the settings the pipeline used (stored in the checkpoint).
Poses are in the mesh's frame moved to its bounding-box centre; the table's ``scale`` is the
object's bounding radius x 1.03 (the catalog's convention; the centre is reported).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dexlite_core.conventions import resolve_device
from dexlite_core.data.grasps import GraspTable
from dexlite_core.energy import with_energies
from dexlite_core.hand.model import HandModel
from dexlite_core.model.grasp_model import GraspModel
from dexlite_core.model.sample import SampleConfig
from dexlite_core.objects.mesh import NORMALIZE_MARGIN, MeshError, load_mesh, normalize, repair
from dexlite_core.objects.object_set import ObjectSet
from dexlite_core.objects.store import BuildJob, GeometrySpec, build_object, load_geometry
from dexlite_core.optimize.postopt import PostOptConfig, keep_lowest_energy, post_optimize
from dexlite_core.parallel import ParallelConfig, parallel_map
from dexlite_core.params import build
from dexlite_core.sim.runner import SimConfig, simulate
from dexlite_core.squeeze import PressConfig, with_triples

#: A mesh whose bounding radius (metres, as read) is outside this range needs --scale.
PLAUSIBLE_RADIUS = (0.02, 0.3)
#: What ``simulate`` runs: the DexGraspBench-like test, then ours at friction 2.0 (the evaluate stage's).
TESTS = ("dgb", "lift", "six_dir")


@dataclass(frozen=True)
class GraspSettings:
    """How grasps are sampled, post-optimized and simulated: the pipeline's own, as its checkpoint stores
    them under params.yaml's section names (``synth``, ``postopt``, ``sim``, ``press``)."""

    sample: SampleConfig = field(default_factory=SampleConfig)
    postopt: PostOptConfig = field(default_factory=PostOptConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    press: PressConfig = field(default_factory=PressConfig)  #: each grasp's own pre-grasp and squeeze

    @staticmethod
    def of(sections: Mapping) -> "GraspSettings":
        """From params-like ``sections``; a missing section keeps the defaults (params.yaml's values)."""
        sim = build(SimConfig, sections.get("sim"), "sim")
        press = {**(sections.get("press") or {}), "kp": sim.dgb.actuator_kp}  # the fingers that replay the grasp
        return GraspSettings(build(SampleConfig, sections.get("synth"), "synth"),
                             build(PostOptConfig, sections.get("postopt"), "postopt"), sim,
                             build(PressConfig, press, "press"))

    def success_lines(self, passed: Mapping[str, np.ndarray]) -> list[str]:
        """Each success figure of ``simulate`` with its protocol."""
        ours = passed["lift"] & passed["six_dir"]
        return [f"{passed['dgb'].mean():.0%} passed the DexGraspBench-like test (friction {self.sim.dgb.friction:g}, "
                "each grasp replayed with its own pre-grasp and squeeze)",
                f"{ours.mean():.0%} passed our MuJoCo lift and six-direction tests (friction "
                f"{self.sim.grasp.object.friction:g})"]


@dataclass(frozen=True)
class MeshGraspRequest:
    mesh: Path
    checkpoint: Path
    n: int = 64
    radius: float | None = None  #: bounding radius in metres; None: the mesh's own size, read as metres
    device: str = "auto"
    postopt: bool = True
    oversample: int = 4  #: candidates per kept grasp when post-optimizing
    simulate: bool = False
    seed: int = 0
    params: Mapping = field(default_factory=dict)  #: params.yaml sections that replace the checkpoint's


@dataclass(frozen=True)
class MeshGrasps:
    table: GraspTable
    center: np.ndarray  #: (3,) bounding-box centre of the mesh, in its own coordinates
    scale: float  #: the table's scale: bounding radius x 1.03
    settings: GraspSettings
    stored_settings: bool  #: whether the checkpoint stored the pipeline's settings (the train stage's alone does not)
    passed: Mapping[str, np.ndarray] = field(default_factory=dict)  #: test -> (N,) bool, rows as ``table``; {} unsimulated

    @property
    def radius(self) -> float:
        """The object's bounding radius in metres."""
        return self.scale / NORMALIZE_MARGIN


@dataclass(frozen=True)
class _Build:
    out_dir: Path

    def __call__(self, job: BuildJob):
        return build_object(job, GeometrySpec(), self.out_dir)


def prepare(mesh: Path, work_dir: Path) -> tuple[str, dict]:
    """Repair and precompute the mesh into ``work_dir`` (a worker process keeps point-cloud-utils'
    OpenMP threads away from torch's). Raises MeshError with the cause."""
    code = Path(mesh).stem
    load_mesh(mesh)  # fail fast, here, on unreadable files
    (result,) = parallel_map(_Build(work_dir), [BuildJob(code, "user", "user", str(mesh))], ParallelConfig(n_workers=1))
    if result.row is None:
        raise MeshError(result.reason)
    return code, result.row


def grasp_mesh(request: MeshGraspRequest, work_dir: Path) -> MeshGrasps:
    device = resolve_device(request.device)
    model = GraspModel.load(request.checkpoint, device)  # before the costly mesh work
    settings = GraspSettings.of({**model.configs, **request.params})
    code, row = prepare(request.mesh, work_dir)
    radius = request.radius if request.radius is not None else row["file_radius"] / NORMALIZE_MARGIN
    if not PLAUSIBLE_RADIUS[0] <= radius <= PLAUSIBLE_RADIUS[1]:
        raise MeshError(f"{request.mesh}: read as metres its bounding radius is {radius:.3g} m, not a hand-sized "
                        f"object; pass --scale with the size you want (e.g. --scale 0.06)")
    scale = radius * NORMALIZE_MARGIN
    center = normalize(repair(load_mesh(request.mesh), str(request.mesh))[0]).center
    objects = ObjectSet.from_geometry([load_geometry(work_dir, code, row["sdf_extent"])], device=device)
    hand = HandModel(device=device)
    n_candidates = request.n * (request.oversample if request.postopt else 1)
    samples = model.synthesize(objects, [(code, float(scale))], replace(settings.sample, mode="pure",
                                                                        n_per_object=n_candidates, seed=request.seed,
                                                                        device=str(device)))
    table = samples.table
    if request.postopt:
        config = replace(settings.postopt, device=str(device), seed=request.seed)
        result = post_optimize(hand, objects, table, config, settings.press)
        table = keep_lowest_energy(result.table, result.energy, request.n)
    else:
        table = with_triples(with_energies(table, hand, objects, device), hand, objects, settings.press)
    table, passed = table.sorted(), {}
    if request.simulate:
        run = simulate(table, work_dir, replace(settings.sim, tests=TESTS), desc="simulating")
        table, passed = run.table, run.passed
    return MeshGrasps(table, center, float(scale), settings, {"synth", "postopt", "sim", "press"} <= set(model.configs), passed)
