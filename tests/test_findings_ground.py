"""`voxtell-core ground` on an abdominal report: one mask per finding, each named with its organ.

The demo model on the chest phantom: the masks mean nothing here, the names and the one-to-one
mapping between findings and masks are what is checked.
"""

from __future__ import annotations

import json

from Training.demo_model import PHANTOM_SHAPE
from VoxTellCore.cli import main
from VoxTellCore.findings import extract_findings, reported
from VoxTellCore.findings.anatomy import names_structure
from VoxTellCore.io import Volume, volume_to_sitk
from VoxTellCore.phantoms import generate_phantom

ABDOMINAL_REPORT = """FINDINGS:
Liver: Diffuse signal loss on opposed-phase images. 2.3 cm observation in segment 7 with washout.
Spleen: Mildly enlarged, measuring 14.5 cm.
Kidneys: Moderate left hydronephrosis and hydroureter to the level of a 6 mm calculus at the left UVJ.
The previously seen right ureteral stent has been removed.
Pancreas: Unremarkable.

IMPRESSION:
1. 2.3 cm LI-RADS 5 observation in hepatic segment 7.
2. Splenomegaly.
"""


def test_ground_gives_one_mask_per_finding_named_with_its_organ(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXTELL_CACHE_DIR", str(tmp_path / "cache"))
    import SimpleITK as sitk

    phantom = generate_phantom(seed=3, shape=PHANTOM_SHAPE, n_nodules=1)
    image = tmp_path / "abdomen.nii.gz"
    sitk.WriteImage(volume_to_sitk(Volume(phantom.image, phantom.ijk_to_ras)), str(image))
    report = tmp_path / "report.txt"
    report.write_text(ABDOMINAL_REPORT, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["ground", "-i", str(image), "-r", str(report), "-o", str(out), "-m", "demo", "--device", "cpu",
                 "--include-prior"]) == 0

    document = json.loads((out / "grounded_report.json").read_text(encoding="utf-8"))
    texts = [entry["text"] for entry in document["findings"]]
    # Two liver findings, the spleen, hydronephrosis, hydroureter, the calculus; the impression adds none.
    positive = [t for t in texts if "stent" not in t]
    assert positive == ["Diffuse signal loss of the liver on opposed-phase images",
                        "2.3 cm observation in segment 7 of the liver with washout",
                        "Mildly enlarged spleen, measuring 14.5 cm", "Moderate left hydronephrosis", "Left hydroureter",
                        "6 mm calculus at the left ureterovesical junction"]
    # --include-prior also grounds the finding that is no longer there.
    assert len(texts) == len(positive) + 1
    assert texts == [f.text for f in reported(extract_findings(ABDOMINAL_REPORT, True), prior=True)]
    masks = [entry["mask_file"] for entry in document["findings"]]
    assert len(set(masks)) == len(masks) and all((out / mask).is_file() for mask in masks)
    assert all(names_structure(mask.replace("_", " ")) for mask in masks)  # the organ is in every mask's name
