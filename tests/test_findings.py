"""Rule-based finding extraction on report texts written for these tests."""

import argparse
import json
from pathlib import Path

import pytest

from VoxTellCore.commands import findings as findings_command
from VoxTellCore.errors import InputError
from VoxTellCore.findings import (CATEGORIES, LUNG_PLEURA, OTHER, Extractor, Finding, RuleBasedExtractor,
                                  categorize, extract_findings, normalise_measurements)
from VoxTellCore.findings.sentences import report_parts, report_sections, split_sentences

# A chest CT report in the style of the ReXGroundingCT pipeline example (Figure 2): several
# findings in narrative sentences, a fronted location, negated and normal statements, and
# findings outside the lungs. Written for this test suite.
CHEST_CT_REPORT = """\
Clinical information: Shortness of breath.
Technique: Sections were taken without contrast medium.
Findings:
The main pulmonary artery measures 32mm and is dilated. The trachea and the main bronchi are
patent, with no obstructing lesion. In the right lung upper lobe posterior segment, there is an
area of consolidation in which air bronchograms are seen. There are cylindrical bronchiectatic
changes in both lungs. Plate-like atelectasis is seen in the left lung lower lobe lateral basal
segment. No pleural effusion was detected. Heart size is normal. A small sliding hiatal hernia is noted.
Impression:
Consolidation in the right upper lobe.
"""

# (text, category, focal, negated, organ system) in report order
EXPECTED = [
    ("The main pulmonary artery measures 32 mm and is dilated", "other", True, False, OTHER),
    ("The trachea and the main bronchi are patent", "Other Focal Findings", True, True, LUNG_PLEURA),
    ("No obstructing lesion", "Pulmonary Nodules/Masses", True, True, LUNG_PLEURA),
    ("Area of consolidation with air bronchograms in the right lung upper lobe posterior segment",
     "Atelectasis/Consolidation", True, False, LUNG_PLEURA),
    ("Cylindrical bronchiectatic changes in both lungs", "Bronchiectasis", False, False, LUNG_PLEURA),
    ("Plate-like atelectasis in the left lung lower lobe lateral basal segment", "Linear Opacities", True, False,
     LUNG_PLEURA),
    ("No pleural effusion", "Pleural Effusion/Thickening", True, True, LUNG_PLEURA),
    ("Heart size is normal", "other", True, True, OTHER),
    ("Small sliding hiatal hernia", "other", True, False, OTHER),
]  # the impression only repeats the consolidation


def test_chest_ct_report_findings_one_by_one():
    found = extract_findings(CHEST_CT_REPORT)
    assert [(f.text, f.category, f.focal, f.negated, f.organ_system) for f in found] == EXPECTED
    assert found[3].source_sentence.startswith("In the right lung upper lobe posterior segment, there is")
    assert not any("contrast" in f.text for f in found)  # the Technique section is not read


def test_one_finding_per_described_abnormality_keeping_location_and_size():
    texts = [f.text for f in extract_findings(
        "There is a 3 mm nodule in the left lower lobe and a small right pleural effusion. "
        "Nodules of 4 mm and 6 mm in the right upper lobe. "
        "Ground-glass opacities and consolidation in the right lower lobe. "
        "Mild emphysema and a 12x8mm mass in the left upper lobe. "
        "Calcified mediastinal and hilar lymph nodes.")]
    assert texts == ["3 mm nodule in the left lower lobe", "Small right pleural effusion",
                     "Nodules of 4 mm and 6 mm in the right upper lobe",
                     "Ground-glass opacities in the right lower lobe", "Consolidation in the right lower lobe",
                     "Mild emphysema", "12 x 8 mm mass in the left upper lobe",
                     "Calcified mediastinal and hilar lymph nodes"]


@pytest.mark.parametrize("sentence", [
    "No pleural effusion.",
    "No occlusive pathology in the trachea and both main bronchi.",
    "Heart size is normal.",
    "The liver is unremarkable.",
    "The kidneys are within normal limits.",
    "There is no evidence of pneumothorax.",
    "Negative for pulmonary embolism.",
    "The lungs are clear without consolidation.",
    "Pleural effusion is not seen.",
])
def test_negated_and_normal_statements(sentence):
    found = extract_findings(sentence)
    assert len(found) == 1 and found[0].negated, found
    assert found[0].source_sentence == sentence


def test_negation_reaches_a_list_but_not_a_new_positive_clause():
    found = extract_findings("No pleural effusion, pneumothorax or consolidation, and a 5 mm nodule in the lingula.")
    assert [(f.text, f.negated) for f in found] == [
        ("No pleural effusion", True), ("No pneumothorax or consolidation", True),
        ("5 mm nodule in the lingula", False)]
    assert not extract_findings("A 4 mm nodule without calcification in the right upper lobe.")[0].negated


def test_only_statements_about_something_no_longer_there_are_left_out():
    gone = "The previously described nodule in the right upper lobe is no longer seen."
    assert extract_findings(gone) == []
    included = extract_findings(gone, include_prior_references=True)
    assert len(included) == 1 and included[0].prior_reference and included[0].negated


@pytest.mark.parametrize("sentence, text", [
    ("Stable 4 mm nodule in the left upper lobe since the prior exam.", "Stable 4 mm nodule in the left upper lobe"),
    ("Compared to prior, the right pleural effusion has decreased.", "The right pleural effusion has decreased"),
    ("New 9 mm nodule in the left upper lobe compared to the prior exam.", "New 9 mm nodule in the left upper lobe"),
    ("Interval increase in size of the left lower lobe mass, now measuring 3.1 x 2.4 cm, previously 2.5 x 2.0 cm.",
     "Interval increase in size of the left lower lobe mass, now measuring 3.1 x 2.4 cm"),
    ("The 5 mm nodule in the right middle lobe is unchanged from prior.",
     "The 5 mm nodule in the right middle lobe is unchanged"),
    ("No change in mild cylindrical bronchiectasis in the left lower lobe.",
     "No change in mild cylindrical bronchiectasis in the left lower lobe"),
])
def test_follow_up_findings_are_present_findings(sentence, text):
    found = extract_findings(sentence)
    assert [(f.text, f.negated, f.prior_reference) for f in found] == [(text, False, True)]


def test_resolution_negates_every_finding_it_lists():
    found = extract_findings("Resolution of left upper lobe ground-glass opacity and right pleural effusion.",
                             include_prior_references=True)
    assert [(f.negated, f.category) for f in found] == [
        (True, "Ground-Glass Opacities"), (True, "Pleural Effusion/Thickening")]
    found = extract_findings("Resolved right pleural effusion. Decreased consolidation in the right lower lobe.")
    assert [(f.text, f.negated) for f in found] == [("Decreased consolidation in the right lower lobe", False)]


def test_except_for_starts_a_positive_finding():
    found = extract_findings("No nodules except for a 2 mm subpleural nodule in the left lower lobe.")
    assert [(f.text, f.negated) for f in found] == [
        ("No nodules", True), ("2 mm subpleural nodule in the left lower lobe", False)]


def test_interpretation_is_cut_off_and_lead_ins_are_dropped():
    found = extract_findings("Consolidation in the right lower lobe, consistent with pneumonia. "
                             "As far as can be observed: heart size is normal.")
    assert [(f.text, f.negated) for f in found] == [("Consolidation in the right lower lobe", False),
                                                    ("Heart size is normal", True)]


def test_impression_repeating_a_finding_is_not_listed_twice():
    report = ("Findings: A 6 mm solid nodule in the right lower lobe superior segment. Mild emphysema.\n"
              "Impression: 6 mm nodule in the right lower lobe. Emphysema. Small left pleural effusion.")
    assert [f.text for f in extract_findings(report)] == [
        "6 mm solid nodule in the right lower lobe superior segment", "Mild emphysema", "Small left pleural effusion"]


def test_a_leading_comparison_flags_every_finding_of_the_statement():
    sentence = "Compared to the prior exam, there is a 5 mm nodule in the lingula and a small left pleural effusion."
    assert [(f.text, f.prior_reference) for f in extract_findings(sentence)] == [
        ("5 mm nodule in the lingula", True), ("Small left pleural effusion", True)]
    mixed = "There is a 5 mm nodule in the lingula and the previously described effusion has resolved."
    assert [f.text for f in extract_findings(mixed)] == ["5 mm nodule in the lingula"]


def test_recommendations_and_non_observations_are_skipped():
    assert extract_findings("Clinical correlation is recommended. The described appearance is nonspecific.") == []


@pytest.mark.parametrize("raw, normalised", [
    ("3mm", "3 mm"), ("3.4 mm", "3 mm"), ("3.5mm", "4 mm"), ("1,5 cm", "1.5 cm"), ("1.25 cm", "1.3 cm"),
    ("2 cm", "2 cm"), ("2.0 cm", "2.0 cm"), ("3 x 2 cm", "3 x 2 cm"), ("2.45cm", "2.5 cm"), ("12x8mm", "12 x 8 mm"), ("1.2 × 0.84 cm", "1.2 x 0.8 cm"),
    ("10 millimeters", "10 mm"), ("3-4 mm", "3-4 mm"), ("segment 6", "segment 6"),
])
def test_measurement_normalisation(raw, normalised):
    assert normalise_measurements(raw) == normalised


def test_sentence_splitting_keeps_decimals_abbreviations_and_wrapped_lines():
    text = ("A 1.5 cm nodule in the lingula, e.g. near the fissure. No effusion; no pneumothorax.\n"
            "Mild emphysema in the upper\nlobes.\n- Hiatal hernia\n2. Coronary calcification")
    assert split_sentences(text) == [
        "A 1.5 cm nodule in the lingula, e.g. near the fissure.", "No effusion; no pneumothorax.",
        "Mild emphysema in the upper lobes.", "Hiatal hernia", "Coronary calcification"]


def test_sections_findings_and_impression_or_whole_text():
    report = "INDICATION: cough\nFINDINGS: Nodule in the right lower lobe.\nIMPRESSION:\nNodule.\nTECHNIQUE: CT"
    sections = report_sections(report)
    assert "Nodule in the right lower lobe." in sections and "Nodule." in sections
    assert "cough" not in sections and "CT" not in sections
    assert report_sections("Nodule in the right lower lobe.") == "Nodule in the right lower lobe."


def test_category_table_has_the_14_rexgroundingct_categories():
    assert len(CATEGORIES) == 14
    assert sum(c.focal for c in CATEGORIES) == 8
    assert len({c.name for c in CATEGORIES}) == 14


@pytest.mark.parametrize("text, category", [
    ("Honeycombing at both lung bases", "Honeycombing"),
    ("Small left apical pneumothorax", "Pneumothorax"),
    ("Right pleural thickening", "Pleural Effusion/Thickening"),
    ("Centrilobular emphysema in both upper lobes", "Emphysema"),
    ("Traction bronchiectasis", "Bronchiectasis"),
    ("Peribronchial thickening in the lower lobes", "Bronchial Wall Thickening"),
    ("Interlobular septal thickening", "Septal Thickening"),
    ("Centrilobular micronodules in both lungs", "Micronodules"),
    ("Spiculated 2.1 cm mass in the right upper lobe", "Pulmonary Nodules/Masses"),
    ("Ground-glass opacity in the left lower lobe", "Ground-Glass Opacities"),
    ("Linear atelectasis in the right middle lobe", "Linear Opacities"),
    ("Dependent density increase in both lower lobes", "Atelectasis/Consolidation"),
    ("Mosaic attenuation pattern in both lungs", "Other Diffuse Findings"),
    ("Thin-walled cyst in the right lower lobe", "Other Focal Findings"),
])
def test_lung_categories(text, category):
    name, focal, organ_system = categorize(text)
    assert (name, organ_system) == (category, LUNG_PLEURA)
    assert focal == next(c.focal for c in CATEGORIES if c.name == category)


@pytest.mark.parametrize("text", [
    "Coronary artery calcification", "Small hiatal hernia",
    "Pericardial effusion", "Thyroid nodule of 8 mm", "Mediastinal lymph nodes up to 12 mm",
])
def test_findings_outside_lung_and_pleura(text):
    category, _, organ_system = categorize(text)
    assert (category, organ_system) == ("other", "other")


def test_extractor_seam():
    assert isinstance(RuleBasedExtractor(), Extractor)

    class Fixed:
        def extract(self, text: str) -> list[Finding]:
            return [Finding(text, "other", True, False, text, OTHER)]

    assert isinstance(Fixed(), Extractor)
    assert RuleBasedExtractor().extract(CHEST_CT_REPORT) == extract_findings(CHEST_CT_REPORT)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    findings_command.add_parser(parser.add_subparsers(dest="command"))
    return findings_command.run(parser.parse_args(["findings", *argv]))


def test_cli_prints_json_lines(tmp_path, capsys):
    report = tmp_path / "report.txt"
    report.write_text(CHEST_CT_REPORT, encoding="utf-8")
    assert run_cli(str(report)) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in records] == [e[0] for e in EXPECTED if not e[3]]
    assert all(set(r) == {"text", "category", "focal", "negated", "uncertain", "prior_reference", "structure",
                        "source_sentence"}
               for r in records)
    assert records[1]["category"] == "Atelectasis/Consolidation" and records[1]["focal"] is True

    assert run_cli(str(report), "--all") == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["text"], r["negated"]) for r in records] == [(e[0], e[3]) for e in EXPECTED]


def test_cli_missing_report_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        run_cli(str(tmp_path / "missing.txt"))


def test_documented_example_is_the_actual_output():
    doc = (Path(__file__).parents[1] / "docs" / "report-grounding.md").read_text(encoding="utf-8")
    report = doc.split("<!-- example-report -->")[1].split("```text\n")[1].split("```")[0]
    table = doc.split("<!-- example-findings -->")[1].strip().split("\n\n")[0].splitlines()[2:]
    documented = [tuple(cell.strip() for cell in row.strip("|").split("|")) for row in table]
    actual = [(f.text, f.category, "yes" if f.focal else "no", "yes" if f.negated else "no", f.organ_system)
              for f in extract_findings(report)]
    assert documented == actual


def test_organ_subheadings_start_a_sentence_and_are_dropped():
    report = ("FINDINGS:\nLungs: In the right middle lobe, there is a 9 mm solid nodule. No pneumothorax.\n"
              "Pleura: No pleural effusion on the left. Small right pleural effusion.\n"
              "Heart and mediastinum: Heart size is normal.\n")
    findings = extract_findings(report)
    assert [f.text for f in findings if not f.negated] == [
        "9 mm solid nodule in the right middle lobe", "Small right pleural effusion"]
    assert [f.text for f in findings if f.negated] == [
        "No pneumothorax", "No pleural effusion on the left", "Heart size is normal"]


def test_body_without_findings_header_is_read():
    report = ("EXAM: CT chest\nCOMPARISON: None.\n\nLungs: Linear atelectasis in the lingula.\n"
              "Bones: Degenerative changes of the thoracic spine.\n\nIMPRESSION:\n1. Small left pleural effusion.")
    assert [f.text for f in extract_findings(report)] == [
        "Linear atelectasis in the lingula", "Degenerative changes of the thoracic spine", "Small left pleural effusion"]
    prose = "COMPARISON: CT 08/2024.\nThe right upper lobe cavity is smaller, now 1.5 cm."
    assert [f.text for f in extract_findings(prose)] == ["The right upper lobe cavity is smaller, now 1.5 cm"]


@pytest.mark.parametrize("report, text", [
    ("Possible 3 mm nodule in the right upper lobe.", "3 mm nodule in the right upper lobe"),
    ("Pneumonia?", "Pneumonia"),
    ("Likely atelectasis.", "Atelectasis"),
    ("Multifocal pneumonia is likely.", "Multifocal pneumonia"),
    ("Left lower lobe opacity; cannot exclude early pneumonia.", "Early pneumonia in the left lower lobe"),
    ("A small pneumothorax at the right apex cannot be ruled out.", "Small pneumothorax at the right apex"),
])
def test_hedged_findings_are_kept_with_the_uncertain_flag_and_location(report, text):
    found = [f for f in extract_findings(report) if f.uncertain]
    assert [(f.text, f.negated) for f in found] == [(text, False)]


def test_interpretation_after_a_comma_is_not_a_finding_of_its_own_and_a_hedged_one_flags_it():
    found = extract_findings("1.2 cm hypodense lesion in liver segment 7, likely cyst. "
                             "Patchy opacity in the left lower lobe, likely atelectasis.")
    assert [(f.text, f.uncertain) for f in found] == [
        ("1.2 cm hypodense lesion in liver segment 7", True), ("Patchy opacity in the left lower lobe", True)]
    found = extract_findings("Right adrenal nodule measuring 1.5 cm, consistent with an adenoma.")
    assert [(f.text, f.uncertain) for f in found] == [("Right adrenal nodule measuring 1.5 cm", False)]


@pytest.mark.parametrize("sentence, category", [
    ("Pulmonary contusion in the right lower lobe.", "Atelectasis/Consolidation"),
    ("There is a moderate right hemothorax.", "Pleural Effusion/Thickening"),
    ("Filling defects in the right lower lobe segmental pulmonary arteries.", "other"),
    ("Endotracheal tube tip 3 cm above the carina.", "other"),
    ("Nasogastric tube courses into the stomach.", "Postsurgical/Device"),
    ("Cholelithiasis.", "Calculus"),
])
def test_findings_outside_the_keyword_tables_are_kept(sentence, category):
    found = extract_findings(sentence)
    assert len(found) == 1 and not found[0].negated and found[0].category == category


@pytest.mark.parametrize("text, category", [
    ("Large left pneumothorax with mild rightward mediastinal shift", "Pneumothorax"),
    ("3 x 2 cm conglomerate mass with traction bronchiectasis", "Pulmonary Nodules/Masses"),
    ("2.4 cm lesion in the right hepatic lobe", "Focal Organ Lesion"),
    ("Thyroid nodule in the right lobe", "other"),
])
def test_the_head_finding_decides_the_category(text, category):
    assert categorize(text)[0] == category


def test_a_second_finding_after_with_is_its_own_and_noun_phrases_stay_whole():
    texts = [f.text for f in extract_findings(
        "Right upper lobe: 3 x 2 cm conglomerate mass with traction bronchiectasis.\n\n"
        "Severe centrilobular and paraseptal emphysema. Consolidation with air bronchograms in the right lower lobe. "
        "Diffuse bilateral ground-glass and consolidative opacities.")]
    assert texts == ["3 x 2 cm conglomerate mass in the right upper lobe", "Traction bronchiectasis in the right upper lobe",
                     "Severe centrilobular and paraseptal emphysema",
                     "Consolidation with air bronchograms in the right lower lobe",
                     "Diffuse bilateral ground-glass and consolidative opacities"]


def test_references_list_markers_and_abbreviations_are_cleaned():
    report = "FINDINGS:\n3) 4mm nodule RUL (series 4, image 88).\nR: small effusion.\nL base: linear scarring.\nPleura: no ptx"
    found = extract_findings(report)
    assert [(f.text, f.negated) for f in found] == [
        ("4 mm nodule right upper lobe", False), ("Small effusion on the right", False),
        ("Linear scarring in the left base", False), ("No pneumothorax", True)]


def test_a_restatement_is_merged_keeping_the_more_specific_text():
    report = ("Findings: Mild emphysema. 9 mm nodule in the left upper lobe. Nasogastric tube in the stomach. "
              "Endotracheal tube above the carina.\n"
              "Impression: Mild centrilobular emphysema in both upper lobes. New 9 mm left upper lobe nodule. "
              "Stable pulmonary nodules. Displaced fracture of the left clavicle. Fractures of the left 3rd rib.")
    assert [f.text for f in extract_findings(report)] == [
        "Mild centrilobular emphysema in both upper lobes", "9 mm nodule in the left upper lobe",
        "Nasogastric tube in the stomach", "Endotracheal tube above the carina",
        "Displaced fracture of the left clavicle", "Fractures of the left 3rd rib"]


def test_report_parts_mark_an_impression_after_the_findings():
    report = "Indication: pain.\nFindings:\nLiver: cyst.\nImpression:\nHepatic cyst.\n"
    assert [(part.strip(), summing_up) for part, summing_up in report_parts(report)] == [
        ("Liver: cyst.", False), ("Hepatic cyst.", True)]
    assert [summing_up for _, summing_up in report_parts("Impression:\nHepatic cyst.\n")] == [False]
