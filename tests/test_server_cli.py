"""Item 8: `voxtell-core predict --server URL` runs the same batch on a server and writes the
same files as the local run (NIfTI and Slicer .seg.nrrd, two cases, an ROI)."""

from __future__ import annotations

import nibabel
import numpy as np
import pytest

from server_fixtures import serve, smooth_volume, tiny_model
from VoxTellCore.cli import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    model, bank = tiny_model(root / "model")
    images = root / "images"
    images.mkdir()
    for seed, shape in ((1, (30, 40, 50)), (2, (40, 30, 30))):
        volume = smooth_volume(shape, seed=seed)
        nibabel.save(nibabel.Nifti1Image(volume.array.T.astype(np.int16), volume.ijk_to_ras), images / f"case{seed}.nii.gz")
    return root, model, bank, images


@pytest.mark.parametrize("extra", [[], ["--format", "seg-nrrd", "--roi", "60", "50", "-20", "90", "70", "20"]])
def test_remote_batch_writes_the_same_files_as_the_local_one(setup, extra, monkeypatch):
    root, model, bank, images = setup
    tag = "seg" if extra else "nii"
    prompts = ["-p", "liver", "left kidney"]
    local, remote = root / f"local-{tag}", root / f"remote-{tag}"
    assert main(["predict", "-i", str(images), "-o", str(local), *prompts, "-m", str(model), "--embeddings",
                 str(bank), "--device", "cpu", *extra]) == 0
    key_file = root / "key"
    key_file.write_text("cli-key\n")
    with serve(["-m", model, "--embeddings", bank, "--device", "cpu", "--api-key-file", key_file],
               root / f"log-{tag}") as server:
        assert main(["predict", "-i", str(images), "-o", str(remote), *prompts, "--server", server.url,
                     "--api-key-file", str(key_file), *extra]) == 0
        monkeypatch.delenv("VOXTELL_API_KEY", raising=False)
        assert main(["predict", "-i", str(images), "-o", str(root / "refused"), *prompts, "--server", server.url]) == 2
        assert not (root / "refused").exists()
    names = sorted(path.name for path in local.iterdir())
    assert names == sorted(path.name for path in remote.iterdir()) and len(names) == (2 if extra else 4)
    for name in names:
        if name.endswith(".nii.gz"):
            ours, theirs = nibabel.load(local / name), nibabel.load(remote / name)
            np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asarray(theirs.dataobj))
            np.testing.assert_array_equal(ours.affine, theirs.affine)
            assert np.asarray(ours.dataobj).any()
        else:
            import slicerio

            ours, theirs = slicerio.read_segmentation(local / name), slicerio.read_segmentation(remote / name)
            np.testing.assert_array_equal(ours["voxels"], theirs["voxels"])
            assert [s["name"] for s in ours["segments"]] == [s["name"] for s in theirs["segments"]]
