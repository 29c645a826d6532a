"""`voxtell-core predict`: names, formats, resume, failure isolation, jobs and ROI parsing.

The predictor is a fake whose masks are thresholds of the image (one threshold per prompt),
so every written file can be checked voxel by voxel; one test runs the real predictor.
"""

import argparse
import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
from conftest_io_helpers import make_affine, random_image, write_dicom_series
from voxtell.inference.predictor import VoxTellPredictor as ReleasePredictor

from VoxTellCore.commands import predict
from VoxTellCore.errors import InputError
from VoxTellCore.io import Volume, read_volume, volume_to_sitk

THRESHOLDS = {"liver": 90.0, "left kidney": 100.0, "spleen": 110.0, "Lung nodule!": 120.0}


class FakePredictor:
    description = "fake predictor for tests"

    def __init__(self, args):
        self.args = args
        self.embedded: list[list[str]] = []
        self.calls: list[dict] = []

    def embed(self, prompts):
        self.embedded.append(list(prompts))
        return np.array([[THRESHOLDS[p]] for p in prompts])

    def predict_volume(self, volume, prompts, roi_ras=None, progress=None, cancel=None):
        self.calls.append({"source": volume.source, "roi": roi_ras, "rows": np.asarray(prompts)})
        progress(1, 2)
        progress(2, 2)
        return np.stack([volume.array > row[0] for row in prompts]).astype(np.uint8)


class TextOnlyPredictor(FakePredictor):
    """A predictor without ``embed``: gets the prompt texts."""

    embed = None

    def __getattribute__(self, name):
        if name == "embed":
            raise AttributeError(name)
        return super().__getattribute__(name)

    def predict_volume(self, volume, prompts, roi_ras=None, progress=None, cancel=None):
        return super().predict_volume(volume, [[THRESHOLDS[p]] for p in prompts], roi_ras, progress, cancel)


@pytest.fixture
def fake(monkeypatch):
    made = []

    def factory(args):
        made.append(FakePredictor(args))
        return made[-1]

    monkeypatch.setattr(predict, "make_predictor", factory)
    return made


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="voxtell-core")
    predict.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["predict", *map(str, argv)])


def save_nifti(path: Path, kind: str = "lps", seed: int = 0) -> Volume:
    data = random_image((8, 7, 6), seed=seed)
    nibabel.save(nibabel.Nifti1Image(data, make_affine(kind, seed)), path)
    return read_volume(path)


def save_sitk(path: Path, kind: str = "oblique", seed: int = 0) -> Volume:
    volume = Volume(array=random_image((6, 7, 8), seed=seed), ijk_to_ras=make_affine(kind, seed))
    sitk.WriteImage(volume_to_sitk(volume), str(path))
    return read_volume(path)


def assert_mask_file(path: Path, image: Volume, threshold: float) -> None:
    mask = read_volume(path)
    assert np.array_equal(mask.array, (image.array > threshold).astype(np.float32))
    assert np.allclose(mask.ijk_to_ras, image.ijk_to_ras, atol=1e-5)


def test_single_image_two_prompts(tmp_path, fake, capsys):
    image = save_nifti(tmp_path / "case001.nii.gz")
    out = tmp_path / "out"
    code = predict.run(parse("-i", tmp_path / "case001.nii.gz", "-o", out, "-p", "liver", "left kidney"))
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["case001_left_kidney.nii.gz", "case001_liver.nii.gz"]
    assert_mask_file(out / "case001_liver.nii.gz", image, 90)
    assert_mask_file(out / "case001_left_kidney.nii.gz", image, 100)
    assert "fake predictor for tests" in capsys.readouterr().err
    assert fake[0].embedded == [["liver", "left kidney"]]


def test_folder_of_mixed_formats_keeps_each_format(tmp_path, fake):
    images = tmp_path / "images"
    images.mkdir()
    volumes = {
        "a": save_nifti(images / "a.nii.gz", seed=1),
        "b": save_sitk(images / "b.nrrd", seed=2),
        "c": save_sitk(images / "c.mha", seed=3),
        "d": save_nifti(images / "d.nii", kind="permuted", seed=4),
    }
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert predict.run(parse("-i", images, "-o", out, "-p", "spleen")) == 0
    expected = {"a_spleen.nii.gz": "a", "b_spleen.nrrd": "b", "c_spleen.mha": "c", "d_spleen.nii.gz": "d"}
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name, case in expected.items():
        assert_mask_file(out / name, volumes[case], 110)
    assert fake[0].embedded == [["spleen"]]  # embedded once for the whole batch
    assert [Path(c["source"]).name for c in fake[0].calls] == ["a.nii.gz", "b.nrrd", "c.mha", "d.nii"]


def test_dicom_folder_is_named_after_the_folder(tmp_path, fake):
    array = np.random.default_rng(0).integers(0, 200, size=(4, 6, 5)).astype(np.int16)
    write_dicom_series(tmp_path / "ct_series", array, "1.2.826.0.1.3680043.2.1125.301")
    out = tmp_path / "out"
    assert predict.run(parse("-i", tmp_path / "ct_series", "-o", out, "-p", "liver", "--save-combined")) == 0
    assert [p.name for p in out.iterdir()] == ["ct_series.nii.gz"]
    assert_mask_file(out / "ct_series.nii.gz", read_volume(tmp_path / "ct_series"), 90)


def test_save_combined_labels_follow_prompt_order(tmp_path, fake):
    image = save_nifti(tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    assert predict.run(parse("-i", tmp_path / "ct.nii.gz", "-o", out, "-p", "liver", "spleen", "--save-combined")) == 0
    assert [p.name for p in out.iterdir()] == ["ct.nii.gz"]
    labels = read_volume(out / "ct.nii.gz").array
    expected = np.where(image.array > 110, 2, np.where(image.array > 90, 1, 0))
    assert np.array_equal(labels, expected)


def test_bad_image_is_reported_and_the_rest_finish(tmp_path, fake, capsys):
    save_nifti(tmp_path / "good1.nii.gz", seed=1)
    (tmp_path / "broken.nii.gz").write_bytes(b"garbage")
    save_nifti(tmp_path / "good2.nii.gz", seed=2)
    out = tmp_path / "out"
    inputs = [tmp_path / n for n in ("good1.nii.gz", "broken.nii.gz", "missing.nii.gz", "good2.nii.gz")]
    assert predict.run(parse("-i", *inputs, "-o", out, "-p", "liver")) == 1
    assert sorted(p.name for p in out.iterdir()) == ["good1_liver.nii.gz", "good2_liver.nii.gz"]
    err = capsys.readouterr().err
    assert "broken.nii.gz: Could not read" in err
    assert "missing.nii.gz: Image not found" in err
    assert "2 of 4 image(s) failed" in err
    assert "Traceback" not in err


def test_failure_while_writing_leaves_no_file_of_that_case(tmp_path, fake, monkeypatch):
    save_nifti(tmp_path / "case.nii.gz")
    real_write = predict.write_mask

    def fail_on_second(mask, reference, path):
        if "spleen" in str(path):
            raise OSError("disk full")
        real_write(mask, reference, path)

    monkeypatch.setattr(predict, "write_mask", fail_on_second)
    out = tmp_path / "out"
    assert predict.run(parse("-i", tmp_path / "case.nii.gz", "-o", out, "-p", "liver", "spleen")) == 1
    assert list(out.iterdir()) == []


def test_no_overwrite_resumes(tmp_path, fake, capsys):
    images = {name: save_nifti(tmp_path / f"{name}.nii.gz", seed=seed) for seed, name in enumerate("ab")}
    out = tmp_path / "out"
    out.mkdir()
    for done in ("a_liver.nii.gz", "a_spleen.nii.gz", "b_liver.nii.gz"):  # b_spleen is missing
        (out / done).write_bytes(b"earlier run")
    argv = ["-i", tmp_path / "a.nii.gz", tmp_path / "b.nii.gz", "-o", out, "-p", "liver", "spleen"]

    assert predict.run(parse(*argv, "--no-overwrite")) == 0
    assert [Path(c["source"]).name for c in fake[0].calls] == ["b.nii.gz"]
    assert (out / "a_liver.nii.gz").read_bytes() == b"earlier run"
    assert_mask_file(out / "b_liver.nii.gz", images["b"], 90)  # an unfinished case is redone whole
    assert_mask_file(out / "b_spleen.nii.gz", images["b"], 110)
    assert "Skipping 1 image(s)" in capsys.readouterr().err

    assert predict.run(parse(*argv, "--no-overwrite")) == 0
    assert len(fake) == 1  # nothing to do: no model is even loaded
    assert "every output exists" in capsys.readouterr().out

    assert predict.run(parse(*argv)) == 0  # overwriting is the default
    assert_mask_file(out / "a_liver.nii.gz", images["a"], 90)


def test_jobs_file_and_inline_json(tmp_path, fake, monkeypatch):
    image_a = save_nifti(tmp_path / "a.nii.gz", seed=1)
    image_b = save_sitk(tmp_path / "b.mha", seed=2)
    jobs = [{"image": str(tmp_path / "a.nii.gz"), "prompts": ["liver", "spleen"]},
            {"image": str(tmp_path / "b.mha"), "prompts": "Lung nodule!"}]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    out = tmp_path / "out"
    assert predict.run(parse("--jobs", tmp_path / "jobs.json", "-o", out)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_liver.nii.gz", "a_spleen.nii.gz", "b_Lung_nodule_.mha"]
    assert_mask_file(out / "b_Lung_nodule_.mha", image_b, 120)
    assert_mask_file(out / "a_spleen.nii.gz", image_a, 110)
    assert fake[0].embedded == [["liver", "spleen", "Lung nodule!"]]

    out2 = tmp_path / "out2"
    assert predict.run(parse("--jobs", json.dumps(jobs[:1]), "-o", out2)) == 0
    assert sorted(p.name for p in out2.iterdir()) == ["a_liver.nii.gz", "a_spleen.nii.gz"]


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"image": "a.nii.gz", "prompts": ["liver"]}', "JSON list"),
        ('[{"image": "a.nii.gz"}]', "entry 1"),
        ('[{"image": "a.nii.gz", "prompts": []}]', "no prompts"),
        ('[{"image": "a.nii.gz", "prompts": ["liver", "  "]}]', "prompt 2"),
    ],
)
def test_bad_jobs_raise_input_error(tmp_path, fake, jobs, message):
    with pytest.raises(InputError, match=message):
        predict.run(parse("--jobs", jobs, "-o", tmp_path / "out"))
    assert fake == []


def test_prompt_problems_raise_input_error(tmp_path, fake):
    save_nifti(tmp_path / "a.nii.gz")
    image = tmp_path / "a.nii.gz"
    with pytest.raises(InputError, match="exactly one of -p/--prompts or --jobs"):
        predict.run(parse("-i", image, "-o", tmp_path))
    with pytest.raises(InputError, match="exactly one of"):
        predict.run(parse("-i", image, "-o", tmp_path, "-p", "liver", "--jobs", "[]"))
    with pytest.raises(InputError, match="empty"):
        predict.run(parse("-i", image, "-o", tmp_path, "-p", ""))
    with pytest.raises(InputError, match="No output folder"):
        predict.run(parse("-i", image, "-p", "liver"))
    with pytest.raises(InputError, match="No input image"):
        predict.run(parse("-o", tmp_path, "-p", "liver"))
    assert fake == []


def test_roi_is_parsed_and_passed_on(tmp_path, fake):
    save_nifti(tmp_path / "a.nii.gz")
    assert predict.run(parse("-i", tmp_path / "a.nii.gz", "-o", tmp_path / "o", "-p", "liver",
                             "--roi", "10", "-5", "3", "-10", "5", "-3")) == 0
    assert fake[0].calls[0]["roi"] == (-10.0, -5.0, -3.0, 10.0, 5.0, 3.0)
    with pytest.raises(InputError, match="zero size along y"):
        predict.run(parse("-i", tmp_path / "a.nii.gz", "-o", tmp_path / "o", "-p", "liver",
                          "--roi", "0", "1", "2", "3", "1", "5"))
    with pytest.raises(SystemExit):  # argparse: --roi needs 6 numbers
        parse("-i", "a.nii.gz", "-o", "o", "-p", "liver", "--roi", "1", "2", "3")


def test_predictor_without_embed_gets_prompt_texts(tmp_path, monkeypatch):
    monkeypatch.setattr(predict, "make_predictor", TextOnlyPredictor)
    image = save_nifti(tmp_path / "a.nii.gz")
    assert predict.run(parse("-i", tmp_path / "a.nii.gz", "-o", tmp_path / "o", "-p", "spleen")) == 0
    assert_mask_file(tmp_path / "o" / "a_spleen.nii.gz", image, 110)


@pytest.mark.parametrize("prompt", [
    "liver", "left kidney", "Lung nodule!", "a/b\\c:d", "ground-glass opacity, 5 mm", "Leber ünd Milz",
    "x" * 149, "x" * 151, "é" * 80, "a lesion " * 40, "肝臓" * 30,
])
def test_safe_prompt_name_is_the_releases(prompt):
    assert predict.safe_prompt_name(prompt) == ReleasePredictor._safe_prompt_name(prompt)


@pytest.mark.parametrize("name", ["case001.nii.gz", "case.001.nii", "scan.nrrd", "scan.seg.nrrd", "x.mha", "plain"])
def test_case_name_is_the_releases(name):
    assert predict.case_name(name) == ReleasePredictor._case_name(name)


def test_end_to_end_with_the_real_predictor(tmp_path):
    """A tiny random model folder through the real VoxTellPredictor: one file per prompt,
    binary, on the input's grid, identical to calling the predictor directly."""
    from model_fixtures import TINY, make_bank, make_model_folder

    from VoxTellCore.inference.predictor import VoxTellPredictor

    model = make_model_folder(tmp_path / "model", TINY)
    bank = make_bank(tmp_path / "bank.npz", ["liver", "spleen"], TINY.text_embedding_dim)
    image = save_sitk(tmp_path / "ct.nrrd", kind="lps")
    out = tmp_path / "out"
    argv = ["-i", tmp_path / "ct.nrrd", "-o", out, "-p", "liver", "spleen", "-m", model,
            "--embeddings", bank, "--device", "cpu"]
    assert predict.run(parse(*argv)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ct_liver.nrrd", "ct_spleen.nrrd"]
    direct = VoxTellPredictor(model=model, device="cpu", embedding_bank=bank).predict_volume(image, ["liver", "spleen"])
    for index, prompt in enumerate(["liver", "spleen"]):
        written = read_volume(out / f"ct_{prompt}.nrrd")
        assert np.allclose(written.ijk_to_ras, image.ijk_to_ras, atol=1e-5)
        assert np.array_equal(written.array, direct[index].astype(np.float32))


def test_list_embeddings_prints_the_bank(tmp_path, fake, capsys):
    from model_fixtures import make_bank

    bank = make_bank(tmp_path / "bank.npz", ["spleen", "liver", "left kidney"], 8)
    assert predict.run(parse("--list-embeddings", "--embeddings", bank)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["3 precomputed embeddings available:", "  left kidney", "  liver", "  spleen"]
    assert fake == []  # no model needed


def test_no_precomputed_embeds_every_prompt_with_the_text_encoder(tmp_path, monkeypatch):
    """--no-precomputed drops the model's bank: prompts come from its text encoder (and its
    on-disk cache), with the same vectors the bank holds, since the demo bank was built by it."""
    import torch

    monkeypatch.setenv("VOXTELL_CACHE_DIR", str(tmp_path / "cache"))
    with_bank = predict.make_predictor(parse("-m", "demo", "--device", "cpu"))
    without = predict.make_predictor(parse("-m", "demo", "--device", "cpu", "--no-precomputed"))
    assert "liver" in with_bank.embedder.bank.labels and len(without.embedder.bank.labels) == 0
    computed = without.embed(["liver", "left kidney"])
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2, "both prompts went through the encoder"
    assert torch.allclose(computed, with_bank.embed(["liver", "left kidney"]), atol=2e-3)
    explicit = make_bank_from(tmp_path / "bank.npz", with_bank, ["liver"])
    mixed = predict.make_predictor(parse("-m", "demo", "--device", "cpu", "--no-precomputed", "--embeddings", explicit))
    assert list(mixed.embedder.bank.labels) == ["liver"]


def make_bank_from(path: Path, predictor, prompts: list[str]) -> Path:
    vectors = predictor.embed(prompts).numpy().astype(np.float16)
    np.savez(path, labels=np.array(prompts, dtype=str), embeddings=vectors)
    return path
