"""Run the grasp tests over a grasp table, grouped by object and scale, on a process pool or Ray."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dexlite_core.conventions import COUPLED_PAIRS, COUPLING_J0_COEF, COUPLING_TOLERANCE, coupled_j0
from dexlite_core.data.grasps import GraspTable, SimColumns
from dexlite_core.objects.store import read_pieces
from dexlite_core.parallel import ParallelConfig, parallel_map
from dexlite_core.sim.dgb import DgbSimulator, DgbTestConfig, PregraspSqueeze, replay_joints
from dexlite_core.sim.grasp import GraspSimulator, GraspTestConfig, TestOutcome

TESTS = ("lift", "six_dir", "dgb")


@dataclass(frozen=True)
class SimConfig:
    tests: tuple[str, ...] = ("dgb",)  #: tests a grasp must pass (dgb, lift, six_dir)
    grasp: GraspTestConfig = field(default_factory=GraspTestConfig)
    dgb: DgbTestConfig = field(default_factory=DgbTestConfig)  #: the DexGraspBench-like test
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    chunk: int = 64  #: grasps per work item (each item compiles its scene once)

    def __post_init__(self) -> None:
        if not self.tests or any(t not in TESTS for t in self.tests):
            raise ValueError(f"tests must be a non-empty subset of {TESTS}, got {self.tests}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {self.chunk}")


@dataclass(frozen=True)
class _Item:
    """Grasps of one object at one scale: rows (index into the table) and their poses."""

    code: str
    scale: float
    rows: np.ndarray  #: (n,) int
    wrist_pos: np.ndarray  #: (n, 3)
    wrist_quat: np.ndarray  #: (n, 4)
    joints: np.ndarray  #: (n, 22)
    pregrasp: np.ndarray  #: (n, 22), for the DexGraspBench-like test
    squeeze: np.ndarray  #: (n, 22)


@dataclass(frozen=True)
class _Worker:
    objects_dir: Path
    tests: tuple[str, ...]
    config: GraspTestConfig
    dgb: DgbTestConfig

    def __call__(self, item: _Item) -> list[dict[str, TestOutcome]]:
        folder = Path(self.objects_dir) / item.code
        pieces, solid = read_pieces(folder / "decomposed.obj"), read_pieces(folder / "mesh.obj")[0]
        sims = {}
        if set(self.tests) - {"dgb"}:
            sims.update(dict.fromkeys(set(self.tests) - {"dgb"}, GraspSimulator(pieces, solid, item.scale, self.config)))
        if "dgb" in self.tests:
            sims["dgb"] = DgbSimulator(pieces, solid, item.scale, self.dgb)
        out = []
        for p, q, j, pre, squeeze in zip(item.wrist_pos.astype(float), item.wrist_quat.astype(float),
                                         item.joints.astype(float), item.pregrasp, item.squeeze):
            out.append({t: sims[t].dgb(p, q, j, pre, squeeze) if t == "dgb" else getattr(sims[t], t)(p, q, j)
                        for t in self.tests})
        return out


def _items(table: GraspTable, chunk: int, stages: PregraspSqueeze) -> list[_Item]:
    items = []
    pre, squeeze = replay_joints(table, stages)
    keys = sorted(set(zip(table.object_code, table.scale.tolist())))
    for code, scale in keys:
        rows = np.flatnonzero((table.object_code == code) & (table.scale == scale))
        for start in range(0, len(rows), chunk):
            r = rows[start:start + chunk]
            items.append(_Item(code, float(scale), r, table.wrist_pos[r], table.wrist_quat[r], table.joints[r],
                               pre[r], squeeze[r]))
    return items


@dataclass(frozen=True)
class SimRun:
    table: GraspTable  #: with its simulation columns filled
    passed: dict[str, np.ndarray]  #: test name -> (N,) bool


def simulate(table: GraspTable, objects_dir: Path, config: SimConfig, desc: str | None = "simulating") -> SimRun:
    """Run the tests on every grasp. A grasp succeeds when every test in ``config.tests``
    passes; its fail reason names the first failing test (``lift:dropped``)."""
    items = _items(table, config.chunk, config.dgb.stages)
    results = parallel_map(_Worker(Path(objects_dir), config.tests, config.grasp, config.dgb), items, config.parallel, desc=desc)
    n = len(table)
    success = np.zeros(n, bool)
    dirs = np.full(n, -1, np.int8)
    disp, rot, depth = (np.full(n, np.nan, np.float32) for _ in range(3))
    reason = np.full(n, "", dtype=object)
    passed = {t: np.zeros(n, bool) for t in config.tests}
    for item, outcomes in zip(items, results):
        for row, by_test in zip(item.rows, outcomes):
            for t, o in by_test.items():
                passed[t][row] = o.success
            failed = [f"{t}:{o.reason}" for t, o in by_test.items() if not o.success]
            first = next(iter(by_test.values()))
            success[row] = not failed
            reason[row] = failed[0] if failed else ""
            disp[row], rot[row], depth[row] = first.obj_disp, first.obj_rot, first.penetration
            if "six_dir" in by_test:
                dirs[row] = by_test["six_dir"].dirs_passed
    return SimRun(table.with_sim(SimColumns(success, dirs, disp, rot, depth, reason)), passed)


def coupling_violation(table: GraspTable) -> float:
    """Share of grasps whose J0 is farther from the tendon's value than the tendon allows."""
    tolerance = COUPLING_TOLERANCE / COUPLING_J0_COEF
    off = np.zeros(len(table), bool)
    for j1, j0 in COUPLED_PAIRS:
        off |= np.abs(table.joints[:, j0] - coupled_j0(table.joints[:, j1])) > tolerance
    return float(off.mean()) if len(table) else 0.0
