"""The ``report`` stage: everything the pipeline measured, on one offline HTML page."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch

from dexlite_core.data.files import write_text
from dexlite_core.data.grasps import GraspTable, read_grasps
from dexlite_core.hand.model import HandModel
from dexlite_core.objects.store import load_object_set
from dexlite_core.report.html import Page, viewer_spec
from dexlite_core.report.render import render_png
from dexlite_core.report.scene import contact_points, object_mesh, pose_hand, posed_hand_mesh

METRIC_ROWS = (("dgb_success", "DexGraspBench-like success (friction 0.6)"), ("dgb_n", "DexGraspBench-like: grasps"),
               ("dgb_no_contact", "DexGraspBench-like: passes touching nothing"),
               ("lift_success", "lift success (friction 2.0)"), ("six_dir_suc1", "six-direction Suc.1"),
               ("six_dir_suc6", "six-direction Suc.6"), ("penetration_mean_mm", "penetration, mean (mm)"),
               ("penetration_max_mm", "penetration, max (mm)"), ("contact_distance_mm", "contact distance (mm)"),
               ("q1", "Q1 (mu 0.6)"), ("h_mean", "joint entropy H mean (nats)"),
               ("pca_top3_share", "variance in 3 principal components"), ("n_grasps", "grasps"))
#: evaluate.json's sets (dexlite_core.pipeline.evaluate.SETS) and their column headings.
SET_LABELS = {"recon": "recon (train)", "train_raw": "train raw", "decoded": "decoded (held-out)",
              "raw": "raw (held-out)", "postopt_all": "post-opt all", "postopt": "post-opt kept", "dataset": "dataset"}


@dataclass(frozen=True)
class ReportConfig:
    thumbs_per_object: int = 6  #: PNG renders per held-out object


@dataclass(frozen=True)
class ReportInputs:
    metrics_dir: Path  #: data/metrics (one JSON per stage)
    eval_dir: Path  #: data/eval (simulated raw/post-opt tables, CSVs)
    train_live: Path  #: data/train_live (dvclive)
    objects_dir: Path


def _read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _verdict(table: GraspTable, i: int) -> str:
    reason = table.sim.fail_reason[i]
    return "passed lift and six-direction" if not reason else f"failed: {reason}"


def grasp_scene(table: GraspTable, i: int, hand: HandModel, objects, objects_dir: Path):
    """Posed hand parts, object mesh and contact points of row ``i``."""
    posed = pose_hand(table.wrist_pos[i].astype(float), table.wrist_quat[i].astype(float), table.joints[i].astype(float))
    row = table.select(np.array([i]))
    contacts = contact_points(hand, objects, row.poses(), objects.index_of([table.object_code[i]]),
                              torch.as_tensor(row.scale))[0]
    return posed, object_mesh(objects_dir, table.object_code[i], float(table.scale[i])), contacts


def _grasp_sections(page: Page, table: GraspTable, objects_dir: Path, thumbs_per_object: int) -> None:
    hand = HandModel()
    objects = load_object_set(objects_dir, sorted(set(table.object_code)))
    e = np.nan_to_num(table.energies, nan=np.inf)
    energy = e[:, 0] + 100 * e[:, 1] + 100 * e[:, 2] + 10 * e[:, 3] + e[:, 4]
    for code in sorted(set(table.object_code)):
        rows = np.flatnonzero(table.object_code == code)
        ok = rows[table.sim.success[rows]]
        bad = rows[~table.sim.success[rows]]
        page.heading(f"{code}: {len(ok)} of {len(rows)} post-optimized grasps passed", 3)
        picks = ([("best", ok[np.argmin(energy[ok])])] if len(ok) else []) + \
                ([("worst", bad[np.argmax(energy[bad])])] if len(bad) else [])
        for label, i in picks:
            posed, obj, contacts = grasp_scene(table, i, hand, objects, objects_dir)
            page.viewer(viewer_spec(posed, obj, contacts),
                        f"{label}: grasp {table.grasp_id[i]} at {table.scale[i]:.2f} m, E_post {energy[i]:.3f}, "
                        f"{_verdict(table, i)}")
        thumbs = []
        for i in rows[np.argsort(energy[rows])][:thumbs_per_object]:
            posed, obj, contacts = grasp_scene(table, i, hand, objects, objects_dir)
            verdict = "pass" if table.sim.success[i] else table.sim.fail_reason[i]
            thumbs.append((render_png(posed_hand_mesh(posed), obj, contacts, title=f"#{table.grasp_id[i]} {verdict}"),
                           f"grasp {table.grasp_id[i]} ({table.scale[i]:.2f} m): {verdict}"))
        page.images(thumbs)


def _curves(live: Path) -> go.Figure:
    fig = go.Figure()
    for split in ("train", "val"):
        for term in ("total", "energy", "kl", "recon_rotation", "recon_translation"):
            path = live / "plots" / "metrics" / split / f"{term}.tsv"
            if path.exists():
                rows = [line.split("\t") for line in path.read_text().splitlines()[1:]]
                fig.add_scatter(x=[int(r[0]) for r in rows], y=[float(r[1]) for r in rows], name=f"{split} {term}",
                                line={"dash": "solid" if split == "train" else "dot"})
    fig.update_layout(xaxis_title="validation (every train.eval_every steps)", yaxis_title="loss", yaxis_type="log", margin={"t": 20})
    return fig


def run(config: ReportConfig, inputs: ReportInputs, out_path: Path) -> None:
    """Write the page to ``out_path`` (one file, reports/index.html); the report has no metrics of its own."""
    metrics = {p.stem: json.loads(p.read_text()) for p in sorted(Path(inputs.metrics_dir).glob("*.json"))}
    evaluation = metrics["evaluate"]
    page = Page("DexLite report")
    page.paragraph("Grasps synthesized for objects the model never saw, post-optimized and judged in "
                   "MuJoCo. First by the DexGraspBench-like test, the field's benchmark (friction 0.6, gravity off: "
                   "each grasp replayed pre-grasp -> grasp -> its own squeeze, then a 1 N push along +-x, +-y, +-z "
                   "must move the object < 5 cm and turn it < 15 degrees); then by our tests at friction 2.0 (lift: "
                   "the hand rises 10 cm and the object must follow without slipping or turning in the hand; "
                   "six-direction: a force of the object's weight along +-x, +-y, +-z).")
    page.heading("Fit, held-out and dataset grasps")
    page.paragraph("Training objects: recon = training grasps encoded and decoded from their posterior mean (does "
                   "the model fit its data?), train raw = pure synthesis. Held-out objects: raw = pure synthesis, "
                   "post-opt all = the same candidates post-optimized, none dropped, post-opt kept = the "
                   "lowest-energy ones of each object and scale. Dataset = the filtered training grasps as stored.")
    page.table(["metric", *SET_LABELS.values()],
               [[label, *(evaluation[s].get(key, "") for s in SET_LABELS)] for key, label in METRIC_ROWS])
    page.table(["throughput", "grasps/s"], [[k.replace("_", " "), v] for k, v in evaluation["throughput"].items()])
    page.heading("Pipeline")
    page.table(["stage", "figures"], [[stage, ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                       for k, v in m.items() if not isinstance(v, dict))]
                                      for stage, m in metrics.items() if stage != "evaluate"])
    page.heading("Lift success by held-out object")
    rows = _read_csv(Path(inputs.eval_dir) / "success_by_object.csv")
    fig = go.Figure()
    for stage in ("decoded", "raw", "postopt_all", "postopt"):
        sel = [r for r in rows if r["stage"] == stage]
        fig.add_bar(y=[r["object_code"] for r in sel], x=[float(r["lift_success"]) for r in sel], name=stage,
                    orientation="h")
    fig.update_layout(barmode="group", xaxis_title="lift success", margin={"t": 20}, height=40 + 28 * len(rows))
    page.figure(fig)
    page.heading("Energies before and after post-optimization")
    for term in ("E_fc", "E_dis", "E_pen"):
        hist = _read_csv(Path(inputs.eval_dir) / f"energy_{term}.csv")
        fig = go.Figure([go.Bar(x=[float(r["log10_energy"]) for r in hist], y=[float(r[k]) for r in hist], name=k)
                         for k in ("raw", "postopt")])
        fig.update_layout(title=term, xaxis_title=f"log10 {term}", yaxis_title="share of grasps", barmode="overlay",
                          margin={"t": 40}, height=300)
        fig.update_traces(opacity=0.6)
        page.figure(fig)
    page.heading("Training")
    page.figure(_curves(Path(inputs.train_live)))
    page.heading("Grasps on the held-out objects")
    page.paragraph("Orange: the object; blue: the Shadow Hand's visual meshes; red dots: contacts within 5 mm. "
                   "Drag to rotate. Thumbnails: the lowest-energy grasps with their simulation verdicts.")
    _grasp_sections(page, read_grasps(Path(inputs.eval_dir) / "postopt_simulated.parquet"), inputs.objects_dir,
                    config.thumbs_per_object)
    write_text(out_path, page.html())
