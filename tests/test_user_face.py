"""The user's face: `dexlite grasp` / `dexlite show` and the offline HTML report in a browser."""
import base64
import io
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import trimesh
import websockets.sync.client

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
                 str(pipeline / "data/refine/model.pt"), "--simulate"]) == 0
    table = read_grasps(out)
    assert len(table) == 3 and set(table.object_code) == {"can"} and set(table.source) == {"postopt"}
    assert table.sim is not None and np.isfinite(table.energies).all()
    printed = capsys.readouterr()
    assert "bounding-box centre" in printed.out and "note:" not in printed.err
    # The can as it is (3 cm radius, 12 cm tall), and the table's scale is that radius x 1.03
    radius = float(re.search(r"bounding radius is ([0-9.]+) m", printed.out).group(1))
    assert radius == pytest.approx(np.hypot(0.03, 0.06), rel=1e-3)
    assert table.scale == pytest.approx(radius * 1.03, rel=1e-3)
    # each figure names its protocol
    assert "passed the DexGraspBench-like test (friction 0.6" in printed.out
    assert "passed our MuJoCo lift and six-direction tests (friction 2)" in printed.out


def test_grasp_runs_with_the_settings_stored_in_the_checkpoint(pipeline):
    """The refine stage stores the tiny pipeline's synth, postopt and sim sections; a params file replaces them."""
    import yaml

    from dexlite_core.grasp_mesh import GraspSettings
    from dexlite_core.model.grasp_model import GraspModel

    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    stored = GraspModel.load(pipeline / "data/refine/model.pt").configs
    settings = GraspSettings.of(stored)
    assert settings.postopt.staged.qp_steps == params["postopt"]["staged"]["qp_steps"] == 10  # not the default
    assert settings.sim.grasp.lift_ratio == params["sim"]["grasp"]["lift_ratio"] == 0.01
    assert settings.sample.n_per_object == params["synth"]["n_per_object"]
    replaced = GraspSettings.of({**stored, "postopt": {"staged": {"qp_steps": 3}}})
    assert replaced.postopt.staged.qp_steps == 3 and replaced.sim == settings.sim
    assert stored["train"]["network"] == params["train"]["network"]  # what the model was trained with


def test_grasp_without_a_default_names_the_flag(can, tmp_path, monkeypatch, capsys):
    import dexlite_core.cli as cli

    monkeypatch.setattr(cli, "PROJECT", tmp_path)  # as if installed outside a DexLite checkout
    assert main(["grasp", str(can), "-o", str(tmp_path / "x.parquet")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass --checkpoint PATH" in err


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


class Chromium:
    """Headless Chromium driven over the DevTools protocol: open a page, wait for a condition in it.

    Waits are for conditions the page reports (with generous upper bounds), never for a time
    budget: under load a WebGL frame can take a minute to draw, and that must not fail a test.
    """

    def __init__(self, profile: Path, height: int):
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
             "--disable-quic", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             f"--window-size=1280,{height}", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        self._wait(lambda: port_file.exists() and len(port_file.read_text().splitlines()) >= 2, "DevTools port")
        port = port_file.read_text().splitlines()[0]
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=60).read())
        page = next(t for t in targets if t["type"] == "page")
        self.socket = websockets.sync.client.connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=60)
        self.next_id, self.requested, self.exceptions = 0, [], []
        for domain in ("Network", "Runtime", "Page"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=300))
            if message.get("id") == self.next_id:
                return message.get("result", {})
            if message.get("method") == "Network.requestWillBeSent":
                self.requested.append(message["params"]["request"]["url"])
            elif message.get("method") == "Runtime.exceptionThrown":
                self.exceptions.append(message["params"]["exceptionDetails"])

    def open(self, page: Path, ready: str) -> np.ndarray:
        """Navigate to ``page``, wait until the JS expression ``ready`` is true, return a screenshot."""
        self.call("Page.navigate", url=page.resolve().as_uri())
        self._wait(lambda: self.call("Runtime.evaluate", expression=ready, returnByValue=True)
                   .get("result", {}).get("value") is True, ready)
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return matplotlib.image.imread(io.BytesIO(png), format="png")

    def external_requests(self) -> list[str]:
        return [u for u in self.requested if not u.startswith(("file:", "data:", "blob:"))]

    @staticmethod
    def _wait(condition, what: str, limit_s: float = 600) -> None:
        deadline = time.monotonic() + limit_s
        while not condition():
            assert time.monotonic() < deadline, f"Chromium: no {what} after {limit_s} s"
            time.sleep(0.5)

    def close(self) -> None:
        self.socket.close()
        self.process.kill()
        self.process.wait()


def _coloured(image: np.ndarray, hex_colour: str, tolerance: float = 0.25) -> int:
    """Pixels of ``image`` near the hue of ``hex_colour`` (shading changes brightness only)."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    px = image[..., :3].reshape(-1, 3)
    norm = px / np.maximum(px.max(1, keepdims=True), 1e-6)
    return int((np.abs(norm - rgb / rgb.max()).max(1) < tolerance).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_report_renders_offline_in_chromium(pipeline, tmp_path):
    from dexlite_core.report.html import HAND_COLOR, OBJECT_COLOR

    viewer = tmp_path / "viewer.html"  # a page holding one 3D viewer only
    assert main(["show", str(pipeline / "data/eval/postopt_simulated.parquet"), "--objects",
                 str(pipeline / "data/objects"), "-n", "1", "-o", str(viewer)]) == 0
    browser = Chromium(tmp_path / "profile", height=900)
    try:
        browser.open(pipeline / "reports/index.html",
                     "document.readyState === 'complete' && "
                     "[...document.querySelectorAll('.plot')].every(e => e.dataset.drawn === '1')")
        image = browser.open(viewer, "document.querySelector('.scene[data-drawn]') !== null")
    finally:
        browser.close()
    assert browser.external_requests() == [], f"the pages fetched {browser.external_requests()}"
    assert browser.exceptions == [], browser.exceptions
    hand, obj = _coloured(image, HAND_COLOR), _coloured(image, OBJECT_COLOR)
    assert hand + obj > 10000 and obj > 200, f"the 3D viewer drew {hand} hand and {obj} object pixels"


def test_grasp_exports_to_dexgraspbench(pipeline, can, tmp_path, capsys):
    """With --simulate the folder also gets the table with its verdicts, judged as a --params file says."""
    from dexlite_core.sim.dexgraspbench import read_grasp_file

    out, params = tmp_path / "dgb", tmp_path / "params.yaml"
    params.write_text("sim:\n  grasp:\n    object:\n      friction: 1.5\n")
    assert main(["grasp", str(can), "-n", "2", "-o", str(out), "--format", "dexgraspbench", "--simulate", "--params",
                 str(params), "--checkpoint", str(pipeline / "data/refine/model.pt")]) == 0
    assert "lift and six-direction tests (friction 1.5)" in capsys.readouterr().out
    table = read_grasps(out / "grasps.parquet")
    assert len(table) == 2 and table.sim is not None
    files = sorted((out / "graspdata" / "can").rglob("*.npy"))
    assert len(files) == 2
    record = read_grasp_file(files[0])
    assert (Path(record["obj_path"]) / "urdf" / "meshes" / "convex_piece_000.obj").exists()
    assert (Path(record["obj_path"]) / "info" / "simplified.json").exists()
