"""Findings of abdominal and pelvic reports: organ headings, one finding per prompt and one prompt per finding."""

from __future__ import annotations

import pytest

from VoxTellCore.findings import extract_findings
from VoxTellCore.findings.anatomy import structure_of, structures_in
from VoxTellCore.findings.categories import ABDOMINAL_CATEGORIES, CATEGORIES
from VoxTellCore.findings.restatements import place_words
from VoxTellCore.terminology import segment_info


def positives(report: str) -> list[str]:
    return [f.text for f in extract_findings(report) if not f.negated]


def placed_positives(report: str) -> list[tuple[str, str | None]]:
    """Each positive finding's text with the structure it names."""
    return [(f.text, f.structure) for f in extract_findings(report) if not f.negated]


def test_an_organ_heading_goes_into_the_prompt_of_every_finding_under_it():
    report = """Findings:
Spleen: Mildly enlarged, measuring 14.5 cm.
Prostate: Enlarged, 5.6 cm transverse.
Liver: Diffuse signal loss on opposed-phase images. 2.3 cm observation in segment 7 with washout.
Kidneys: 4 mm nonobstructing stone in the right lower pole. The left kidney is smaller than the right with cortical thinning.
Pancreas: Atrophic.
"""
    assert positives(report) == [
        "Mildly enlarged spleen, measuring 14.5 cm",
        "Enlarged prostate, 5.6 cm transverse",
        "Diffuse signal loss of the liver on opposed-phase images",
        "2.3 cm observation in segment 7 of the liver with washout",
        "4 mm nonobstructing stone in the right lower pole of the right kidney",
        "The left kidney is smaller than the right with cortical thinning",
        "Atrophic pancreas"]


def test_a_numbered_observation_heading_keeps_the_organ_and_another_heading_ends_it():
    report = """Findings:
LIVER: Cirrhotic morphology.
Observation 1: 9 mm arterially enhancing focus in segment 4a without washout.
OTHER: Small hiatal hernia.
Bowel: Small amount of free fluid in the right paracolic gutter.
"""
    assert positives(report) == ["Cirrhotic morphology of the liver",
                                 "9 mm arterially enhancing focus in segment 4a of the liver without washout",
                                 "Small hiatal hernia",  # not "of the liver"
                                 "Small amount of free fluid in the right paracolic gutter"]  # names its own place


def test_key_abdominal_findings_are_found():
    report = """Findings:
Biliary: 4 mm gallbladder polyp.
Gallbladder: Multiple layering gallstones without wall thickening.
Other: Esophageal and splenorenal varices. Trabeculated bladder wall. Left hydrosalpinx.
"""
    assert positives(report) == ["4 mm gallbladder polyp", "Multiple layering gallstones without wall thickening",
                                 "Esophageal and splenorenal varices", "Trabeculated bladder wall", "Left hydrosalpinx"]


def test_free_fluid_in_the_same_sentence_as_another_finding_is_a_finding_of_its_own():
    assert positives("Pelvis: 2 cm simple cyst in the left ovary and small amount of free fluid in the cul-de-sac. "
                     "Bowel: The appendix is dilated to 12 mm with periappendiceal free fluid.") == [
        "2 cm simple cyst in the left ovary", "Small amount of free fluid in the cul-de-sac",
        "The appendix is dilated to 12 mm", "Periappendiceal free fluid"]


def test_one_finding_per_structure_each_with_its_side():
    texts = positives("Moderate left hydronephrosis and hydroureter to the level of a 6 mm obstructing calculus "
                      "at the left UVJ.")
    assert texts == ["Moderate left hydronephrosis", "Left hydroureter",
                     "6 mm obstructing calculus at the left ureterovesical junction"]


def test_an_organ_change_with_another_kind_of_change_is_two_findings_in_the_same_organ():
    assert positives("The liver is enlarged at 19 cm with diffuse fatty infiltration. The appendix is dilated to "
                     "11 mm with wall thickening and surrounding fat stranding.") == [
        "The liver is enlarged at 19 cm", "Diffuse fatty infiltration of the liver",
        "The appendix is dilated to 11 mm with wall thickening and surrounding fat stranding"]  # details stay


def test_a_counted_list_of_lesions_is_one_finding_per_lesion():
    found = [f for f in extract_findings("Liver: Two hypoattenuating lesions, 2.4 cm in segment 8 and 1.1 cm in "
                                         "segment 5, suspicious for metastases.") if not f.negated]
    assert [(f.text, f.uncertain) for f in found] == [
        ("2.4 cm hypoattenuating lesion in segment 8 of the liver", True),
        ("1.1 cm hypoattenuating lesion in segment 5 of the liver", True)]


@pytest.mark.parametrize("findings, impression, kept", [
    ("The appendix is dilated to 11 mm with wall thickening.", "Acute appendicitis.",
     "The appendix is dilated to 11 mm with wall thickening"),
    ("Aorta: Infrarenal abdominal aortic aneurysm measures 5.6 x 5.4 cm.", "Enlarging 5.6 cm infrarenal AAA.",
     "Infrarenal abdominal aortic aneurysm measures 5.6 x 5.4 cm"),
    ("Right adrenal nodule measuring 1.5 cm, consistent with an adenoma.", "Right adrenal adenoma.",
     "Right adrenal nodule measuring 1.5 cm"),
    ("Prostate: Enlarged, measuring 5.6 cm.", "Prostatomegaly.", "Enlarged prostate, measuring 5.6 cm"),
    ("Liver: 8 mm hypodense lesion in segment 6.", "8 mm hepatic hypodensity.",
     "8 mm hypodense lesion in segment 6 of the liver"),
    ("Kidneys: 5 mm nonobstructing stone in the left kidney.", "Left nephrolithiasis.",
     "5 mm nonobstructing stone in the left kidney"),
])
def test_an_impression_restating_a_finding_in_other_words_is_merged_keeping_the_specific_one(findings, impression,
                                                                                              kept):
    assert positives(f"Findings:\n{findings}\n\nImpression:\n{impression}\n") == [kept]


def test_the_same_kind_of_finding_in_another_structure_or_segment_stays_apart():
    report = """Findings:
Liver: 9 mm lesion in segment 4a.
Kidneys: 2 cm cyst in the left kidney.

Impression:
Lesion in segment 2. Right renal cyst.
"""
    assert len(positives(report)) == 4


@pytest.mark.parametrize("text, category", [
    ("Liver: 2.3 cm observation in segment 7.", "Focal Organ Lesion"),
    ("The appendix is dilated to 11 mm.", "Bowel/Mesentery"),
    ("Spleen: Enlarged, measuring 15.8 cm.", "Organ Enlargement/Atrophy"),
    ("Hepatic steatosis.", "Diffuse Organ Change"),
    ("4 mm nonobstructing calculus in the right kidney.", "Calculus"),
    ("Moderate left hydronephrosis.", "Duct/Collecting System Dilatation"),
    ("Moderate ascites.", "Fluid Collection/Ascites"),
    ("Infrarenal abdominal aortic aneurysm measuring 5.6 cm.", "Vascular"),
    ("Enlarged retroperitoneal lymph nodes.", "Lymph Node"),
    ("Compression deformity of T12.", "Osseous"),
    ("Status post cholecystectomy.", "Postsurgical/Device"),
    ("Periureteral stranding on the left.", "Other Abdominal/Pelvic Finding"),
    ("8 mm nodule in the right upper lobe.", "Pulmonary Nodules/Masses"),  # a chest finding keeps its category
])
def test_abdominal_findings_get_abdominal_categories_and_chest_findings_keep_theirs(text, category):
    # In an abdominal report: a finding that names no structure of its own region ("T12") takes the report's.
    found = [f for f in extract_findings(f"Findings:\nKidneys: Normal.\n{text}") if not f.negated]
    assert [f.category for f in found] == [category]
    chest = category in {c.name for c in CATEGORIES}
    assert found[0].organ_system == ("lung/pleura" if chest else "abdomen/pelvis")


def test_the_abdominal_category_set_is_small_and_ends_with_a_catch_all():
    names = [c.name for c in ABDOMINAL_CATEGORIES]
    assert len(names) == len(set(names)) == 12 and names[-1] == "Other Abdominal/Pelvic Finding"
    assert not set(names) & {c.name for c in CATEGORIES}


@pytest.mark.parametrize("sentence, text", [
    ("Liver: 8 mm hypodense lesion in segment 6, too small to characterize, likely a cyst.",
     "8 mm hypodense lesion in segment 6 of the liver"),
    ("New 2.0 cm enhancing mass in the right hepatic lobe, possibly representing a metastasis.",
     "New 2.0 cm enhancing mass in the right hepatic lobe"),
    ("Mildly enlarged ileocolic lymph nodes, likely reactive, measuring up to 9 mm.",
     "Mildly enlarged ileocolic lymph nodes, measuring up to 9 mm"),
])
def test_a_hedged_interpretation_marks_its_finding_uncertain_without_dropping_it(sentence, text):
    found = [f for f in extract_findings(sentence) if not f.negated]
    assert [(f.text, f.uncertain) for f in found] == [(text, True)]


@pytest.mark.parametrize("sentence, structure", [
    ("Liver: 2.3 cm observation in segment 7.", "liver"),
    ("Moderate left hydronephrosis.", "left kidney"),
    ("Moderate ascites.", "peritoneal cavity"),
    ("Mildly enlarged ileocolic lymph nodes.", "lymph node"),
    ("6 mm calculus at the left UVJ.", "left ureter"),
])
def test_each_finding_names_its_structure(sentence, structure):
    assert [f.structure for f in extract_findings(sentence)] == [structure]


@pytest.mark.parametrize("prompt, meaning", [
    ("liver segment 7", "Liver"), ("couinaud segment 4a", "Liver"), ("li-rads observation", "Mass"),
    ("ipmn", "Cyst"), ("intraductal papillary mucinous neoplasm", "Cyst"), ("abdominal aortic aneurysm", "Aorta"),
    ("aaa", "Aorta"), ("ureterovesical junction", "Urinary system"), ("uvj", "Urinary system"),
    ("hydroureter", "Urine"), ("hydronephrosis", "Urine"), ("ascites", "Body fluid"), ("common bile duct", "Bile duct"),
    ("portal vein", "Vein"), ("pancreatic tail", "Pancreas"), ("peripheral zone", "Prostate"),
    ("left kidney", "Kidney"), ("peritoneal cavity", "Peritoneal cavity"), ("urinary bladder", "Bladder"),
])
def test_abdominal_vocabulary_maps_to_terminology_entries(prompt, meaning):
    info = segment_info(prompt)
    assert info.terminology is not None and info.terminology.type.meaning.lower() == meaning.lower()


def test_a_sided_heading_gives_its_side_and_a_fronted_place_goes_last():
    report = """Findings:
Right kidney: Perinephric stranding.
Lesion 1: Right anterior transition zone at the apex, 1.6 cm T2 hypointense lesion.
Lymph nodes: Conglomerate retroperitoneal lymphadenopathy, the largest mass measuring 6.1 x 4.2 cm.
"""
    assert positives(report) == [
        "Right perinephric stranding", "1.6 cm T2 hypointense lesion in the right anterior transition zone at the apex",
        "Conglomerate retroperitoneal lymphadenopathy, the largest mass measuring 6.1 x 4.2 cm"]


def test_side_and_part_sub_headings_narrow_the_organ_heading():
    report = """FINDINGS:
KIDNEYS:
Left: 3.4 cm solid enhancing mass arising from the interpolar region.
Right: 1.5 cm cyst at the upper pole.
LIVER:
1. Segment 2: 2.8 cm lesion with peripheral nodular enhancement.
Pancreatic remnant: Atrophic with a dilated pancreatic duct measuring 6 mm.
"""
    assert positives(report) == [
        "3.4 cm solid enhancing mass arising from the interpolar region of the left kidney",
        "1.5 cm cyst at the upper pole of the right kidney",
        "2.8 cm lesion in segment 2 of the liver with peripheral nodular enhancement",
        "Atrophic pancreas", "Dilated pancreatic duct measuring 6 mm"]


@pytest.mark.parametrize("sentence, finding", [
    ("Small seroma in the abdominal wall incision, expected postoperatively.",
     "Small seroma in the abdominal wall incision"),
    ("Trace free air under the diaphragm is an expected finding after laparotomy.", "Trace free air under the diaphragm"),
    ("Mild stranding around the gastrojejunostomy, postsurgically.",
     "Mild stranding around the gastrojejunostomy, postsurgically"),  # an adverb stays with its finding
])
def test_an_explanatory_remark_after_a_finding_is_no_finding_of_its_own(sentence, finding):
    assert positives(sentence) == [finding]  # not also "Expected postoperatively" or "Postsurgically"


@pytest.mark.parametrize("sentence, finding", [
    ("Bowel: Moderate adynamic ileus.", "Moderate adynamic ileus of the bowel"),
    ("Tethering of the sigmoid colon to the left adnexa.", "Tethering of the sigmoid colon to the left adnexa"),
    ("Ileocolic intussusception in the right lower quadrant.", "Ileocolic intussusception in the right lower quadrant"),
    ("Chronic occlusion of the left common iliac artery.", "Chronic occlusion of the left common iliac artery"),
    ("Bowel: Partial obstruction of the distal jejunum.", "Partial obstruction of the distal jejunum"),
])
def test_bowel_and_vascular_findings_without_a_lung_word_are_found(sentence, finding):
    assert positives(sentence) == [finding]


@pytest.mark.parametrize("report", [
    # the same kind of finding in the structure it is next to
    "Findings:\nSegmental wall thickening of the transverse colon.\nGallbladder wall thickening where it touches the colon.\n",
    # the same stem, another condition
    "Impression:\nCholelithiasis.\nAcute cholecystitis.\n",
])
def test_a_finding_is_no_restatement_of_one_in_a_neighbouring_structure_or_of_another_condition(report):
    assert len(positives(report)) == 2


@pytest.mark.parametrize("report", [
    "Findings:\nStomach: Partly distended, no wall thickening.\nGallbladder: Contracted, otherwise normal.\n",
    "Findings:\nThe urinary bladder is incompletely distended and unremarkable. The colon is decompressed.\n",
])
def test_how_full_a_hollow_organ_is_is_a_normal_description(report):
    found = extract_findings(report)
    assert found and all(f.negated for f in found), [f.text for f in found if not f.negated]


def test_a_distended_or_collapsed_organ_with_a_finding_is_still_a_finding():
    assert positives("Findings:\nThe gallbladder is markedly distended with wall thickening.\n"
                     "Lower chest: The right lower lobe is collapsed.\n") == [
        "The gallbladder is markedly distended", "Wall thickening of the gallbladder", "The right lower lobe is collapsed"]


@pytest.mark.parametrize("sentence, finding", [
    ("Left ovary: 3.2 cm cyst with T2 shading and T1 hyperintense contents.",
     ("3.2 cm cyst in the left ovary with T2 shading and T1 hyperintense contents", "left ovary")),
    ("Kidneys: 9 mm cyst in the left kidney with T2* signal dropout.",
     ("9 mm cyst in the left kidney with T2* signal dropout", "left kidney")),
    ("Compression deformity of T12.", ("Compression deformity of T12", "bone")),  # a vertebra stays one
])
def test_an_mr_sequence_name_is_not_a_vertebra(sentence, finding):
    assert [(f.text, f.structure) for f in extract_findings(sentence) if not f.negated] == [finding]


@pytest.mark.parametrize("report, kept", [
    ("Findings:\nLeft ovary: 3.2 cm cyst with T2 shading.\n\nImpression:\nLeft ovarian endometrioma, 3.2 cm.\n",
     "3.2 cm cyst in the left ovary with T2 shading"),
    ("Findings:\nFilling defect in the right lower lobe pulmonary artery, consistent with pulmonary embolus.\n\n"
     "Impression:\nRight lower lobe pulmonary embolus.\n", "Filling defect in the right lower lobe pulmonary artery"),
    ("Findings:\nKidneys: The left kidney is small with a scarred cortex, in keeping with chronic pyelonephritis.\n\n"
     "Impression:\nChronic left pyelonephritis.\n", "The left kidney is small with a scarred cortex"),
])
def test_an_impression_naming_the_diagnosis_a_finding_was_interpreted_as_restates_it(report, kept):
    assert positives(report) == [kept]


@pytest.mark.parametrize("report, finding", [
    ("Findings:\nPelvis: Trace free fluid.\n", ("Trace free fluid in the pelvis", "pelvis")),
    ("Findings:\nPELVIS:\nModerate volume of simple free fluid.\n",
     ("Moderate volume of simple free fluid in the pelvis", "pelvis")),
    ("Findings:\nRetroperitoneum: Small pockets of fluid.\n", ("Small pockets of fluid in the retroperitoneum",
                                                               "retroperitoneum")),
])
def test_a_region_heading_reaches_the_prompt_after_a_quantity(report, finding):
    assert placed_positives(report) == [finding]


@pytest.mark.parametrize("sentence, text", [
    ("Liver: 2 cm peripherally enhancing lesion in segment 5 suggestive of a hemangioma.",
     "2 cm peripherally enhancing lesion in segment 5 of the liver"),
    ("Circumferential wall thickening of the cecum, suggesting typhlitis.", "Circumferential wall thickening of the cecum"),
])
def test_suggesting_marks_its_finding_uncertain_without_dropping_it(sentence, text):
    assert [(f.text, f.uncertain) for f in extract_findings(sentence) if not f.negated] == [(text, True)]


def test_an_obstruction_is_found_and_restates_the_dilatation_above_it():
    assert positives("Impression:\nSmall bowel obstruction in the left upper quadrant.\n") == [
        "Small bowel obstruction in the left upper quadrant"]
    assert positives("Findings:\nBowel: Dilated loops of jejunum up to 4 cm with a transition point in the left upper "
                     "quadrant.\n\nImpression:\nSmall bowel obstruction with a transition point in the left upper "
                     "quadrant.\n") == [
        "Dilated loops of jejunum up to 4 cm with a transition point in the left upper quadrant"]


def test_a_collapsed_solid_structure_is_still_a_finding():
    assert positives("Findings:\nVessels: Collapsed inferior vena cava.\nBowel: Collapsed.\n") == [
        "Collapsed inferior vena cava"]


@pytest.mark.parametrize("sentence", [
    "The collection is amenable to CT-guided aspiration.",
    "The hemoperitoneum was discussed with the on-call surgeon at 14:30.",
    "The patient was transferred to the operating room for evacuation of the hematoma.",
    "A drainage catheter could be considered for the pelvic collection.",
    "Urology has been consulted regarding the obstructing ureteric stone.",
])
def test_management_and_communication_are_not_findings(sentence):
    assert positives(f"Impression:\n{sentence}\n") == []


def test_management_after_a_finding_is_cut_off():
    assert positives("Impression:\n4 cm pelvic abscess, amenable to transgluteal drainage.\n") == ["4 cm pelvic abscess"]


@pytest.mark.parametrize("sentence, finding", [
    ("Impression:\nEnterovesical fistula.\n", ("Enterovesical fistula", "bowel")),
    ("Findings:\nBowel: There is a fistula between the descending colon and the bladder dome.\n",
     ("Fistula between the descending colon and the bladder dome", "urinary bladder")),
])
def test_a_fistula_is_a_finding_that_names_its_structure(sentence, finding):
    assert [(f.text, f.structure, f.category) for f in extract_findings(sentence) if not f.negated] == [
        (*finding, "Bowel/Mesentery")]


def test_fluid_filled_describes_the_bowel_and_is_no_fluid_finding():
    findings = [f for f in extract_findings("Findings:\nThe jejunum is distended to 3.2 cm and fluid-filled.\n")
                if not f.negated]
    assert [f.text for f in findings] == ["The jejunum is distended to 3.2 cm and fluid-filled"]
    assert findings[0].category != "Fluid Collection/Ascites"


@pytest.mark.parametrize("report, kept", [
    ("Findings:\nPancreas: The pancreatic tail mass abuts the splenic vein; venous invasion is not excluded.\n",
     "The pancreatic tail mass abuts the splenic vein"),
    ("Findings:\nUterus: Junctional zone thickening to 14 mm, cannot exclude adenomyosis.\n",
     "Junctional zone thickening to 14 mm"),
])
def test_a_diagnosis_that_cannot_be_excluded_makes_the_finding_before_it_uncertain(report, kept):
    assert [(f.text, f.uncertain) for f in extract_findings(report) if not f.negated] == [(kept, True)]


def test_an_impression_restating_a_diagnosis_that_cannot_be_excluded_is_merged():
    report = ("Findings:\nAdrenals: The left adrenal gland abuts the gastric mass with no fat plane; invasion cannot "
              "be excluded.\n\nImpression:\nPossible invasion of the left adrenal gland.\n")
    assert positives(report) == ["The left adrenal gland abuts the gastric mass with no fat plane"]


@pytest.mark.parametrize("report, finding", [
    ("Findings:\nVessels: Tumour encasement of the common hepatic artery over 2 cm.\n",
     ("Tumour encasement of the common hepatic artery over 2 cm", "vessel")),
    ("Findings:\nPancreas: Soft-tissue abutment of the splenic vein by the tail mass.\n",
     ("Soft-tissue abutment of the splenic vein by the tail mass", "vessel")),
])
def test_a_tumour_contacting_or_encasing_a_vessel_is_a_vascular_finding(report, finding):
    assert [(f.text, f.structure, f.category) for f in extract_findings(report) if not f.negated] == [
        (*finding, "Vascular")]


def test_contact_with_two_vessels_is_two_findings_and_the_impression_restates_each():
    report = ("Findings:\nArteries: Tumour contact of under 180 degrees with the celiac trunk artery.\n"
              "Veins: Tumour contact of over 180 degrees with the superior mesenteric vein.\n\n"
              "Impression:\nOver 180 degrees contact with the superior mesenteric vein and under 180 degrees contact "
              "with the celiac trunk artery.\n")
    assert positives(report) == ["Tumour contact of under 180 degrees with the celiac trunk artery",
                                 "Tumour contact of over 180 degrees with the superior mesenteric vein"]


def test_a_finding_that_does_not_reach_a_structure_is_a_negative_statement():
    findings = extract_findings("Findings:\nSpleen: The laceration does not reach the splenic hilar vessels.\n")
    assert [f.negated for f in findings] == [True]


@pytest.mark.parametrize("report, finding", [
    ("Findings:\nLiver: Hyperenhancing 1.2 cm nodule in the late arterial phase in segment 3.\n",
     "Hyperenhancing 1.2 cm nodule in segment 3 of the liver"),
    ("Findings:\nKidneys: 2 cm enhancing mass of the left kidney on the nephrographic phase.\n",
     "2 cm enhancing mass of the left kidney"),
])
def test_a_contrast_phase_is_no_place(report, finding):
    assert positives(report) == [finding]


def test_a_phase_named_impression_merges_with_the_placed_finding():
    report = ("Findings:\nMass: Hypoenhancing mass in the portal venous phase.\n\n"
              "Impression:\n2.1 cm hypoenhancing mass in the pancreatic body.\n")
    assert positives(report) == ["2.1 cm hypoenhancing mass in the pancreatic body"]


def test_a_location_fronted_without_a_comma_goes_after_the_finding():
    assert positives("Findings:\nIn the left paracolic gutter there is a 4 cm fluid collection with an enhancing "
                     "wall.\n") == ["4 cm fluid collection in the left paracolic gutter with an enhancing wall"]


def test_a_diagnosis_that_cannot_be_excluded_takes_the_bone_of_the_statement_before():
    findings = extract_findings("Findings:\nFocal tracer uptake in the left ischial bone; a metastasis cannot be "
                                "excluded.\n")
    assert [(f.text, f.uncertain) for f in findings if not f.negated] == [
        ("Metastasis in the left ischial bone", True)]


def test_enhancement_of_a_thickened_wall_is_part_of_the_thickening_and_its_bowel_place():
    assert positives("Findings:\nThere is a 7 cm segment of circumferential wall thickening and mucosal "
                     "hyperenhancement in the distal jejunum.\n") == [
        "7 cm segment of circumferential wall thickening and mucosal hyperenhancement in the distal jejunum"]


def test_a_skip_lesion_restates_a_segment_of_wall_thickening():
    report = ("Findings:\nBowel: 4 cm segment of mural thickening and avid enhancement in the proximal ileum.\n\n"
              "Impression:\nActive skip lesion in the proximal ileum.\n")
    assert positives(report) == ["4 cm segment of mural thickening and avid enhancement in the proximal ileum"]


def test_an_impression_in_the_plural_restates_the_singular_findings():
    report = ("Findings:\nLymph nodes: Enlarged 1.4 cm paracaval lymph node and a 1.2 cm para-aortic lymph node.\n\n"
              "Impression:\nPathologic paracaval and para-aortic lymph nodes.\n")
    assert positives(report) == ["Enlarged 1.4 cm paracaval lymph node", "1.2 cm para-aortic lymph node"]


def test_a_finding_the_subject_contains_is_placed_in_the_subject_and_restated_by_the_impression():
    report = ("Findings:\nBiliary: The common hepatic duct is dilated to 8 mm and contains a 6 mm calculus in its "
              "proximal portion.\n\nImpression:\n6 mm stone in the proximal common hepatic duct.\n")
    assert positives(report) == ["The common hepatic duct is dilated to 8 mm",
                                 "6 mm calculus in the proximal common hepatic duct"]
    assert positives("Findings:\nThe gallbladder is distended and contains sludge.\n") == [
        "The gallbladder is distended", "Sludge in the gallbladder"]


@pytest.mark.parametrize("sentence, findings", [
    ("Mesenteric fat stranding with a few small nodules in the mesentery.",
     ["Mesenteric fat stranding with a few small nodules in the mesentery"]),
    ("Pericolonic fat stranding with a 3 cm abscess in the pelvis.",
     ["Pericolonic fat stranding", "3 cm abscess in the pelvis"]),
])
def test_fat_stranding_with_nodules_in_the_same_fat_is_one_sign(sentence, findings):
    assert positives(f"Findings:\n{sentence}\n") == findings


def test_the_renal_hilum_is_no_lung_hilum():
    findings = [f for f in extract_findings("Findings:\n9 mm aortocaval lymph node at the level of the left renal "
                                            "hilum.\n") if not f.negated]
    assert [(f.structure, f.category) for f in findings] == [("lymph node", "Lymph Node")]


def test_a_hedge_said_of_both_findings_flags_both():
    findings = extract_findings("Findings:\nLymph nodes: Enlarged 1.5 cm portocaval lymph node and a 1.2 cm aortocaval "
                                "lymph node, both suspicious for metastases.\n")
    assert [(f.text, f.uncertain) for f in findings if not f.negated] == [
        ("Enlarged 1.5 cm portocaval lymph node", True), ("1.2 cm aortocaval lymph node", True)]


def test_what_a_finding_can_be_seen_with_is_a_hedged_interpretation():
    findings = extract_findings("Findings:\nBowel: Mucosal hyperenhancement of the rectum, which can be seen with "
                                "proctitis.\n")
    assert [(f.text, f.uncertain) for f in findings if not f.negated] == [
        ("Mucosal hyperenhancement of the rectum", True)]


@pytest.mark.parametrize("sentence", ["The distal ileum shows circumferential wall thickening over 12 cm.",
                                      "Annular mass of the upper rectum, 4 cm in length."])
def test_findings_of_a_named_bowel_segment_are_bowel_findings(sentence):
    assert [f.category for f in extract_findings(f"Findings:\n{sentence}\n") if not f.negated] == ["Bowel/Mesentery"]


def test_shorthand_for_an_interpretation_and_a_diagnosis_is_read_as_words():
    findings = positives("Findings:\nRight kidney: Enlarged, c/w acute pyelo. 2 cm collection at the upper pole = "
                         "abscess.\nImpression: R pyelo with a 2 cm abscess.\n")
    assert findings == ["Enlarged right kidney", "2 cm collection at the upper pole of the right kidney"]


def test_an_organ_heading_in_capitals_on_its_own_line_is_a_heading():
    assert positives("Findings:\nSPLEEN\nMildly enlarged, 14 cm.\nOTHER\nTrace free fluid in the pelvis.\n") == [
        "Mildly enlarged spleen, 14 cm", "Trace free fluid in the pelvis"]


@pytest.mark.parametrize("sentence, finding", [
    ("Branching gas is seen in the portal venous system of the right lobe.", "Branching gas"),
    ("Caking of the greater omentum up to 3 cm.", "Caking"),
    ("Serosal implants along the sigmoid, up to 9 mm.", "implants"),
    ("Gastrorenal shunt from the gastric fundus to the left renal vein.", "shunt"),
    ("Triangular hypoenhancing area in the upper pole of the right kidney.", "hypoenhancing"),
])
def test_venous_gas_caking_implants_shunts_and_hypoenhancement_are_findings(sentence, finding):
    found = positives(f"Findings:\n{sentence}\n")
    assert len(found) == 1 and finding in found[0]


def test_innumerable_nodules_are_not_restated_by_one_measured_nodule_nor_by_a_nodular_contour():
    findings = positives("Findings:\nLiver: Nodular capsular outline with an enlarged caudate lobe. Numerous small "
                         "nodules throughout the liver. A 2 cm nodule in segment 6.\n")
    assert findings == ["Nodular capsular outline of the liver with an enlarged caudate lobe",
                        "Numerous small nodules throughout the liver", "2 cm nodule in segment 6 of the liver"]


def test_a_part_listed_after_an_organ_part_takes_the_organ_after_both():
    assert positives("Findings:\nLiver: Hypertrophy of the caudate lobe and left lateral segment.\n") == [
        "Hypertrophy of the caudate lobe of the liver and left lateral segment"]


@pytest.mark.parametrize("sentence, finding", [
    ("Findings:\nAdrenals: 5 cm mass in the left adrenal gland with dense calcifications and central necrosis.\n",
     "5 cm mass in the left adrenal gland with dense calcifications and central necrosis"),
    ("Findings:\nThere is a 4 cm heterogeneous pancreatic tail mass, with thick septations and a few areas of "
     "hemorrhage.\n", "4 cm heterogeneous pancreatic tail mass, with thick septations and a few areas of hemorrhage"),
])
def test_what_a_lesion_is_made_of_is_part_of_the_lesion(sentence, finding):
    assert positives(sentence) == [finding]


def test_a_quality_line_an_age_appropriate_change_and_a_suggestion_to_consider_are_no_findings():
    report = """CT ABDOMEN
Image quality: Adequate distension; small amount of tagged residual fluid in the cecum.
Ovaries: Small and atrophic, appropriate for the patient's age.
Colon: 12 mm polyp in the sigmoid colon. Consider a colonoscope with a balloon catheter.
"""
    assert positives(report) == ["12 mm polyp in the sigmoid colon"]


def test_a_bowel_segment_heading_names_its_segment_and_an_aside_stays_inside_the_noun_phrase():
    report = """Findings:
- Descending colon: 7 mm pedunculated polyp.
- Rectum: 25 mm lobulated (villous-appearing) mass, 2 cm above the anal verge.
"""
    assert positives(report) == ["7 mm pedunculated polyp in the descending colon",
                                 "25 mm lobulated (villous-appearing) mass in the rectum, 2 cm above the anal verge"]


def test_what_a_finding_is_next_to_is_no_place_of_its_own():
    report = """Findings:
Bowel: 2 cm sessile lesion in the cecum, close to the ileocecal valve.
Impression: 2 cm lesion in the cecum next to the ileocecal valve.
"""
    assert positives(report) == ["2 cm sessile lesion in the cecum, close to the ileocecal valve"]


def test_lesions_listed_one_by_one_in_numbered_segments_are_liver_lesions():
    assert positives("Findings:\nTwo cysts are seen, one in segment 2 measuring 5 mm and one in segment 6 "
                     "measuring 12 mm.\n") == ["5 mm cyst in segment 2 of the liver", "12 mm cyst in segment 6 of the liver"]


def test_the_iliac_wing_is_a_bone():
    findings = [f for f in extract_findings("Findings:\nSclerotic lesion in the right iliac crest.\n")
                if not f.negated]
    assert [(f.text, f.structure) for f in findings] == [("Sclerotic lesion in the right iliac crest", "bone")]


def test_places_after_sparing_containing_and_an_encased_vessel_are_read_right():
    assert place_words("Diffuse fatty infiltration of the liver with sparing of the gallbladder fossa") == {"liver"}
    assert place_words("4 cm abscess of the spleen containing gas") == {"spleen"}
    assert {"splenic", "artery"} <= place_words("The mass encases the splenic artery")


def test_hypoenhancement_and_thickening_of_one_segment_is_one_finding():
    assert positives("Impression:\nHypoenhancement and thickening of the transverse colon.\n") == [
        "Hypoenhancement and thickening of the transverse colon"]


def test_mr_sequences_listed_with_and_stay_in_one_finding():
    assert positives("Findings:\nSpleen: Diffuse T1 and T2 signal loss.\n") == ["Diffuse T1 and T2 signal loss of the spleen"]


def test_emphysematous_pyelonephritis_is_in_the_kidney_not_the_lung():
    findings = [f for f in extract_findings("Impression:\nAcute right pyelonephritis with a 2 cm renal abscess; "
                                            "emphysematous pyelonephritis cannot be excluded.\n") if not f.negated]
    assert [(f.text, f.structure, f.uncertain) for f in findings] == [
        ("Acute right pyelonephritis", "right kidney", False), ("2 cm renal abscess", "kidney", True)]


def test_an_impression_restating_an_occlusion_with_its_ischemia_gives_the_ischemia_alone():
    report = """Findings:
Vessels: Occlusive filling defect in the inferior mesenteric artery 2 cm from its origin, consistent with thrombosis.
Impression:
Thrombosis of the inferior mesenteric artery 2 cm from its origin, with ischemia of the sigmoid colon.
"""
    assert positives(report) == ["Occlusive filling defect in the inferior mesenteric artery 2 cm from its origin",
                                 "Ischemia of the sigmoid colon"]
    assert place_words("Occlusion of the splenic artery, with infarcts of the spleen") == {"splenic", "artery"}


def test_fat_stranding_and_thickening_of_the_fascia_around_one_organ_is_one_sign():
    assert positives("Findings:\nRight kidney: Mild perirenal fat stranding and thickening of the perirenal fascia.\n") \
        == ["Mild right perirenal fat stranding and thickening of the perirenal fascia"]


@pytest.mark.parametrize("sentence, category", [
    ("Gas within the superior mesenteric vein.", "Vascular"),
    ("Gastrorenal shunt, 1.2 cm.", "Vascular"),
    ("Peritoneal implant in the right paracolic gutter, 1.4 cm.", "Focal Organ Lesion"),
    ("Triangular region of hypoenhancement in the spleen, likely an infarct.", "Focal Organ Lesion"),
])
def test_venous_gas_and_shunts_are_vascular_implants_and_infarcts_focal(sentence, category):
    assert [f.category for f in extract_findings(f"Findings:\n{sentence}\n") if not f.negated] == [category]


@pytest.mark.parametrize("report", [
    "Findings:\nLiver: 2 cm nodule in segment 3, without washout. This may represent a regenerative nodule.\n",
    "Findings:\nSpleen: 1.2 cm hypodense lesion; may represent a hemangioma.\n",
    "Findings:\nPancreas: 9 mm cyst in the tail; it is indeterminate and could be a side-branch IPMN.\n",
])
def test_a_hedge_said_of_the_finding_before_flags_it(report):
    first = next(f for f in extract_findings(report) if not f.negated)
    assert first.text[0].isdigit() and first.uncertain  # the measured finding itself


def test_a_diagnosis_conceded_with_although_is_a_hedge_not_a_finding():
    found = [f for f in extract_findings("Findings:\nBones: 6 mm sclerotic lesion in the T11 vertebral body, "
                                         "probably degenerative, although a metastasis cannot be completely "
                                         "excluded.\n") if not f.negated]
    assert [(f.text, f.uncertain) for f in found] == [("6 mm sclerotic lesion in the T11 vertebral body", True)]


def test_the_items_of_a_list_under_a_heading_alone_on_its_line_stand_under_it():
    report = """FINDINGS:

PANCREAS (post Whipple)
- 1.6 cm hypoenhancing nodule near the tail.
- Atrophic.

Other:
1. Small hiatal hernia.
"""
    assert positives(report) == ["1.6 cm hypoenhancing nodule near the tail of the pancreas", "Atrophic pancreas",
                                 "Small hiatal hernia"]


def test_the_transplant_of_a_transplant_organ_heading_names_the_organ():
    assert positives("Findings:\nTRANSPLANT KIDNEY (left iliac fossa)\n- 3 cm fluid collection posterior to the "
                     "graft.\n") == ["3 cm fluid collection posterior to the graft kidney"]


def test_a_tumour_that_names_no_organ_is_in_the_organ_of_the_reports_cancer():
    report = """CT - GASTRIC CANCER STAGING

FINDINGS:
Primary: ulcerated tumour along the greater curvature, 4.1 cm.
The tumour abuts the left hemidiaphragm.
"""
    assert positives(report) == ["Ulcerated gastric tumour along the greater curvature, 4.1 cm",
                                 "The gastric tumour abuts the left hemidiaphragm"]


@pytest.mark.parametrize("sentence, text, category", [
    ("Lymph nodes: Aortocaval nodal conglomerate, 4.2 x 3.0 cm.", "Aortocaval nodal conglomerate, 4.2 x 3.0 cm",
     "Other Abdominal/Pelvic Finding"),
    ("Vessels: Accessory right hepatic artery from the superior mesenteric artery.",
     "Accessory right hepatic artery from the superior mesenteric artery", "Vascular"),
    ("Other: Moderate right hydrocele.", "Moderate right hydrocele", "Other Abdominal/Pelvic Finding"),
    ("Other: Fluid in the hernia sac.", "Fluid in the hernia sac", "Fluid Collection/Ascites"),
    ("Vessels: Expanded superior rectal vein with intermediate signal.",
     "Expanded superior rectal vein with intermediate signal", "Bowel/Mesentery"),  # by its rectal words
])
def test_nodal_conglomerates_arterial_variants_hydroceles_and_expanded_vessels_are_named_findings(
        sentence, text, category):
    found = [f for f in extract_findings(f"Findings:\n{sentence}\n") if not f.negated]
    assert [(f.text, f.category) for f in found] == [(text, category)] and found[0].structure


def test_a_clinical_section_is_not_grounded():
    report = "Clinical: Endoscopy showed a friable mass 12 cm from the anal verge.\nFindings:\nSmall left hydrocele.\n"
    assert positives(report) == ["Small left hydrocele"]


def test_an_enhancement_adjective_and_stranding_of_the_surrounding_fat_stay_with_their_finding():
    assert positives("Findings:\nThe incarcerated jejunal loop is dilated to 3.4 cm and hyperenhancing relative to "
                     "normal bowel, with trace fluid in the hernia sac and stranding of the adjacent fat.\n") == [
        "The incarcerated jejunal loop is dilated to 3.4 cm and hyperenhancing relative to normal bowel",
        "Trace fluid in the hernia sac and stranding of the adjacent fat"]


def test_what_a_reported_finding_does_to_its_neighbours_is_no_finding_of_its_own():
    report = ("Findings:\nLarge rectus sheath hematoma on the right, 9.1 x 4.0 cm. The hematoma compresses the "
              "urinary bladder. Kidneys: Mild right hydronephrosis; the right ureter is displaced by the hematoma.\n")
    assert positives(report) == ["Large rectus sheath hematoma on the right, 9.1 x 4.0 cm",
                                 "Mild right hydronephrosis"]


def test_a_diverticulum_under_another_organs_heading_is_in_that_organ():
    assert positives("Findings:\nBladder: 1.5 cm diverticulum off the posterior wall.\n"
                     "Bowel: Scattered colonic diverticula.\n") == [
        "1.5 cm diverticulum off the posterior wall of the urinary bladder", "Scattered colonic diverticula"]


def test_a_place_given_as_deep_to_or_medial_to_lets_a_restatement_merge():
    report = ("Findings:\nAbdominal wall: Fluid collection deep to the stoma, 4.2 x 2.0 cm.\n"
              "Impression:\n1. Small fluid collection at the stoma.\n")
    assert positives(report) == ["Fluid collection in the abdominal wall deep to the stoma, 4.2 x 2.0 cm"]


def test_a_restatement_that_adds_what_the_finding_compresses_still_merges():
    report = ("Findings:\nTransplant kidney: Fluid collection at the lower pole of the graft, 6.0 x 4.1 cm.\n"
              "Impression:\n1. 6.0 cm fluid collection at the lower pole of the graft, compressing the bladder.\n")
    assert positives(report) == ["Fluid collection at the lower pole of the graft kidney, 6.0 x 4.1 cm"]


def test_a_comma_between_adjectives_does_not_cut_the_noun_phrase_from_its_organ():
    assert positives("Findings:\nColon: Annular, hyperenhancing mass in the sigmoid colon, 4.5 cm long.\n") == [
        "Annular hyperenhancing mass in the sigmoid colon, 4.5 cm long"]


def test_an_impression_summing_up_the_staged_spread_restates_the_tumour():
    report = ("Findings:\nColon: Annular mass in the sigmoid colon, 4.5 cm long, with tumour stranding into the "
              "pericolic fat.\nImpression:\n1. Carcinoma of the sigmoid colon with pericolic fat invasion (cT3) "
              "and pericolic nodal disease (cN1).\n")
    assert positives(report)[0] == "Annular mass in the sigmoid colon, 4.5 cm long"
    assert not [text for text in positives(report) if text.startswith("Carcinoma")]


def test_the_largest_of_the_findings_of_the_sentence_before_is_a_finding_and_suspicious_hedges():
    found = [f for f in extract_findings("Findings:\nRetroperitoneum: Four suspicious para-aortic nodes. The "
                                         "largest, left of the aorta, measures 14 mm in short axis.\n")
             if not f.negated]
    assert [(f.text, f.uncertain) for f in found] == [  # the count is restated by its measured largest
        ("The largest of the suspicious para-aortic nodes, left of the aorta, measures 14 mm in short axis", True)]


# ---------------------------------------------------------------- abdomen_heldout7's causes, in other words
def test_an_organ_heading_in_small_letters_alone_on_its_line_names_the_organ():
    report = "Findings:\n\nspleen\nModerately enlarged, 15.2 cm.\n\nkidneys\nSegment-free 9 mm cyst in the left upper pole.\n"
    assert positives(report) == ["Moderately enlarged spleen, 15.2 cm",
                                 "Segment-free 9 mm cyst in the left upper pole of the left kidney"]


def test_advice_on_management_is_no_finding():
    report = ("Findings:\nPancreas: 2.1 cm cystic lesion in the tail.\nImpression:\n1. Pancreatic tail cyst. A dilated "
              "main duct would require resection. Drainage is generally adequate for such collections.\n")
    assert positives(report) == ["2.1 cm cystic lesion in the tail of the pancreas"]


def test_a_distended_hollow_organ_otherwise_unremarkable_is_a_normal_description():
    found = extract_findings("Findings:\nGallbladder: Well distended gallbladder with a 6 mm polyp.\n"
                             "Pelvis: Mildly distended bladder, otherwise normal.\n")
    assert [f.text for f in found if not f.negated] == ["6 mm polyp in the gallbladder"]


def test_how_a_lesion_enhances_without_washout_stays_with_the_lesion_and_is_no_negation():
    found = extract_findings("Findings:\nLiver: 2.7 cm lesion in segment 3, hypointense on T2, homogeneous arterial "
                             "hyperenhancement without washout.\n")
    assert [(f.text, f.negated) for f in found] == [
        ("2.7 cm lesion in segment 3 of the liver, hypointense on T2, homogeneous arterial hyperenhancement without "
         "washout", False)]


def test_a_focus_without_correlate_likely_benign_is_an_uncertain_finding():
    found = extract_findings("Findings:\nLiver: 6 mm hyperenhancing focus in segment 5 without a correlate on T2-weighted images, "
                             "probably a shunt.\n")
    assert [(f.text, f.negated, f.uncertain) for f in found] == [
        ("6 mm hyperenhancing focus in segment 5 of the liver without a correlate on T2-weighted images", False, True)]


def test_an_impression_giving_the_prior_size_in_brackets_restates_the_finding():
    report = ("Findings:\nLiver: 3.4 x 2.8 cm hypervascular lesion in segment 6.\n"
              "Impression:\n1. 3.4 cm adenoma in segment 6, slightly larger than before (3.0 cm).\n")
    assert positives(report) == ["3.4 x 2.8 cm hypervascular lesion in segment 6 of the liver"]


def test_a_finding_after_with_is_in_the_organ_of_its_sentence_not_the_broader_heading():
    report = ("Findings:\nHepatobiliary: The gallbladder is distended with wall thickening up to 6 mm.\n"
              "Impression:\n1. Acute cholecystitis.\n")
    assert positives(report) == ["The gallbladder is distended", "Wall thickening up to 6 mm of the gallbladder"]


def test_free_fluid_listed_after_an_organ_finding_is_not_in_that_organ():
    report = ("Findings:\nPeritoneum: Trace free fluid in the right paracolic gutter.\n"
              "Impression:\n1. Thickening of the splenic flexure and trace free fluid.\n")
    found = positives(report)
    assert found == ["Trace free fluid in the right paracolic gutter", "Thickening of the splenic flexure"]


def test_a_rupture_is_a_finding():
    assert positives("Findings:\nBowel: Rupture of the cecum with adjacent gas.\n")[0].startswith("Rupture of the cecum")


def test_within_it_is_inside_the_finding_of_the_sentence_before():
    report = "Findings:\nRetroperitoneum: Large right psoas hematoma, 9 cm. Within it, a 1 cm blush of contrast.\n"
    blush = positives(report)[1]
    assert blush.startswith("1 cm blush") and blush.endswith("of contrast within the right psoas hematoma")


def test_a_nodular_liver_surface_is_the_sign_of_the_cirrhosis_it_is_named_with():
    report = "Findings:\nLiver: Nodular surface of the liver.\nImpression:\n1. Cirrhotic liver.\n"
    assert positives(report) == ["Nodular surface of the liver"]


def test_pars_defects_and_arterial_beading_are_findings_and_a_may_reflect_hedge_flags():
    report = """Findings:
Liver: Normal.
Musculoskeletal: Right L4 pars interarticularis defect without slip.
Vessels: Beading of the left external iliac artery, which could reflect fibromuscular dysplasia.
"""
    found = {f.text: f for f in extract_findings(report) if not f.negated}
    pars = next(f for text, f in found.items() if "pars" in text)
    beading = next(f for text, f in found.items() if "Beading" in text)
    assert pars.category == "Osseous" and not pars.uncertain
    assert beading.category == "Vascular" and beading.uncertain


def test_a_communication_sentence_and_an_unremarkable_anastomosis_are_no_findings():
    report = """Findings:
Liver: 2 cm mass in segment 6.
Bowel: The ileocolic anastomosis in the right lower quadrant is unremarkable.
Impression:
1. 2 cm liver mass in segment 6.
The case will be presented at the hepatobiliary tumour board. Results were discussed at the multidisciplinary meeting.
"""
    assert positives(report) == ["2 cm mass in segment 6 of the liver"]


def test_a_bare_wall_thickening_before_stranding_at_a_place_is_one_finding_that_restates_the_thickened_wall():
    report = """Findings:
The wall of the neoterminal ileum is thickened at the ileocolic anastomosis, up to 9 mm, with adjacent fat stranding.
Impression:
1. Wall thickening and stranding at the ileocolic anastomosis, suspicious for anastomotic recurrence.
"""
    assert positives(report) == [
        "The wall of the neoterminal ileum is thickened at the ileocolic anastomosis, up to 9 mm, with adjacent fat "
        "stranding"]


def test_an_anastomosis_is_a_structure_and_an_outpouching_a_finding():
    report = """Findings:
A tiny outpouching of contrast along the colonic side of the ileocolic anastomosis, possibly a small ulcer.
The colorectal anastomosis in the pelvis shows no narrowing.
"""
    found = [f for f in extract_findings(report) if not f.negated]
    assert [f.text for f in found] == ["Tiny outpouching of contrast along the colonic side of the ileocolic "
                                       "anastomosis"]
    assert found[0].uncertain


def test_a_relative_clause_stays_with_the_finding_it_is_said_of():
    report = """Findings:
Kidneys and ureters: Mild right hydroureter to the pelvic brim, which is compressed by the adnexal mass.
"""
    assert positives(report) == ["Mild right hydroureter to the pelvic brim, which is compressed by the adnexal mass"]


def test_colitis_names_the_bowel_and_restates_a_thickened_colonic_wall():
    report = """Findings:
Bowel: Diffuse wall thickening of the descending and sigmoid colon with mucosal hyperenhancement.
Impression:
1. Moderate infectious colitis.
"""
    found = [f for f in extract_findings(report) if not f.negated]
    assert [f.text for f in found] == ["Diffuse wall thickening of the descending and sigmoid colon with mucosal "
                                       "hyperenhancement"]
    assert [s.name for s in structures_in("Severe pancolitis")] == ["bowel"]


def test_an_impression_summing_up_a_tumour_and_its_spread_restates_the_tumour():
    report = """Findings:
Cervix: Hypoenhancing cervical mass measuring 4.1 x 3.5 cm.
Stranding extends from the mass into the right parametrium, compatible with parametrial invasion.
Impression:
1. 4.1 cm cervical cancer with right parametrial invasion and extension into the lower uterine segment.
"""
    found = positives(report)
    assert found[0] == "Hypoenhancing cervical mass in the uterus measuring 4.1 x 3.5 cm"
    assert not any("cervical cancer" in text for text in found)
    assert [s.name for s in structures_in("Cervical carcinoma")] == ["uterus"]


def test_an_impression_naming_a_disease_sums_up_the_organs_finding_in_other_words():
    report = """Findings:
Kidneys: The left kidney is enlarged with a striated nephrogram and perinephric stranding. The right kidney is normal.
Impression:
1. Acute left pyelonephritis.
"""
    assert positives(report) == ["The left kidney is enlarged with a striated nephrogram and perinephric stranding"]


def test_an_impression_sums_up_several_findings_of_one_organ_with_their_sizes():
    report = """Findings:
Pancreas: A 3.1 cm cystic lesion in the pancreatic head, previously 2.8 cm.
A 5 mm enhancing nodule arises from its lateral wall.
Impression:
1. Enlarging 3.1 cm pancreatic head cyst (2.8 cm before) with a 5 mm enhancing nodule, a worrisome feature.
"""
    found = positives(report)
    assert len(found) == 2 and not any("Enlarging" in text for text in found)


def test_an_impression_names_nodes_of_several_stations_reported_one_by_one():
    report = """Findings:
Lymph nodes: 1.4 cm right common iliac lymph node. 1.1 cm left inguinal lymph node.
Impression:
1. Right common iliac and left inguinal lymphadenopathy.
"""
    assert positives(report) == ["1.4 cm right common iliac lymph node", "1.1 cm left inguinal lymph node"]


def test_an_impression_finding_the_findings_section_did_not_give_is_kept():
    """A finding of another kind in the same organ, whose word no sentence of the findings names, is new."""
    report = """Findings:
Liver: 2.2 cm simple cyst in segment 3.
Impression:
1. Hepatic cyst.
2. 1.5 cm hepatic hemangioma in segment 6.
3. Cholelithiasis without cholecystitis.
"""
    found = positives(report)
    assert any("hemangioma" in text for text in found) and any("holelithiasis" in text for text in found)
    assert not any(text.startswith("Hepatic cyst") for text in found)


def test_active_extravasation_and_an_enhancing_tract_are_findings_of_their_own():
    assert positives("Findings:\nSpleen: Grade III laceration of the lower pole with active contrast extravasation "
                     "into the perisplenic hematoma.\n") == [
        "Grade III laceration of the lower pole of the spleen", "Active contrast extravasation into the perisplenic hematoma"]
    assert positives("Findings:\nBowel: A 3 cm enhancing tract extends from the sigmoid colon to the bladder dome.\n") \
        == ["3 cm enhancing tract extends from the sigmoid colon to the bladder dome"]


@pytest.mark.parametrize("report, restatement", [
    # British section names: "Report:" holds the findings, "Opinion:" sums them up
    ("Report:\nThe gallbladder is distended to 5 cm with a 4 mm thick oedematous wall.\n\nOpinion:\n"
     "1. Acute calculous cholecystitis.\n", "cholecystitis"),
    # "IMP:" shorthand
    ("Kidneys:\n L lower pole cyst 3.1 cm, hyperdense.\nIMP:\n- Hyperdense L renal cyst 3.1 cm.\n", "Hyperdense"),
    # a conclusion after prose findings with no Findings header
    ("CT abdomen.\n\nThe pancreas is diffusely atrophic.\n\nConclusion: Chronic pancreatitis.\n", "pancreatitis"),
    # a final read after a preliminary one restates it
    ("Preliminary read\nFindings:\nSigmoid diverticulitis.\n\nFinal read\nFindings:\n"
     "Inflamed sigmoid diverticulum with surrounding fat stranding.\n", "Inflamed"),
])
def test_a_section_that_sums_up_the_findings_in_other_words_adds_no_second_finding(report, restatement):
    found = positives(report)
    assert found and not any(restatement in text for text in found)


def test_sizes_in_millimetres_and_centimetres_are_one_size_and_bilateral_is_right_and_left():
    assert positives("Findings:\nLiver: normal.\nAdrenals: Left adrenal nodule measuring 23 mm, -5 HU.\n"
                     "Impression:\n1. 2.3 cm left adrenal adenoma.\n") == ["Left adrenal nodule measuring 23 mm, -5 HU"]
    assert positives("Findings:\nLiver: normal.\nRight psoas muscle: rim-enhancing collection, 4 cm.\n"
                     "Left psoas muscle: rim-enhancing collection, 2 cm.\nImpression:\nBilateral psoas abscesses.\n") == [
        "Rim-enhancing collection in the right psoas muscle, 4 cm", "Rim-enhancing collection in the left psoas muscle, 2 cm"]


def test_a_prose_paragraph_names_the_organ_of_its_first_sentence_in_findings_that_name_none():
    found = extract_findings("Findings:\nThe spleen measures 11 cm. There is a 9 mm hypodense focus in the lower pole, "
                             "likely a cyst.\n")
    assert [(f.text, f.structure) for f in found if not f.negated] == [
        ("9 mm hypodense focus in the lower pole of the spleen", "spleen")]


def test_a_sentence_that_says_what_the_findings_before_are_restates_them():
    report = ("Findings:\nLiver: normal.\nBones: There is destruction of the L4 and L5 endplates with a paravertebral "
              "phlegmon. Appearances are those of discitis.\n\nImpression:\nL4/L5 discitis.\n")
    found = positives(report)
    assert not any("Appearances" in text or text.startswith("L4/L5 discitis") for text in found)


@pytest.mark.parametrize("report", [
    "Findings:\nKidneys: The right kidney enhances and drains normally.\n",
    "Findings:\nUreters: The ureter below the stone is of normal calibre (4 mm).\n",
    "Findings:\nR/o rupture.\n",
    "Impression:\nGrowth of 5 mm in a year warrants vascular review.\n",
    "Impression:\nUterus suitable for myomectomy.\n",
])
def test_normal_drainage_and_calibre_a_question_and_advice_are_no_findings(report):
    assert positives(report) == []


@pytest.mark.parametrize("report, finding", [
    ("Findings:\nSmall volume of free fluid in the pelvis, simple density.\n",
     "Small volume of free fluid in the pelvis, simple density"),
    ("Findings:\nLeft ovary: 3 cm cyst with a fluid-fluid level.\n", "3 cm cyst in the left ovary with a fluid-fluid level"),
    ("Findings:\nLiver: 8 mm lesion in segment 2 with diffusion restriction and hypointensity in the hepatobiliary phase.\n",
     "8 mm lesion in segment 2 of the liver with diffusion restriction and hypointensity"),
    ("Findings:\nUterus: 3 cm submucosal fibroid, distorting the endometrial cavity.\n",
     "3 cm submucosal fibroid, distorting the endometrial cavity"),
    ("Findings:\nLiver: 15 mm lesion in segment 3, bright on T2 with nodular peripheral enhancement.\n",
     "15 mm lesion in segment 3 of the liver, bright on T2 with nodular peripheral enhancement"),
])
def test_how_a_finding_looks_or_what_it_does_to_a_cavity_stays_with_it(report, finding):
    assert positives(report) == [finding]


def test_a_probable_deposit_after_and_is_a_finding_of_its_own_and_favoured_hedges():
    assert positives("Impression:\nA 1.5 cm lesion in segment 7 and a probable 8 mm deposit in segment 2.\n") == [
        "1.5 cm lesion in segment 7 of the liver", "Probable 8 mm deposit in segment 2 of the liver"]
    found = extract_findings("Findings:\nLiver: There is a 7 mm focus in segment 6; it is favoured to represent a small "
                             "haemangioma.\n")
    assert [(f.text, f.uncertain) for f in found] == [("7 mm focus in segment 6 of the liver", True)]


@pytest.mark.parametrize("text, structure", [
    ("Small hiatus hernia", "esophagus"), ("Perianal abscess", "anal canal"), ("Transsphincteric fistula", "anal canal"),
    ("Left psoas abscess", "muscle"), ("Endograft limb occlusion", "aorta"), ("Right femoral hernia", "abdominal wall"),
    ("Soft tissue mass in the mesentery", "bowel"), ("Vaginal cuff collection", "vagina"),
    ("Splenic enlargement, raising the possibility of liver injury", "spleen"),
])
def test_more_structures_are_named_and_a_head_phrase_names_its_own(text, structure):
    assert structure_of(text) == structure


def test_target_lesion_rows_of_a_follow_up_table_are_findings_with_their_current_size():
    report = """Findings:
Target lesions (RECIST 1.1):
  TL1  Right kidney, lower pole:   baseline 41 mm   prior 35 mm   now 30 mm
  TL2  Retrocrural nodal mass
       (image 3/40):                baseline 25 mm   prior 22 mm   now 15 mm
Sum of diameters: baseline 66 mm, now 45 mm.
Impression:
Partial response: both target lesions smaller.
"""
    found = extract_findings(report)
    assert [(f.text, f.structure) for f in found if not f.negated] == [
        ("Target lesion in the right kidney lower pole, now 30 mm", "right kidney"),
        ("Retrocrural nodal mass (target lesion), now 15 mm", "lymph node")]


def test_a_heading_that_names_a_finding_gives_its_name_to_a_size_below_it():
    report = """Findings:
PSEUDOCYST
- Greatest dimension (axial): 7.4 cm (previously 6.1 cm).
- Wall: thin, no enhancing nodule.
"""
    assert positives(report) == ["Pseudocyst greatest dimension (axial) 7.4 cm"]


def test_a_finding_used_as_a_landmark_makes_no_finding_and_a_rind_of_soft_tissue_is_one():
    assert positives("Findings:\nThe appendix lies medial to the ovarian mass and measures 6 mm, with no surrounding "
                     "inflammation.\n") == []
    assert positives("Findings:\nRetroperitoneum: Mantle of soft tissue encasing the aorta, up to 1.5 cm thick.\n") == [
        "Mantle of soft tissue encasing the aorta, up to 1.5 cm thick"]


@pytest.mark.parametrize("report, expected", [
    # the location between "is seen" and the finding
    ("Findings:\nLiver: Is seen in the segment 3 a hypodense lesion of 1.4 cm.\n",
     [("Hypodense lesion in the segment 3 of the liver of 1.4 cm", "liver")]),
    ("Findings:\nIn the left kidney is seen a cyst of 2 cm.\n", [("Cyst in the left kidney of 2 cm", "left kidney")]),
    # a pointer to another sentence, and what is thought unlikely, are no findings
    ("Findings:\nPelvis: The collection described below.\nImpression:\nUnderlying neoplasm is considered unlikely.\n", []),
    # how the rim around a lesion looks stays with it
    ("Findings:\nLiver: 3 cm lesion in segment 8, surrounded by a thin rim of oedema.\n",
     [("3 cm lesion in segment 8 of the liver, surrounded by a thin rim of oedema", "liver")]),
    # shorthand and a dictation software's "plural"
    ("Findings:\nStomach: s/p partial gastrectomy.\nBones: old healed left rib fx.\nChest: small right plural effusion.\n"
     "Colon: sigmoid wall thickening w/ stranding -> diverticulitis.\n",
     [("Status post partial gastrectomy", "stomach"), ("Old healed left rib fracture", "bone"),
      ("Small right pleural effusion", "pleura"), ("Sigmoid wall thickening with stranding", "bowel")]),
    # under "LIVER" alone on its line, "Vascular:" and "Morphology:" still describe the liver
    ("Findings:\n\nLIVER\nMorphology: Nodular contour.\nVascular: Portal veins patent.\n"
     "Lesions: 2 cm arterially enhancing lesion in segment 5.\n",
     [("Nodular contour of the liver", "liver"), ("2 cm arterially enhancing lesion in segment 5 of the liver", "liver")]),
    # a heading with an aside, an organ dictated alone as a heading
    ("Findings:\nLIVER\nObservation 2 (new): 1.5 cm arterially enhancing lesion in segment 8.\n",
     [("1.5 cm arterially enhancing lesion in segment 8 of the liver", "liver")]),
    ("Findings:\nPancreas. Atrophic.\nKidneys. No hydronephrosis.\n", [("Atrophic pancreas", "pancreas")]),
    # what a mass does to its neighbours is no finding of its own
    ("Findings:\nLeft kidney: 9 cm solid mass of the lower pole.\nThe spleen is displaced superiorly by the renal mass.\n",
     [("9 cm solid mass of the lower pole of the left kidney", "left kidney")]),
    # the small bowel is not the colon
    ("Findings:\nSmall bowel: Loops dilated to 3.5 cm.\nImpression:\nLarge bowel obstruction.\n",
     [("Loops dilated of the small bowel to 3.5 cm", "bowel"), ("Large bowel obstruction", "bowel")]),
    # a finding in an earlier finding is in that finding's structure
    ("Findings:\nThere is a 9 cm left rectus sheath hematoma. A 5 mm focus of contrast blush lies in the lower part of "
     "the hematoma.\n", [("9 cm left rectus sheath hematoma", "abdominal wall"),
                         ("5 mm focus in the abdominal wall of contrast blush lies in the lower part of the hematoma",
                          "abdominal wall")]),
    ("Findings:\nLung bases: emphysematous changes.\n", [("Emphysematous changes at the lung bases", "lung")]),
    ("Findings:\nNo other retroperitoneal, mesenteric or pelvic lymphadenopathy.\n", []),
])
def test_report_styles_of_other_hospitals_and_dictation_give_named_findings(report, expected):
    assert placed_positives(report) == expected


def test_a_question_mark_before_a_diagnosis_hedges_the_finding_and_surgery_names_its_organ():
    found = extract_findings("Findings:\nLiver: 1.2 cm hypodense lesion in segment 6, ? hemangioma.\n")
    assert [(f.text, f.uncertain) for f in found] == [("1.2 cm hypodense lesion in segment 6 of the liver", True)]
    assert structure_of("Status post hysterectomy") == "uterus"
    assert structure_of("Status post right hemicolectomy") == "bowel"


@pytest.mark.parametrize("report, expected", [
    # a sentence about the finding before ("It has ...") is no finding; a finding in "the pseudocyst" it named is there
    ("Findings:\nThere is a 6 cm collection in the lesser sac. It has a thin enhancing wall and simple fluid content, "
     "consistent with a pseudocyst. Layering dense material lies in the dependent part of the pseudocyst.\n",
     [("6 cm collection in the lesser sac", "peritoneal cavity"),
      ("Layering dense material lies of the peritoneal cavity in the dependent part of the pseudocyst",
       "peritoneal cavity")]),
    # a diagnosis that cannot be excluded is said of the finding before; one inside a finding's sentence stays with it
    ("Findings:\nBowel: Hypoenhancing wall of the descending colon. Transmural necrosis cannot be excluded.\n",
     [("Hypoenhancing wall of the descending colon", "bowel")]),
    # finding words of the abdomen, and collaterals apart from the thrombus they drain
    ("Findings:\nShort stricture of the common bile duct. Bilateral renal cortical thinning. Ectatic infrarenal aorta, "
     "2.8 cm. Active Crohn disease of the terminal ileum.\n",
     [("Short stricture of the common bile duct", "biliary tree"), ("Bilateral renal cortical thinning", "kidney"),
      ("Ectatic infrarenal aorta, 2.8 cm", "aorta"), ("Active Crohn disease of the terminal ileum", "bowel")]),
    ("Findings:\nThe splenic vein is occluded by thrombus, with prominent perigastric collateral veins.\n",
     [("The splenic vein is occluded by thrombus", "vessel"), ("Prominent perigastric collateral veins", "vessel")]),
    # a statement after an interpretation is not part of it
    ("Findings:\nThe pancreas is atrophic with calcifications, in keeping with chronic pancreatitis, and the main duct is "
     "dilated to 7 mm.\n", [("The pancreas is atrophic", "pancreas"), ("Calcifications of the pancreas", "pancreas"),
                           ("The main duct is dilated of the pancreas to 7 mm", "pancreas")]),
    # an impression naming the parts of an organ, a prior size, or ascites for free fluid between loops sums up
    ("Findings:\nPancreas: The body and tail are atrophic.\nThe terminal ileum is thickened over 14 cm; the segment "
     "measured 9 cm before.\nFree fluid between the bowel loops.\nImpression:\n1. Chronic pancreatitis of the body and "
     "tail.\n2. Crohn disease of the terminal ileum, longer than before (14 cm vs 9 cm).\n3. Moderate ascites.\n",
     [("The body of the pancreas and tail are atrophic", "pancreas"), ("The terminal ileum is thickened over 14 cm", "bowel"),
      ("Free fluid between the bowel loops", "bowel")]),
])
def test_sentences_about_the_finding_before_and_impressions_naming_parts_add_no_finding(report, expected):
    assert placed_positives(report) == expected


@pytest.mark.parametrize("report, expected", [
    # what a structure is separate from, a duct that drains, a cavity that is not distorted: no findings
    ("Findings:\nLeft kidney: 7 cm mass of the upper pole.\nAdrenals: The left adrenal gland is separate from the mass "
     "and normal.\n", [("7 cm mass of the upper pole of the left kidney", "left kidney")]),
    ("Findings:\nPancreas: The dorsal duct drains via the minor papilla.\nImpression:\n1. 2 cm splenic cyst.\n"
     "IR informed at 02:10 for embolisation.\n", [("2 cm splenic cyst", "spleen")]),
    ("Findings:\nUterus: 3 cm intramural fibroid. The endometrial cavity is not distorted.\n",
     [("3 cm intramural fibroid", "uterus")]),
    # pelvic places, findings that name their organ
    ("Findings:\nThickened left uterosacral ligament. Diffuse thickening of the junctional zone to 16 mm. Nodule of the "
     "anterior rectosigmoid wall, 1.8 cm.\n", [("Thickened left uterosacral ligament", "pelvis"),
                                              ("Diffuse thickening of the junctional zone to 16 mm", "uterus"),
                                              ("Nodule of the anterior rectosigmoid wall, 1.8 cm", "bowel")]),
    ("Findings:\nSpina bifida occulta at S1. Left tubal ectopic pregnancy with hemoperitoneum.\n",
     [("Spina bifida occulta at S1", "bone"), ("Left tubal ectopic pregnancy", "left ovary"),
      ("Hemoperitoneum", "peritoneal cavity")]),
    # where a finding arises from, and more on it after ";" or in the next sentence, stay with it
    ("Findings:\nColon: 5 mm focus of active extravasation in the cecum, arising from the dome of a diverticulum.\n",
     [("5 mm focus of active extravasation in the cecum, arising from the dome of a diverticulum", "bowel")]),
    ("Findings:\nVessels: The IMA is occluded at its origin; its distal branches fill via collaterals.\n", []),
    # an impression with a threshold size, a diagnosis of a pars defect, bleeding for extravasation sums up
    ("Findings:\nLeft kidney: 4.3 cm angiomyolipoma of the lower pole, previously 3.7 cm.\nSpine: Bilateral L5 pars "
     "defects with grade 1 anterolisthesis.\nColon: 6 mm focus of active contrast extravasation in the ascending colon. "
     "On the delayed phase the extravasated contrast enlarges and layers in the lumen.\nImpression:\n1. Growing left "
     "renal angiomyolipoma, now exceeds 4 cm.\n2. L5 spondylolysis with grade 1 spondylolisthesis.\n3. Active colonic "
     "haemorrhage.\n", [("4.3 cm angiomyolipoma of the lower pole of the left kidney", "left kidney"),
                         ("Bilateral L5 pars defects with grade 1 anterolisthesis", "bone"),
                         ("6 mm focus of active contrast extravasation in the ascending colon", "bowel")]),
])
def test_statements_about_neighbours_and_findings_already_given_add_no_finding(report, expected):
    assert placed_positives(report) == expected


@pytest.mark.parametrize("report", [
    "Findings:\nBladder: Normal. Both distal ureters non-dilated.\n",
    "Findings:\nRight ovary: Otherwise atrophic postmenopausal ovary.\n",
    "Findings:\nThe mass is well separated from the uterus and sigmoid colon.\n",
])
def test_non_dilated_structures_an_ovary_normal_for_age_and_a_mass_separate_from_its_neighbours_are_no_findings(report):
    assert positives(report) == []
