"""`voxtell-core findings` does what its help text, the README and docs/report-grounding.md say."""

from __future__ import annotations

import json

from VoxTellCore.cli import main

FOLLOW_UP = """Findings:
Enlarged mediastinal lymph node measuring 14 mm.
The previously described right pleural effusion has resolved.
No pleural effusion. No pericardial effusion.
8 mm left external iliac lymph node, not enlarged by size criteria.
The common bile duct measures 7 mm, within normal limits after cholecystectomy.
The previously placed right ureteral stent has been removed.
Nasogastric tube has been removed.
"""


def findings_json(tmp_path, capsys, *options: str) -> list[dict]:
    report = tmp_path / "report.txt"
    report.write_text(FOLLOW_UP, encoding="utf-8")
    assert main(["findings", str(report), *options]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_json_lines_carry_prior_reference(tmp_path, capsys):
    records = findings_json(tmp_path, capsys)
    assert all("prior_reference" in record for record in records)


def test_enlarged_is_a_finding_not_a_comparison_with_a_prior_study(tmp_path, capsys):
    records = findings_json(tmp_path, capsys)
    assert [(r["text"], r["prior_reference"]) for r in records] == [
        ("Enlarged mediastinal lymph node measuring 14 mm", False)]


def test_include_prior_prints_resolved_and_removed_findings_without_all(tmp_path, capsys):
    records = findings_json(tmp_path, capsys, "--include-prior")
    prior = [r for r in records if r["prior_reference"]]
    assert [r["negated"] for r in prior] == [True, True, True]
    assert ["pleural effusion" in prior[0]["text"], "ureteral stent" in prior[1]["text"],
            "Nasogastric tube" in prior[2]["text"]] == [True, True, True]
    assert not any(r["negated"] and not r["prior_reference"] for r in records)  # no other negated statement


def test_all_keeps_negations_of_different_structures_apart(tmp_path, capsys):
    texts = [r["text"] for r in findings_json(tmp_path, capsys, "--all")]
    assert "No pleural effusion" in texts and "No pericardial effusion" in texts


def test_normal_by_criteria_and_removed_devices_are_not_positive_findings(tmp_path, capsys):
    records = findings_json(tmp_path, capsys, "--all")
    by_text = {r["text"]: r for r in records}
    criteria = [r for r in records if "external iliac" in r["text"] or "common bile duct" in r["text"]]
    assert len(criteria) == 2 and all(r["negated"] for r in criteria)
    # A removed device is a statement about the prior study: left out unless --include-prior.
    assert not any("stent" in text or "tube" in text for text in by_text)
    assert [r["text"] for r in findings_json(tmp_path, capsys)] == ["Enlarged mediastinal lymph node measuring 14 mm"]
