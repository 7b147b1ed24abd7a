"""What the user dropped or opened, made readable by the core: zips are unpacked to temp folders.

:class:`TempFolders` owns every temporary folder the session creates and removes them on exit
(``QApplication.aboutToQuit`` and, as a fallback, ``atexit``).

A zip is checked before a byte is unpacked: at most :data:`MAX_ZIP_ENTRIES` files and
:data:`MAX_ZIP_BYTES` unpacked in all (a CT series is a few hundred MB; a zip bomb or a whole
PACS export would fill the disk and the memory), and room for them in the temporary folder. The
bytes actually written are counted as well, so a header that lies about sizes cannot get past.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from spinect_core.errors import InputTooLargeError, NoImagesFoundError, UnsupportedFormatError
from spinect_core.progress import ProgressCallback, report

__all__ = ["TempFolders", "is_zip", "prepare_input", "extract_zip", "MAX_ZIP_BYTES",
           "MAX_ZIP_ENTRIES"]

#: Largest total unpacked size of a zip, bytes (a thin-slice lumbar CT is 0.1-1 GB).
MAX_ZIP_BYTES = 4 * 1024 ** 3
#: Most files in a zip (a CT series has hundreds to a few thousand).
MAX_ZIP_ENTRIES = 20_000


class TempFolders:
    """Temporary folders created for this session, removed by :meth:`cleanup`."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        atexit.register(self.cleanup)

    def new(self, prefix: str = "spinect-") -> Path:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        self.paths.append(path)
        return path

    def cleanup(self) -> None:
        while self.paths:
            shutil.rmtree(self.paths.pop(), ignore_errors=True)


def is_zip(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".zip"


def extract_zip(archive: Path, target: Path, *, progress: ProgressCallback | None = None,
                max_bytes: int | None = None, max_entries: int | None = None) -> Path:
    """Unpack ``archive`` into ``target`` and return the folder to read.

    Members with absolute paths or ``..`` are skipped (a zip must not write outside its folder).
    When everything sits in one top-level folder, that folder is returned.

    Raises
    ------
    InputTooLargeError
        More than ``max_entries`` files (default :data:`MAX_ZIP_ENTRIES`) or more than
        ``max_bytes`` unpacked (default :data:`MAX_ZIP_BYTES`), or less free space in
        ``target`` than the zip unpacks to; checked before unpacking.
    UnsupportedFormatError
        Not a valid zip.
    """
    max_bytes = MAX_ZIP_BYTES if max_bytes is None else max_bytes
    max_entries = MAX_ZIP_ENTRIES if max_entries is None else max_entries
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) > max_entries:
                raise InputTooLargeError(
                    f"{archive.name} holds {len(members)} files, more than the {max_entries} "
                    "accepted; zip the CT series alone (or open its folder)")
            total = sum(m.file_size for m in members)
            if total > max_bytes:
                raise InputTooLargeError(
                    f"{archive.name} unpacks to {_gb(total)}, more than the {_gb(max_bytes)} "
                    "accepted; zip the CT series alone (or open its folder)")
            free = shutil.disk_usage(target).free
            if total > free:
                raise InputTooLargeError(
                    f"{archive.name} unpacks to {_gb(total)} but the temporary folder has "
                    f"{_gb(free)} free; unzip it elsewhere and open the folder")
            written = 0
            for k, member in enumerate(members):
                parts = PurePosixPath(member.filename.replace("\\", "/")).parts
                if not parts or parts[0] == "/" or ".." in parts or ":" in parts[0]:
                    continue
                out = target.joinpath(*parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(out, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > max_bytes:  # sizes in the header understated
                            raise InputTooLargeError(
                                f"{archive.name} unpacks to more than the {_gb(max_bytes)} "
                                "accepted; zip the CT series alone (or open its folder)")
                        dst.write(chunk)
                if k % 20 == 0:
                    report(progress, k / max(len(members), 1), f"unzipping {k}/{len(members)}")
    except zipfile.BadZipFile as exc:
        raise UnsupportedFormatError(f"{archive.name} is not a valid zip file ({exc})") from exc
    entries = [p for p in target.iterdir() if not p.name.startswith("__MACOSX")]
    if not entries:
        raise NoImagesFoundError(f"{archive.name} is empty")
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    if len(entries) == 1 and entries[0].is_file():
        return entries[0]  # a zipped NIfTI/NRRD file
    return target


def _gb(n: int) -> str:
    return f"{n / 1024 ** 3:.1f} GB" if n >= 1024 ** 3 // 10 else f"{n / 1024 ** 2:.1f} MB"


def prepare_input(path: str | Path, temp: TempFolders, *,
                  progress: ProgressCallback | None = None) -> Path:
    """The path the core should read for what the user gave (a zip is unpacked first)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise NoImagesFoundError(f"{p} does not exist; check the path")
    if is_zip(p):
        folder = temp.new()
        try:
            return extract_zip(p, folder, progress=progress)
        except BaseException:  # refused or cancelled: no half-unpacked copy of the CT stays
            shutil.rmtree(folder, ignore_errors=True)
            if folder in temp.paths:
                temp.paths.remove(folder)
            raise
    return p
