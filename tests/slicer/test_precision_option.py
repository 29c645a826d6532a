"""The module's bf16 option: read from the user settings, applied to the shared predictor per run."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from slicer_fixtures import add_volume, lps_ijk_to_ras, phantom


def test_precision_is_read_from_the_user_settings(tmp_path):
    from PyQt5.QtCore import QSettings

    from VoxTellSlicerLib.options import RunOptions
    from VoxTellSlicerLib.settings import PRECISION, UserSettings

    settings = UserSettings(QSettings(str(tmp_path / "user.ini"), QSettings.IniFormat))
    assert RunOptions.fromSettings(settings).precision == "auto"
    settings.set(PRECISION, "bf16")
    assert RunOptions.fromSettings(settings).precision == "bf16"


def test_each_run_uses_its_options_precision_on_the_shared_predictor(slicer_scene, logic, options, predictor_factory,
                                                                     monkeypatch):
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    predictor = predictor_factory(options.model, options.device, options.embeddingBank)
    dtypes, encode = [], predictor.network.encode
    monkeypatch.setattr(predictor.network, "encode", lambda image: dtypes.append(encode(image)[0].dtype) or encode(image))

    def masks(run_options):
        segmentation = logic.segment(volume_node, ["liver"], options=run_options)
        segment_id = segmentation.GetSegmentation().GetSegmentIdBySegmentName("liver")
        import slicer

        return slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume_node).copy()

    fast = masks(dataclasses.replace(options, precision="bf16"))
    assert predictor.precision == "bf16" and set(dtypes) == {torch.bfloat16}
    dtypes.clear()
    exact = masks(options)
    assert predictor.precision == "auto" and set(dtypes) == {torch.float32}  # bf16 features were not reused
    assert fast.any() and exact.any()
    assert (fast == exact).mean() > 0.9


def test_bf16_is_a_cpu_option_a_gpu_run_keeps_the_release_arithmetic(slicer_scene, logic, options, predictor_factory,
                                                                    monkeypatch):
    # The box is shown for a CPU with native bf16; the same workstation's GPU may predate bf16
    # (autocast refuses it there), so a GPU run uses "auto" whatever the box says.
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    predictor = predictor_factory(options.model, options.device, options.embeddingBank)
    seen = []

    def predict_volume(volume, prompts, **kwargs):
        seen.append(predictor.precision)
        return np.zeros((len(prompts),) + volume.array.shape, dtype=np.uint8)

    monkeypatch.setattr(predictor, "predict_volume", predict_volume)
    monkeypatch.setattr(predictor, "device", torch.device("cuda"))
    logic.segment(volume_node, ["liver"], options=dataclasses.replace(options, precision="bf16"))
    monkeypatch.setattr(predictor, "device", torch.device("cpu"))
    logic.segment(volume_node, ["liver"], options=dataclasses.replace(options, precision="bf16"))
    assert seen == ["auto", "bf16"]
