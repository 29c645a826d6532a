"""RTSTRUCT writers side by side (issue #22): ours (pydicom + scikit-image) against rt-utils,
on TotalSegmentator's real 20-slice CT with organ-like masks (body with holes, bones, a ball):
seconds, file size, dciodvfy errors, Dice of the contours filled back (even-odd) to the masks.

    .venv/bin/python bench/rtstruct_writers.py     (rt-utils must be installed: pip install rt-utils)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    from dicom_checks import dciodvfy_errors, rasterised_rtstruct, totalsegmentator_ct
    from test_dicom_interop import MODEL, organ_like_masks

    from VoxTellCore.evaluation.metrics import dice
    from VoxTellCore.io import read_volume, segment_infos, writer_for

    names = ["body", "bone", "ball"]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        ct = totalsegmentator_ct(work / "ct")
        volume = read_volume(ct)
        masks = organ_like_masks(volume)[:3]

        def ours(path: Path) -> None:
            writer_for("rtstruct").write(masks, segment_infos(names), volume, path, MODEL)

        def rt_utils(path: Path) -> None:
            from rt_utils import RTStructBuilder

            builder = RTStructBuilder.create_new(dicom_series_path=str(ct))
            order = {uid: k for k, uid in enumerate(volume.dicom.sop_instance_uids)}
            # rt-utils wants (rows, columns, slices) in its own slice order (its series_data).
            slices = [order[ds.SOPInstanceUID] for ds in builder.series_data]
            for mask, name in zip(masks, names):
                builder.add_roi(mask=mask[slices].transpose(1, 2, 0).astype(bool), name=name)
            builder.save(str(path))

        print("| writer | seconds | bytes | dciodvfy errors | Dice body / bone / ball |\n|---|---:|---:|---:|---|")
        for name, write in (("ours (pydicom + scikit-image)", ours), ("rt-utils 1.2.7", rt_utils)):
            path = work / f"{name.split()[0]}.dcm"
            start = time.perf_counter()
            write(path)
            seconds = time.perf_counter() - start
            filled = rasterised_rtstruct(path, volume)
            dices = " / ".join(f"{dice(filled[i], masks[i]):.4f}" for i in range(3))
            print(f"| {name} | {seconds:.2f} | {path.stat().st_size} | {len(dciodvfy_errors(path))} | {dices} |")


if __name__ == "__main__":
    main()
