"""The ``dexlite`` command: grasps for your own meshes, a look at grasp tables, the hand asset."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

#: The DexLite checkout this command runs from, where default paths point (an editable install).
PROJECT = Path(__file__).resolve().parents[1]

EPILOG = """examples:
  dexlite grasp mug.obj -n 64 -o grasps.parquet          grasps for a mesh (needs a trained model: make run)
  dexlite grasp part.stl --scale 0.07 --simulate -o g.parquet
  dexlite grasp mug.obj --format dexgraspnet -o mug.npy  DexGraspNet's .npy layout
  dexlite grasp mug.obj --format dexgraspbench -o out/   DexGraspBench's grasp files and object assets
  dexlite export data/eval/postopt_simulated.parquet --format dexgraspbench -o out/
  dexlite show data/eval/postopt_simulated.parquet -o grasps.html
  dexlite show grasps.parquet --mesh mug.obj -o grasp.png
"""


def _project_file(value: str | None, relative: str, flag: str) -> Path:
    """``value``, or the default ``relative`` to the DexLite checkout; one line naming the flag when there is none."""
    if value is not None:
        return Path(value)
    if not (PROJECT / "dvc.yaml").is_file():
        raise ValueError(f"{flag} has no default here ({PROJECT} is not a DexLite checkout); pass {flag} PATH")
    return PROJECT / relative


def _params_sections(path: str | Path | None) -> dict:
    """The params file's sections, for settings that replace the checkpoint's (``--params FILE``)."""
    from dexlite_core.params import load_params

    if path is not None and not Path(path).is_file():
        raise ValueError(f"--params {path}: no such file")
    return {} if path is None else load_params(path)


def _grasp(args: argparse.Namespace) -> None:
    from dexlite_core.data.dexgraspnet import write_dexgraspnet_file
    from dexlite_core.data.grasps import write_grasps
    from dexlite_core.grasp_mesh import MeshGraspRequest, grasp_mesh

    checkpoint = _project_file(args.checkpoint, "data/refine/model.pt", "--checkpoint")
    request = MeshGraspRequest(Path(args.mesh), checkpoint, args.n, args.scale, args.device, not args.no_postopt,
                               simulate=args.simulate, seed=args.seed, params=_params_sections(args.params))
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="dexlite-") as work:
        result = grasp_mesh(request, Path(work))
        if args.format == "dexgraspbench":  # needs the object's pieces, which live in `work`
            from dexlite_core.sim.dexgraspbench import export_dexgraspbench

            export_dexgraspbench(result.table, Path(work), out)
    if args.format == "dexgraspnet":
        write_dexgraspnet_file(result.table, out)
    table_path = out / "grasps.parquet" if args.format == "dexgraspbench" else out
    if args.format != "dexgraspnet":
        write_grasps(table_path, result.table)
    c = result.center
    print(f"wrote {len(result.table)} grasps to {out}. Poses are in {args.mesh}'s frame moved to its bounding-box "
          f"centre ({c[0]:.4g}, {c[1]:.4g}, {c[2]:.4g}); the object's bounding radius is {result.radius:.4g} m.")
    if result.passed:
        print("; ".join(result.settings.success_lines(result.passed)) + f". Verdicts (all three tests) in {table_path}.")
    if not result.stored_settings and args.params is None:
        print(f"note: {checkpoint} stores no pipeline settings (an older checkpoint): the built-in defaults were "
              "used; pass --params params.yaml to use a params file's", file=sys.stderr)


def _show(args: argparse.Namespace) -> None:
    from dexlite_core.data.grasps import read_grasps
    from dexlite_core.report.show import show

    objects = _project_file(args.objects, "data/objects", "--objects")
    rows = show(read_grasps(args.table), Path(args.out), args.object, args.n, objects,
                Path(args.mesh) if args.mesh else None)
    print(f"wrote {args.out} ({len(rows)} grasp{'s' if len(rows) != 1 else ''})")


def _export(args: argparse.Namespace) -> None:
    from dexlite_core.data.grasps import read_grasps
    from dexlite_core.params import build
    from dexlite_core.sim.dexgraspbench import export_dexgraspbench
    from dexlite_core.sim.dgb import DgbTestConfig

    params = _params_sections(_project_file(args.params, "params.yaml", "--params"))
    stages = build(DgbTestConfig, (params.get("sim") or {}).get("dgb"), "sim.dgb").stages
    objects = _project_file(args.objects, "data/objects", "--objects")
    summary = export_dexgraspbench(read_grasps(args.table), objects, Path(args.out), stages)
    print(f"wrote {summary.grasp_files} grasp files and {summary.objects} objects to {args.out} (pre-grasp opened "
          f"{stages.pregrasp_open:g} rad, squeeze {stages.squeeze:g} rad); evaluate them from a DexGraspBench checkout "
          f"with `python src/main.py task=eval hand=shadow save_dir={Path(args.out).resolve()}`")


def _export_hand(args: argparse.Namespace) -> None:
    from dexlite_core.hand.asset import export_mjcf, export_urdf

    mjcf, urdf = export_mjcf(Path(args.out)), export_urdf(Path(args.out))
    print(f"wrote {mjcf} and {urdf} (with meshes/ and the asset's LICENSE.md)")


def parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    p = argparse.ArgumentParser(prog="dexlite", description="Dexterous grasps for the Shadow Hand.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"dexlite {version('dexlite')}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("grasp", help="synthesize grasps for a mesh (obj, stl, ply, off, glb)")
    g.add_argument("mesh", help="the object's mesh file")
    g.add_argument("-n", type=int, default=64, help="grasps to write (default 64)")
    g.add_argument("-o", "--out", required=True, help="output file (.parquet, or .npy with --format dexgraspnet; "
                                                      "a folder with --format dexgraspbench, which also gets the "
                                                      "table as grasps.parquet)")
    g.add_argument("--checkpoint", help="trained model (default: the pipeline's final one, "
                                        "data/refine/model.pt of this DexLite checkout)")
    g.add_argument("--params", help="a params.yaml whose synth, postopt, sim and press sections replace the settings "
                                    "stored with the checkpoint (default: the checkpoint's, the pipeline's own)")
    g.add_argument("--scale", type=float, help="object size as bounding radius in metres (default: the mesh's own, "
                                               "read as metres)")
    g.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    g.add_argument("--no-postopt", action="store_true", help="raw network samples, without post-optimization")
    g.add_argument("--simulate", action="store_true", help="judge every grasp with the DexGraspBench-like test "
                                                           "(friction 0.6) and our lift and six-direction tests "
                                                           "(friction 2.0), the pipeline's sim settings")
    g.add_argument("--format", choices=("parquet", "dexgraspnet", "dexgraspbench"), default="parquet")
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(run=_grasp)

    s = sub.add_parser("show", help="look at grasps of a table: interactive HTML or PNG")
    s.add_argument("table", help="a grasp table (.parquet)")
    s.add_argument("-o", "--out", default="grasps.html", help="grasps.html (interactive) or grasp.png")
    s.add_argument("--object", help="object code (default: the table's first)")
    s.add_argument("-n", type=int, default=4, help="grasps to show, lowest energy first (HTML; default 4)")
    s.add_argument("--objects", help="object store holding the table's objects (default: data/objects of this "
                                     "DexLite checkout)")
    s.add_argument("--mesh", help="the object's mesh, for tables made by `dexlite grasp`")
    s.set_defaults(run=_show)

    x = sub.add_parser("export", help="write a grasp table for another benchmark (DexGraspBench)")
    x.add_argument("table", help="a grasp table (.parquet)")
    x.add_argument("--format", choices=("dexgraspbench",), required=True,
                   help="dexgraspbench: one .npy per grasp on Menagerie's Shadow Hand, plus object assets")
    x.add_argument("-o", "--out", required=True, help="output folder")
    x.add_argument("--objects", help="object store holding the table's objects (default: data/objects of this "
                                     "DexLite checkout)")
    x.add_argument("--params", help="pre-grasp and squeeze from its sim.dgb.stages (default: params.yaml of this "
                                    "DexLite checkout)")
    x.set_defaults(run=_export)

    e = sub.add_parser("export-hand", help="write the grasping hand as MJCF (MuJoCo) and URDF (PyBullet)")
    e.add_argument("out", help="output folder")
    e.set_defaults(run=_export_hand)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from dexlite_core.data.grasps import GraspTableError
    from dexlite_core.model.grasp_model import CheckpointError
    from dexlite_core.objects.mesh import MeshError

    try:
        args.run(args)
    except CheckpointError as exc:
        print(f"dexlite: error: {exc}, or pass --checkpoint PATH", file=sys.stderr)
        return 1
    except (MeshError, GraspTableError, ValueError, FileNotFoundError, OSError) as exc:
        print(f"dexlite: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
