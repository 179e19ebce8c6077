"""Is our grasp test valid? DexGraspNet's released grasps must pass it, the same grasps spoiled must not.

DexGraspNet validated its grasps in Isaac Gym, which ignores the J0/J1 tendons, so they are
tested on an uncoupled hand. Two spoilers, as the filter issue defines them: the palm moved
3 cm back along its approach, and every closing joint opened to the limit away from its closing
direction (THJ1 and THJ0 close towards negative angles, so they open to their upper limits).
Most spoiled grasps already fail the initial-penetration gate; the pass rate among those that
start clear of it (``..._clear``) is what the physics alone decides.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from dexlite_core.conventions import CLOSING_DIRECTION, JOINT_LOWER, JOINT_UPPER
from dexlite_core.data.grasps import GraspTable
from dexlite_core.sim.runner import SimConfig, simulate

BACK = 0.03  #: m the palm is moved back for the "palm back" variant


def opened(joints: np.ndarray) -> np.ndarray:
    """``joints`` (N, 22) with every closing joint at its limit against the closing direction."""
    open_limit = np.where(CLOSING_DIRECTION > 0, JOINT_LOWER, JOINT_UPPER)
    return np.where(CLOSING_DIRECTION != 0, open_limit, joints)


def perturbed(table: GraspTable, back: float = 0.0, open_fingers: bool = False) -> GraspTable:
    """The grasps with the palm moved ``back`` m away from the object and/or the fingers opened."""
    pos = table.wrist_pos + back * table.poses().wrist_rot[:, :, 1].numpy()  # the palm faces -y: back is +y
    joints = opened(table.joints) if open_fingers else table.joints
    return replace(table, wrist_pos=pos.astype(np.float32), joints=joints.astype(np.float32), sim=None)


def validity_rates(table: GraspTable, objects_dir: Path, config: SimConfig,
                   groups: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Pass rate of each test in ``config`` on the grasps as released, palm back and fingers opened;
    ``<test>_<variant>_clear``: among the grasps that start within ``max_penetration`` (share: ``clear_<variant>``).
    ``groups`` (name -> (N,) bool mask, e.g. a shape family) adds the same rates as ``<name>_<key>``."""
    config = replace(config, grasp=replace(config.grasp, coupling=False))
    variants = {"released": table, "palm_back": perturbed(table, back=BACK), "fingers_open": perturbed(table, open_fingers=True)}
    masks = {"": np.ones(len(table), bool), **{f"{name}_": mask for name, mask in (groups or {}).items()}}
    rates = {}
    for name, grasps in variants.items():
        run = simulate(grasps, objects_dir, config, desc=f"validity: {name}")
        clear = run.table.sim.pen_depth <= config.grasp.max_penetration
        for prefix, mask in masks.items():
            rates[f"{prefix}clear_{name}"] = _share(clear, mask)
            for test, passed in run.passed.items():
                rates[f"{prefix}{test}_{name}"] = _share(passed, mask)
                rates[f"{prefix}{test}_{name}_clear"] = _share(passed, mask & clear)
    return rates


def _share(passed: np.ndarray, mask: np.ndarray) -> float:
    return float(passed[mask].mean()) if mask.any() else float("nan")
