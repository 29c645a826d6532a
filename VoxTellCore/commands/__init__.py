"""One module per ``voxtell-core`` subcommand: ``add_parser(subparsers)`` and ``run(args) -> int``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Optional


@contextmanager
def window_progress(description: str, leave: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A progress callback for ``VoxTellPredictor`` that drives a tqdm bar on stderr.

    The bar is made at the first call, when the number of windows is known, so that it never
    shows a total-less "0window [00:00, ?window/s]".
    """
    from tqdm import tqdm

    bar: Optional[Any] = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(desc=description, total=total, unit="window", leave=leave, file=sys.stderr)
        bar.total = total
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()
