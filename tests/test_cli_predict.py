"""`voxtell-core predict` and the batch engine: names, formats, resume, failure isolation,
data safety (nothing overwritten, nothing created by a refused run), parts, jobs and ROI parsing.

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

from VoxTellCore.cli import main
from VoxTellCore.commands import predict
from VoxTellCore.errors import InputError
from VoxTellCore.inference import batch
from VoxTellCore.io import Volume, read_volume, volume_to_sitk
from VoxTellCore.io.naming import case_name, safe_prompt_name

THRESHOLDS = {"liver": 90.0, "left kidney": 100.0, "spleen": 110.0, "Lung nodule!": 120.0}


class FakePredictor:
    description = "fake predictor for tests"
    is_demo = False

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
    assert predict.run(parse("-i", tmp_path / "ct_series", "-o", out, "-p", "liver")) == 0
    assert [p.name for p in out.iterdir()] == ["ct_series_liver.nii.gz"]
    assert_mask_file(out / "ct_series_liver.nii.gz", read_volume(tmp_path / "ct_series"), 90)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_save_combined_is_named_apart_from_the_input_and_has_a_legend(tmp_path, fake, suffix):
    """<case>_combined<ext> (not the input's own name) with <case>_combined.labels.json beside it,
    and the label -> prompt table in the header where the format has key-value fields."""
    image = (save_nifti if suffix == ".nii.gz" else save_sitk)(tmp_path / f"ct{suffix}")
    out = tmp_path / "out"
    assert main(["predict", "-i", str(tmp_path / f"ct{suffix}"), "-o", str(out), "-p", "liver", "spleen",
                 "--save-combined"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"ct_combined.labels.json", f"ct_combined{suffix}"]
    labels = read_volume(out / f"ct_combined{suffix}").array
    expected = np.where(image.array > 110, 2, np.where(image.array > 90, 1, 0))
    assert np.array_equal(labels, expected)
    legend = json.loads((out / "ct_combined.labels.json").read_text())
    assert legend["labels"] == {"0": "background", "1": "liver", "2": "spleen"}
    assert legend["label_map"] == f"ct_combined{suffix}" and legend["model"]["name"] == "fake predictor for tests"
    if suffix != ".nii.gz":
        header = sitk.ReadImage(str(out / f"ct_combined{suffix}"))
        assert [header.GetMetaData(f"VoxTell_Label_{n}") for n in (1, 2)] == ["liver", "spleen"]


def test_bad_image_is_reported_and_the_rest_finish(tmp_path, fake, capsys):
    save_nifti(tmp_path / "good1.nii.gz", seed=1)
    save_nifti(tmp_path / "broken.nii.gz", seed=3)
    whole = (tmp_path / "broken.nii.gz").read_bytes()  # a good header, then the voxels cut off:
    (tmp_path / "broken.nii.gz").write_bytes(whole[:-40])  # found only when the case runs
    save_nifti(tmp_path / "good2.nii.gz", seed=2)
    out = tmp_path / "out"
    inputs = [tmp_path / n for n in ("good1.nii.gz", "broken.nii.gz", "good2.nii.gz")]
    assert main(["predict", "-i", *map(str, inputs), "-o", str(out), "-p", "liver"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["good1_liver.nii.gz", "good2_liver.nii.gz"]
    err = capsys.readouterr().err
    assert "broken.nii.gz: Could not read" in err
    assert "1 of 3 image(s) failed" in err
    assert "Traceback" not in err


def test_failure_while_writing_leaves_no_file_of_that_case(tmp_path, fake, monkeypatch):
    save_nifti(tmp_path / "case.nii.gz")
    real_writer_of = batch.writer_of

    class FailOnSpleen:
        def __init__(self, writer):
            self.writer = writer
            self.name, self.suffix, self.label_map = writer.name, writer.suffix, writer.label_map
            self.check_input = writer.check_input

        def write(self, masks, segments, reference, path, model):
            if "spleen" in str(path):
                raise OSError("disk full")
            self.writer.write(masks, segments, reference, path, model)

    monkeypatch.setattr(batch, "writer_of", lambda case, format: FailOnSpleen(real_writer_of(case, format)))
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
    assert fake[0].embedded == [["spleen"]], "only the missing prompt is segmented"
    assert (out / "a_liver.nii.gz").read_bytes() == b"earlier run"
    assert (out / "b_liver.nii.gz").read_bytes() == b"earlier run", "an existing output is never replaced"
    assert_mask_file(out / "b_spleen.nii.gz", images["b"], 110)
    assert "Keeping 3 existing output file(s) untouched; writing the 1 missing one(s)" in capsys.readouterr().err

    assert predict.run(parse(*argv, "--no-overwrite")) == 0
    assert len(fake) == 1  # nothing to do: no model is even loaded
    assert "every output exists" in capsys.readouterr().out

    assert predict.run(parse(*argv)) == 0  # overwriting is the default
    assert_mask_file(out / "a_liver.nii.gz", images["a"], 90)


def test_no_overwrite_keeps_a_hand_edited_mask_when_a_prompt_is_added(tmp_path, capsys):
    """The promise of --no-overwrite through the real CLI and the demo model: edit a mask by
    hand, add a prompt, rerun: the edited file is byte-identical, the new prompt's mask appears."""
    save_nifti(tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    common = ["-i", str(tmp_path / "ct.nii.gz"), "-o", str(out), "-m", "demo", "--device", "cpu", "--no-overwrite"]
    assert main(["predict", *common, "-p", "liver"]) == 0
    edited = nibabel.load(out / "ct_liver.nii.gz")
    labels = np.asarray(edited.dataobj).copy()
    labels[2:5, 2:5, 2:4] = 1 - labels[2:5, 2:5, 2:4]  # a hand correction
    nibabel.save(nibabel.Nifti1Image(labels, edited.affine), out / "ct_liver.nii.gz")
    before = (out / "ct_liver.nii.gz").read_bytes()

    assert main(["predict", *common, "-p", "liver", "spleen"]) == 0
    assert (out / "ct_liver.nii.gz").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["ct_liver.nii.gz", "ct_spleen.nii.gz"]
    for format in (["--save-combined"], ["--format", "seg-nrrd"]):  # one file per image: kept whole once there
        assert main(["predict", *common, "-p", "liver", *format]) == 0
        written = {p: p.read_bytes() for p in out.iterdir()}
        assert main(["predict", *common, "-p", "liver", "spleen", *format]) == 0
        assert {p: p.read_bytes() for p in out.iterdir()} == written


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


@pytest.mark.parametrize("prompt", [
    "liver", "left kidney", "Lung nodule!", "a/b\\c:d", "ground-glass opacity, 5 mm", "Leber ünd Milz",
    "x" * 149, "x" * 151, "é" * 80, "a lesion " * 40, "肝臓" * 30,
])
def test_safe_prompt_name_is_the_releases(prompt):
    assert safe_prompt_name(prompt) == ReleasePredictor._safe_prompt_name(prompt)


@pytest.mark.parametrize("name", ["case001.nii.gz", "case.001.nii", "scan.nrrd", "scan.seg.nrrd", "x.mha", "plain"])
def test_case_name_is_the_releases(name):
    assert case_name(name) == ReleasePredictor._case_name(name)


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


def test_prompts_outside_the_bank_announce_the_encoder_download_or_refuse_without_memory(tmp_path, monkeypatch,
                                                                                        capsys):
    """The first prompt outside the bank never downloads the 8 GB encoder silently, and a
    machine without the memory for it is refused before anything is written."""
    from VoxTellCore.text import encoder

    save_nifti(tmp_path / "ct.nii.gz")
    monkeypatch.setenv("VOXTELL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(encoder, "text_encoder_download_bytes", lambda name: 8_000_000_000)

    def run(out: Path, *prompts: str) -> int:  # a copy of the demo model: any model, not the demo's vocabulary check
        return main(["predict", "-i", str(tmp_path / "ct.nii.gz"), "-o", str(out), "-p", *prompts,
                     "-m", str(model), "--device", "cpu"])

    model = copy_of_the_demo_model(tmp_path)

    assert run(tmp_path / "out", "liver") == 0
    assert "not in the embedding bank" not in capsys.readouterr().err, "bank prompts need no encoder"
    assert run(tmp_path / "out", "liver", "a structure outside the bank") == 0
    err = capsys.readouterr().err
    assert "1 prompt(s) are not in the embedding bank ('a structure outside the bank')" in err
    assert "about 8.0 GB" in err
    monkeypatch.setattr(encoder, "available_memory_bytes", lambda: 1_000)  # the demo encoder needs ~0.5 MB
    assert run(tmp_path / "refused", "another structure outside the bank") == 2
    assert "needs about" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()


def test_batch_runs_keep_no_encoder_features(tmp_path):
    """Every prompt of a case runs in one call, so predict keeps no features for a next prompt
    (they would hold up to half the free memory for nothing); the Python API keeps them."""
    from VoxTellCore.inference.predictor import VoxTellPredictor

    assert predict.make_predictor(parse("-m", "demo", "--device", "cpu"))._features.budget_bytes == 0
    assert VoxTellPredictor(model="demo", device="cpu")._features.budget_bytes is None


def copy_of_the_demo_model(folder: Path) -> Path:
    import shutil

    from VoxTellCore.models import DEMO_MODEL_DIR

    return Path(shutil.copytree(DEMO_MODEL_DIR, folder / "model"))


def test_prompts_outside_the_demo_vocabulary_are_refused_with_the_closest_known(tmp_path, capsys):
    save_nifti(tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    assert main(["predict", "-i", str(tmp_path / "ct.nii.gz"), "-o", str(out), "-p", "liver", "livr", "lefft kidney",
                 "-m", "demo", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "'livr': closest known: 'liver'" in err and "'lefft kidney': closest known: 'left kidney'" in err
    assert "'liver':" not in err and "--list-embeddings" in err
    assert not out.exists()


def test_a_near_miss_of_a_known_name_warns_did_you_mean_with_any_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VOXTELL_CACHE_DIR", str(tmp_path / "cache"))
    save_nifti(tmp_path / "ct.nii.gz")
    model = copy_of_the_demo_model(tmp_path)
    prompts = ["livr", "lefft kidney", "liver", "splenic parenchyma", "an unusual structure nobody names"]
    assert main(["predict", "-i", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), "-p", *prompts,
                 "-m", str(model), "--device", "cpu"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "did you mean" in line]
    assert warnings == [
        "Warning: the prompt 'livr' matches no known anatomy name; did you mean 'liver'? It is segmented as written.",
        "Warning: the prompt 'lefft kidney' matches no known anatomy name; did you mean 'left kidney'? It is "
        "segmented as written."]


def test_spaces_around_a_prompt_change_neither_the_mask_nor_the_file_name(tmp_path):
    save_nifti(tmp_path / "ct.nii.gz")
    for out, prompt in (("plain", "liver"), ("spaced", "  liver ")):
        assert main(["predict", "-i", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / out), "-p", prompt,
                     "-m", "demo", "--device", "cpu"]) == 0
    assert [p.name for p in (tmp_path / "spaced").iterdir()] == ["ct_liver.nii.gz"]
    spaced, plain = (nibabel.load(tmp_path / f / "ct_liver.nii.gz").get_fdata() for f in ("spaced", "plain"))
    assert np.array_equal(spaced, plain)


def make_bank_from(path: Path, predictor, prompts: list[str]) -> Path:
    vectors = predictor.embed(prompts).numpy().astype(np.float16)
    np.savez(path, labels=np.array(prompts, dtype=str), embeddings=vectors)
    return path


# ---------------------------------------------------------------------- data safety: checked before anything runs
def test_an_output_into_the_inputs_folder_never_replaces_an_input(tmp_path, fake, capsys):
    images = tmp_path / "images"
    images.mkdir()
    save_nifti(images / "ct.nii.gz")
    save_nifti(images / "ct_liver.nii.gz", seed=1)  # an input named like ct.nii.gz's liver mask
    original = (images / "ct_liver.nii.gz").read_bytes()
    code = main(["predict", "-i", str(images), "-o", str(images), "-p", "liver"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"The output {images / 'ct_liver.nii.gz'} would overwrite the input {images / 'ct_liver.nii.gz'}" in err
    assert (images / "ct_liver.nii.gz").read_bytes() == original
    assert fake == [], "refused before the model is loaded"


def test_output_equal_to_an_input_is_refused_through_another_spelling_of_the_path(tmp_path, fake, monkeypatch):
    save_nifti(tmp_path / "ct.nii.gz")
    save_nifti(tmp_path / "ct_liver.nii.gz")
    (tmp_path / "link").symlink_to(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="would overwrite the input"):
        predict.run(parse("-i", "ct.nii.gz", "ct_liver.nii.gz", "-o", tmp_path / "link" / ".", "-p", "liver"))


@pytest.mark.parametrize("kind", ["file", "under a file", "read-only"])
def test_unusable_output_folder_is_reported_before_inference(tmp_path, fake, capsys, kind):
    save_nifti(tmp_path / "ct.nii.gz")
    (tmp_path / "notes.txt").write_text("a file")
    # sysfs takes no new files, even from root (for whom a chmod 555 folder stays writable)
    output = {"file": tmp_path / "notes.txt", "under a file": tmp_path / "notes.txt" / "out",
              "read-only": Path("/sys")}[kind]
    code = main(["predict", "-i", str(tmp_path / "ct.nii.gz"), "-o", str(output), "-p", "liver"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert {"file": "is a file", "under a file": "cannot be created", "read-only": "is not writable"}[kind] in err
    assert "Traceback" not in err and fake == []
    assert (tmp_path / "notes.txt").read_text() == "a file"


def test_missing_input_is_exit_2_and_creates_nothing(tmp_path, fake, capsys):
    save_nifti(tmp_path / "good.nii.gz")
    out = tmp_path / "out"
    code = main(["predict", "-i", str(tmp_path / "good.nii.gz"), str(tmp_path / "missing.nii.gz"), "-o", str(out),
                 "-p", "liver"])
    assert code == 2
    assert "Image not found: " + str(tmp_path / "missing.nii.gz") in capsys.readouterr().err
    assert not out.exists() and fake == []


def unusable_input(folder: Path, kind: str) -> Path:
    if kind == ".txt":
        (folder / "notes.txt").write_text("not an image")
        return folder / "notes.txt"
    if kind == "PNG":
        sitk.WriteImage(sitk.Image(8, 8, sitk.sitkUInt8), str(folder / "photo.png"))
        return folder / "photo.png"
    if kind == "4-D NRRD":
        sitk.WriteImage(sitk.Image([4, 4, 4, 3], sitk.sitkFloat32), str(folder / "dynamic.nrrd"))
        return folder / "dynamic.nrrd"
    if kind == "1-slice DICOM":
        write_dicom_series(folder / "one_slice", np.zeros((1, 6, 5), np.int16), "1.2.826.0.1.3680043.2.1125.801")
        return folder / "one_slice"
    shape = {"2-D": (8, 7), "1-slice": (8, 7, 1), "4-D": (8, 7, 6, 3)}[kind]
    nibabel.save(nibabel.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)), folder / "image.nii.gz")
    return folder / "image.nii.gz"


@pytest.mark.parametrize(("kind", "message"), [
    (".txt", "Could not read"), ("PNG", "is a 2D image"), ("2-D", "is a 2D image"), ("1-slice", "single slice"),
    ("4-D", "is a 4D image"), ("4-D NRRD", "is a 4D image"), ("1-slice DICOM", "single slice")])
def test_unusable_input_is_found_from_its_header_before_the_model_loads(tmp_path, fake, capsys, kind, message):
    save_nifti(tmp_path / "good.nii.gz")
    bad = unusable_input(tmp_path, kind)
    out = tmp_path / "out"
    assert main(["predict", "-i", str(tmp_path / "good.nii.gz"), str(bad), "-o", str(out), "-p", "liver"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}" in err and message in err and "Traceback" not in err
    assert fake == [], "refused before the model is loaded"
    assert not out.exists(), "a refused run writes nothing, not even the output folder"


def test_missing_model_is_exit_2_and_creates_nothing(tmp_path, capsys):
    save_nifti(tmp_path / "ct.nii.gz")
    out = tmp_path / "deeper" / "out"
    code = main(["predict", "-i", str(tmp_path / "ct.nii.gz"), "-o", str(out), "-p", "liver",
                 "-m", str(tmp_path / "no-model"), "--device", "cpu"])
    assert code == 2
    assert f"The model folder {tmp_path / 'no-model'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "deeper").exists()


def test_two_inputs_with_one_output_name_are_refused(tmp_path, fake):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        save_nifti(tmp_path / folder / "case.nii.gz")
    with pytest.raises(InputError, match="both give the output file case_liver.nii.gz"):
        predict.run(parse("-i", tmp_path / "a" / "case.nii.gz", tmp_path / "b" / "case.nii.gz", "-o", tmp_path / "out",
                          "-p", "liver"))
    with pytest.raises(InputError, match="give the output file case_left_kidney.nii.gz"):
        predict.run(parse("-i", tmp_path / "a" / "case.nii.gz", "-o", tmp_path / "out", "-p", "left kidney",
                          "left-kidney"))
    assert not (tmp_path / "out").exists() and fake == []


def test_folder_with_two_dicom_series_is_listed_and_needs_series(tmp_path, fake, capsys):
    first, second = "1.2.826.0.1.3680043.2.1125.401", "1.2.826.0.1.3680043.2.1125.402"
    rng = np.random.default_rng(0)
    write_dicom_series(tmp_path / "study", rng.integers(0, 200, size=(4, 6, 5)).astype(np.int16), first)
    write_dicom_series(tmp_path / "study", rng.integers(0, 200, size=(5, 6, 5)).astype(np.int16), second)
    out = tmp_path / "out"
    assert main(["predict", "-i", str(tmp_path / "study"), "-o", str(out), "-p", "liver"]) == 2
    err = capsys.readouterr().err
    assert first in err and second in err and "--series" in err
    assert not out.exists() and fake == []

    assert main(["predict", "-i", str(tmp_path / "study"), "-o", str(out), "-p", "liver", "--series", second]) == 0
    assert [p.name for p in out.iterdir()] == ["study_liver.nii.gz"]
    assert read_volume(out / "study_liver.nii.gz").array.shape == (5, 6, 5)
    assert_mask_file(out / "study_liver.nii.gz", read_volume(tmp_path / "study", second), 90)


# ---------------------------------------------------------------------- parts
def folder_of_images(folder: Path, count: int) -> Path:
    folder.mkdir()
    for seed in range(count):
        save_nifti(folder / f"case{seed:02d}.nii.gz", seed=seed)
    return folder


def test_parts_split_one_folder_exactly_as_one_process_does(tmp_path, fake):
    images = folder_of_images(tmp_path / "images", 5)
    assert predict.run(parse("-i", images, "-o", tmp_path / "one", "-p", "liver", "spleen")) == 0
    shares = []
    for part in range(2):
        assert predict.run(parse("-i", images, "-o", tmp_path / "parts", "-p", "liver", "spleen",
                                 "--parts", "2", "--part", part)) == 0
        shares.append({Path(call["source"]).name for call in fake[-1].calls})
    assert shares[0] and shares[1] and not shares[0] & shares[1]
    assert shares[0] | shares[1] == {p.name for p in images.iterdir()}
    one = {p.name: nibabel.load(p).get_fdata() for p in (tmp_path / "one").iterdir()}
    parts = {p.name: nibabel.load(p).get_fdata() for p in (tmp_path / "parts").iterdir()}
    assert sorted(one) == sorted(parts) and len(one) == 10
    assert all(np.array_equal(one[name], parts[name]) for name in one)

    # the shares do not depend on the order the inputs are given in
    reversed_inputs = sorted(map(str, images.iterdir()), reverse=True)
    assert predict.run(parse("-i", *reversed_inputs, "-o", tmp_path / "again", "-p", "liver", "--parts", "2",
                             "--part", "0")) == 0
    assert {Path(call["source"]).name for call in fake[-1].calls} == shares[0]


@pytest.mark.parametrize("parts, part", [(0, 0), (2, 2), (2, -1)])
def test_bad_part_numbers_are_refused(tmp_path, fake, parts, part):
    save_nifti(tmp_path / "ct.nii.gz")
    with pytest.raises(InputError, match="--parts"):
        predict.run(parse("-i", tmp_path / "ct.nii.gz", "-o", tmp_path / "out", "-p", "liver", "--parts", parts,
                          "--part", part))
    assert not (tmp_path / "out").exists()


def test_two_part_processes_at_once_give_the_outputs_of_one(tmp_path):
    """Two real `voxtell-core predict --parts 2` processes over one folder, at the same time."""
    import subprocess
    import sys

    from model_fixtures import TINY, make_bank, make_model_folder

    model = make_model_folder(tmp_path / "model", TINY)
    bank = make_bank(tmp_path / "bank.npz", ["liver"], TINY.text_embedding_dim)
    images = folder_of_images(tmp_path / "images", 3)
    command = [sys.executable, "-m", "VoxTellCore.cli", "predict", "-i", str(images), "-p", "liver", "-m", str(model),
               "--embeddings", str(bank), "--device", "cpu"]
    processes = [subprocess.Popen([*command, "-o", str(tmp_path / "parts"), "--parts", "2", "--part", str(part)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for part in range(2)]
    assert [process.wait(timeout=300) for process in processes] == [0, 0]
    assert subprocess.run([*command, "-o", str(tmp_path / "one")], capture_output=True, timeout=300).returncode == 0
    one, parts = sorted((tmp_path / "one").iterdir()), sorted((tmp_path / "parts").iterdir())
    assert [p.name for p in one] == [p.name for p in parts] == [f"case{i:02d}_liver.nii.gz" for i in range(3)]
    for a, b in zip(one, parts):
        assert np.array_equal(nibabel.load(a).get_fdata(), nibabel.load(b).get_fdata())


# ---------------------------------------------------------------------- small things a user sees
def test_version(capsys):
    import VoxTellCore

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"voxtell-core {VoxTellCore.__version__}"


def test_window_bar_appears_only_once_its_total_is_known(capsys):
    from VoxTellCore.commands import window_progress

    with window_progress("case"):
        pass
    assert capsys.readouterr().err == "", "no bar without a total"
    with window_progress("case") as progress:
        progress(1, 4)
    err = capsys.readouterr().err
    assert "1/4" in err and "0window [" not in err


def test_step_is_passed_to_the_predictor_and_checked(tmp_path, fake):
    args = parse("-i", tmp_path / "a.nii.gz", "-o", tmp_path / "out", "-p", "liver")
    assert args.step == 0.5
    save_nifti(tmp_path / "a.nii.gz")
    with pytest.raises(InputError, match="--step 1.5"):
        predict.run(parse("-i", tmp_path / "a.nii.gz", "-o", tmp_path / "out", "-p", "liver", "--step", "1.5"))
    assert fake == []


@pytest.mark.parametrize("format", ["nifti", "nrrd", "mha", "seg-nrrd"])
def test_every_output_format_records_the_model_that_made_it(tmp_path, format):
    import nrrd

    import VoxTellCore
    from VoxTellCore.models import DEMO_DESCRIPTION

    save_nifti(tmp_path / "ct.nii.gz")
    assert main(["predict", "-i", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), "-p", "liver",
                 "-m", "demo", "--device", "cpu", "--format", format]) == 0
    (written,) = (tmp_path / "out").iterdir()
    if format == "nifti":
        descrip = nibabel.load(written).header["descrip"].item().decode()
        assert descrip == f"VoxTell {VoxTellCore.__version__}: DEMO model, not for clinical use"
        return
    image = sitk.ReadImage(str(written)) if format != "seg-nrrd" else None
    fields = nrrd.read_header(str(written)) if image is None else {k: image.GetMetaData(k) for k in
                                                                   image.GetMetaDataKeys()}
    assert fields["VoxTell_Model"] == DEMO_DESCRIPTION
    assert fields["VoxTell_Version"] == VoxTellCore.__version__ and fields["VoxTell_Demo"] == "yes"


# ---------------------------------------------------------------------- messages a new user meets
def test_a_study_folder_of_series_subfolders_lists_them(tmp_path, fake, capsys):
    rng = np.random.default_rng(0)
    write_dicom_series(tmp_path / "study" / "ct", rng.integers(0, 200, size=(4, 6, 5)).astype(np.int16),
                       "1.2.826.0.1.3680043.2.1125.701")
    write_dicom_series(tmp_path / "study" / "pet", rng.integers(0, 200, size=(4, 6, 5)).astype(np.int16),
                       "1.2.826.0.1.3680043.2.1125.702")
    assert main(["predict", "-i", str(tmp_path / "study"), "-o", str(tmp_path / "out"), "-p", "liver"]) == 2
    err = capsys.readouterr().err
    assert "holds no DICOM files itself" in err and f"  {tmp_path / 'study' / 'ct'}\n" in err
    assert f"  {tmp_path / 'study' / 'pet'}\n" in err and "Pass the subfolder" in err and fake == []


def test_an_empty_part_says_so(tmp_path, fake, capsys):
    images = folder_of_images(tmp_path / "images", 2)
    assert main(["predict", "-i", str(images), "-o", str(tmp_path / "out"), "-p", "liver", "--parts", "5",
                 "--part", "4"]) == 0
    out = capsys.readouterr().out
    assert "part 4 of --parts 5 holds none of the 2 image(s)" in out and "every output exists" not in out
    assert fake == []


def test_a_roi_outside_the_image_says_where_the_image_is(tmp_path, capsys):
    image = save_nifti(tmp_path / "ct.nii.gz")
    assert main(["predict", "-i", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), "-p", "liver",
                 "-m", "demo", "--device", "cpu", "--roi", "500", "500", "500", "600", "600", "600"]) == 1
    err = capsys.readouterr().err
    corners = image.ijk_to_ras @ np.array([[i, j, k, 1] for i in (0, 7) for j in (0, 6) for k in (0, 5)]).T  # (8, 7, 6)
    low, high = corners[:3].min(axis=1), corners[:3].max(axis=1)
    assert f"voxel centres span x {low[0]:.1f} to {high[0]:.1f}, y {low[1]:.1f} to {high[1]:.1f}" in err


def test_the_missing_demo_model_message_names_a_command_that_exists(monkeypatch, tmp_path, capsys):
    from VoxTellCore import models

    monkeypatch.setattr(models, "DEMO_MODEL_DIR", tmp_path / "DemoModel")
    save_nifti(tmp_path / "ct.nii.gz")
    assert main(["predict", "-i", str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), "-p", "liver",
                 "-m", "demo", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "`python -m Training.demo_model`" in err
    import Training.demo_model  # the command it names

    assert callable(Training.demo_model.main)


def test_the_cpu_warning_reads_as_a_plain_message(tmp_path):
    import subprocess
    import sys

    save_nifti(tmp_path / "ct.nii.gz")
    result = subprocess.run([sys.executable, "-c", "import sys, torch; torch.cuda.is_available = lambda: False; "
                             "from VoxTellCore.cli import main; sys.exit(main(sys.argv[1:]))", "predict", "-i",
                             str(tmp_path / "ct.nii.gz"), "-o", str(tmp_path / "out"), "-p", "liver", "-m", "demo"],
                            capture_output=True, encoding="utf-8", errors="replace", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Warning: No CUDA GPU found (device 'auto'): running on the CPU" in result.stderr
    assert "RuntimeWarning" not in result.stderr and "self.device" not in result.stderr
