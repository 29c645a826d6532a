"""Dice, surface Dice and ReXGroundingCT metrics against hand-computed answers."""

import numpy as np
import pytest

from VoxTellCore.evaluation.metrics import (FindingResult, connected_instances, dice, finding_metrics,
                                            match_instances, summarize_findings, surface_dice)


def cube(shape=(16, 16, 16), start=(4, 4, 4), size=4) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[tuple(slice(s, s + size) for s in start)] = 1
    return mask


EMPTY = np.zeros((16, 16, 16), dtype=np.uint8)


def test_dice_empty_conventions():
    assert dice(EMPTY, cube()) == 0.0
    assert dice(cube(), EMPTY) == 0.0
    assert dice(EMPTY, EMPTY) == 1.0


def test_dice_of_cube_shifted_by_one_voxel():
    # 4x4x4 cubes overlapping in 3x4x4 = 48 voxels: 2 * 48 / (64 + 64) = 0.75
    assert dice(cube(start=(5, 4, 4)), cube()) == pytest.approx(0.75)
    assert dice(cube(), cube()) == 1.0


def test_dice_treats_any_nonzero_label_as_foreground():
    assert dice(cube() * 7, cube().astype(bool)) == 1.0


def test_dice_rejects_different_shapes():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)))


def test_surface_dice_identical_far_apart_and_empty():
    spacing = (1.0, 1.0, 1.0)
    assert surface_dice(cube(), cube(), spacing, 1.0) == pytest.approx(1.0)
    far = cube(start=(11, 11, 11), size=3)
    assert surface_dice(cube(size=3, start=(1, 1, 1)), far, spacing, 2.0) == 0.0
    assert surface_dice(EMPTY, EMPTY, spacing, 2.0) == 1.0
    assert surface_dice(cube(), EMPTY, spacing, 2.0) == 0.0
    assert surface_dice(EMPTY, cube(), spacing, 2.0) == 0.0


def test_surface_dice_tolerance_is_in_millimetres_along_each_axis():
    shifted_along_axis0 = cube(start=(5, 4, 4))
    anisotropic = (2.0, 1.0, 1.0)  # the shift is one voxel = 2 mm along axis 0
    assert surface_dice(shifted_along_axis0, cube(), anisotropic, 2.0) == pytest.approx(1.0)
    assert surface_dice(shifted_along_axis0, cube(), anisotropic, 1.0) < 0.9
    shifted_along_axis2 = cube(start=(4, 4, 5))  # one voxel = 1 mm along axis 2
    assert surface_dice(shifted_along_axis2, cube(), anisotropic, 1.0) == pytest.approx(1.0)


def test_connectivity_6_18_26():
    mask = np.zeros((6, 6, 6), dtype=np.uint8)
    mask[1, 1, 1] = mask[2, 2, 2] = 1  # touch at a corner only
    mask[4, 4, 4] = mask[5, 5, 4] = 1  # touch at an edge
    mask[0, 5, 5] = mask[0, 5, 4] = 1  # share a face
    assert [connected_instances(mask, c)[1] for c in (6, 18, 26)] == [5, 4, 3]
    assert connected_instances(mask)[1] == 4  # the default is 18


def test_small_predicted_specks_are_not_instances_by_default():
    target = cube()
    prediction = cube().copy()
    for k in range(5):
        prediction[0, 2 * k, 15] = 1  # five 1-voxel specks beside a correct nodule
    assert match_instances(prediction, target).false_positives == 0
    specks = match_instances(prediction, target, min_voxels=0)
    assert (specks.true_positives, specks.false_positives) == (1, 5)
    small_target = np.zeros_like(target)
    small_target[3, 3, 3] = 1  # a ground-truth instance is never dropped
    assert match_instances(EMPTY, small_target).false_negatives == 1


def test_a_labelled_mask_gives_one_instance_per_label():
    target = cube().astype(np.uint8)
    target[4:6] *= 2  # two touching entities labelled 1 and 2, as ReXGroundingCT stores them
    assert connected_instances(target)[1] == 2
    match = match_instances((target == 1).astype(np.uint8), target)
    assert (match.true_positives, match.false_negatives) == (1, 1)


def two_lesions() -> np.ndarray:
    return np.maximum(cube(start=(1, 1, 1), size=3), cube(start=(10, 10, 10), size=3))


def test_two_instances_with_one_missed():
    target = two_lesions()
    prediction = cube(start=(1, 1, 1), size=3)
    match = match_instances(prediction, target)
    assert (match.true_positives, match.false_positives, match.false_negatives) == (1, 0, 1)
    assert match.pairs[0][2] == pytest.approx(1.0)
    scores = finding_metrics({"case": [(prediction, target)]})
    assert scores.instance_precision == 1.0
    assert scores.instance_recall == 0.5
    assert scores.instance_f1 == pytest.approx(2 / 3)
    assert scores.global_dice == pytest.approx(2 * 27 / (27 + 54))


def test_instance_below_dice_threshold_is_a_false_positive_and_a_miss():
    target = cube(size=4)  # 64 voxels
    prediction = np.zeros_like(target)
    prediction[4, 4, 4:8] = 1  # 4 voxels inside: Dice 8 / 68 < 0.2
    match = match_instances(prediction, target, min_voxels=0)
    assert (match.true_positives, match.false_positives, match.false_negatives) == (0, 1, 1)


def test_matching_is_one_to_one():
    target = two_lesions()
    prediction = np.zeros_like(target)
    prediction[1:13, 1:13, 1:13] = 1  # one blob covering both lesions
    match = match_instances(prediction, target)
    assert match.true_positives <= 1
    assert match.true_positives + match.false_negatives == 2


def test_greedy_matching_takes_pairs_by_decreasing_dice():
    def segment(*ranges):
        mask = np.zeros((30, 1, 1), dtype=np.uint8)
        for lo, hi in ranges:
            mask[lo:hi] = 1
        return mask

    target = segment((0, 10), (12, 22))  # instances 1 and 2
    prediction = segment((0, 3), (5, 22))  # instance 2 spans part of target 1 and all of target 2
    match = match_instances(prediction, target, min_voxels=0)
    # Dice(pred 2, target 2) = 20/27, Dice(pred 2, target 1) = 10/27, Dice(pred 1, target 1) = 6/13
    assert [(p, t) for p, t, _ in match.pairs] == [(2, 2), (1, 1)]
    assert [d for _, _, d in match.pairs] == pytest.approx([20 / 27, 6 / 13])
    assert (match.false_positives, match.false_negatives) == (0, 0)


def test_empty_prediction_and_target_instance_conventions():
    scores = finding_metrics({"case": [(EMPTY, cube())]})
    assert (scores.global_dice, scores.hit_rate, scores.instance_precision, scores.instance_recall) == (0, 0, 0, 0)
    scores = finding_metrics({"case": [(EMPTY, EMPTY)]})
    assert (scores.global_dice, scores.instance_precision, scores.instance_recall, scores.instance_f1) == (1, 1, 1, 1)


def test_global_dice_averages_per_case_then_over_cases_and_hit_rate_uses_0_1():
    results = {
        "case1": [FindingResult(1.0, 1, 0, 0), FindingResult(0.0, 0, 1, 1), FindingResult(0.05, 0, 1, 1)],
        "case2": [FindingResult(0.75, 1, 0, 0)],
    }
    scores = summarize_findings(results)
    assert scores.global_dice == pytest.approx(((1.0 + 0.0 + 0.05) / 3 + 0.75) / 2)
    assert scores.hit_rate == pytest.approx(2 / 4)
    assert scores.instance_precision == pytest.approx(2 / 4)
    assert scores.instance_recall == pytest.approx(2 / 4)
    assert (scores.n_cases, scores.n_findings) == (2, 4)


def test_hit_threshold_is_inclusive():
    target = np.zeros((20, 1, 1), dtype=np.uint8)
    target[:19] = 1
    prediction = np.zeros_like(target)
    prediction[0] = 1  # Dice = 2 * 1 / (1 + 19) = 0.1 exactly
    assert finding_metrics({"case": [(prediction, target)]}).hit_rate == 1.0


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning")
def test_surface_dice_matches_monai_on_the_whole_array():
    # surface_dice crops to the masks' bounding box first; the score must not change,
    # also for masks that touch the array border.
    import torch
    from monai.metrics import compute_surface_dice

    target = np.zeros((12, 14, 16), dtype=bool)
    target[0:6, 3:10, 9:16] = True
    target[8:11, 1:4, 1:5] = True
    prediction = np.roll(target, 1, axis=2)
    prediction[11, 13, 0] = True
    spacing, tolerance = (1.5, 0.8, 1.1), 1.0
    expected = compute_surface_dice(torch.from_numpy(prediction[None, None].astype(np.float32)),
                                    torch.from_numpy(target[None, None].astype(np.float32)), [tolerance],
                                    include_background=True, spacing=list(spacing)).item()
    assert 0.0 < expected < 1.0
    assert surface_dice(prediction, target, spacing, tolerance) == pytest.approx(expected)
