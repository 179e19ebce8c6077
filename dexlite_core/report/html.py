"""A self-contained HTML page: plotly.js inlined once, interactive 3D grasp viewers, PNGs.

Nothing is fetched when the page opens: scripts, data and images are all inside the file.
The hand's meshes are embedded once; each viewer holds the parts' poses, its object mesh and
its contact points, and ``dexliteViewer`` assembles the 3D scene in the browser.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
import plotly
import trimesh

from dexlite_core.report.scene import HandMeshes, PosedHand, hand_meshes

HAND_COLOR = "#8fa8c8"
OBJECT_COLOR = "#e0903c"
CONTACT_COLOR = "#d62728"

_VIEWER_JS = """
function dexliteViewer(id, spec) {
  const X = [], Y = [], Z = [], I = [], J = [], K = [];
  spec.parts.forEach(function (part) {
    const m = part[0], R = part.slice(1, 10), t = part.slice(10, 13);
    const v = DEXLITE_HAND.vertices[m], f = DEXLITE_HAND.faces[m], base = X.length;
    for (let a = 0; a < v.length; a += 3) {
      X.push(R[0] * v[a] + R[1] * v[a + 1] + R[2] * v[a + 2] + t[0]);
      Y.push(R[3] * v[a] + R[4] * v[a + 1] + R[5] * v[a + 2] + t[1]);
      Z.push(R[6] * v[a] + R[7] * v[a + 1] + R[8] * v[a + 2] + t[2]);
    }
    for (let a = 0; a < f.length; a += 3) { I.push(f[a] + base); J.push(f[a + 1] + base); K.push(f[a + 2] + base); }
  });
  const o = spec.object, traces = [
    {type: "mesh3d", x: X, y: Y, z: Z, i: I, j: J, k: K, color: "__HAND_COLOR__", flatshading: true, name: "hand",
     lighting: {ambient: 0.55, diffuse: 0.7}},
    {type: "mesh3d", x: o.x, y: o.y, z: o.z, i: o.i, j: o.j, k: o.k, color: "__OBJECT_COLOR__", name: "object",
     lighting: {ambient: 0.55, diffuse: 0.7}}];
  if (spec.contacts.x.length) traces.push({type: "scatter3d", mode: "markers", name: "contacts",
    x: spec.contacts.x, y: spec.contacts.y, z: spec.contacts.z, marker: {size: 4, color: "__CONTACT_COLOR__"}});
  Plotly.newPlot(id, traces, {margin: {l: 0, r: 0, t: 0, b: 0}, showlegend: false, paper_bgcolor: "white",
    scene: {aspectmode: "data", xaxis: {visible: false}, yaxis: {visible: false}, zaxis: {visible: false}}},
    {displaylogo: false, responsive: true}).then(dexliteMarkDrawn);
}
// data-drawn="1" once a plot's first frame is on screen: what a test (or a person's script) waits for.
function dexliteMarkDrawn(gd) {
  requestAnimationFrame(function () { requestAnimationFrame(function () { gd.dataset.drawn = "1"; }); });
}
// Browsers keep ~16 WebGL contexts: viewers live only while on screen.
const dexlitePending = new Map();
const dexliteObserver = new IntersectionObserver(function (entries) {
  entries.forEach(function (e) {
    const el = e.target;
    if (e.isIntersecting && !el.dataset.live) { dexliteViewer(el.id, dexlitePending.get(el.id)); el.dataset.live = "1"; }
    else if (!e.isIntersecting && el.dataset.live) { Plotly.purge(el); delete el.dataset.live; delete el.dataset.drawn; }
  });
}, {rootMargin: "100px"});
function dexliteLazyViewer(id, spec) {
  dexlitePending.set(id, spec);
  dexliteObserver.observe(document.getElementById(id));
}
""".replace("__HAND_COLOR__", HAND_COLOR).replace("__OBJECT_COLOR__", OBJECT_COLOR).replace(
    "__CONTACT_COLOR__", CONTACT_COLOR)


def _round(a: np.ndarray, digits: int = 5) -> list:
    return np.round(np.asarray(a, dtype=float), digits).ravel().tolist()


def _hand_data(meshes: HandMeshes) -> str:
    return json.dumps({"vertices": [_round(v) for v in meshes.vertices],
                       "faces": [np.asarray(f).ravel().tolist() for f in meshes.faces]}, separators=(",", ":"))


def viewer_spec(hand: PosedHand, obj: trimesh.Trimesh, contacts: np.ndarray) -> dict:
    parts = [[int(m), *_round(r), *_round(p)] for m, r, p in zip(hand.mesh, hand.rot, hand.pos)]
    v, f = obj.vertices, obj.faces
    c = np.asarray(contacts, dtype=float).reshape(-1, 3)
    return {"parts": parts,
            "object": {"x": _round(v[:, 0]), "y": _round(v[:, 1]), "z": _round(v[:, 2]),
                       "i": f[:, 0].tolist(), "j": f[:, 1].tolist(), "k": f[:, 2].tolist()},
            "contacts": {"x": _round(c[:, 0]), "y": _round(c[:, 1]), "z": _round(c[:, 2])}}


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


class Page:
    """An HTML document assembled from sections; ``write`` makes it one offline file."""

    def __init__(self, title: str):
        self.title = title
        self.body: list[str] = []
        self.scripts: list[str] = []
        self.n = 0
        self.n_viewers = 0

    def _id(self) -> str:
        self.n += 1
        return f"fig{self.n}"

    def heading(self, text: str, level: int = 2) -> None:
        self.body.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str) -> None:
        self.body.append(f"<p>{html.escape(text)}</p>")

    def table(self, header: list[str], rows: list[list]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>" for row in rows)
        self.body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def figure(self, fig) -> None:
        """A plotly figure (data and layout inlined)."""
        div = self._id()
        height = fig.layout.height or 420
        self.body.append(f'<div id="{div}" class="plot" style="height: {height}px"></div>')
        self.scripts.append(f"(function (f) {{ Plotly.newPlot('{div}', f.data, f.layout, "
                            f"{{displaylogo: false, responsive: true}}).then(dexliteMarkDrawn); }})({fig.to_json()});")

    def viewer(self, spec: dict, caption: str) -> None:
        """An interactive 3D grasp viewer, anchored as #viewer-N (N from 1)."""
        self.n_viewers += 1
        div = f"viewer-{self.n_viewers}"
        self.body.append(f'<figure class="viewer"><div id="{div}" class="scene"></div>'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        self.scripts.append(f"dexliteLazyViewer('{div}', {json.dumps(spec, separators=(',', ':'))});")

    def images(self, items: list[tuple[bytes, str]]) -> None:
        cells = "".join(f'<figure class="thumb"><img alt="{html.escape(c)}" src="{png_data_uri(png)}">'
                        f"<figcaption>{html.escape(c)}</figcaption></figure>" for png, c in items)
        self.body.append(f'<div class="grid">{cells}</div>')

    def html(self) -> str:
        plotly_js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; worker-src blob:">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.plot {{ width: 100%; }} .scene {{ width: 560px; height: 460px; border: 1px solid #ddd; }}
.viewer {{ display: inline-block; margin: 0 1em 1em 0; }} .grid {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.thumb {{ margin: 0; }} .thumb img {{ width: 220px; border: 1px solid #ddd; }} figcaption {{ font-size: 0.85em; }}
</style></head><body>
<h1>{html.escape(self.title)}</h1>
{chr(10).join(self.body)}
<script>{plotly_js}</script>
<script>const DEXLITE_HAND = {_hand_data(hand_meshes())};
{_VIEWER_JS}
{chr(10).join(self.scripts)}</script>
</body></html>
"""


def _cell(c) -> str:
    if isinstance(c, float):
        return f"{c:.4g}"
    return str(c)
