"""PNG renders of grasps without a display (matplotlib, Agg backend)."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import trimesh  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402

from dexlite_core.report.html import CONTACT_COLOR, HAND_COLOR, OBJECT_COLOR  # noqa: E402


def render_png(hand: trimesh.Trimesh, obj: trimesh.Trimesh, contacts: np.ndarray, title: str = "",
               size: int = 320, max_faces: int = 6000) -> bytes:
    """A shaded view of hand and object with contacts marked, as PNG bytes."""
    fig = plt.figure(figsize=(size / 100, size / 100), dpi=100)
    ax = fig.add_subplot(projection="3d")
    light = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    for mesh, color in ((obj, OBJECT_COLOR), (hand, HAND_COLOR)):
        faces = mesh.faces[:: max(1, len(mesh.faces) // max_faces)]
        shade = 0.45 + 0.55 * np.clip(mesh.face_normals[:: max(1, len(mesh.faces) // max_faces)] @ light, 0, 1)
        rgb = np.array(matplotlib.colors.to_rgb(color))
        ax.add_collection3d(Poly3DCollection(mesh.vertices[faces], facecolors=shade[:, None] * rgb, linewidths=0))
    c = np.asarray(contacts).reshape(-1, 3)
    if len(c):
        ax.scatter(c[:, 0], c[:, 1], c[:, 2], color=CONTACT_COLOR, s=12, depthshade=False)
    pts = np.concatenate([hand.vertices, obj.vertices])
    center, radius = pts.mean(0), np.abs(pts - pts.mean(0)).max()
    for setter, k in ((ax.set_xlim, 0), (ax.set_ylim, 1), (ax.set_zlim, 2)):
        setter(center[k] - radius, center[k] + radius)
    ax.set_box_aspect((1, 1, 1))
    ax.set_axis_off()
    ax.view_init(elev=20, azim=-60)
    if title:
        ax.set_title(title, fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
