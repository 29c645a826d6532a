"""Fixtures: a real MRML scene set up as the Slicer application does (colour, volume,
segmentation and terminology logics, Slicer's .term.json lists), and a tiny random VoxTell."""

from __future__ import annotations

from pathlib import Path

import pytest
from slicer_fixtures import BANK_PROMPTS, fetch_terminologies


@pytest.fixture(scope="session")
def terminologies_dir() -> Path:
    return fetch_terminologies()


@pytest.fixture
def slicer_scene(terminologies_dir):
    """A fresh scene set as ``slicer.mrmlScene`` with colour, volume, segmentation and
    terminology logics; the returned object keeps them alive for the test."""
    from VoxTellSlicerLib.headless import createHeadlessSlicer

    headless = createHeadlessSlicer(terminologies_dir)
    yield headless
    headless.scene.Clear(True)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """(model folder, embedding bank) of a random-weight VoxTell with a 32^3 patch."""
    import dataclasses

    from model_fixtures import TINY, make_bank, make_model_folder

    config = dataclasses.replace(
        TINY, patch_size=(32, 32, 32), strides=((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 1, 1), (1, 1, 1))
    )
    folder = tmp_path_factory.mktemp("voxtell")
    model = make_model_folder(folder / "model", config)
    bank = make_bank(folder / "bank.npz", BANK_PROMPTS, config.text_embedding_dim)
    return model, bank


@pytest.fixture(scope="session")
def predictor_factory():
    """The real VoxTellPredictor, built once per (model, device, bank) for the whole session."""
    from VoxTellSlicerLib.logic import defaultPredictorFactory

    predictors: dict[tuple, object] = {}

    def factory(model, device, bank):
        key = (model, device, bank)
        if key not in predictors:
            predictors[key] = defaultPredictorFactory(model, device, bank)
        return predictors[key]

    return factory


@pytest.fixture
def run_options(tiny_model) -> dict:
    model, bank = tiny_model
    return {"modelPath": str(model), "device": "cpu", "embeddingBank": str(bank)}


@pytest.fixture
def options(run_options):
    """The same model, device and bank as the module's RunOptions."""
    from VoxTellSlicerLib.options import RunOptions

    return RunOptions(model=run_options["modelPath"], device=run_options["device"],
                      embeddingBank=run_options["embeddingBank"])


@pytest.fixture
def logic(slicer_scene, predictor_factory):
    from VoxTellSlicerLib import VoxTellLogic

    return VoxTellLogic(predictor_factory=predictor_factory)
