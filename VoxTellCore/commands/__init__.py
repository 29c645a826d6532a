"""One module per ``voxtell-core`` subcommand: ``add_parser(subparsers)`` and ``run(args) -> int``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def window_progress(description: str, leave: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A progress callback for ``VoxTellPredictor`` that drives a tqdm bar on stderr."""
    from tqdm import tqdm

    with tqdm(desc=description, unit="window", leave=leave, file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress
