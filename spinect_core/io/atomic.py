"""Atomic, non-overwriting file writes, and the checks an output location gets before the work.

A result file either appears complete or not at all: we write to a temporary file in the same
folder and rename it into place (``os.replace`` is atomic on POSIX and Windows when source and
target are on one volume). An existing target is never replaced unless ``overwrite=True``.

:class:`StagedFiles` extends this to a set of files (a label map, its sidecar, probability maps
and a summary): each is written under a hidden temporary name beside its target and all are moved
into place together at the end, or all removed when the block fails or is interrupted, so a
cancelled run leaves none of them half-written.

:func:`check_output_location` is what a long command runs first: the output's folder can be
written (a file is really created and removed, so it holds for every user, root included) and
has room for a rough estimate of the outputs, so that a read-only folder or a full disk fails in
a second, not after minutes of segmentation and planning.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Iterator

from spinect_core.errors import OutputError, SpinectError


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
        # mkstemp makes the file 0600 whatever the umask; a result must get the mode any new
        # file gets (0644 under the usual umask 022) so a DICOM router or a colleague can read
        # it. A writer that replaced the file (unlink + create) already has that mode.
        with contextlib.suppress(OSError):
            os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    ``os.umask`` can only be read by setting it, which would briefly change the mask of every
    thread; Linux reports it in ``/proc/self/status``, so that is tried first.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a newly created regular file gets: ``0o666`` less the umask."""
    return 0o666 & ~current_umask()


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite)


# --- output checks -------------------------------------------------------------------------------
def _existing_ancestor(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_location(path: str | os.PathLike, *, need_bytes: int = 0,
                          what: str = "the outputs") -> Path:
    """Refuse an output location that cannot be written or lacks space; cheap, run it first.

    Parameters
    ----------
    path : path-like
        The output file or folder (need not exist; missing parent folders will be created).
    need_bytes : int
        Rough size of what will be written there.
    what : str
        What is written, for the message.

    Returns
    -------
    Path
        The nearest existing folder at or above ``path`` (where the probe was written).

    Raises
    ------
    OutputError
        A file stands where a folder is needed, the folder cannot be written (permissions, a
        read-only medium; checked by creating and removing a file, so it also holds for root),
        or less free space than ``need_bytes``.
    """
    target = Path(path).absolute()
    # An existing file is replaced from its folder; a missing path will be created below the
    # nearest folder that exists.
    anchor = _existing_ancestor(target.parent if target.is_file() else target)
    if not anchor.is_dir():
        raise OutputError(f"cannot write {what} to {target}: {anchor} is a file, not a folder; "
                          "choose another output path")
    probes = [anchor]
    if anchor == target and target.parent != target:
        probes.append(target.parent)  # an existing output folder is replaced from beside it
    for folder in probes:
        try:
            fd, name = tempfile.mkstemp(prefix=".spinect-probe-", dir=folder)
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise OutputError(f"cannot write {what} into {folder}: {reason.lower()}; choose a "
                              "folder you can write to") from None
    if need_bytes > 0:
        try:
            free = shutil.disk_usage(anchor).free
        except OSError:
            free = None
        if free is not None and free < need_bytes:
            raise OutputError(
                f"not enough free space for {what} in {anchor}: {free / 1e6:.0f} MB free, about "
                f"{need_bytes / 1e6:.0f} MB needed; free some space or choose another folder")
    return anchor


# --- a set of files that appears together ---------------------------------------------------------
def temporary_name(target: str | os.PathLike, tag: str = "partial") -> Path:
    """A hidden, unused name beside ``target`` that keeps its full suffix (``.nii.gz``)."""
    target = Path(target)
    stem = target.name.split(".")[0]
    suffix = "".join(target.suffixes)
    return target.with_name(f".{stem}.spinect-{tag}-{secrets.token_hex(4)}{suffix}")


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back for a few renames (main thread, POSIX); they act right after."""
    can = (hasattr(signal, "pthread_sigmask")
           and threading.current_thread() is threading.main_thread())
    if not can:
        yield
        return
    blocked = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class StagedFiles:
    """Files written under temporary names beside their targets and moved into place together.

    Use as a context manager: :meth:`path` gives the temporary name to write for a target (any
    writer, atomic or not); :meth:`alias` registers a file a writer puts beside it (a sidecar).
    When the block succeeds every staged file is moved onto its target (refusing a target that
    appeared meanwhile unless ``overwrite``); when it raises (also ``KeyboardInterrupt``), every
    temporary file is removed and no target is touched.
    """

    def __init__(self, *, overwrite: bool = False) -> None:
        self.overwrite = overwrite
        self.moves: list[tuple[Path, Path]] = []

    def path(self, target: str | os.PathLike) -> Path:
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_name(target)
        self.moves.append((tmp, target))
        return tmp

    def alias(self, tmp: str | os.PathLike, target: str | os.PathLike) -> None:
        self.moves.append((Path(tmp), Path(target)))

    def __enter__(self) -> "StagedFiles":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            try:
                self.commit()
                return
            except BaseException:
                self.discard()
                raise
        self.discard()

    def commit(self) -> list[Path]:
        present = [(t, d) for t, d in self.moves if t.exists()]
        if not self.overwrite:
            for _, d in present:
                check_writable(d)
        with signals_deferred():
            for tmp, target in present:
                os.replace(tmp, target)
        return [d for _, d in present]

    def discard(self) -> None:
        for tmp, _ in self.moves:
            with contextlib.suppress(OSError):
                tmp.unlink()
