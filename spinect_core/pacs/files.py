"""DICOM files in and out: which files to send, and retrieves that appear whole or not at all.

A retrieve writes into a hidden temporary folder beside the output folder and moves it into place
only when every instance the node announced has arrived; a failure, a partial retrieve or a
cancel removes the temporary folder, so the output folder never holds half a series.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from spinect_core.errors import InputError
from spinect_core.io.atomic import FileExistsRefusedError, check_output_location

__all__ = ["is_dicom_file", "collect_dicom_files", "staged_folder", "instance_path"]

_SAFE_UID = set("0123456789.")


def is_dicom_file(path: Path) -> bool:
    """True when the file has the DICOM preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def collect_dicom_files(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """DICOM files named or found (recursively) under the given paths.

    Returns
    -------
    files : list of Path
        DICOM Part 10 files, sorted within each folder.
    skipped : list of Path
        Other files found under the folders (a named file that is not DICOM is an error).

    Raises
    ------
    InputError
        A path that does not exist, or a named file that is not DICOM.
    """
    files: list[Path] = []
    skipped: list[Path] = []
    for value in paths:
        p = Path(value)
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                (files if is_dicom_file(f) else skipped).append(f)
        elif p.is_file():
            if not is_dicom_file(p):
                raise InputError(f"{p.name} is not a DICOM file (no DICM preamble)")
            files.append(p)
        else:
            raise InputError(f"{p} does not exist")
    return files, skipped


def instance_path(root: Path, series_uid: str, sop_uid: str) -> Path:
    """``root/<series UID>/<SOP instance UID>.dcm``; UIDs that are not plain UIDs are refused
    (a hostile node must not write outside ``root``)."""
    for uid in (series_uid, sop_uid):
        if not uid or not set(uid) <= _SAFE_UID or len(uid) > 64:
            raise InputError(f"the node sent an instance with an invalid UID {uid[:70]!r}")
    return root / series_uid / f"{sop_uid}.dcm"


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``target``; move it onto ``target`` on success.

    ``target`` must not exist or be an empty folder (a retrieve never mixes with or replaces
    earlier files). On any exception (also ``KeyboardInterrupt`` and a cancel) the temporary
    folder is removed and ``target`` is left as it was.
    """
    out = Path(target)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsRefusedError(f"{out} already exists and is not an empty folder; choose a "
                                     "new folder for the retrieved series")
    check_output_location(out, what="the retrieved series")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.spinect-partial-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            if any(out.iterdir()):
                raise FileExistsRefusedError(f"{out} received files while retrieving; not replaced")
            out.rmdir()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
