"""Synthetic CT phantoms: anatomy in world coordinates, labels, findings, dataset files, report."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from VoxTellCore.errors import InputError
from VoxTellCore.io.volume import kji_to_network
from VoxTellCore.phantoms import CONCEPTS, PARTITION, generate_phantom
from VoxTellCore.phantoms.dataset import DATASET_NAME, masks_for_case, write_phantom_dataset
from VoxTellCore.phantoms.labels import LOBES, nodule_prompt
from VoxTellCore.phantoms.report import write_report

VOCABULARY = Path(__file__).resolve().parents[1] / "Resources" / "vocabulary" / "phantom_vocabulary.json"
LOBE_NAMES = [name for name, _, _ in LOBES]
# (seed, orientation, options): native random grids, common and unusual voxel orders
CASES = [
    (0, "RAS", {"n_nodules": 3, "effusions": ("left",), "contrast": True}),
    (1, "LPS", {"n_nodules": 2, "effusions": ("right",), "contrast": False}),
    (2, "PIR", {"n_nodules": 5, "effusions": ("left", "right")}),
    (3, "SLA", {"n_nodules": 1, "effusions": ()}),
    (6, None, {}),  # everything drawn from the seed
]


@pytest.fixture(scope="module", params=CASES, ids=lambda case: f"seed{case[0]}-{case[1]}")
def phantom(request):
    seed, orientation, options = request.param
    return generate_phantom(seed, orientation=orientation, **options)


def centroid_ras(mask: np.ndarray, ijk_to_ras: np.ndarray) -> np.ndarray:
    assert mask.any()
    kji = np.argwhere(mask).mean(axis=0)
    return ijk_to_ras[:3, :3] @ kji[::-1] + ijk_to_ras[:3, 3]


def test_anatomy_sits_on_the_correct_patient_side_in_ras(phantom):
    at = {name: centroid_ras(mask, phantom.ijk_to_ras) for name, mask in phantom.labels.items()}
    # RAS: +x toward the patient's right, +y anterior, +z superior
    assert at["liver"][0] > at["spleen"][0] + 50
    assert at["right lung"][0] > at["left lung"][0] + 80
    assert at["right kidney"][0] > at["left kidney"][0] + 60
    assert at["heart"][0] < at["body"][0]  # the heart leans to the patient's left
    for lobe in ("right lung upper lobe", "right lung middle lobe", "right lung lower lobe"):
        assert at[lobe][0] > at["body"][0]
    for lobe in ("left lung upper lobe", "left lung lower lobe"):
        assert at[lobe][0] < at["body"][0]
    assert at["right lung upper lobe"][2] > at["right lung lower lobe"][2]
    assert at["right lung middle lobe"][1] > at["right lung lower lobe"][1]  # the middle lobe is anterior
    assert at["vertebrae"][1] < at["heart"][1] - 40  # the spine is behind the heart
    assert at["liver"][2] < at["right lung"][2] - 60  # the liver is below the lungs
    assert phantom.axcodes == "".join(nib.aff2axcodes(phantom.ijk_to_ras))
    requested = {seed: orientation for seed, orientation, _ in CASES}[phantom.seed]
    assert phantom.axcodes == (requested or phantom.axcodes)


def test_network_array_keeps_the_patient_sides(phantom):
    """In VoxTellCore's (S, A, R) network layout, axis 2 runs toward the patient's right."""
    volume = phantom.to_volume()
    np.testing.assert_array_equal(volume.from_network(volume.to_network()), phantom.image)

    def right_index(name):
        return np.argwhere(kji_to_network(phantom.labels[name], phantom.ijk_to_ras)).mean(axis=0)[2]

    assert right_index("liver") > right_index("spleen")
    assert right_index("right lung") > right_index("left lung")


def test_lobes_partition_their_lung_and_organs_are_disjoint(phantom):
    masks = phantom.labels
    for side, lobes in (("right", LOBE_NAMES[:3]), ("left", LOBE_NAMES[3:])):
        stacked = np.stack([masks[lobe] for lobe in lobes])
        assert stacked.any(axis=(1, 2, 3)).all(), "a lobe is empty"
        assert (stacked.sum(axis=0) <= 1).all(), "lobes overlap"
        np.testing.assert_array_equal(stacked.any(axis=0), masks[f"{side} lung"])
    organs = ["left lung", "right lung", "heart", "aorta", "liver", "spleen", "left kidney", "right kidney",
              "vertebrae"]
    assert (np.stack([masks[o] for o in organs]).sum(axis=0) <= 1).all(), "organs overlap"
    for organ in organs:
        assert masks[organ].sum() > 200, organ
        assert not (masks[organ] & ~masks["body"]).any(), f"{organ} outside the body"
    assert 0.2 < masks["body"].mean() < 0.95


def test_nodules_lie_inside_their_named_lobe(phantom):
    nodules = [f for f in phantom.findings if f["concept"] == "lung nodule"]
    assert nodules, "every test case asks for nodules"
    assert len({f["lobe"] for f in nodules}) == len(nodules)  # one per lobe
    voxel_volume = float(np.prod(phantom.spacing))
    for finding in nodules:
        mask = phantom.labels[finding["prompt"]]
        assert finding["prompt"] == nodule_prompt(finding["lobe"])
        assert mask.any()
        assert (mask <= phantom.labels[finding["lobe"]]).all()
        assert (mask <= phantom.labels[f"{finding['side']} lung"]).all()
        assert (mask <= phantom.labels["lung nodule"]).all()
        for other in LOBE_NAMES:
            if other != finding["lobe"]:
                assert not (mask & phantom.labels[other]).any()
        # wholly inside: its neighbours are lobe parenchyma of the same lobe (or the nodule itself)
        ring = ndimage.binary_dilation(mask) & ~mask
        assert (phantom.label_map[ring] == PARTITION[f"{finding['lobe']} parenchyma"]).all()
        diameter = (6 * mask.sum() * voxel_volume / np.pi) ** (1 / 3)
        assert 0.5 * finding["size_mm"] < diameter < 1.7 * finding["size_mm"]
        assert np.median(phantom.image[mask]) > np.median(phantom.image[phantom.labels[finding["lobe"]] & ~mask]) + 200
    requested = dict((seed, options) for seed, _, options in CASES)[phantom.seed].get("n_nodules")
    if requested is not None:
        assert len(nodules) >= min(requested, 5) - 1  # placement may give up on one tight lobe


def test_a_nodule_too_big_for_its_lobe_is_shrunk_within_the_requested_range():
    # 12-70 mm: most draws are wider than a lobe of a 64^3 phantom; all 4 must still be placed
    for seed in (0, 1):
        phantom = generate_phantom(seed, shape=(64, 64, 64), n_nodules=4, nodule_diameter_mm=(12.0, 70.0))
        nodules = [f for f in phantom.findings if f["concept"] == "lung nodule"]
        assert len(nodules) == 4
        for finding in nodules:
            assert 12 <= finding["size_mm"] < 70
            mask = phantom.labels[finding["prompt"]]
            ring = ndimage.binary_dilation(mask) & ~mask
            assert (phantom.label_map[ring] == PARTITION[f"{finding['lobe']} parenchyma"]).all()


def test_effusions_are_dependent_basal_fluid_outside_the_lung(phantom):
    effusions = [f for f in phantom.findings if f["concept"] == "pleural effusion"]
    for finding in effusions:
        fluid = phantom.labels[finding["prompt"]]
        lung = phantom.labels[f"{finding['side']} lung"]
        assert fluid.sum() > 20 and not (fluid & lung).any()
        at, lung_at = centroid_ras(fluid, phantom.ijk_to_ras), centroid_ras(lung, phantom.ijk_to_ras)
        assert at[1] < lung_at[1] - 20 and at[2] < lung_at[2]  # posterior and basal
        body_x = centroid_ras(phantom.labels["body"], phantom.ijk_to_ras)[0]
        assert (at[0] > body_x) == (finding["side"] == "right")
        assert -40 < np.median(phantom.image[ndimage.binary_erosion(fluid) | fluid]) < 60
    present = {f["side"] for f in effusions}
    for side in {"left", "right"} - present:
        assert f"{side} pleural effusion" not in phantom.labels
        assert not (phantom.label_map == PARTITION[f"{side} pleural effusion"]).any()


def test_tissue_intensities_are_plausible_hounsfield_units(phantom):
    def median_hu(name):
        core = ndimage.binary_erosion(phantom.labels[name])
        return float(np.median(phantom.image[core if core.sum() > 20 else phantom.labels[name]]))

    assert median_hu("left lung") < -750 and median_hu("right lung") < -750
    assert 40 <= median_hu("liver") <= 140
    assert 30 <= median_hu("spleen") <= 150
    assert 200 <= median_hu("vertebrae") <= 1000
    assert np.median(phantom.image[~phantom.labels["body"]]) < -950
    body_core = ndimage.binary_erosion(phantom.labels["body"], iterations=2)
    assert phantom.image[body_core].std() > 100  # real contrast between air, fat, soft tissue, bone
    if phantom.contrast:
        assert median_hu("aorta") > 150 and median_hu("left kidney") > 130
    else:
        assert 20 <= median_hu("aorta") <= 70 and median_hu("right kidney") < 60
    residual = phantom.image[:8, :8, :8]  # a corner of air: the noise level
    assert 3 < residual.std() < 40


def test_orientation_spacing_and_shape_vary_between_seeds():
    phantoms = [generate_phantom(seed, shape=(24, 28, 32)) for seed in range(10)]
    axcodes = {p.axcodes for p in phantoms}
    assert len(axcodes) >= 3 and axcodes - {"RAS"}
    assert any(code not in ("RAS", "LPS") for code in axcodes)
    assert len({p.ijk_to_ras.round(3).tobytes() for p in phantoms}) == len(phantoms)
    assert all(p.image.shape == (24, 28, 32) for p in phantoms)
    native = generate_phantom(11)
    assert all(48 <= n <= 128 for n in native.image.shape)
    assert all(1.5 <= s <= 6.0 for s in native.spacing)
    spacings = np.array([generate_phantom(seed, shape=(16, 16, 16)).spacing for seed in range(20, 26)])
    assert np.ptp(spacings.max(axis=1) / spacings.min(axis=1)) > 0.05  # anisotropy varies


def test_the_same_seed_builds_the_same_world_anatomy_in_any_voxel_order():
    at = {}
    for orientation in ("RAS", "LPS", "IRP"):
        p = generate_phantom(8, orientation=orientation, n_nodules=0)
        assert p.axcodes == orientation
        at[orientation] = {name: centroid_ras(p.labels[name], p.ijk_to_ras)
                           for name in ("liver", "spleen", "heart", "left lung", "right lung lower lobe")}
    for orientation in ("LPS", "IRP"):
        for name, where in at[orientation].items():
            assert np.abs(where - at["RAS"][name]).max() < 4.0, (orientation, name)


def test_generation_is_deterministic_and_options_are_checked():
    a, b = generate_phantom(21, shape=(20, 24, 28)), generate_phantom(21, shape=(20, 24, 28))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label_map, b.label_map)
    assert a.findings == b.findings
    with pytest.raises(InputError, match="axis codes"):
        generate_phantom(0, orientation="RAR")
    with pytest.raises(InputError, match="left"):
        generate_phantom(0, effusions=("middle",))
    with pytest.raises(InputError, match="0-5"):
        generate_phantom(0, n_nodules=6)


def test_dataset_files_load_and_masks_for_case_match_the_phantom(tmp_path):
    shape = (40, 44, 48)
    out = write_phantom_dataset(tmp_path / DATASET_NAME, n_cases=2, seed=5, shape=shape, n_nodules=2, workers=2)
    description = json.loads((out / "dataset.json").read_text())
    cases = json.loads((out / "cases.json").read_text())
    assert description["labels"] == PARTITION and description["concept_masks"] == CONCEPTS
    assert description["numTraining"] == 2 and description["file_ending"] == ".nii.gz"
    assert sorted(cases) == ["phantom_0000", "phantom_0001"]
    seeds = [case["seed"] for case in cases.values()]
    assert len(set(seeds)) == 2
    for case_id, case in cases.items():
        phantom = generate_phantom(case["seed"], shape=shape, n_nodules=2)
        image = sitk.ReadImage(str(out / "imagesTr" / f"{case_id}_0000.nii.gz"))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), np.round(phantom.image).astype(np.int16))
        ijk_to_lps = np.diag([-1.0, -1.0, 1.0]) @ phantom.ijk_to_ras[:3]
        np.testing.assert_allclose(image.GetOrigin(), ijk_to_lps[:, 3], atol=1e-3)
        np.testing.assert_allclose(image.GetSpacing(), phantom.spacing, rtol=1e-5)
        direction = np.array(image.GetDirection()).reshape(3, 3)
        np.testing.assert_allclose(direction * image.GetSpacing(), ijk_to_lps[:, :3], atol=1e-4)
        labels = nib.load(out / "labelsTr" / f"{case_id}.nii.gz")
        np.testing.assert_allclose(labels.affine, phantom.ijk_to_ras, atol=1e-4)
        assert case["findings"] == json.loads(json.dumps(phantom.findings))
        assert case["report"] == write_report(phantom)

        masks = masks_for_case(out, case_id)
        assert set(masks) == set(CONCEPTS)
        for name, mask in masks.items():
            expected = phantom.labels.get(name, np.zeros(shape, dtype=bool))
            np.testing.assert_array_equal(mask, expected, err_msg=name)


def test_command_line_writes_a_dataset(tmp_path, capsys):
    from VoxTellCore.phantoms.__main__ import main

    assert main([str(tmp_path / "out"), "--cases", "1", "--seed", "3", "--shape", "16", "18", "20"]) == 0
    image = sitk.ReadImage(str(tmp_path / "out" / "imagesTr" / "phantom_0000_0000.nii.gz"))
    assert sitk.GetArrayFromImage(image).shape == (16, 18, 20)
    assert set(masks_for_case(tmp_path / "out", "phantom_0000")) == set(CONCEPTS)
    assert "1/1 cases" in capsys.readouterr().out


def test_vocabulary_covers_every_concept_with_distinct_rephrasings():
    vocabulary = json.loads(VOCABULARY.read_text())
    assert vocabulary["version"] == 1
    concepts = {c["name"]: c for c in vocabulary["concepts"]}
    assert list(concepts) == list(CONCEPTS)
    seen: dict[str, str] = {}
    for name, concept in concepts.items():
        synonyms = concept["synonyms"]
        assert 4 <= len(synonyms) <= 8, name
        assert concept["datasets"] == {DATASET_NAME: CONCEPTS[name]}
        for text in [name, *synonyms]:
            key = " ".join(text.lower().split())
            assert seen.setdefault(key, name) == name, f"{text!r} names both {seen[key]!r} and {name!r}"
    for lobe, where, side in LOBES:  # location prompts keep their lobe in every rephrasing
        for text in concepts[nodule_prompt(lobe)]["synonyms"]:
            assert where in text and "nodule" in text
        for text in concepts[f"{side} pleural effusion"]["synonyms"]:
            assert side in text


def test_report_names_every_nodule_with_lobe_and_size_and_negates_absent_findings(phantom):
    report = write_report(phantom)
    findings_text, impression = report.split("IMPRESSION:")
    sentences = [s.strip() for s in findings_text.replace("\n", " ").split(".")]
    location = {name: where for name, where, _ in LOBES}
    for finding in phantom.findings:
        if finding["concept"] == "lung nodule":
            size, where = f"{finding['size_mm']} mm", location[finding["lobe"]]
            assert any(size in s and where in s and "nodule" in s for s in sentences), (size, where)
            assert f"{size} solid nodule in the {where}" in impression
        else:
            assert f"{finding['severity']} {finding['side']} pleural effusion" in report.lower()
    sides = {f["side"] for f in phantom.findings if f["concept"] == "pleural effusion"}
    if not sides:
        assert "No pleural effusion." in report
    for side in {"left", "right"} - sides if sides else ():
        assert f"No pleural effusion on the {side}." in report
    if not any(f["concept"] == "lung nodule" for f in phantom.findings):
        assert "No pulmonary nodules" in report
    assert "No pneumothorax." in report and "Heart size is normal." in report
    assert " a 8 mm" not in report and "A 8 mm" not in report and " a 11 mm" not in report


def test_side_confusion_counts_predictions_on_the_wrong_side(phantom):
    from VoxTellCore.phantoms.evaluation import FINDING_SIDES, side_confused

    labels = phantom.labels
    empty = np.zeros_like(labels["left lung"])
    for prompt, mirror in (("left lung", "right lung"), ("right kidney", "left kidney")):
        assert not side_confused(labels[prompt], prompt, labels)
        assert side_confused(labels[mirror], prompt, labels)
    findings = [f["prompt"] for f in phantom.findings]
    for prompt in findings:
        other = "right" if FINDING_SIDES[prompt] == "left" else "left"
        assert not side_confused(labels[prompt], prompt, labels)
        assert not side_confused(empty, prompt, labels)
        # the contralateral lung counts even when no finding lies there
        assert side_confused(labels[f"{other} lung"] | labels[prompt], prompt, labels)
    assert not side_confused(labels["right lung"], "heart", labels)


def test_a_finding_prompt_covering_another_locations_finding_is_counted(phantom):
    from VoxTellCore.phantoms.evaluation import covers_other_location, side_confused

    labels = phantom.labels
    nodules = [f["prompt"] for f in phantom.findings if f["concept"] == "lung nodule"]
    effusions = [f["prompt"] for f in phantom.findings if f["concept"] == "pleural effusion"]
    for prompt in nodules + effusions:
        assert not covers_other_location(labels[prompt], prompt, labels)
    for prompt, other in zip(nodules, nodules[1:]):
        both = labels[prompt] | labels[other]
        assert covers_other_location(both, prompt, labels)
        assert covers_other_location(labels[other], prompt, labels)
        first_voxels = np.cumsum(labels[other].ravel()).reshape(labels[other].shape) <= labels[other].sum() // 3
        third = labels[other] & first_voxels
        assert not covers_other_location(labels[prompt] | third, prompt, labels)  # a third of it: not covered
    if len(effusions) == 2:
        assert covers_other_location(labels[effusions[0]] | labels[effusions[1]], effusions[0], labels)
        assert side_confused(labels[effusions[1]], effusions[0], labels)
    # organs are never counted; a nodule mask is not judged against effusions
    assert not covers_other_location(labels["left lung"], "left lung", labels)
    if nodules and effusions:
        assert not covers_other_location(labels[nodules[0]] | labels[effusions[0]], nodules[0], labels)
