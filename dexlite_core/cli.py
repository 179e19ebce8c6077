"""The ``dexlite`` command."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _export_hand(args: argparse.Namespace) -> None:
    from dexlite_core.hand.asset import export_mjcf, export_urdf

    mjcf, urdf = export_mjcf(Path(args.out)), export_urdf(Path(args.out))
    print(f"wrote {mjcf} and {urdf} (with meshes/ and the asset's LICENSE.md)")


def parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    p = argparse.ArgumentParser(prog="dexlite", description="Dexterous grasps for the Shadow Hand.")
    p.add_argument("--version", action="version", version=f"dexlite {version('dexlite')}")
    sub = p.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export-hand", help="write the grasping hand as MJCF (MuJoCo) and URDF (PyBullet)")
    export.add_argument("out", help="output folder")
    export.set_defaults(run=_export_hand)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"dexlite: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
