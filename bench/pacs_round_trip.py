"""PACS round trip cost against the model's own time (issue #22), on a real Orthanc.

Makes a synthetic CT series (default 512 x 512 x 300, int16, one file per slice), uploads it
to a temporary Orthanc (started here: 127.0.0.1, random ports, auth on; Debian packages
orthanc and orthanc-dicomweb), then times in one run, with the classes `voxtell-core predict
--dicomweb ... --store` uses: pulling the series (WADO-RS into a folder), reading it, the
demo model (load, then one prompt), writing the DICOM SEG, storing it (STOW-RS, then C-STORE).

    .venv/bin/python bench/pacs_round_trip.py [--shape 512 512 300] [--prompts liver]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def synthetic_ct(shape: tuple) -> np.ndarray:
    """A body-like ellipsoid with organs' contrast and noise, KJI int16."""
    columns, rows, slices = shape
    k, j, i = np.ogrid[:slices, :rows, :columns]
    body = ((j - rows / 2) / (0.4 * rows)) ** 2 + ((i - columns / 2) / (0.45 * columns)) ** 2 < 1
    organ = ((j - rows * 0.55) / (0.12 * rows)) ** 2 + ((i - columns * 0.4) / (0.15 * columns)) ** 2 \
        + ((k - slices / 2) / (0.3 * slices)) ** 2 < 1
    noise = np.random.default_rng(0).normal(0, 20, (slices, rows, columns))
    return (np.where(body, 40, -1000) + 30 * organ + noise).astype(np.int16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", nargs=3, type=int, default=(512, 512, 300), metavar=("I", "J", "K"))
    parser.add_argument("--prompts", nargs="+", default=["liver"])
    args = parser.parse_args()

    from conftest_io_helpers import write_full_dicom_series
    from orthanc_server import Orthanc

    from VoxTellCore.inference.batch import model_info
    from VoxTellCore.inference.predictor import VoxTellPredictor
    from VoxTellCore.io import read_volume, segment_infos, writer_for
    from VoxTellCore.pacs.dicomweb import DicomWebServer
    from VoxTellCore.pacs.dimse import DimsePeer

    rows = []

    def timed(what: str, work, size=None):
        start = time.perf_counter()
        value = work()
        seconds = time.perf_counter() - start
        rows.append((what, seconds, size(value) if size else None))
        print(f"{what}: {seconds:.2f} s", file=sys.stderr, flush=True)  # progress: the model step takes minutes
        return value

    with tempfile.TemporaryDirectory(prefix="voxtell-pacs-bench-") as work:
        work = Path(work)
        study, series = "1.2.826.0.1.3680043.2.1125.8801", "1.2.826.0.1.3680043.2.1125.8801.1"
        files = write_full_dicom_series(work / "ct", synthetic_ct(tuple(args.shape)), series, study_uid=study)
        orthanc = Orthanc(work / "orthanc").start()
        try:
            orthanc.upload(files)
            server = DicomWebServer(orthanc.dicomweb, {"Authorization": _basic(orthanc.auth)})
            (work / "pulled").mkdir()

            def folder_bytes():
                return sum(path.stat().st_size for path in (work / "pulled").iterdir())

            timed("pull the series (WADO-RS)", lambda: server.fetch_series(study, series, work / "pulled"),
                  lambda _: folder_bytes())
            volume = timed("read it (SimpleITK)", lambda: read_volume(work / "pulled"))
            predictor = timed("load the demo model", lambda: VoxTellPredictor(model="demo", device="cpu"))
            masks = timed(f"segment, {len(args.prompts)} prompt(s) (demo model)",
                          lambda: predictor.predict_volume(volume, args.prompts))
            seg = work / "seg.dcm"
            timed("write the DICOM SEG", lambda: writer_for("dicom-seg").write(
                masks, segment_infos(args.prompts), volume, seg, model_info(predictor)), lambda _: seg.stat().st_size)
            timed("store it (STOW-RS)", lambda: server.store([seg]), lambda _: seg.stat().st_size)
            timed("store it (C-STORE)", lambda: DimsePeer(orthanc.dimse).store([seg]), lambda _: seg.stat().st_size)
        finally:
            orthanc.stop()

    model = sum(seconds for what, seconds, _ in rows if what.startswith(("load", "segment")))
    pacs = sum(seconds for what, seconds, _ in rows if "(WADO" in what or "(STOW" in what)
    print(f"\nPACS round trip, {' x '.join(map(str, args.shape))} int16 series of {args.shape[2]} files, Orthanc on "
          "127.0.0.1, CPU\n")
    print("| step | seconds | bytes |\n|---|---:|---:|")
    for what, seconds, size in rows:
        print(f"| {what} | {seconds:.2f} | {size if size is not None else ''} |")
    print(f"\nDICOMweb pull + STOW store: {pacs:.2f} s = {pacs / model:.3f} x the model's own time ({model:.2f} s).")


def _basic(auth: tuple) -> str:
    import base64

    return "Basic " + base64.b64encode(":".join(auth).encode()).decode()


if __name__ == "__main__":
    main()
