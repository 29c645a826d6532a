"""Files that appear complete or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _default_mode(base: int = 0o666) -> int:
    """The permissions a new file (``base`` 0o666) or folder (0o777) gets under the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], suffix: str = ".tmp") -> Path:
    """Call ``write(temporary_path)`` for a temporary file beside ``path``, then rename it over ``path``.

    ``suffix`` is the temporary file's ending (writers that pick the format from it need the real
    one, e.g. ``.nii.gz``). On any error the temporary file is removed. The file gets the usual
    permissions for new files (mkstemp's are owner-only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(suffix=suffix, prefix=f".{path.name}.", dir=path.parent)
    os.close(descriptor)
    try:
        write(temporary)
        os.chmod(temporary, _default_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new empty folder beside ``path`` to fill; when the block ends without error it
    replaces ``path`` as a whole (an earlier folder there is removed), else it is removed and
    ``path`` stays as it was. The folder's parent is made if missing."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
    try:
        yield stage
        os.chmod(stage, _default_mode(0o777))  # mkdtemp's folders are owner-only
        if not path.exists():
            os.rename(stage, path)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
        os.rename(path, old / path.name)
        try:
            os.rename(stage, path)
        except BaseException:
            os.rename(old / path.name, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
