"""VoxTellCore.io: reading, atomic writing and exact parity with the release's reorientation."""

from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
from nnunetv2.imageio.nibabel_reader_writer import NibabelIOWithReorient

from conftest_io_helpers import make_affine, random_image, write_dicom_series

from VoxTellCore import io as vio
from VoxTellCore.errors import InputError
from VoxTellCore.io import Volume, read_volume, write_mask

AFFINE_KINDS = ["ras", "lps", "permuted", "oblique", "random"]


def release_network_array(path: Path) -> tuple[np.ndarray, dict]:
    """What the released VoxTell feeds its preprocessing: (S, A, R) float32."""
    data, properties = NibabelIOWithReorient().read_images([str(path)])
    return data[0], properties


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", AFFINE_KINDS)
def test_network_array_is_the_releases(tmp_path, kind, seed):
    data_ijk = random_image(shape=(7, 5, 6), seed=seed)
    path = tmp_path / "image.nii.gz"
    nibabel.save(nibabel.Nifti1Image(data_ijk, make_affine(kind, seed)), path)
    expected, properties = release_network_array(path)

    volume = read_volume(path)
    network = volume.to_network()
    assert network.dtype == np.float32 and network.flags.c_contiguous
    assert np.array_equal(network, expected)
    assert volume.network_shape == expected.shape
    assert np.array_equal(volume.array, data_ijk.T)  # KJI is the (i, j, k) array transposed
    # The same from an in-memory volume, as Slicer builds it.
    in_memory = Volume(array=np.ascontiguousarray(data_ijk.T), ijk_to_ras=nibabel.load(path).affine)
    assert np.array_equal(in_memory.to_network(), expected)

    assert np.array_equal(volume.from_network(network), volume.array)
    masks = np.stack([network > 100, network > 120]).astype(np.uint8)
    back = volume.from_network(masks)
    assert back.dtype == np.uint8 and back.shape == (2, *volume.array.shape)
    assert np.array_equal(back[1], (volume.array > 120).astype(np.uint8))

    # network_to_ras maps network indices like the release's reoriented affine maps (r, a, s).
    reoriented = properties["nibabel_stuff"]["reoriented_affine"]
    index = np.array([3, 1, 2, 1.0])
    assert np.allclose(volume.network_to_ras @ index, reoriented @ index[[2, 1, 0, 3]])


def test_from_network_rejects_wrong_shape():
    volume = Volume(array=random_image((4, 5, 6)), ijk_to_ras=make_affine("permuted"))
    with pytest.raises(ValueError, match="network shape"):
        volume.from_network(np.zeros((4, 5, 6)))


def test_nifti_scaling_matches_release(tmp_path):
    raw = np.random.default_rng(3).integers(-1000, 2000, size=(6, 5, 4)).astype(np.int16)
    image = nibabel.Nifti1Image(raw, make_affine("lps"))
    image.header.set_slope_inter(0.37, -12.5)
    path = tmp_path / "scaled.nii"
    nibabel.save(image, path)
    volume = read_volume(path)
    assert np.array_equal(volume.to_network(), release_network_array(path)[0])
    assert np.allclose(volume.array, raw.T * 0.37 - 12.5, atol=1e-3)


@pytest.mark.parametrize("kind", ["ras", "lps", "permuted", "oblique"])
def test_sitk_geometry_matches_nibabel_affine(tmp_path, kind):
    """The LPS->RAS conversion used for NRRD/MHA/DICOM agrees with nibabel on normal NIfTI."""
    path = tmp_path / "image.nii.gz"
    nibabel.save(nibabel.Nifti1Image(random_image(), make_affine(kind)), path)
    image = nibabel.load(path)
    assert np.allclose(image.get_qform(), image.get_sform(), atol=1e-5)
    from_sitk = vio.volume_from_sitk(sitk.ReadImage(str(path)))
    assert np.allclose(from_sitk.ijk_to_ras, image.affine, atol=1e-4)
    assert np.allclose(from_sitk.spacing, [0.7, 1.3, 2.5], atol=1e-5)
    assert np.array_equal(from_sitk.array, read_volume(path).array)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd"])
@pytest.mark.parametrize("kind", ["lps", "oblique", "random"])
def test_sitk_formats_read_with_geometry(tmp_path, suffix, kind):
    affine = make_affine(kind, seed=1)
    array = random_image((5, 6, 7), seed=2)
    path = tmp_path / f"image{suffix}"
    sitk.WriteImage(vio.volume_to_sitk(Volume(array=array, ijk_to_ras=affine)), str(path))
    volume = read_volume(path)
    assert volume.source == str(path)
    assert np.array_equal(volume.array, array)
    assert np.allclose(volume.ijk_to_ras, affine, atol=1e-6)
    # Same network array as the release gives for the same image stored as NIfTI.
    nifti = tmp_path / "same.nii.gz"
    nibabel.save(nibabel.Nifti1Image(array.T, affine), nifti)
    assert np.array_equal(volume.to_network(), release_network_array(nifti)[0])


def test_dicom_series_folder(tmp_path):
    array = np.random.default_rng(4).integers(-500, 500, size=(5, 6, 7)).astype(np.int16)
    write_dicom_series(tmp_path / "ct", array, "1.2.826.0.1.3680043.2.1125.101")
    volume = read_volume(tmp_path / "ct")
    assert volume.array.shape == (5, 6, 7)
    assert np.array_equal(volume.array, array.astype(np.float32))  # slices sorted by position
    # LPS (-100, -120, 40) -> RAS (100, 120, 40); k steps 2 mm towards superior.
    assert np.allclose(volume.ijk_to_ras[:3, 3], [100, 120, 40], atol=1e-3)
    assert np.allclose(volume.ijk_to_ras[:3, 2], [0, 0, 2.0], atol=1e-3)
    assert np.allclose(volume.ijk_to_ras[:3, 0], [-0.8, 0, 0], atol=1e-3)


def test_dicom_folder_with_two_series_is_listed_refused_and_read_by_uid(tmp_path):
    first, second = "1.2.826.0.1.3680043.2.1125.201", "1.2.826.0.1.3680043.2.1125.202"
    array = np.arange(3 * 4 * 4, dtype=np.int16).reshape(3, 4, 4)
    write_dicom_series(tmp_path / "mixed", array, first)
    write_dicom_series(tmp_path / "mixed", array + 1, second)

    listed = {series.uid: series for series in vio.list_dicom_series(tmp_path / "mixed")}
    assert set(listed) == {first, second}
    assert [(s.modality, s.number_of_files) for s in listed.values()] == [("CT", 3), ("CT", 3)]

    with pytest.raises(InputError) as error:
        read_volume(tmp_path / "mixed")
    message = str(error.value)
    assert f"{first}  CT  (no description)  3 file(s)" in message and second in message
    assert "--series UID" in message

    volume = read_volume(tmp_path / "mixed", series_uid=second)
    assert np.array_equal(volume.array, array + 1)
    assert volume.dicom.series_uid == second and len(volume.dicom.sop_instance_uids) == 3
    assert np.array_equal(read_volume(tmp_path / "mixed", first).array, array)

    with pytest.raises(InputError, match="(?s)no DICOM series with UID 1.2.3.*Pass one of these UIDs with --series"):
        read_volume(tmp_path / "mixed", series_uid="1.2.3")


def test_folder_without_dicom_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="No DICOM series"):
        read_volume(tmp_path)


def save_sitk(path: Path, array: np.ndarray, vector: bool = False) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(array, isVector=vector), str(path))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.nii.gz", "not found"),
        (lambda d: (d / "text.nii.gz").write_text("not an image") and d / "text.nii.gz", "Could not read"),
        (lambda d: (d / "text.nrrd").write_text("not an image") and d / "text.nrrd", "Could not read"),
        (lambda d: save_sitk(d / "flat.nrrd", np.ones((5, 6), np.float32)), "2D image"),
        (lambda d: nibabel.save(nibabel.Nifti1Image(np.ones((5, 6), np.float32), np.eye(4)), d / "flat.nii")
         or d / "flat.nii", "2D image"),
        (lambda d: save_sitk(d / "one.mha", np.ones((1, 6, 7), np.float32)), "single slice"),
        (lambda d: nibabel.save(nibabel.Nifti1Image(np.ones((6, 7, 1), np.float32), np.eye(4)), d / "one.nii.gz")
         or d / "one.nii.gz", "single slice"),
        (lambda d: nibabel.save(nibabel.Nifti1Image(np.ones((4, 5, 6, 3), np.float32), np.eye(4)), d / "t.nii.gz")
         or d / "t.nii.gz", "4D image"),
        (lambda d: save_sitk(d / "rgb.mha", np.ones((4, 5, 6, 3), np.uint8), vector=True), "3 values per voxel"),
        (lambda d: save_sitk(d / "nan.nrrd", np.where(np.eye(5, 6)[None] > 0, np.nan, 1.0).repeat(3, 0)), "NaN"),
        (lambda d: nibabel.save(nibabel.Nifti1Image(np.full((4, 5, 6), np.inf, np.float32), np.eye(4)),
                                d / "inf.nii.gz") or d / "inf.nii.gz", "infinite"),
    ],
    ids=["missing", "text-nifti", "text-nrrd", "2d-nrrd", "2d-nifti", "one-slice-mha", "one-slice-nifti",
         "4d-nifti", "rgb", "nan", "inf"],
)
def test_unusable_images_raise_input_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(InputError, match=message):
        read_volume(path)


def test_small_volume_and_trailing_singleton_axis_are_accepted(tmp_path):
    path = tmp_path / "small.nii.gz"
    data = random_image((3, 4, 2))
    nibabel.save(nibabel.Nifti1Image(data[..., None], make_affine("lps")), path)  # (3, 4, 2, 1)
    volume = read_volume(path)
    assert volume.array.shape == (2, 4, 3)
    assert np.array_equal(volume.array, data.T)


def reference_volume(kind: str) -> Volume:
    return Volume(array=random_image((6, 7, 8), seed=5), ijk_to_ras=make_affine(kind, seed=2))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("kind", ["lps", "oblique", "permuted"])
def test_write_mask_keeps_geometry(tmp_path, suffix, kind):
    reference = reference_volume(kind)
    mask = (reference.array > 110).astype(np.uint8) * 3
    path = tmp_path / f"mask{suffix}"
    write_mask(mask, reference, path)
    back = read_volume(path)
    assert np.array_equal(back.array, mask)
    assert np.allclose(back.ijk_to_ras, reference.ijk_to_ras, atol=1e-5)
    assert sitk.ReadImage(str(path)).GetPixelID() == sitk.sitkUInt8
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_write_mask_uses_uint16_for_large_labels(tmp_path):
    reference = reference_volume("lps")
    mask = np.zeros(reference.array.shape, dtype=np.int64)
    mask[1, 2, 3] = 300
    write_mask(mask, reference, tmp_path / "labels.nrrd")
    image = sitk.ReadImage(str(tmp_path / "labels.nrrd"))
    assert image.GetPixelID() == sitk.sitkUInt16
    assert sitk.GetArrayFromImage(image)[1, 2, 3] == 300


def test_write_mask_matches_release_writer(tmp_path):
    """A mask computed on the network array and written back lands where the release puts it."""
    source = tmp_path / "image.nii.gz"
    nibabel.save(nibabel.Nifti1Image(random_image((6, 7, 8)).T, make_affine("oblique", 3)), source)
    network, properties = release_network_array(source)
    mask_network = (network > 100).astype(np.uint8)
    NibabelIOWithReorient().write_seg(mask_network, str(tmp_path / "release.nii.gz"), properties)

    volume = read_volume(source)
    write_mask(volume.from_network(mask_network), volume, tmp_path / "ours.nii.gz")
    release, ours = nibabel.load(tmp_path / "release.nii.gz"), nibabel.load(tmp_path / "ours.nii.gz")
    assert np.array_equal(np.asarray(ours.dataobj), np.asarray(release.dataobj))
    assert np.allclose(ours.affine, release.affine, atol=1e-6)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_failed_write_leaves_no_file(tmp_path, monkeypatch, suffix):
    def write_half_then_fail(_image, filename, *args, **kwargs):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(nibabel, "save", write_half_then_fail)
    monkeypatch.setattr(sitk, "WriteImage", write_half_then_fail)
    reference = reference_volume("lps")
    with pytest.raises(OSError, match="disk full"):
        write_mask(np.zeros(reference.array.shape, np.uint8), reference, tmp_path / f"mask{suffix}")
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path, monkeypatch):
    reference = reference_volume("lps")
    path = tmp_path / "mask.mha"
    write_mask(np.ones(reference.array.shape, np.uint8), reference, path)
    before = path.read_bytes()

    def fail(*_args, **_kwargs):
        raise RuntimeError("writer crashed")

    monkeypatch.setattr(sitk, "WriteImage", fail)
    with pytest.raises(RuntimeError):
        write_mask(np.zeros(reference.array.shape, np.uint8), reference, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["mask.mha"]


def test_write_mask_rejects_wrong_shape_and_extension(tmp_path):
    reference = reference_volume("lps")
    with pytest.raises(ValueError, match="shape"):
        write_mask(np.zeros((2, 2, 2), np.uint8), reference, tmp_path / "m.nii.gz")
    with pytest.raises(InputError, match="extensions"):
        write_mask(np.zeros(reference.array.shape, np.uint8), reference, tmp_path / "m.png")
    assert list(tmp_path.iterdir()) == []


def test_written_masks_get_the_usual_file_permissions(tmp_path):
    import os

    volume = Volume(np.zeros((4, 5, 6), np.float32), np.eye(4))
    path = tmp_path / "mask.nii.gz"
    write_mask(np.ones((4, 5, 6), np.uint8), volume, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
