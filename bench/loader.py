"""Does the data loader keep a GPU fed? Samples/s per worker, cold and warm, and workers per GPU.

    python bench/loader.py [--work DIR] [--shape 350 512 512] [--samples 5] [--step-seconds 0.5 ...]

One CT-sized case (a phantom, 512 x 512 x 350, with its label map) is written to a real cache
(``write_case``). In one process with one thread (one loader worker):

1. **read paths**: the 308³ image + label crop a training sample reads (``Augmenter.input_size``
   for 192³ patches), cold (the case's pages dropped from the page cache with
   ``posix_fadvise(DONTNEED)`` before each crop; MB the kernel read, ``/proc/self/io``) and warm,
   for the trainer's path (``CaseRecord.arrays``) and the alternatives: memory map with
   read-ahead off (``MADV_RANDOM``), memory map with the kernel's read-ahead, ``blosc2.open``;
2. **samples**: the trainer's whole sample (``BatchSampler.sample``: prompts, crop, targets,
   nnU-Net's augmentation), cold and warm, on the trainer's read path and on ``MADV_RANDOM``;
3. **workers per GPU** (the trainer's read path): a step takes 2 samples (``batch_size_per_process``); a GPU step of T
   seconds needs ceil(2 / (samples/s per worker x T)) workers. T comes from ``--step-seconds``:
   pass the median s/step that ``bench/gpu_training_step.py`` printed on your GPU; without one
   the defaults are assumptions (0.5 s: nnU-Net ResEnc-L's A100 step, as VoxTell's encoder is that
   network; 1.0 s: with VoxTell's prompt decoder for 3 prompts), printed as such.
"""

from __future__ import annotations

import argparse
import math
import mmap
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import blosc2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from Training.augmentation import Augmenter  # noqa: E402
from Training.data.cache import CachedArray, CaseRecord, RawCase, read_case, write_case  # noqa: E402
from Training.data.targets import Target  # noqa: E402
from Training.sampling import BatchSampler, crop_with_padding  # noqa: E402
from cache_read import drop_from_page_cache, read_bytes  # noqa: E402

PATCH = (192, 192, 192)
BATCH = 2  # images per GPU step (batch_size_per_process)


class ReadAheadMap(CachedArray):
    """The memory map with the kernel's default read-ahead: the trainer's path since this benchmark
    chose it, kept as its own row to show the run-to-run noise of one path."""

    def __init__(self, path: str | Path) -> None:
        with open(path, "rb") as handle:
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self._array = blosc2.ndarray_from_cframe(self._map, copy=False)


class RandomAccessMap(CachedArray):
    """The memory map with read-ahead off (``MADV_RANDOM``)."""

    def __init__(self, path: str | Path) -> None:
        with open(path, "rb") as handle:
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self._map.madvise(mmap.MADV_RANDOM)
        self._array = blosc2.ndarray_from_cframe(self._map, copy=False)


class OpenedFile(CachedArray):
    """``blosc2.open``: blosc2 reads the chunks it needs with ordinary file reads."""

    def __init__(self, path: str | Path) -> None:
        self._array = blosc2.open(str(path), mode="r")


def make_case(work: Path, shape: tuple[int, int, int]) -> CaseRecord:
    folder = work / "Phantom"
    if not (folder / "ct.json").is_file():
        from VoxTellCore.phantoms import generate_phantom

        phantom = generate_phantom(seed=1, shape=shape)
        raw = RawCase(image=phantom.image.astype(np.float32), segmentation=phantom.label_map[None].astype(np.uint8))
        write_case(folder, "ct", raw, np.random.default_rng(0))
    os.sync()
    present = read_case("Phantom", folder, "ct", [])
    targets = [Target((f"label {v}",), labels=(v,)) for v in present.present]
    return read_case("Phantom", folder, "ct", targets)


def case_files(case: CaseRecord) -> list[Path]:
    return [Path(f"{case.stem}_image.b2nd"), Path(f"{case.stem}_seg.b2nd"), Path(f"{case.stem}_locations.npz")]


def interleaved(actions: dict[str, Callable[[int], object]], case: CaseRecord, repeats: int,
                cold: bool) -> dict[str, tuple[float, float]]:
    """Per action: (median seconds, mean MB read from storage). Repeat i runs every action on
    input i in turn, so a change in the machine's load hits all rows alike."""
    seconds = {name: [] for name in actions}
    read = {name: [] for name in actions}
    for repeat in range(repeats):
        for name, action in actions.items():
            if cold:
                for path in case_files(case):
                    drop_from_page_cache(path)
            before, began = read_bytes(), time.perf_counter()
            action(repeat)
            seconds[name].append(time.perf_counter() - began)
            read[name].append(read_bytes() - before)
    return {name: (statistics.median(seconds[name]), statistics.mean(read[name]) / 1e6) for name in actions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench_loader"))
    parser.add_argument("--shape", type=int, nargs=3, default=(350, 512, 512), help="(K, J, I) of the phantom")
    parser.add_argument("--samples", type=int, default=8, help="timed repeats per row (the same crops and "
                                                                    "augmentations in every row)")
    parser.add_argument("--step-seconds", type=float, nargs="+", default=None,
                        help="GPU step time(s) from bench/gpu_training_step.py (default: assumed 0.5 and 1.0)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    blosc2.set_nthreads(1)
    case = make_case(args.work, tuple(args.shape))
    augmenter = Augmenter(PATCH)
    size = augmenter.input_size
    rng = np.random.default_rng(0)
    places = [np.array([int(rng.integers(0, max(1, s - n))) for s, n in zip(case.shape, size)])
              for _ in range(args.samples)]
    print(f"case {case.shape} (cropped phantom {tuple(args.shape)}), crops {size} for {PATCH} patches; one process, "
          f"one thread; {args.samples} repeats per row (the same in every row), medians; torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs")

    paths = {"trainer (CachedArray)": CachedArray, "mmap, MADV_RANDOM": RandomAccessMap,
             "mmap, read-ahead": ReadAheadMap, "blosc2.open": OpenedFile}
    print(f"\n1. read path: a {size[0]}³ image + label crop")
    print(f"{'read path':<28} {'cold crops/s':>13} {'cold MB read':>13} {'warm crops/s':>13}")

    def crop(opener: type[CachedArray]) -> Callable[[int], None]:
        def read(repeat: int) -> None:
            for suffix in ("_image.b2nd", "_seg.b2nd"):
                np.array(crop_with_padding(opener(f"{case.stem}{suffix}"), places[repeat], size))
        return read

    crops = {name: crop(opener) for name, opener in paths.items()}
    cold = interleaved(crops, case, args.samples, cold=True)
    warm = interleaved(crops, case, args.samples, cold=False)
    for name in paths:
        print(f"{name:<28} {1 / cold[name][0]:>13.2f} {cold[name][1]:>13.1f} {1 / warm[name][0]:>13.2f}")

    sampler = BatchSampler([case], {}, patch_size=PATCH, batch_size=1, positives=2, negatives=1,
                           default_name_probability=0.25, foreground_probability=0.85, augmenter=augmenter, seed=0,
                           rank=0)

    def sample(opener: type[CachedArray]) -> Callable[[int], None]:
        def draw(repeat: int) -> None:  # sample ``repeat`` is the same on every read path
            case.arrays = lambda: (opener(f"{case.stem}_image.b2nd"), opener(f"{case.stem}_seg.b2nd"))
            sampler.sample(np.random.default_rng(repeat), 2, 1)
        return draw

    print("\n2. the trainer's sample (prompts, crop, targets, augmentation to 192³)")
    print(f"{'read path':<28} {'cache':<6} {'s/sample':>9} {'samples/s per worker':>21}")
    samples = {name: sample(paths[name]) for name in ("trainer (CachedArray)", "mmap, MADV_RANDOM")}
    rates = {}
    for label, is_cold in (("cold", True), ("warm", False)):
        for name, (seconds, _) in interleaved(samples, case, args.samples, is_cold).items():
            rates[name, label] = 1 / seconds
            print(f"{name:<28} {label:<6} {seconds:>9.2f} {1 / seconds:>21.2f}")

    steps = args.step_seconds or [0.5, 1.0]
    source = "measured (--step-seconds)" if args.step_seconds else "ASSUMED, no GPU measured: pass --step-seconds"
    print(f"\n3. workers per GPU for {BATCH} samples per step; GPU step time {source}")
    print(f"{'GPU s/step':>10} {'workers (cold)':>15} {'workers (warm)':>15}")
    for step in steps:
        print(f"{step:>10.2f} " + " ".join(f"{math.ceil(BATCH / (rates['trainer (CachedArray)', k] * step)):>15d}"
                                           for k in ("cold", "warm")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
