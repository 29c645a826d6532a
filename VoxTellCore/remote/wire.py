"""The wire format that the VoxTell server and its clients share (the one copy of it).

Arrays travel in voxtell-server 0.1.2's ``VXA2`` framing, byte for byte, so the release's
clients and server read ours: magic, dtype string, shape, total length, then blosc2 chunks of
at most 1 GiB compressed with the dtype's typesize. JSON metadata rides in the ``X-Meta``
header. Unlike the release, ``unpack_array`` checks the declared shape, dtype and every
chunk's size before it decompresses anything, so a small body that would inflate to tens of
GB is refused with a clear message. numpy + blosc2 only, Python 3.9 (Slicer imports it).
"""

from __future__ import annotations

import hashlib
from typing import Optional, Sequence, Tuple

import blosc2
import numpy as np

MAGIC = b"VXA2"
META_HEADER = "X-Meta"
OCTET_STREAM = "application/octet-stream"
#: Content type of an image uploaded as a VXA2 array (the release uploads .nii.gz bytes).
ARRAY_CONTENT_TYPE = "application/x-voxtell-array"
#: Bumped when a request or answer changes incompatibly; ``/version`` reports it.
PROTOCOL_VERSION = 1
_CHUNK_SIZE = 1 << 30  # blosc2.compress takes < 2 GiB per call
#: dtypes an array on the wire may have (no object, string or structured dtypes).
ALLOWED_KINDS = "biuf"


class WireError(ValueError):
    """A payload that is not a well-formed, acceptable VXA2 array."""


def pack_array(array: np.ndarray) -> bytes:
    """``array`` framed as VXA2: dtype-aware blosc2 chunks (the release's exact layout)."""
    array = np.ascontiguousarray(array)
    dtype = array.dtype.str.encode("ascii")
    raw = memoryview(array.reshape(-1).view(np.uint8))
    out = bytearray(MAGIC)
    out += len(dtype).to_bytes(1, "little") + dtype
    out += len(array.shape).to_bytes(1, "little")
    for size in array.shape:
        out += int(size).to_bytes(8, "little")
    out += len(raw).to_bytes(8, "little")
    for start in range(0, len(raw), _CHUNK_SIZE):
        chunk = raw[start:start + _CHUNK_SIZE]
        compressed = blosc2.compress(chunk, typesize=array.dtype.itemsize)
        out += len(chunk).to_bytes(8, "little") + len(compressed).to_bytes(8, "little") + compressed
    return bytes(out)


def read_header(data: bytes) -> Tuple[np.dtype, Tuple[int, ...], int]:
    """(dtype, shape, offset of the first chunk) of a VXA2 payload; nothing is decompressed."""
    view = memoryview(data)
    if bytes(view[:4]) != MAGIC:
        raise WireError("Not a VoxTell array: the payload does not start with VXA2. Send pack_array() output.")
    try:
        pos = 5 + view[4]
        dtype = np.dtype(bytes(view[5:pos]).decode("ascii"))
        ndim = view[pos]
        pos += 1
        shape = tuple(int.from_bytes(view[pos + 8 * i:pos + 8 * i + 8], "little") for i in range(ndim))
        pos += 8 * ndim
        total = int.from_bytes(view[pos:pos + 8], "little")
        if len(view) < pos + 8:
            raise IndexError
    except (IndexError, TypeError, ValueError, UnicodeDecodeError) as error:
        raise WireError(f"Truncated or corrupt VoxTell array header ({error or 'too short'}).") from None
    if dtype.kind not in ALLOWED_KINDS or dtype.hasobject:
        raise WireError(f"Array dtype {dtype} is not allowed: send integers or floats.")
    if total != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise WireError(f"Corrupt VoxTell array: shape {shape} of {dtype} is not {total} bytes.")
    return dtype, shape, pos + 8


def unpack_array(data: bytes, max_bytes: Optional[int] = None) -> np.ndarray:
    """Inverse of ``pack_array``. Refuses, before decompressing, an array larger than
    ``max_bytes`` and chunks whose blosc2 headers disagree with the frame."""
    dtype, shape, pos = read_header(data)
    total = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if max_bytes is not None and total > max_bytes:
        raise WireError(f"Array of shape {shape} ({dtype}) would take {total / 1e9:.2f} GB, over this "
                        f"server's limit of {max_bytes / 1e9:.2f} GB. Send a smaller image or raise --max-image-gb.")
    view = memoryview(data)
    out = bytearray(total)
    filled = 0
    while pos < len(view):
        if pos + 16 > len(view):
            raise WireError("Truncated VoxTell array: a chunk header is cut off.")
        length = int.from_bytes(view[pos:pos + 8], "little")
        compressed = int.from_bytes(view[pos + 8:pos + 16], "little")
        chunk = view[pos + 16:pos + 16 + compressed]
        pos += 16 + compressed
        if len(chunk) != compressed or filled + length > total:
            raise WireError("Truncated or corrupt VoxTell array: chunk sizes do not add up to the shape.")
        try:
            declared = blosc2.get_cbuffer_sizes(chunk)[0]
        except Exception:  # blosc2 raises several types for a bad header
            raise WireError("Corrupt VoxTell array: a chunk is not blosc2 data.") from None
        if declared != length:
            raise WireError("Corrupt VoxTell array: a chunk would inflate to more than its frame says.")
        try:
            out[filled:filled + length] = blosc2.decompress(bytes(chunk))
        except Exception:
            raise WireError("Corrupt VoxTell array: a chunk does not decompress.") from None
        filled += length
    if filled != total:
        raise WireError(f"Truncated VoxTell array: {filled} of {total} bytes.")
    return np.frombuffer(out, dtype=dtype).reshape(shape)


def compact(array: np.ndarray) -> np.ndarray:
    """``array`` as int16 when that loses nothing (a CT read as float32), else unchanged:
    half the bytes before compression, and integers compress far better than floats."""
    if array.dtype.kind != "f" or array.size == 0:
        return array
    lo, hi = float(array.min()), float(array.max())
    if lo < -32768 or hi > 32767:
        return array
    narrow = array.astype(np.int16)
    return narrow if np.array_equal(narrow, array) else array


def content_hash(array: np.ndarray, ijk_to_ras: np.ndarray) -> str:
    """The image's identity for upload dedupe: voxel values (as float32, so int16 and float32
    copies of one CT agree), shape and geometry."""
    values = np.ascontiguousarray(array, dtype=np.float32) + np.float32(0)  # -0.0 -> 0.0, as int16 has it
    digest = hashlib.sha256()
    digest.update(repr(values.shape).encode("ascii"))
    digest.update(np.ascontiguousarray(ijk_to_ras, dtype="<f8").tobytes())
    digest.update(values.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def crop_to_content(masks: np.ndarray) -> Tuple[np.ndarray, Tuple[int, ...]]:
    """Masks (N, *grid) cut to the box holding every nonzero voxel; and the box's start."""
    occupied = np.nonzero(masks.any(axis=0))
    if occupied[0].size == 0:
        return masks[(slice(None),) + tuple(slice(0, 0) for _ in masks.shape[1:])], (0,) * (masks.ndim - 1)
    start = tuple(int(axis.min()) for axis in occupied)
    stop = tuple(int(axis.max()) + 1 for axis in occupied)
    return np.ascontiguousarray(masks[(slice(None),) + tuple(map(slice, start, stop))]), start


def uncrop(cropped: np.ndarray, start: Sequence[int], grid_shape: Sequence[int]) -> np.ndarray:
    """Inverse of ``crop_to_content``: the masks on the full grid."""
    full = np.zeros((cropped.shape[0], *grid_shape), dtype=cropped.dtype)
    full[(slice(None),) + tuple(slice(s, s + n) for s, n in zip(start, cropped.shape[1:]))] = cropped
    return full
