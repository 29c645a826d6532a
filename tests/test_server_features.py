"""Item 2: a new prompt on an uploaded image costs the decoders only. Each image keeps its own
encoder features; the least recently used image's features go first when the budget is full;
the masks equal those of a predictor without any cache."""

from __future__ import annotations

import numpy as np
import pytest

from server_fixtures import smooth_volume, tiny_model
from VoxTellCore.inference.predictor import VoxTellPredictor
from VoxTellCore.server.images import ImageStore
from VoxTellCore.server.jobs import Job, Scheduler


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder, bank = tiny_model(tmp_path_factory.mktemp("tiny"))
    predictor = VoxTellPredictor(folder, device="cpu", embedding_bank=bank)
    encode = predictor.network.encode
    predictor.encoder_calls = []
    predictor.network.encode = lambda *a, **k: predictor.encoder_calls.append(1) or encode(*a, **k)
    return predictor, VoxTellPredictor(folder, device="cpu", embedding_bank=bank, feature_cache_bytes=0)


def run_jobs(predictor, budget: int, plan):
    """Runs ``plan`` [(image index, prompts)] one job at a time; returns (encoder calls per job, masks per job)."""
    calls = predictor.encoder_calls
    store = ImageStore(max_images=8, max_total_bytes=10**10, idle_seconds=3600, feature_budget=budget, workers=1)
    scheduler = Scheduler([predictor], store, max_queued=8)
    scheduler.start()
    volumes = [smooth_volume((70, 40, 40), seed=1), smooth_volume((70, 40, 40), seed=2)]
    images = [store.add(v, network_orientation=False) for v in volumes]
    per_job, masks = [], []
    try:
        for index, prompts in plan:
            before = len(calls)
            job = Job(image=images[index], prompts=prompts)
            scheduler.submit(job)
            for _ in range(600):
                if job.status in ("done", "error", "cancelled"):
                    break
                job.cancel.wait(0.05)
            assert job.status == "done", job.error
            per_job.append(len(calls) - before)
            masks.append(job.result)
    finally:
        scheduler.stop()
    return per_job, masks, volumes


def test_second_prompt_runs_no_encoder_and_gives_the_same_masks(model):
    predictor, uncached = model
    per_job, masks, volumes = run_jobs(predictor, 10**9, [(0, ["liver"]), (0, ["spleen"]), (1, ["liver"]), (0, ["aorta"])])
    windows = per_job[0]
    assert windows == 2  # 70 x 40 x 40 in 64^3 windows: 2 along the first axis
    assert per_job == [2, 0, 2, 0]  # both images keep their features within the budget
    for (index, prompts), result in zip([(0, ["liver"]), (0, ["spleen"]), (1, ["liver"]), (0, ["aorta"])], masks):
        np.testing.assert_array_equal(result, uncached.predict_volume(volumes[index], prompts))
    assert any(result.any() for result in masks)


def test_the_least_recently_used_image_loses_its_features_first(model):
    predictor, _ = model
    store_probe = ImageStore(8, 10**10, 3600, 10**9, 1)
    probe = store_probe.add(smooth_volume((70, 40, 40), seed=1), network_orientation=False)
    predictor.use_feature_cache(probe.features)
    predictor.predict_volume(probe.volume, ["liver"])
    one_image = probe.features.used  # a budget for one image's 2 windows: image 1 evicts image 0
    per_job, _, _ = run_jobs(predictor, one_image, [(0, ["liver"]), (0, ["spleen"]), (1, ["liver"]), (1, ["aorta"]),
                                         (0, ["aorta"])])
    assert per_job == [2, 0, 2, 0, 2]


def test_idle_images_are_reaped_unless_a_job_holds_them():
    store = ImageStore(max_images=8, max_total_bytes=10**9, idle_seconds=3600, feature_budget=0, workers=2)
    kept, idle = (store.add(smooth_volume((5, 6, 7), seed=s), network_orientation=False) for s in (1, 2))
    assert {kept.worker, idle.worker} == {0, 1}  # a new image goes to the worker with fewer images
    kept.active_jobs = 1
    store.idle_seconds = 0.0
    assert store.reap() == [idle.image_id]
    assert store.get(idle.image_id) is None and store.get(kept.image_id) is kept
    assert store.find(kept.sha256) is kept and store.find(idle.sha256) is None
