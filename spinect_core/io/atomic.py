"""Atomic, non-overwriting file writes.

A result file either appears complete or not at all: we write to a temporary file in the same
folder and rename it into place (``os.replace`` is atomic on POSIX and Windows when source and
target are on one volume). An existing target is never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from spinect_core.errors import SpinectError


class FileExistsRefusedError(SpinectError):
    """The target exists and overwriting was not requested."""


def check_writable(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Return ``path`` as a Path after refusing an existing file unless ``overwrite``."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsRefusedError(
            f"{target} already exists; choose another name or pass overwrite (--force) to replace it"
        )
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    The temporary name keeps the target's full suffix (``.nii.gz``, ``.seg.nrrd``) so writers
    that choose a format by extension still work. On error the temporary file is removed.
    """
    target = check_writable(path, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes) or ".tmp"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name.split('.')[0]}-", suffix=suffix,
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not overwrite and target.exists():  # appeared while we were writing
            raise FileExistsRefusedError(f"{target} appeared while writing; not overwritten")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite)
