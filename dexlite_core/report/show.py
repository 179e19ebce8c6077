"""``dexlite show``: look at grasps of a table, as an offline HTML page or a PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from dexlite_core.data.grasps import GraspTable
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.mesh import MeshError, load_mesh, normalize, repair
from dexlite_core.objects.sdf import exact_signed_distance
from dexlite_core.report.html import Page, viewer_spec
from dexlite_core.report.render import render_png
from dexlite_core.report.scene import object_mesh, pose_hand, posed_hand_mesh

CONTACT_THRESHOLD = 0.005


def _object(table: GraspTable, i: int, objects_dir: Path, mesh: Path | None) -> trimesh.Trimesh:
    code, scale = table.object_code[i], float(table.scale[i])
    if mesh is not None:
        normalized = normalize(repair(load_mesh(mesh), str(mesh))[0]).mesh
        return trimesh.Trimesh(normalized.vertices * scale, normalized.faces, process=False)
    if not (Path(objects_dir) / code / "mesh.obj").exists():
        raise MeshError(f"object {code} is not in {objects_dir}; pass its mesh with --mesh PATH")
    return object_mesh(objects_dir, code, scale)


def _contacts(hand: HandModel, table: GraspTable, i: int, obj: trimesh.Trimesh) -> np.ndarray:
    """The nearest candidate of each phalanx within 5 mm of the object (exact mesh distance)."""
    points = hand.all_contact_candidates(hand.link_frames(table.select(np.array([i])).poses()))[0].numpy()
    d = np.abs(exact_signed_distance(obj, points))
    link = hand.contact_link.numpy()
    best = [idx[d[idx].argmin()] for idx in (np.flatnonzero(link == k) for k in np.unique(link))]
    return points[[b for b in best if d[b] < CONTACT_THRESHOLD]]


def _caption(table: GraspTable, i: int) -> str:
    text = f"{table.object_code[i]} grasp {table.grasp_id[i]} at {table.scale[i]:.3f} m ({table.source[i]})"
    if table.sim is not None:
        text += ": passed" if table.sim.success[i] else f": failed ({table.sim.fail_reason[i]})"
    return text


def show(table: GraspTable, out: Path, object_code: str | None = None, n: int = 4,
         objects_dir: Path = Path("data/objects"), mesh: Path | None = None) -> list[int]:
    """Write the ``n`` lowest-energy grasps of ``object_code`` (default: the first object) to
    ``out`` (.html: interactive viewers; .png: a render of the lowest). Returns the rows shown."""
    codes = sorted(set(table.object_code))
    code = object_code or codes[0]
    if code not in codes:
        raise ValueError(f"object {code} has no grasps in this table; it has: {', '.join(codes[:8])}")
    rows = np.flatnonzero(table.object_code == code)
    energy = np.nan_to_num(table.energies[rows], nan=np.inf).sum(1)
    rows = rows[np.argsort(energy, kind="stable")][:n]
    hand = HandModel()
    scenes = []
    for i in rows:
        obj = _object(table, i, objects_dir, mesh)
        posed = pose_hand(table.wrist_pos[i].astype(float), table.wrist_quat[i].astype(float), table.joints[i].astype(float))
        scenes.append((posed, obj, _contacts(hand, table, i, obj), _caption(table, i)))
    out = Path(out)
    if out.suffix == ".png":
        posed, obj, contacts, caption = scenes[0]
        out.write_bytes(render_png(posed_hand_mesh(posed), obj, contacts, title=caption, size=640))
        rows = rows[:1]
    elif out.suffix in (".html", ".htm"):
        page = Page(f"DexLite grasps: {code}")
        for posed, obj, contacts, caption in scenes:
            page.viewer(viewer_spec(posed, obj, contacts), caption)
        out.write_text(page.html())
    else:
        raise ValueError(f"{out}: write .html (interactive) or .png")
    return [int(i) for i in rows]
