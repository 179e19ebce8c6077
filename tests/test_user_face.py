"""The user's face: `dexlite grasp` / `dexlite show` and the offline HTML report in a browser."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import trimesh

from dexlite_core.cli import main
from dexlite_core.data.grasps import read_grasps

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def can(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("meshes") / "can.obj"
    trimesh.creation.cylinder(radius=0.03, height=0.12, sections=32).export(path)
    return path


def test_grasp_writes_a_valid_table(pipeline, can, tmp_path, capsys):
    out = tmp_path / "grasps.parquet"
    assert main(["grasp", str(can), "-n", "3", "-o", str(out), "--checkpoint",
                 str(pipeline / "data/model/model.pt"), "--simulate"]) == 0
    table = read_grasps(out)
    assert len(table) == 3 and set(table.object_code) == {"can"} and set(table.source) == {"postopt"}
    assert table.sim is not None and np.isfinite(table.energies).all()
    assert "bounding-box centre" in capsys.readouterr().out


def test_grasp_on_a_broken_mesh_exits_with_a_one_line_cause(pipeline, tmp_path, capsys):
    broken = tmp_path / "broken.obj"
    broken.write_text("v 0 0 0\nv 1 0 0\n")
    assert main(["grasp", str(broken), "-o", str(tmp_path / "x.parquet"),
                 "--checkpoint", str(pipeline / "data/model/model.pt")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "broken.obj" in err


def test_grasp_without_a_checkpoint_says_how_to_get_one(can, tmp_path, capsys):
    assert main(["grasp", str(can), "-o", str(tmp_path / "x.parquet"), "--checkpoint", str(tmp_path / "none.pt")]) == 1
    assert "make run" in capsys.readouterr().err


def test_show_writes_html_and_png(pipeline, tmp_path):
    table = pipeline / "data/eval/postopt_simulated.parquet"
    objects = pipeline / "data/objects"
    for name in ("view.html", "view.png"):
        assert main(["show", str(table), "--objects", str(objects), "-n", "2", "-o", str(tmp_path / name)]) == 0
    assert "dexliteLazyViewer" in (tmp_path / "view.html").read_text()
    assert (tmp_path / "view.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _chromium(page: Path, out_dir: Path, height: int) -> tuple[np.ndarray, list[str], str]:
    """Screenshot of ``page`` (file://) and the URLs the page itself requested (net log)."""
    shot, netlog = out_dir / "shot.png", out_dir / "netlog.json"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
           "--disable-quic", f"--user-data-dir={out_dir / 'profile'}", f"--log-net-log={netlog}",
           "--enable-logging=stderr", "--v=0", f"--window-size=1280,{height}", "--virtual-time-budget=20000",
           f"--screenshot={shot}", page.resolve().as_uri()]
    # Headless Chromium now and then never returns from --virtual-time-budget (a hang, not a
    # rendering failure: a fresh start renders the same page in seconds), so try twice.
    for attempt in range(2):
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=150)
            break
        except subprocess.TimeoutExpired:
            if attempt == 1:
                raise
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    # The browser's own housekeeping traffic has no page behind it; the page's has file://.
    requested = [e["params"]["url"] for e in log["events"] if e["type"] == start_job
                 and "file://" in e["params"].get("network_isolation_key", "")
                 and not e["params"]["url"].startswith("file:")]
    import matplotlib.image
    return matplotlib.image.imread(shot), requested, result.stderr


def _coloured(image: np.ndarray, hex_colour: str, tolerance: float = 0.25) -> int:
    """Pixels of ``image`` near the hue of ``hex_colour`` (shading changes brightness only)."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    px = image[..., :3].reshape(-1, 3)
    norm = px / np.maximum(px.max(1, keepdims=True), 1e-6)
    return int((np.abs(norm - rgb / rgb.max()).max(1) < tolerance).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_report_renders_offline_in_chromium(pipeline, tmp_path):
    from dexlite_core.report.html import HAND_COLOR, OBJECT_COLOR

    report = pipeline / "reports/index.html"
    image, requested, stderr = _chromium(report, tmp_path / "report", 6000)
    assert requested == [], f"the report fetched {requested}"
    assert "Uncaught" not in stderr, stderr[-2000:]
    # A page holding one 3D viewer only: its hand and object pixels must be drawn.
    viewer = tmp_path / "viewer.html"
    assert main(["show", str(pipeline / "data/eval/postopt_simulated.parquet"), "--objects",
                 str(pipeline / "data/objects"), "-n", "1", "-o", str(viewer)]) == 0
    image, requested, stderr = _chromium(viewer, tmp_path / "viewer", 900)
    assert requested == [] and "Uncaught" not in stderr
    hand, obj = _coloured(image, HAND_COLOR), _coloured(image, OBJECT_COLOR)
    assert hand + obj > 10000 and obj > 200, f"the 3D viewer drew {hand} hand and {obj} object pixels"
