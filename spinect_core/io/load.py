"""One entry point for CT input: ``load_ct`` and ``list_series`` for any supported path.

A folder is read as DICOM (recursively); a file is read by extension as NIfTI, NRRD or MHA, and
otherwise tried as DICOM (single- or multi-frame).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from spinect_core.errors import NoImagesFoundError, UnsupportedFormatError
from spinect_core.io.dicom import load_dicom, series_list
from spinect_core.io import dicom_scan
from spinect_core.io.images import image_format, image_series_info, load_image
from spinect_core.io.options import LoadOptions
from spinect_core.io.series import SeriesInfo
from spinect_core.progress import ProgressCallback
from spinect_core.volume import Volume

__all__ = ["LoadOptions", "SeriesInfo", "SeriesScan", "list_series", "load_ct", "scan_series"]


@dataclass(frozen=True, kw_only=True)
class SeriesScan:
    """What :func:`scan_series` found at a path: its series, and the DICOM headers read.

    Attributes
    ----------
    path : Path
        The path scanned.
    series : tuple of SeriesInfo
        Every series found, CT first, then by extent (as :func:`list_series`).
    headers : spinect_core.io.dicom_scan.ScanResult or None
        The DICOM header scan (``None`` for an image file); :func:`load_ct` given this scan
        does not read the headers again.
    """

    path: Path
    series: tuple[SeriesInfo, ...]
    headers: dicom_scan.ScanResult | None = None


def load_ct(path: str | os.PathLike, *, options: LoadOptions | None = None,
            progress: ProgressCallback | None = None, scan: SeriesScan | None = None) -> Volume:
    """Load a CT volume in HU with LPS geometry from a DICOM folder/file or an image file.

    Parameters
    ----------
    path : path-like
        DICOM folder (recursive), DICOM file (multi-frame, or one file of a series), or a
        ``.nii``/``.nii.gz``/``.nrrd``/``.nhdr``/``.mha``/``.mhd`` file.
    options : LoadOptions, optional
        Series choice and correction policies (defaults: pick the largest CT series, resample
        irregular spacing up to 2.5x the median gap and gantry tilt, check HU).
    progress : callable, optional
        ``(fraction, message)``; returning False raises :class:`~spinect_core.errors.Cancelled`.
    scan : SeriesScan, optional
        :func:`scan_series` of this ``path`` (ignored for another path): its DICOM headers are
        used instead of being read again.

    Returns
    -------
    Volume
        ``array`` (z, y, x) HU as int16 or float32; ``spacing_mm``, ``origin_lps_mm``,
        ``direction`` (orthonormal, columns = x, y, z axes in LPS); ``metadata`` without patient
        identifiers; ``warnings`` naming every correction made.

    Raises
    ------
    spinect_core.errors.InputError
        A specific subclass for each problem (no images, not CT, single slice, missing
        slices, gantry tilt not correctable, not HU, inconsistent series, unsupported format).
    """
    p = _existing(path)
    if p.is_file() and image_format(p):
        return load_image(p, options=options, progress=progress)
    _refuse_unknown_file(p)
    scanned = scan.headers if scan is not None and Path(scan.path) == p else None
    return load_dicom(p, options=options, progress=progress, scanned=scanned)


def list_series(path: str | os.PathLike, *, progress: ProgressCallback | None = None
                ) -> list[SeriesInfo]:
    """Every series found at ``path`` (headers only; no patient identifiers).

    For an image file the list has one entry describing it. DICOM series are ordered CT first,
    then by extent along the slice normal.
    """
    return list(scan_series(path, progress=progress).series)


def scan_series(path: str | os.PathLike, *, progress: ProgressCallback | None = None
                ) -> SeriesScan:
    """:func:`list_series` that also keeps the DICOM headers read, for :func:`load_ct`."""
    p = _existing(path)
    if p.is_file() and image_format(p):
        return SeriesScan(path=p, series=(image_series_info(p),))
    _refuse_unknown_file(p)
    headers = dicom_scan.scan(p, progress=progress)
    return SeriesScan(path=p, series=tuple(series_list(headers)), headers=headers)


def _existing(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise NoImagesFoundError(f"{p} does not exist; check the path")
    if not (p.is_file() or p.is_dir()):
        raise UnsupportedFormatError(f"{p} is neither a file nor a folder")
    return p


def _refuse_unknown_file(p: Path) -> None:
    """A file that is neither an image format we know nor DICOM gets a specific error."""
    if not p.is_file():
        return
    from pydicom.misc import is_dicom

    if not is_dicom(p):
        raise UnsupportedFormatError(
            f"{p.name} is not DICOM, NIfTI (.nii/.nii.gz), NRRD (.nrrd/.nhdr) or MHA (.mha/.mhd); "
            "choose a DICOM folder or one of those files")
