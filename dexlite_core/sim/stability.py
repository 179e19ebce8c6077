"""Object stability test in PyBullet: which (object, scale) pairs can rest on a table.

Each object is dropped onto a plane from a few resting orientations: its upright orientation
as authored (identity) first, then trimesh's most probable stable poses of the solid. After
``settle_seconds`` the pose is recorded; after ``test_seconds`` more the object must not have
drifted more than ``max_drift`` in XY, tilted more than ``max_tilt_deg`` or sunk through the
plane. A pair is stable when any orientation passes.

Output under the stability stage's out directory (:mod:`dexlite_core.pipeline.stability`)::

    stability.parquet    one row per object and scale (see STABILITY_SCHEMA)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import trimesh

from dexlite_core.objects.store import read_pieces, split_of

STABILITY_SCHEMA = pa.schema([
    ("object_code", pa.string()),
    ("scale", pa.float32()),  # m, as in objects.parquet
    ("stable", pa.bool_()),
    ("quat", pa.list_(pa.float32())),  # wxyz, settled orientation of the object as authored (w >= 0)
    ("drift", pa.float32()),  # m, XY motion of the centre of mass during the test window
    ("tilt_deg", pa.float32()),  # rotation between the settled and the final orientation
    ("reason", pa.string()),  # why the pair failed (see REASONS, or "load_error: ..."); null when stable
])
#: Failure reasons of one drop, worst first; a failed pair reports its least bad drop.
REASONS = ("sim_unstable", "fell_through", "drift", "tilt")
LOAD_ERROR = "load_error"
#: Stable poses whose down direction lies within this angle of an earlier one are the same pose.
SAME_POSE_DEG = 10.0
#: A body further than this from where it was dropped, or faster, has exploded.
EXPLODED_DISTANCE = 1.0  # m
EXPLODED_SPEED = 10.0  # m/s


@dataclass(frozen=True)
class StabilityConfig:
    mass: float = 0.1  #: kg
    lateral_friction: float = 1.0  #: Coulomb friction of object and plane (Bullet multiplies the two: 1.0 x 1.0)
    settle_seconds: float = 1.0  #: after the drop, before the settled pose is recorded
    test_seconds: float = 2.0  #: the window over which drift and tilt are measured
    max_drift: float = 0.05  #: m of XY centre-of-mass motion
    max_tilt_deg: float = 15.0  #: rotation between settled and final orientation
    n_orientations: int = 4  #: resting orientations tried per pair, upright (identity) first
    timestep: float = 1.0 / 240.0  #: s; PyBullet's default, which its contact solver is tuned for
    drop_height: float = 0.002  #: m between the object's lowest point and the plane at release
    n_workers: int = 2  #: processes, one object each at a time

    def __post_init__(self) -> None:
        checks = {
            "mass": (0 < self.mass <= 10, "(0, 10] kg"),
            "lateral_friction": (0 < self.lateral_friction <= 10, "(0, 10]"),
            "settle_seconds": (0 < self.settle_seconds <= 10, "(0, 10] s"),
            "test_seconds": (0 < self.test_seconds <= 60, "(0, 60] s"),
            "max_drift": (0 < self.max_drift <= 1, "(0, 1] m"),
            "max_tilt_deg": (0 < self.max_tilt_deg < 180, "(0, 180) degrees"),
            "n_orientations": (1 <= self.n_orientations <= 32, "[1, 32]"),
            "timestep": (0 < self.timestep <= 0.01, "(0, 0.01] s"),
            "drop_height": (0 <= self.drop_height <= 0.1, "[0, 0.1] m"),
            "n_workers": (self.n_workers >= 1, ">= 1"),
        }
        for name, (ok, allowed) in checks.items():
            if not ok:
                raise ValueError(f"stability.{name} must be in {allowed}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Drop:
    """The outcome of one drop: settled orientation (wxyz), drift (m), tilt (deg), failure reason."""

    quat: np.ndarray
    drift: float
    tilt_deg: float
    reason: str | None

    def badness(self, config: StabilityConfig) -> tuple[int, float]:
        """Sort key, least bad first: passing, then tilt ... sim_unstable, then how far past the thresholds."""
        rank = len(REASONS) if self.reason is None else REASONS.index(self.reason)
        excess = max(self.drift / config.max_drift, self.tilt_deg / config.max_tilt_deg)
        return -rank, excess if math.isfinite(excess) else math.inf


def resting_orientations(solid: trimesh.Trimesh, n: int) -> list[np.ndarray]:
    """Up to ``n`` (3, 3) rotations to drop the object in: identity (upright as authored),
    then the solid's stable poses by decreasing probability, skipping repeats of a pose."""
    transforms, _ = trimesh.poses.compute_stable_poses(solid, sigma=0.0, n_samples=1, seed=0)
    rotations, downs = [np.eye(3)], [np.array([0.0, 0.0, -1.0])]
    min_cos = math.cos(math.radians(SAME_POSE_DEG))
    for transform in transforms:
        if len(rotations) == n:
            break
        rotation = transform[:3, :3]
        down = rotation.T @ [0.0, 0.0, -1.0]  # object-frame direction that faces the plane
        if all(down @ d < min_cos for d in downs):
            rotations.append(rotation)
            downs.append(down)
    return rotations


def principal_inertia(solid: trimesh.Trimesh, mass: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Principal moments (3,) in kg m^2 and their axes as a proper rotation (3, 3) in the object
    frame, for the uniform solid of ``mass`` scaled by ``scale``."""
    inertia = solid.moment_inertia / solid.volume * mass * scale ** 2
    moments, axes = np.linalg.eigh(inertia)
    if np.linalg.det(axes) < 0:
        axes[:, 2] *= -1
    return np.maximum(moments, 1e-12), axes


def _xyzw(rotation: np.ndarray) -> list[float]:
    w, x, y, z = trimesh.transformations.quaternion_from_matrix(rotation)
    return [x, y, z, w]


def _matrix(xyzw) -> np.ndarray:
    x, y, z, w = xyzw
    return trimesh.transformations.quaternion_matrix([w, x, y, z])[:3, :3]


def _wxyz(rotation: np.ndarray) -> np.ndarray:
    quat = trimesh.transformations.quaternion_from_matrix(rotation)
    return (quat if quat[0] >= 0 else -quat).astype(np.float32)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = (np.trace(a.T @ b) - 1.0) / 2.0
    return math.degrees(math.acos(float(np.clip(cos, -1.0, 1.0))))


class _Scene:
    """One PyBullet DIRECT client with a plane; objects are dropped onto it one at a time."""

    def __init__(self, config: StabilityConfig) -> None:
        import pybullet  # imported here: it prints a banner, and readers of the results do not need it

        self.p = p = pybullet
        self.config = config
        self.client = p.connect(p.DIRECT)
        p.setGravity(0, 0, -9.81, physicsClientId=self.client)
        p.setTimeStep(config.timestep, physicsClientId=self.client)
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=self.client)
        plane = p.createMultiBody(0, p.createCollisionShape(p.GEOM_PLANE, physicsClientId=self.client),
                                  physicsClientId=self.client)
        p.changeDynamics(plane, -1, lateralFriction=config.lateral_friction, physicsClientId=self.client)

    def close(self) -> None:
        self.p.disconnect(self.client)

    def shape(self, decomposed: Path, scale: float) -> int:
        """A compound of convex hulls, one per ``o`` group of the file, in metres."""
        shape = self.p.createCollisionShape(self.p.GEOM_MESH, fileName=str(decomposed), meshScale=[scale] * 3,
                                       physicsClientId=self.client)
        if shape < 0:
            raise ValueError(f"{decomposed}: PyBullet could not build a collision shape; rebuild the object "
                             "with `dvc repro objects`")
        return shape

    def drop(self, shape: int, solid: trimesh.Trimesh, scale: float, rotation: np.ndarray) -> Drop:
        """Release the object in ``rotation`` just above the plane, settle, then test."""
        c, cid = self.config, self.client
        moments, axes = principal_inertia(solid, c.mass, scale)
        lowest = (solid.vertices * scale @ rotation.T)[:, 2].min()
        body = self.p.createMultiBody(c.mass, shape, basePosition=[0.0, 0.0, c.drop_height - lowest],
                                 baseOrientation=_xyzw(rotation),
                                 baseInertialFramePosition=(solid.center_mass * scale).tolist(),
                                 baseInertialFrameOrientation=_xyzw(axes), physicsClientId=cid)
        # Bullet's own inertia for a compound is its bounding box's; use the solid's instead.
        self.p.changeDynamics(body, -1, lateralFriction=c.lateral_friction, localInertiaDiagonal=moments.tolist(),
                         physicsClientId=cid)
        try:
            start = np.array(self.p.getBasePositionAndOrientation(body, physicsClientId=cid)[0])
            settled = self._run(body, c.settle_seconds)
            final = self._run(body, c.test_seconds)
        finally:
            self.p.removeBody(body, physicsClientId=cid)
        # getBasePositionAndOrientation reports the inertial frame: undo its rotation.
        settled_rot, final_rot = _matrix(settled[1]) @ axes.T, _matrix(final[1]) @ axes.T
        drift = float(np.linalg.norm(final[0][:2] - settled[0][:2]))
        tilt = _angle_deg(settled_rot, final_rot)
        return Drop(_wxyz(settled_rot), drift, tilt, self._reason(start, settled, final, drift, tilt))

    def _run(self, body: int, seconds: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Step for ``seconds``; centre-of-mass position (3,), orientation xyzw (4,) and speed."""
        for _ in range(max(1, round(seconds / self.config.timestep))):
            self.p.stepSimulation(physicsClientId=self.client)
        position, orientation = self.p.getBasePositionAndOrientation(body, physicsClientId=self.client)
        velocity = self.p.getBaseVelocity(body, physicsClientId=self.client)[0]
        return np.array(position), np.array(orientation), float(np.linalg.norm(velocity))

    def _reason(self, start, settled, final, drift: float, tilt: float) -> str | None:
        c = self.config
        for position, orientation, speed in (settled, final):
            if (not (np.isfinite(position).all() and np.isfinite(orientation).all() and math.isfinite(speed))
                    or np.linalg.norm(position - start) > EXPLODED_DISTANCE or speed > EXPLODED_SPEED):
                return "sim_unstable"
            if position[2] < 0:  # the centre of mass is under the plane's surface
                return "fell_through"
        if drift > c.max_drift:
            return "drift"
        if tilt > c.max_tilt_deg:
            return "tilt"
        return None


def object_stability(config: StabilityConfig, objects_dir: Path, code: str, scales: tuple[float, ...]) -> list[dict]:
    """Rows of STABILITY_SCHEMA for one object at each of ``scales`` (m). A file that cannot be
    loaded gives failed rows with a ``load_error`` reason instead of an exception."""
    folder = Path(objects_dir) / code
    scene = _Scene(config)
    try:
        try:
            solid = read_pieces(folder / "mesh.obj")[0]
            rotations = resting_orientations(solid, config.n_orientations)
            shapes = [scene.shape(folder / "decomposed.obj", s) for s in scales]
        except Exception as exc:  # any unreadable object is reported, never fatal
            reason = f"{LOAD_ERROR}: {folder}: {type(exc).__name__}: {exc}"
            return [_row(code, s, None, reason) for s in scales]
        return [_row(code, s, _best_drop(scene, shape, solid, s, rotations), None)
                for s, shape in zip(scales, shapes)]
    finally:
        scene.close()


def _best_drop(scene: _Scene, shape: int, solid: trimesh.Trimesh, scale: float,
               rotations: list[np.ndarray]) -> Drop:
    """The first passing drop, else the least bad one."""
    drops = []
    for rotation in rotations:
        drops.append(scene.drop(shape, solid, scale, rotation))
        if drops[-1].reason is None:
            break
    return min(drops, key=lambda d: d.badness(scene.config))


def _row(code: str, scale: float, drop: Drop | None, load_error: str | None) -> dict:
    if drop is None:
        return dict(object_code=code, scale=scale, stable=False, quat=[math.nan] * 4, drift=math.nan,
                    tilt_deg=math.nan, reason=load_error)
    return dict(object_code=code, scale=scale, stable=drop.reason is None, quat=drop.quat.tolist(),
                drift=drop.drift, tilt_deg=drop.tilt_deg, reason=drop.reason)


def read_stability(out_dir: Path) -> pd.DataFrame:
    path = Path(out_dir) / "stability.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `dvc repro stability` first")
    return pd.read_parquet(path)


def stable_groups(objects_dir: Path, stability_dir: Path, splits: tuple[str, ...]) -> list[tuple[str, float]]:
    """(object code, scale) pairs of the given splits that rest stably on a table. It lives here, not beside
    :func:`dexlite_core.objects.store.split_of`: it reads the stability stage's table, and objects/ is below sim/."""
    wanted = {c for c, s in split_of(objects_dir).items() if s in splits}
    stability = read_stability(stability_dir)
    groups = sorted((c, float(s)) for c, s, ok in zip(stability.object_code, stability.scale, stability.stable)
                    if ok and c in wanted)
    if not groups:
        raise ValueError(f"no object of splits {splits} in {objects_dir} rests stably ({stability_dir}); "
                         "check the stability stage's rejects")
    return groups
