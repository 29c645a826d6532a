"""The web app's overhead: seconds from the Run click until the segment is visible in the page's
slice view, against `voxtell-core predict` on the same volume and prompt, measured side by side
in one run (demo model, CPU, the demo phantom, prompt "liver").

    PYTHONPATH=. .venv-web/bin/python bench/web_overhead.py [--repeats 3]

Web: a `voxtell-web` server and headless Chromium (tests/web/browser.py); "visible" = the first
slice view's screenshot holds the liver's colour (polled). The first run loads the model in the
server; later runs first Revert (the colour leaves the view), then Run again. CLI: the whole
command in a new process (Python start, imports, model load, reading, writing) and the
predictor's `predict_volume` alone in this process after a warm-up call.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "web"))

from browser import ROOT, colour_pixels, open_page, web_server, write_phantom  # noqa: E402

PROMPT = "liver"


def cli_seconds(phantom: Path, out: Path) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "VoxTellCore.cli", "predict", "-i", str(phantom), "-o", str(out), "-p", PROMPT,
                    "-m", "demo", "--device", "cpu", "--format", "seg-nrrd"], check=True, cwd=ROOT, capture_output=True)
    return time.monotonic() - start


def predictor_seconds(phantom: Path, repeats: int) -> list:
    from VoxTellCore.inference.predictor import VoxTellPredictor
    from VoxTellCore.io import read_volume

    predictor = VoxTellPredictor(model="demo", device="cpu")
    volume = read_volume(phantom)
    predictor.predict_volume(volume, [PROMPT])
    times = []
    for _ in range(repeats):
        start = time.monotonic()
        predictor.predict_volume(volume, [PROMPT])
        times.append(time.monotonic() - start)
    return times


def web_seconds(phantom: Path, repeats: int) -> list:
    from VoxTellCore.terminology import segment_info

    rgb = [round(255 * c) for c in segment_info(PROMPT).color]
    with tempfile.TemporaryDirectory() as logs, web_server("-m", "demo", "--device", "cpu",
                                                           log=Path(logs) / "server.log") as url, open_page(url) as page:
        page.upload(phantom)
        page.wait_for(lambda: page.status().startswith("Opened"), "the phantom to open")
        page.type_prompt(PROMPT)
        times = []
        for run in range(repeats + 1):
            if run:
                page.click(".voxtell-revert")
                page.wait_for(lambda: colour_pixels(page.slice_view_png(), rgb) < 20, "the reverted view")
            page.runs += 1
            start = time.monotonic()
            page.click(".voxtell-run")
            page.wait_for(lambda: colour_pixels(page.slice_view_png(), rgb) > 100, "the liver in the slice view")
            times.append(time.monotonic() - start)
            page.wait_for(lambda: page.status().startswith("Segmented"), "the run's end")
        return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        phantom = write_phantom(Path(work) / "phantom.nii.gz")
        web = web_seconds(phantom, args.repeats)
        cli = [cli_seconds(phantom, Path(work) / f"cli{index}") for index in range(args.repeats)]
        predict = predictor_seconds(phantom, args.repeats)
    warm = statistics.median(web[1:])
    rows = [
        ("web: Run click -> liver in the slice view, first run (model loads)", web[0]),
        ("web: Run click -> liver in the slice view, later runs (median)", warm),
        ("voxtell-core predict, whole command in a new process (median)", statistics.median(cli)),
        ("VoxTellPredictor.predict_volume alone, warm, features kept as in the server (median)", statistics.median(predict)),
    ]
    print(f"demo model, CPU, phantom 64^3, prompt {PROMPT!r}, {args.repeats} repeats\n")
    print("| what | seconds |\n|---|---|")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.2f} |")
    print(f"\nweb later run / CLI command: {warm / statistics.median(cli):.2f}x; "
          f"web overhead over predict_volume: {warm - statistics.median(predict):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
