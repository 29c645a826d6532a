"""The dataset kinds a config can list, and the body region each dataset entry declares."""

from __future__ import annotations

from typing import Any

from VoxTellCore.errors import InputError
from Training.data.instances import InstanceDataset
from Training.data.nnunet_raw import NnUNetRawDataset
from Training.data.rexgroundingct import ReXGroundingCTDataset
from Training.data.vocabulary import parse_regions

SOURCES = {"nnunet": NnUNetRawDataset, "rexgroundingct": ReXGroundingCTDataset, "instances": InstanceDataset}
NOT_SOURCE_KEYS = ("type", "region")  # entry keys read here, not by the dataset class


def open_dataset(spec: dict[str, Any]):
    kind = spec.get("type", "nnunet")
    if kind not in SOURCES or "name" not in spec or "path" not in spec:
        raise InputError(
            f"Dataset entry {spec} needs 'name', 'path' and a 'type' among {sorted(SOURCES)}; see docs/training.md."
        )
    try:
        return SOURCES[kind](**{k: v for k, v in spec.items() if k not in NOT_SOURCE_KEYS})
    except TypeError as exc:
        raise InputError(f"Dataset entry {spec['name']} ({kind}): {exc}. See docs/training.md for its keys.") from exc


def dataset_regions(spec: dict[str, Any]) -> tuple[str, ...]:
    """The body regions the dataset's field of view covers (``"region"``: one or a list); () unknown."""
    return parse_regions(spec.get("region", []), f"Dataset entry {spec.get('name')}")
