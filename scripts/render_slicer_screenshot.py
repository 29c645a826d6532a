"""Renders docs/images/slicer_segments_on_ct.png, the extension's screenshot, with Slicer's own
libraries:

    .venv/bin/python scripts/render_slicer_screenshot.py

1. This checkout's `.venv`: `voxtell-core demo` generates the synthetic CT phantom (and prints
   the demo model's Dice on it); the extension's batch mode (VoxTellSlicerLib/batch.py, the demo
   model) segments it into a `.seg.nrrd` with Slicer's segment names, colours and terminology.
2. `trame-slicer` 2.0.0 (Slicer's MRML, segmentation logic, displayable managers and VTK views
   over slicer-core) serves its segmentation web app on 127.0.0.1 with the CT and the
   `.seg.nrrd` loaded, in the "Quad View" layout with the segments shown in 3D. trame-slicer pins
   slicer-core<5.12 and vtk 9.6.0, so it lives in its own venv: $TRAME_VENV (default
   /tmp/trame-venv), created by this script on first use.
3. Headless Chromium (Debian: `apt-get install -y chromium-headless-shell`) screenshots the page.

The demo model is trained on synthetic phantoms, so the picture shows a phantom: on real CTs its
masks are not usable. `--image` and `--model` take a real CT and a real model instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from VoxTellCore.ports import free_port  # noqa: E402

OUTPUT = ROOT / "docs" / "images" / "slicer_segments_on_ct.png"
TRAME_SLICER = "trame-slicer[standalone]==2.0.0"
TRAME_VENV = Path(os.environ.get("TRAME_VENV", "/tmp/trame-venv"))
PHANTOM_SEED = 2026
PROMPTS = ["left lung", "right lung", "heart", "aorta", "liver", "spleen", "left kidney", "right kidney",
           "vertebrae", "nodule in the right middle lobe", "right pleural effusion"]
WINDOW = (1600, 900)
CHROMIUM_NAMES = ["chromium-headless-shell", "chromium", "chromium-browser"]


def run(command: list[str]) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], check=True)


def segment(image: Path | None, model: str, work: Path) -> tuple[Path, Path]:
    """(CT, .seg.nrrd) from this checkout's own code."""
    python = Path(sys.executable)
    if image is None:
        run([python.parent / "voxtell-core", "demo", "-o", work / "demo", "--seed", PHANTOM_SEED, "--device", "cpu"])
        image = work / "demo" / f"phantom_{PHANTOM_SEED}.nii.gz"
    run([python, ROOT / "VoxTellSlicer" / "VoxTellSlicerLib" / "batch.py", "-i", image, "-o", work / "seg",
         "-m", model, "--device", "cpu", "-p", *PROMPTS])
    (segmentation,) = (work / "seg").glob("*.seg.nrrd")
    return image, segmentation


def trame_python() -> Path:
    python = TRAME_VENV / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", TRAME_VENV])
        run([python, "-m", "pip", "install", "--quiet", TRAME_SLICER])
    return python



def wait_for_port(port: int, server: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the trame-slicer server exited with code {server.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(1)
    raise SystemExit(f"the trame-slicer server did not listen on port {port} within {timeout_s} s")


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("no headless Chromium: apt-get install -y chromium-headless-shell")


def capture(url: str, output: Path, wait_s: float) -> None:
    """Runs in the trame-slicer venv (aiohttp): opens the page in headless Chromium, lets the
    views stream in for wait_s seconds of real time (virtual time does not wait for the
    server's images), then saves a screenshot through the DevTools protocol."""
    import asyncio
    import base64

    import aiohttp

    async def shoot(debug_port: int) -> bytes:
        async with aiohttp.ClientSession() as session:
            for _ in range(60):
                try:
                    async with session.get(f"http://127.0.0.1:{debug_port}/json/list") as response:
                        pages = [t for t in await response.json() if t["type"] == "page"]
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.5)
            await asyncio.sleep(wait_s)
            async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as socket_:
                await socket_.send_json({"id": 1, "method": "Page.captureScreenshot", "params": {"format": "png"}})
                async for message in socket_:
                    reply = message.json()
                    if reply.get("id") == 1:
                        return base64.b64decode(reply["result"]["data"])
        raise RuntimeError("no screenshot from Chromium")

    debug_port = free_port()
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}",
             "--remote-debugging-address=127.0.0.1", f"--remote-debugging-port={debug_port}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            output.write_bytes(asyncio.run(shoot(debug_port)))
        finally:
            # Debian's chromium-headless-shell is a shell script: end the browser it started too.
            os.killpg(browser.pid, signal.SIGTERM)
            browser.wait(timeout=30)


def serve(image: Path, segmentation: Path, port: int) -> None:
    """Runs in the trame-slicer venv: the segmentation app with the CT and the segments loaded."""
    from trame_slicer.app.segmentation_app import SegmentationApp
    from trame_slicer.views.threed_view import ViewDirection

    app = SegmentationApp()
    logic, slicer_app = app._logic, app._slicer_app  # trame-slicer 2.0.0 keeps them private
    slicer_app.io_manager.load_segmentation(segmentation)
    # Loading the volume makes the app's Segment Editor take the segmentation already in the scene.
    logic._load_files_logic._on_load_volume_files([str(image)])
    logic._segment_editor_logic.data.segment_display.show_3d = True
    slicer_app.segmentation_editor.show_3d(True)
    # The app volume-renders the CT; its bones would hide the segments in 3D.
    volume = slicer_app.scene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
    slicer_app.volume_rendering.get_vr_display_node(volume).SetVisibility(False)
    logic._layout_button_logic.data.current_layout_id = "Quad View"
    for view in slicer_app.view_manager.get_threed_views():
        view.rotate_to_view_direction(ViewDirection.ANTERIOR)
        view.fit_view_to_content()
    app.server.start(host="127.0.0.1", port=port, open_browser=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, help="a CT to segment (default: the demo phantom)")
    parser.add_argument("-m", "--model", default="demo", help="model for the batch mode (default: demo)")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    parser.add_argument("--wait", type=float, default=30, help="seconds the page loads before the screenshot")
    parser.add_argument("--serve", nargs=3, metavar=("IMAGE", "SEG_NRRD", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--capture", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), Path(args.serve[1]), int(args.serve[2]))
        return 0
    if args.capture:
        capture(args.capture, args.output, args.wait)
        return 0

    with tempfile.TemporaryDirectory() as work:
        image, segmentation = segment(args.image, args.model, Path(work))
        port = free_port()
        python = trame_python()
        server = subprocess.Popen([python, __file__, "--serve", image, segmentation, str(port)])
        try:
            wait_for_port(port, server)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            run([python, __file__, "--capture", f"http://127.0.0.1:{port}/", "-o", args.output,
                 "--wait", str(args.wait)])
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
