"""VoxTellCore.preprocessing against the release's own functions (the oracle)."""

import numpy as np
import pytest
import torch
from acvl_utils.cropping_and_padding.bounding_boxes import insert_crop_into_image
from acvl_utils.cropping_and_padding.padding import pad_nd_image
from nnunetv2.preprocessing.cropping import cropping as nnunet_cropping
from nnunetv2.preprocessing.normalization.default_normalization_schemes import ZScoreNormalization
from voxtell.inference.predictor import VoxTellPredictor

from VoxTellCore import preprocessing

SEEDS = range(8)


def image_with_zero_border(seed: int, channels: int = 1) -> np.ndarray:
    """Random intensities inside a random box, zeros around it, and zero holes inside."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(6, 30, 3))
    data = np.zeros((channels, *shape), dtype=np.float32)
    box = tuple(slice(int(rng.integers(0, s // 2)), int(rng.integers(s // 2 + 1, s + 1))) for s in shape)
    data[(slice(None), *box)] = rng.normal(40, 30, size=data[(slice(None), *box)].shape)
    data[data < 15] = 0  # scattered zeros: holes that binary_fill_holes fills
    return data


def as_int_bbox(bbox) -> list[list[int]]:
    return [[int(start), int(stop)] for start, stop in bbox]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("channels", [1, 2])
def test_crop_to_nonzero_matches_nnunet(seed, channels):
    data = image_with_zero_border(seed, channels)
    expected, _, expected_bbox = nnunet_cropping.crop_to_nonzero(data.copy(), None)
    cropped, bbox = preprocessing.crop_to_nonzero(data)
    assert bbox == as_int_bbox(expected_bbox)
    assert np.array_equal(cropped, expected)


def test_crop_of_all_zero_image_keeps_everything():
    data = np.zeros((1, 4, 5, 6), dtype=np.float32)
    _, _, expected_bbox = nnunet_cropping.crop_to_nonzero(data.copy(), None)
    cropped, bbox = preprocessing.crop_to_nonzero(data)
    assert bbox == as_int_bbox(expected_bbox) == [[0, 4], [0, 5], [0, 6]]
    assert cropped.shape == data.shape


@pytest.mark.parametrize("seed", SEEDS)
def test_zscore_matches_nnunet(seed):
    data = image_with_zero_border(seed) * 7.3 + 1000
    expected = ZScoreNormalization(intensityproperties={}).run(data.copy(), None)
    result = preprocessing.zscore(data)
    assert result.dtype == np.float32
    assert np.array_equal(result, expected)
    assert not np.shares_memory(result, data)


def test_zscore_of_constant_image_uses_epsilon():
    data = np.full((1, 3, 3, 3), 5.0, dtype=np.float32)
    expected = ZScoreNormalization(intensityproperties={}).run(data.copy(), None)
    assert np.array_equal(preprocessing.zscore(data), expected)
    assert np.all(preprocessing.zscore(data) == 0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("patch_size", [(32, 32, 32), (8, 40, 16)])
def test_pad_to_patch_matches_pad_nd_image(seed, patch_size):
    data = image_with_zero_border(seed)
    expected, expected_slices = pad_nd_image(torch.from_numpy(data), patch_size, "constant", {"value": 0}, True, None)
    padded, slices = preprocessing.pad_to_patch(data, patch_size)
    assert np.array_equal(padded, expected.numpy())
    assert slices == expected_slices
    assert np.array_equal(padded[slices], data)
    assert all(p >= max(s, q) for p, s, q in zip(padded.shape[1:], data.shape[1:], patch_size))


@pytest.mark.parametrize("seed", SEEDS)
def test_preprocess_matches_release_predictor(seed):
    release = VoxTellPredictor.__new__(VoxTellPredictor)  # only .normalization is needed
    release.normalization = ZScoreNormalization(intensityproperties={})
    network_array = image_with_zero_border(seed)[0] * 3.1 - 20
    network_array[network_array == -20] = 0

    expected, expected_bbox, expected_shape = release.preprocess(network_array.copy())
    data, bbox, original_shape = preprocessing.preprocess(network_array)
    assert data.dtype == np.float32 and data.ndim == 4 and data.shape[0] == 1
    assert np.array_equal(data, expected.numpy())
    assert bbox == as_int_bbox(expected_bbox)
    assert original_shape == tuple(expected_shape) == network_array.shape


@pytest.mark.parametrize("seed", SEEDS)
def test_insert_crop_matches_acvl(seed):
    data = image_with_zero_border(seed)
    cropped, bbox = preprocessing.crop_to_nonzero(data)
    masks = np.stack([cropped[0] > 30, cropped[0] > 60]).astype(np.uint8)
    expected = insert_crop_into_image(np.zeros((2, *data.shape[1:]), np.uint8), masks, bbox)
    result = preprocessing.insert_crop(masks, bbox, data.shape[1:])
    assert result.dtype == np.uint8
    assert np.array_equal(result, expected)
