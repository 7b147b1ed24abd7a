"""What the user dropped or opened, made readable by the core: zips are unpacked to temp folders.

:class:`TempFolders` owns every temporary folder the session creates and removes them on exit
(``QApplication.aboutToQuit`` and, as a fallback, ``atexit``).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from spinect_core.errors import NoImagesFoundError, UnsupportedFormatError
from spinect_core.progress import ProgressCallback, report

__all__ = ["TempFolders", "is_zip", "prepare_input", "extract_zip"]


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


def extract_zip(archive: Path, target: Path, *, progress: ProgressCallback | None = None) -> Path:
    """Unpack ``archive`` into ``target`` and return the folder to read.

    Members with absolute paths or ``..`` are skipped (a zip must not write outside its folder).
    When everything sits in one top-level folder, that folder is returned.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            for k, member in enumerate(members):
                parts = PurePosixPath(member.filename.replace("\\", "/")).parts
                if not parts or parts[0] == "/" or ".." in parts or ":" in parts[0]:
                    continue
                out = target.joinpath(*parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
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


def prepare_input(path: str | Path, temp: TempFolders, *,
                  progress: ProgressCallback | None = None) -> Path:
    """The path the core should read for what the user gave (a zip is unpacked first)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise NoImagesFoundError(f"{p} does not exist; check the path")
    if is_zip(p):
        return extract_zip(p, temp.new(), progress=progress)
    return p
