"""Bytes read and crops per second per worker: the old cache (.npy, memory-mapped) vs blosc2.

    python bench/cache_read.py [--work bench_cache] [--shape 350 512 512] [--crops 8]

One synthetic CT phantom of realistic size (512 x 512 x 350 float32, 367 MB, z-scored as the
cache stores it) is written in both formats. For 192^3 crops (the patch) and 308^3 crops (the
patch before rotation, ``Augmenter.input_size``) at random places it measures, in one process
with one thread (one data-loading worker):

* cold: the file's pages are dropped from the page cache (``posix_fadvise(DONTNEED)``) before
  each crop; ``read_bytes`` of /proc/self/io (bytes this process made the kernel read from
  storage) and the file's pages resident afterwards (``mincore``: what the read pulled in,
  read-ahead included) per crop, and crops/s;
* warm: crops/s with the file in the page cache (decompression cost only).
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from Training.data.cache import CachedArray, write_array  # noqa: E402
from Training.sampling import crop_with_padding  # noqa: E402

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def resident_bytes(path: Path) -> int:
    """Bytes of ``path`` in the page cache."""
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        pages = (ctypes.c_ubyte * ((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE))()
        if _libc.mincore(address, size, pages) != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
        _libc.munmap(address, size)
    finally:
        os.close(fd)
    return int((np.frombuffer(pages, np.uint8) & 1).sum()) * mmap.PAGESIZE


def drop_from_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def read_bytes() -> int:
    with open("/proc/self/io") as handle:
        return int(dict(line.split(": ") for line in handle.read().splitlines())["read_bytes"])


def make_volume(work: Path, shape: tuple[int, int, int]) -> dict[str, Path]:
    npy, b2nd = work / "image.npy", work / "image.b2nd"
    if not (npy.is_file() and b2nd.is_file()):
        from VoxTellCore.phantoms import generate_phantom
        from VoxTellCore.preprocessing import zscore

        work.mkdir(parents=True, exist_ok=True)
        image = generate_phantom(seed=1, shape=shape).image  # HU, thoracoabdominal CT with noise
        image = zscore(image.astype(np.float32))[None].astype(np.float32)
        np.save(npy, image)
        write_array(b2nd, image)
    os.sync()
    return {"npy (old)": npy, "blosc2 (new)": b2nd}


def open_array(path: Path):
    return np.load(path, mmap_mode="r") if path.suffix == ".npy" else CachedArray(path)


def measure(path: Path, size: int, starts: list[np.ndarray]) -> dict[str, float]:
    crop_bytes = size**3 * 4
    cold_read, cold_resident, cold_times = [], [], []
    for start in starts:
        drop_from_page_cache(path)
        before, began = read_bytes(), time.perf_counter()
        crop = np.array(crop_with_padding(open_array(path), start, (size,) * 3))  # a copy: really read
        cold_times.append(time.perf_counter() - began)
        cold_read.append(read_bytes() - before)
        cold_resident.append(resident_bytes(path))
        assert crop.nbytes == crop_bytes
    np.array(open_array(path)[:])  # warm the whole file
    warm_times = []
    for start in starts:
        began = time.perf_counter()
        np.array(crop_with_padding(open_array(path), start, (size,) * 3))
        warm_times.append(time.perf_counter() - began)
    return {"file MB": path.stat().st_size / 1e6, "crop MB": crop_bytes / 1e6,
            "read MB/crop": statistics.mean(cold_read) / 1e6, "resident MB/crop": statistics.mean(cold_resident) / 1e6,
            "cold crops/s": 1 / statistics.median(cold_times), "warm crops/s": 1 / statistics.median(warm_times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench_cache"))
    parser.add_argument("--shape", type=int, nargs=3, default=(350, 512, 512), help="(K, J, I) of the phantom")
    parser.add_argument("--crops", type=int, default=8)
    args = parser.parse_args(argv)
    import blosc2

    blosc2.set_nthreads(1)
    files = make_volume(args.work, tuple(args.shape))
    shape = np.load(files["npy (old)"], mmap_mode="r").shape[1:]
    rng = np.random.default_rng(0)
    print(f"volume (1, {', '.join(map(str, shape))}) float32; {args.crops} crops per row at random places; "
          "one process, one thread")
    columns = ["file MB", "crop MB", "read MB/crop", "resident MB/crop", "cold crops/s", "warm crops/s"]
    print(f"{'format':<14} {'crop':>5} " + " ".join(f"{c:>16}" for c in columns))
    for size in (192, 308):
        starts = [np.array([int(rng.integers(0, max(1, s - size))) for s in shape]) for _ in range(args.crops)]
        for name, path in files.items():
            row = measure(path, size, starts)
            print(f"{name:<14} {size:>4}³ " + " ".join(f"{row[c]:>16.2f}" for c in columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
