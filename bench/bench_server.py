"""Benchmark: `voxtell-core serve` vs the release's voxtell-server 0.1.2, side by side, one run.

    .venv/bin/python bench/bench_server.py [--model demo|released-size|FOLDER] [--device cpu]
        [--shape 192 160 96] [--clients 8] [--prompts-per-client 3] [--timing-only]

Both servers run on 127.0.0.1 in this process under uvicorn and are driven over HTTP. The
release's server is its own code (``voxtell.server.app`` + ``runner``: NIfTI upload, the
whole volume back per job, every prompt re-running the encoder), calling our network through
a ``predict_single_image`` adapter, so both servers compute with the same weights and kernels
and the differences are the servers' own. Its client is napari-voxtell 0.2.0's, loaded by file.

Measured: first prompt (upload + job + result) and a second prompt on the uploaded image;
upload bytes of a 512x512x300 int16 CT (raw, the release's .nii.gz, our int16 VXA2); result
bytes of a liver-sized and a nodule-sized mask of that CT, full vs cropped; and the wall time of
N concurrent clients x M prompts (jobs/s). ``--timing-only`` skips the byte counts (gpu_check.sh).
``--model released-size`` builds a random-weight model of the published sizes (ResEnc-L), whose
encoder/decoder balance is the real one's (the demo model's encoder is small).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import nibabel
import numpy as np
from scipy.ndimage import gaussian_filter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from VoxTellCore.inference.predictor import VoxTellPredictor  # noqa: E402
from VoxTellCore.io import Volume  # noqa: E402
from VoxTellCore.ports import free_port  # noqa: E402
from VoxTellCore.remote.client import RemotePredictor, nifti_bytes  # noqa: E402
from VoxTellCore.remote.wire import compact, crop_to_content, pack_array  # noqa: E402

PROMPTS = ["liver", "spleen", "aorta", "left kidney", "right kidney", "heart"]


def synthetic_ct(shape, seed=0) -> Volume:
    """A CT-like int16-valued volume (KJI): air, a body ellipse of soft tissue with scanner noise, lungs, spine."""
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    ct = np.full(shape, -1000, np.float32)
    body = (i / 0.9) ** 2 + (j / 0.7) ** 2 < 1
    ct[body] = 40
    ct[body & (((i - 0.4) / 0.3) ** 2 + (j / 0.4) ** 2 < 1) & (k > -0.2)] = -850
    ct[body & (((i + 0.4) / 0.3) ** 2 + (j / 0.4) ** 2 < 1) & (k > -0.2)] = -850
    ct[(i / 0.08) ** 2 + ((j + 0.5) / 0.08) ** 2 < 1] = 700
    ct += gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1) * 25 + rng.standard_normal(shape) * 10
    return Volume(np.round(ct).astype(np.float32), np.diag([-0.7, -0.7, 1.0, 1.0]), source="synthetic CT")


def load_napari_client():
    folder = Path(np.__file__).resolve().parents[1] / "napari_voxtell" / "remote"
    for package in ("napari_voxtell", "napari_voxtell.remote"):
        sys.modules.setdefault(package, types.ModuleType(package)).__path__ = []
    for name in ("serialization", "client"):
        spec = importlib.util.spec_from_file_location(f"napari_voxtell.remote.{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["napari_voxtell.remote.client"].VoxTellRemoteClient


class ReleaseAdapter:
    """Our network in the shape the release's server engine calls."""

    def __init__(self, predictor):
        self.predictor, self.patch_size, self.device = predictor, predictor.patch_size, predictor.device
        self.perform_everything_on_device = True

    def list_available_embeddings(self):
        return []

    def predict_single_image(self, data, prompts, progress_callback=None):
        return self.predictor.predict_network_array(data[0], self.predictor.embed(prompts), progress=progress_callback)


def start(app):
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if server.started:
            return server, url
        time.sleep(0.1)
    raise TimeoutError(url)


def ours_app(args):
    from VoxTellCore.server.app import make_app
    from VoxTellCore.server.images import ImageStore
    from VoxTellCore.server.jobs import Scheduler
    from VoxTellCore.server.limits import Limits

    predictor = VoxTellPredictor(**model_options(args), device=args.device)
    store = ImageStore(64, 10**11, 3600, 8 * 10**9, workers=1)
    scheduler = Scheduler([predictor], store, max_queued=256)
    scheduler.start()
    return make_app(scheduler, store, Limits(max_queued_jobs=256))


def release_app(args):
    from voxtell.server.app import make_app

    return make_app(ReleaseAdapter(VoxTellPredictor(**model_options(args), device=args.device, feature_cache_bytes=0)))


def model_options(args) -> dict:
    if args.model != "released-size":
        return {"model": args.model}
    sys.path.insert(0, str(ROOT / "tests"))
    from model_fixtures import make_bank, make_model_folder

    from VoxTellCore.model import VoxTellConfig

    work = Path(tempfile.gettempdir()) / "voxtell_bench_server"
    config = VoxTellConfig()
    if not (work / "model" / "plans.json").is_file():
        make_model_folder(work / "model", config, seed=0)
    bank = make_bank(work / "bank.npz", PROMPTS, config.text_embedding_dim)
    return {"model": work / "model", "embedding_bank": bank}


def release_segment(client_class, url, volume, prompts_list):
    """The napari client's flow: upload the .nii.gz (image back for display), one job per prompt."""
    client = client_class(url)
    image_id, _, _, _ = client.upload_image(nifti_bytes(volume))
    times = []
    for prompts in prompts_list:
        started = time.perf_counter()
        job = client.start_job(image_id, prompts)
        assert list(client.stream_events(job))[-1]["status"] == "done"
        client.get_result(job)
        times.append(time.perf_counter() - started)
    client.close()
    return times


def timings(args, ours_url, release_url, client_class):
    """Release, ours, ours, release (a new CT each time), so a change in the machine's load
    weighs on both; the mean of the two runs of each."""
    def release_run(volume):
        started = time.perf_counter()
        times = release_segment(client_class, release_url, volume, [[PROMPTS[0]], [PROMPTS[1]]])
        return time.perf_counter() - started - times[1], times[1]  # first: upload included

    def ours_run(volume):
        remote, times = RemotePredictor(ours_url), []
        for prompt in PROMPTS[:2]:
            started = time.perf_counter()
            remote.predict_volume(volume, [prompt])
            times.append(time.perf_counter() - started)
        return tuple(times)

    runs = {"release": [], "ours": []}
    for seed, name in enumerate(("release", "ours", "ours", "release")):
        volume = synthetic_ct(tuple(args.shape), seed=10 + seed)
        runs[name].append(release_run(volume) if name == "release" else ours_run(volume))
    theirs, ours = (np.mean(runs[name], axis=0) for name in ("release", "ours"))
    return [("first prompt (upload, job, result) s, mean of 2", theirs[0], ours[0]),
            ("second prompt on the uploaded image s, mean of 2", theirs[1], ours[1]),
            ("second / first", theirs[1] / theirs[0], ours[1] / ours[0])]


def throughput(args, ours_url, release_url, client_class):
    prompts = [[[PROMPTS[(c + p) % len(PROMPTS)]] for p in range(args.prompts_per_client)] for c in range(args.clients)]
    results = {"release": [0.0, []], "ours": [0.0, []]}
    for round_, name in enumerate(("release", "ours", "ours", "release")):  # alternated, as in timings()
        errors = results[name][1]
        batch = [synthetic_ct(tuple(args.shape), seed=100 * round_ + s) for s in range(4)]

        def client(index):
            try:
                if name == "release":
                    release_segment(client_class, release_url, batch[index % 4], prompts[index])
                else:
                    remote = RemotePredictor(ours_url)
                    for prompt in prompts[index]:
                        remote.predict_volume(batch[index % 4], prompt)
            except Exception as error:  # reported in the table
                errors.append(error)

        threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results[name][0] += (time.perf_counter() - started) / 2
    jobs = args.clients * args.prompts_per_client
    label = f"{args.clients} clients x {args.prompts_per_client} prompts"
    (t_rel, e_rel), (t_ours, e_ours) = results["release"], results["ours"]
    return [(f"{label}: wall s, mean of 2", t_rel, t_ours), (f"{label}: jobs/s", jobs / t_rel, jobs / t_ours),
            ("  failed clients", len(e_rel), len(e_ours))]


def byte_counts():
    volume = synthetic_ct((300, 512, 512))
    raw = volume.array.astype(np.int16).nbytes
    nii = len(nifti_bytes_int16(volume))
    ours = len(pack_array(compact(volume.array)))
    rows = [("upload 512x512x300 int16 CT: raw MB", raw / 1e6, raw / 1e6),
            ("upload MB (release: .nii.gz int16 level 6; ours: VXA2 int16)", nii / 1e6, ours / 1e6),
            ("upload / raw", nii / raw, ours / raw)]
    k, j, i = np.meshgrid(*[np.arange(n) for n in volume.array.shape], indexing="ij", sparse=True)
    liver = ((k - 150) / 60.0) ** 2 + ((j - 250) / 90.0) ** 2 + ((i - 170) / 110.0) ** 2 < 1
    nodule = ((k - 200) / 6.0) ** 2 + ((j - 200) / 8.0) ** 2 + ((i - 330) / 8.0) ** 2 < 1
    for name, mask in (("liver-sized mask", liver), ("nodule-sized mask", nodule)):
        masks = mask[None].astype(np.uint8)
        full, cropped = len(pack_array(masks)), len(pack_array(crop_to_content(masks)[0]))
        rows.append((f"result bytes, {name} (release: full; ours: cropped) kB", full / 1e3, cropped / 1e3))
    return rows


def nifti_bytes_int16(volume):
    image = nibabel.Nifti1Image(np.ascontiguousarray(volume.array.astype(np.int16).T), volume.ijk_to_ras)
    return gzip.compress(image.to_bytes(), compresslevel=6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", type=int, nargs=3, default=[64, 96, 96], help="KJI shape of the timed CT")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--prompts-per-client", type=int, default=3)
    parser.add_argument("--timing-only", action="store_true")
    args = parser.parse_args()
    client_class = load_napari_client()
    ours_server, ours_url = start(ours_app(args))
    release_server, release_url = start(release_app(args))
    rows = timings(args, ours_url, release_url, client_class)
    if not args.timing_only:
        rows += throughput(args, ours_url, release_url, client_class)
        rows += byte_counts()
    print(f"\nvoxtell-core serve vs voxtell-server 0.1.2, model {args.model}, device {args.device}, "
          f"timed CT {tuple(args.shape)} (KJI)")
    print(f"| {'what':<66} | {'release':>10} | {'ours':>10} | ours/release |")
    print(f"|{'-' * 68}|{'-' * 12}|{'-' * 12}|--------------|")
    for what, theirs, ours in rows:
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        print(f"| {what:<66} | {theirs:>10.3f} | {ours:>10.3f} | {ratio:>12} |")
    for server in (ours_server, release_server):
        server.should_exit = True


if __name__ == "__main__":
    main()
