"""Uploaded images: decoding with limits checked before the work, and the store that keeps them.

An image arrives either as the release's ``.nii.gz`` bytes (its masks then travel in the
release's network orientation, as voxtell-server sends them) or as a VXA2 array with its
IJK-to-RAS matrix in ``X-Meta`` (masks on the image's own KJI grid). Every declared size is
checked before anything is decompressed. Each image keeps its own encoder-feature cache, so a
new prompt costs the decoders only; the store evicts the least recently used caches to stay
within the feature budget, and reaps images idle for too long.
"""

from __future__ import annotations

import gzip
import io
import secrets
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import nibabel
import numpy as np

from VoxTellCore.errors import InputError
from VoxTellCore.inference.sliding_window import FeatureCache
from VoxTellCore.io import Volume
from VoxTellCore.io.formats.nifti import volume_from_nifti
from VoxTellCore.io.reading import check_voxels
from VoxTellCore.remote.wire import WireError, content_hash, read_header, unpack_array

#: Voxel sizes (mm) outside this range are refused: no scanner makes them, and the windows
#: (a fixed number of voxels) would mean nothing in millimetres.
SPACING_RANGE_MM = (1e-3, 1e3)


class StoreFull(Exception):
    """The server holds as many images (or bytes) as it may; retry later."""


def check_geometry(ijk_to_ras: np.ndarray) -> np.ndarray:
    """A finite 4x4 IJK-to-RAS matrix with sane voxel sizes, else InputError."""
    matrix = np.asarray(ijk_to_ras, dtype=np.float64)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise InputError("ijk_to_ras must be a finite 4x4 matrix (the image's IJK-to-RAS transform).")
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    lo, hi = SPACING_RANGE_MM
    if np.any(spacing < lo) or np.any(spacing > hi) or abs(np.linalg.det(matrix[:3, :3])) < lo ** 3:
        raise InputError(f"Voxel spacing {np.round(spacing, 6).tolist()} mm is not usable: each voxel side must be "
                         f"between {lo} and {hi} mm and the axes independent. Fix the image's header.")
    return matrix


def decode_array_upload(body: bytes, meta: dict, max_bytes: int) -> Volume:
    """A Volume from a VXA2 KJI array and ``meta["ijk_to_ras"]``."""
    if not isinstance(meta, dict) or "ijk_to_ras" not in meta:
        raise InputError("An array upload needs X-Meta {\"ijk_to_ras\": [[...4x4...]]}.")
    try:
        matrix = check_geometry(np.array(meta["ijk_to_ras"], dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError("ijk_to_ras must be a finite 4x4 matrix (the image's IJK-to-RAS transform).") from None
    try:
        _, shape, _ = read_header(body)
        if len(shape) != 3:
            raise InputError(f"The image array has shape {shape}; send a 3D (K, J, I) volume.")
        voxels = int(np.prod(shape, dtype=np.int64))
        if voxels * 4 > max_bytes:  # kept as float32
            raise InputError(f"The image of shape {shape} would take {voxels * 4 / 1e9:.2f} GB, over this "
                             f"server's limit of {max_bytes / 1e9:.2f} GB.")
        array = unpack_array(body)
    except WireError as error:
        raise InputError(str(error)) from None
    volume = Volume(array=array.astype(np.float32), ijk_to_ras=matrix, source="uploaded image")
    check_voxels(volume)
    return volume


def decode_nifti_upload(body: bytes, max_bytes: int) -> Volume:
    """A Volume from ``.nii``/``.nii.gz`` bytes; the header's size is checked before the data is inflated."""
    stream = gzip.GzipFile(fileobj=io.BytesIO(body)) if body[:2] == b"\x1f\x8b" else io.BytesIO(body)
    try:
        head = stream.read(540)
        header = _nifti_header(head)
        shape = tuple(int(n) for n in header.get_data_shape())
        voxels = int(np.prod(shape, dtype=np.int64))
        if voxels * 4 > max_bytes:  # read as float32
            raise InputError(f"The NIfTI image of shape {shape} would take {voxels * 4 / 1e9:.2f} GB, over this "
                             f"server's limit of {max_bytes / 1e9:.2f} GB.")
        needed = int(header.get_data_offset()) + voxels * header.get_data_dtype().itemsize
        data = head + stream.read(max(needed - len(head), 0))  # bounded: a gz bomb inflates no further
    except (OSError, EOFError, zlib.error):
        raise InputError("The upload is not a readable .nii/.nii.gz (corrupt or truncated gzip data).") from None
    if len(data) < needed:
        raise InputError(f"The NIfTI upload is truncated: {len(data)} of {needed} bytes.")
    try:
        image_class = nibabel.Nifti2Image if isinstance(header, nibabel.Nifti2Header) else nibabel.Nifti1Image
        image = image_class.from_bytes(data[:needed])
    except Exception as error:
        raise InputError(f"The upload is not a readable NIfTI image ({error}).") from None
    volume = volume_from_nifti(image, "uploaded image")
    check_geometry(volume.ijk_to_ras)
    check_voxels(volume)
    return volume


def _nifti_header(head: bytes) -> nibabel.Nifti1Header:
    for header_class in (nibabel.Nifti1Header, nibabel.Nifti2Header):
        size = header_class.template_dtype.itemsize
        if len(head) >= size and int.from_bytes(head[:4], "little") == size:
            try:
                return header_class.from_fileobj(io.BytesIO(head[:size]), check=True)
            except Exception:
                break
    raise InputError("The upload is not a NIfTI image: send .nii.gz bytes (or a VXA2 array with its ijk_to_ras).")


@dataclass
class StoredImage:
    """One uploaded image, its worker (images stick to one device) and its encoder features."""

    image_id: str
    volume: Volume
    sha256: str
    worker: int
    #: True for a .nii.gz upload: masks go out in the release's network orientation (S, A, R).
    network_orientation: bool
    features: FeatureCache
    last_used: float = field(default_factory=time.monotonic)
    active_jobs: int = 0

    @property
    def nbytes(self) -> int:
        return int(self.volume.array.nbytes)


class ImageStore:
    """Images by unguessable id and by content hash, within count, byte and idle limits."""

    def __init__(self, max_images: int, max_total_bytes: int, idle_seconds: float, feature_budget: int,
                 workers: int) -> None:
        self.max_images, self.max_total_bytes, self.idle_seconds = max_images, max_total_bytes, idle_seconds
        self.feature_budget, self.workers = feature_budget, workers
        self._images: "OrderedDict[str, StoredImage]" = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def add(self, volume: Volume, network_orientation: bool) -> StoredImage:
        """Stores ``volume`` (or returns the stored copy with the same content); StoreFull when full."""
        digest = content_hash(volume.array, volume.ijk_to_ras)
        self.reap()
        with self._lock:
            for image in self._images.values():
                if image.sha256 == digest and image.network_orientation == network_orientation:
                    return self._touch(image)
            if len(self._images) >= self.max_images or self._bytes() + volume.array.nbytes > self.max_total_bytes:
                raise StoreFull(f"The server holds its limit of images ({len(self._images)} images, "
                                f"{self._bytes() / 1e9:.1f} GB); try again when one is released.")
            loads = [sum(1 for i in self._images.values() if i.worker == w) for w in range(self.workers)]
            image = StoredImage(image_id=secrets.token_urlsafe(24), volume=volume, sha256=digest,
                                worker=int(np.argmin(loads)), network_orientation=network_orientation,
                                features=FeatureCache(self.feature_budget))
            self._images[image.image_id] = image
            return image

    def get(self, image_id: str) -> Optional[StoredImage]:
        with self._lock:
            image = self._images.get(image_id)
            return None if image is None else self._touch(image)

    def find(self, sha256: str) -> Optional[StoredImage]:
        """The stored image (of the array protocol) with this content hash."""
        with self._lock:
            for image in self._images.values():
                if image.sha256 == sha256 and not image.network_orientation:
                    return self._touch(image)
        return None

    def trim_features(self, worker: int) -> None:
        """Drop the least recently used images' features on ``worker`` until they fit the budget."""
        with self._lock:
            on_worker: List[StoredImage] = [i for i in self._images.values() if i.worker == worker]
            used = sum(i.features.used for i in on_worker)
            for image in on_worker[:-1]:  # the most recently used one keeps its features
                if used <= self.feature_budget:
                    break
                used -= image.features.used
                image.features.clear()

    def reap(self) -> List[str]:
        """Forget images idle longer than ``idle_seconds`` (none with queued or running jobs)."""
        now = time.monotonic()
        with self._lock:
            idle = [key for key, image in self._images.items()
                    if image.active_jobs == 0 and now - image.last_used > self.idle_seconds]
            for key in idle:
                self._images.pop(key).features.clear()
        return idle

    def stats(self) -> Dict[str, int]:
        with self._lock:
            return {"images": len(self._images), "image_bytes": self._bytes(),
                    "feature_bytes": sum(i.features.used for i in self._images.values())}

    def _bytes(self) -> int:
        return sum(image.nbytes for image in self._images.values())

    def _touch(self, image: StoredImage) -> StoredImage:
        image.last_used = time.monotonic()
        self._images.move_to_end(image.image_id)
        return image
