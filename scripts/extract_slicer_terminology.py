"""Regenerate Resources/vocabulary/slicer_general_anatomy.json, the compact extract of Slicer's
"3D Slicer General Anatomy list" that gives CLI outputs the segment codes and colours that the
Slicer module gives (VoxTellCore/terminology.py).

The list is Slicer's ``SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.term.json``; the
slicer-core wheel lacks it, the trame-slicer wheel ships it. By default this downloads the
pinned trame-slicer wheel (without installing it):

    .venv/bin/python scripts/extract_slicer_terminology.py [--term-json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from VoxTellCore.atomic import atomic_write  # noqa: E402
from VoxTellCore.terminology import GENERAL_ANATOMY_FILE, UNSET_COLOR  # noqa: E402

TRAME_SLICER = "trame-slicer==2.0.0"
MEMBER = "trame_slicer/resources/terminologies/SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.term.json"
SOURCE = (
    "3D Slicer's 'SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.term.json' (Modules/Loadable/"
    f"Terminologies/Resources), as shipped in the {TRAME_SLICER} wheel; regenerate with "
    "scripts/extract_slicer_terminology.py"
)
LICENSE = (
    "The list is part of 3D Slicer (3D Slicer License, BSD-style; trame-slicer is Apache-2.0). Its codes are "
    "SNOMED CT concepts as used by DICOM PS3.16 (free for use in DICOM under SNOMED International's agreement "
    "with DICOM)."
)


def download_term_json(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", TRAME_SLICER, "-d", str(folder)],
                   check=True)
    wheel = next(folder.glob("trame_slicer-*.whl"))
    target = folder / Path(MEMBER).name
    with zipfile.ZipFile(wheel) as archive:
        target.write_bytes(archive.read(MEMBER))
    return target


def code(item: dict) -> list[str]:
    return [item["CodingSchemeDesignator"], item["CodeValue"], item["CodeMeaning"]]


def recommended_color(*items: dict) -> list[int] | None:
    """The first item's colour that has a code and a colour other than Slicer's 'unset' grey."""
    for item in items:
        rgb = item.get("recommendedDisplayRGBValue")
        if item.get("CodeValue") and rgb and tuple(rgb) != UNSET_COLOR:
            return [int(c) for c in rgb]
    return None


def extract(term_json: Path) -> dict:
    """Every '3dSlicerLabel' of types and type modifiers, in the list's order (the first
    occurrence of a label wins, as in Slicer's lookup)."""
    data = json.loads(term_json.read_text(encoding="utf-8"))
    labels: dict[str, dict] = {}

    def add(label: str | None, entry: dict) -> None:
        if label and label.lower() not in {known.lower() for known in labels}:
            labels[label] = entry

    for category in data["SegmentationCodes"]["Category"]:
        for type_item in category.get("Type", []):
            add(type_item.get("3dSlicerLabel"),
                {"category": code(category), "type": code(type_item), "color": recommended_color(type_item)})
            for modifier in type_item.get("Modifier", []):
                add(modifier.get("3dSlicerLabel"),
                    {"category": code(category), "type": code(type_item), "modifier": code(modifier),
                     "color": recommended_color(modifier, type_item)})
    return {"_source": SOURCE, "_license": LICENSE, "context": data["SegmentationCategoryTypeContextName"],
            "labels": labels}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--term-json", type=Path, help="the .term.json file (default: from the pinned trame-slicer wheel)")
    parser.add_argument("-o", "--output", type=Path, default=GENERAL_ANATOMY_FILE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        term_json = args.term_json or download_term_json(Path(folder))
        table = extract(term_json)
    lines = [f"  {json.dumps(label)}: {json.dumps(entry)}" for label, entry in table.pop("labels").items()]
    header = ",\n".join(f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in table.items())
    text = "{\n" + header + ',\n  "labels": {\n' + ",\n".join("  " + line for line in lines) + "\n  }\n}\n"
    atomic_write(args.output, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"), ".json")
    print(f"wrote {len(lines)} labels to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
