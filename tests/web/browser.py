"""Drive the VoxTell web app as a person would: a `voxtell-web` server on 127.0.0.1 (a free port)
and Debian's headless Chromium through Selenium. Used by the web tests and bench/web_overhead.py.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

from VoxTellCore.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("VOXTELL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VOXTELL_CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW = (1600, 900)
SERVER_START_S = 180
STEP_S = 120  # the longest a page change may take (a run, an upload) on a busy 2-core machine


PHANTOM_SEED = 2026


def write_phantom(path: Path) -> Path:
    """The demo's synthetic CT phantom (seed 2026, the demo model's shape) as a NIfTI file."""
    import json

    import SimpleITK as sitk

    from VoxTellCore.io import volume_to_sitk
    from VoxTellCore.models import DEMO_MODEL_DIR
    from VoxTellCore.phantoms import generate_phantom

    shape = json.loads((DEMO_MODEL_DIR / "voxtell_model.json").read_text())["phantom_shape"]
    sitk.WriteImage(volume_to_sitk(generate_phantom(seed=PHANTOM_SEED, shape=tuple(shape)).to_volume()), str(path))
    return path


def colour_pixels(png: bytes, rgb, tolerance: int = 40) -> int:
    """How many pixels of a PNG are within ``tolerance`` (every channel) of ``rgb`` (0..255)."""
    import io

    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    return int(np.count_nonzero(np.abs(image - np.asarray(rgb)).max(axis=2) < tolerance))



@contextmanager
def web_server(*args: str, log: Optional[Path] = None) -> Iterator[str]:
    """`python -m VoxTellWeb` (this checkout, this interpreter) on a free port; yields its URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    output = open(log, "w") if log else subprocess.DEVNULL
    server = subprocess.Popen([sys.executable, "-m", "VoxTellWeb", "--host", "127.0.0.1", "--port", str(port), *args],
                              cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"voxtell-web exited with code {server.returncode} (log: {log})")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"voxtell-web did not listen on port {port} within {SERVER_START_S} s")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if log:
            output.close()


class Page:
    """One Chromium tab on the app; every wait is bounded (STEP_S)."""

    def __init__(self, url: str, downloads: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars"):
            options.add_argument(argument)
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
        self.downloads = downloads
        self.runs = 0  # runs started by this page (the app numbers them)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.get(url)
        self.wait_for(lambda: len(self.all("input[type=file]")) >= 1, "the page's upload buttons")

    def close(self) -> None:
        self.driver.quit()

    # -------------------------------------------------------------- finding and waiting
    def all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def one(self, css: str):
        found = self.wait_for(lambda: self.all(css), css)
        return found[0]

    def wait_for(self, condition, what: str, timeout_s: float = STEP_S):
        deadline = time.monotonic() + timeout_s
        while True:
            result = condition()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout_s} s for {what}; status: {self.status()!r}, "
                                     f"error: {self.error()!r}")
            time.sleep(0.25)

    def status(self) -> str:
        return " ".join(element.text for element in self.all(".voxtell-status"))

    def error(self) -> str:
        return " ".join(element.text for element in self.all(".voxtell-error"))

    # -------------------------------------------------------------- actions
    def upload(self, path: Path) -> None:
        """Through the first upload button (files), as a user picks a file."""
        self.all("input[type=file]")[0].send_keys(str(path))

    def type_prompt(self, prompt: str) -> None:
        from selenium.webdriver.common.keys import Keys

        box = self.one(".voxtell-prompts input")
        box.send_keys(prompt, Keys.ENTER)
        box.send_keys(Keys.ESCAPE)  # closes the completion menu

    def clear_prompts(self) -> None:
        for close in self.all(".voxtell-prompts .v-chip__close"):
            close.click()

    def click(self, css: str) -> None:
        element = self.one(css)
        self.wait_for(lambda: element.is_enabled(), f"{css} to be enabled")
        element.click()

    def run(self) -> float:
        """Click Run and wait for the run's end; seconds from the click until the page says
        "Segmented ... (run N, ...)" with the segments listed. Fails on another ending."""
        self.wait_for(lambda: not self.status().startswith("Segmenting"), "the previous run to end")
        self.runs += 1
        start = time.monotonic()
        self.click(".voxtell-run")
        ended = self.wait_for(lambda: re.search(rf"(^Segmented .*\(run {self.runs},)|(^Run {self.runs} )", self.status()),
                              f"run {self.runs} to end")
        elapsed = time.monotonic() - start
        assert ended.group(1), f"run {self.runs}: {self.status()} {self.error()}"
        return elapsed

    def segments(self) -> List[tuple]:
        """(name, CSS colour of its dot) of each row of the Segment Editor's segment list."""
        rows = []
        for row in self.all(".v-navigation-drawer--left .v-list-item"):
            names = row.find_elements("css selector", "input")
            dots = row.find_elements("css selector", ".mdi-circle")
            if names and dots:
                rows.append((names[0].get_attribute("value"), dots[0].value_of_css_property("color")))
        return rows

    def slice_view_png(self) -> bytes:
        """The first slice view (the red, axial one in trame-slicer's default layout) as PNG."""
        return self.all("img.image-display-area")[0].screenshot_as_png

    def reset_cameras(self) -> None:
        """Press every view's Reset Camera (trame-slicer's gutter button), as a user would."""
        for icon in self.all(".view-gutter .mdi-camera-flip-outline"):
            icon.click()

    def slice_view_has_its_size(self) -> bool:
        """The first slice view shows a frame rendered at the view's current size: after a resize the
        page stretches the previous frame (or shows none) until the server's next one arrives."""
        return self.driver.execute_script(
            "const image = document.querySelectorAll('img.image-display-area')[0];"
            "const area = image && image.parentElement.getBoundingClientRect();"
            "return !!area && image.naturalWidth > 0 && image.naturalWidth === Math.floor(area.width)"
            " && image.naturalHeight === Math.floor(area.height);")

    def settled_slice_view_png(self) -> bytes:
        """The first slice view once it stopped changing (the server streams it: after a change the
        page shows intermediate images for a moment): two shots 1 s apart with the same pixels, each
        of a frame rendered at the view's size."""
        def shot() -> bytes:
            self.wait_for(self.slice_view_has_its_size, "a slice view frame of the view's size", timeout_s=60)
            return self.slice_view_png()

        shots = [shot()]

        def settled():
            time.sleep(1)
            shots.append(shot())
            return shots[-1] == shots[-2]

        self.wait_for(settled, "the slice view to settle", timeout_s=60)
        return shots[-1]

    def download(self, format: str) -> tuple:
        """Save in ``format`` through the page; (file name, bytes) of the file the browser saved."""
        for old in self.downloads.iterdir():
            old.unlink()
        self.pick_format(format)
        self.click(".voxtell-save")

        def saved():
            files = [f for f in self.downloads.iterdir() if not f.name.endswith(".crdownload")]
            return files if files or self.error() else None

        files = self.wait_for(saved, f"the {format} download")
        assert files, self.error()
        return files[0].name, files[0].read_bytes()

    def pick_format(self, format: str) -> None:
        self.click(".voxtell-format")
        options = self.wait_for(lambda: [o for o in self.all(".v-overlay-container .v-list-item")
                                         if o.text.strip() == format], f"the {format} option")
        options[0].click()


@contextmanager
def open_page(url: str) -> Iterator[Page]:
    downloads = Path(tempfile.mkdtemp(prefix="voxtell-web-downloads-"))
    page = Page(url, downloads)
    try:
        yield page
    finally:
        page.close()
        shutil.rmtree(downloads, ignore_errors=True)
