"""Find DICOM images under a path and group them into series, reading headers only.

Headers are read with ``stop_before_pixels`` so scanning a 400-file series costs well under a
second. Every image frame becomes a :class:`SliceRecord` (a single-frame file is one record; a
multi-frame file gives one record per frame with its own position), so the loader treats
classic series, Enhanced CT and plain multi-frame files alike.

Grouping: by SeriesInstanceUID; files without one are grouped by FrameOfReferenceUID, orientation,
matrix size and pixel spacing. Within a SeriesInstanceUID, slices with a different in-plane
geometry make the series *inconsistent* (localizer images are set aside first).

Nothing here reads or returns patient identifiers (name, ID, dates).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spinect_core.progress import ProgressCallback, report

log = logging.getLogger(__name__)

#: SOP classes whose frames are CT images even when Modality is missing.
CT_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT Image Storage
}


@dataclass(frozen=True, kw_only=True)
class SliceRecord:
    """One 2D image (a file, or one frame of a multi-frame file) and its geometry.

    Attributes
    ----------
    path : Path
        File holding the pixels.
    frame : int or None
        Frame index in a multi-frame file, None for a single-frame file.
    position_lps_mm : np.ndarray, shape (3,)
        ImagePositionPatient: centre of the first transmitted pixel.
    orientation : np.ndarray, shape (6,)
        ImageOrientationPatient: row direction (x), then column direction (y).
    pixel_spacing_xy_mm : tuple of float
        Spacing between columns (x) and between rows (y); DICOM PixelSpacing reversed.
    rows, columns : int
        Matrix size.
    slope, intercept : float
        Rescale to HU.
    has_intercept : bool
        RescaleIntercept was present.
    """

    path: Path
    frame: int | None
    position_lps_mm: np.ndarray
    orientation: np.ndarray
    pixel_spacing_xy_mm: tuple[float, float]
    rows: int
    columns: int
    slope: float = 1.0
    intercept: float = 0.0
    has_intercept: bool = True
    slice_thickness_mm: float | None = None
    localizer: bool = False
    sop_instance_uid: str = ""

    def geometry_key(self) -> tuple:
        """In-plane geometry, rounded so that header rounding noise does not split a series."""
        return (tuple(np.round(self.orientation, 3)), self.rows, self.columns,
                tuple(round(v, 3) for v in self.pixel_spacing_xy_mm))


@dataclass(kw_only=True)
class SeriesGroup:
    """Slices that belong to one series, with non-identifying descriptive tags."""

    uid: str
    modality: str
    description: str = ""
    convolution_kernel: str = ""
    manufacturer: str = ""
    frame_of_reference_uid: str = ""
    study_instance_uid: str = ""
    pixel_representation: int = 1
    padding_value: float | None = None
    slices: list[SliceRecord] = field(default_factory=list)
    localizers: int = 0
    problem: str = ""  # why the slices cannot form one volume ("" when consistent)

    @property
    def is_ct(self) -> bool:
        return self.modality == "CT"


@dataclass(kw_only=True)
class ScanResult:
    """Everything found under a path."""

    groups: list[SeriesGroup]
    n_files: int = 0
    unreadable: list[str] = field(default_factory=list)  # file names of corrupt DICOM files
    non_image_modalities: Counter = field(default_factory=Counter)  # SR, PR, ... objects


def iter_files(path: Path) -> list[Path]:
    """All regular files under ``path`` (recursive, sorted; hidden files skipped)."""
    if path.is_file():
        return [path]
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
    return files


def scan(path: Path, *, progress: ProgressCallback | None = None) -> ScanResult:
    """Read the headers of every file under ``path`` and group the images into series."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    files = iter_files(path)
    by_key: dict[Any, SeriesGroup] = {}
    result = ScanResult(groups=[], n_files=len(files))
    for i, f in enumerate(files):
        if i % 32 == 0:
            report(progress, i / max(len(files), 1), f"reading DICOM headers ({i}/{len(files)})")
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except InvalidDicomError:
            if f.suffix.lower() == ".dcm":  # named DICOM but unreadable: say so
                result.unreadable.append(f.name)
            continue  # otherwise not DICOM at all (README, thumbnails, ...): silently ignored
        except Exception as exc:  # noqa: BLE001 - any parse failure means a corrupt file
            log.debug("unreadable DICOM header in %s: %s", f.name, exc)
            result.unreadable.append(f.name)
            continue
        if "Rows" not in ds or "Columns" not in ds:
            if _looks_like_truncated_image(ds):
                result.unreadable.append(f.name)
                continue
            modality = str(ds.get("Modality", "") or "")
            if modality:
                result.non_image_modalities[modality] += 1
            continue
        try:
            records = _records(ds, f)
        except Exception as exc:  # noqa: BLE001 - malformed geometry tags
            log.debug("bad geometry in %s: %s", f.name, exc)
            result.unreadable.append(f.name)
            continue
        _add(by_key, ds, records)
    report(progress, 1.0, f"read {len(files)} DICOM headers")
    result.groups = [g for g in by_key.values() if g.slices]
    for g in result.groups:
        _check_consistency(g)
    return result


def _add(by_key: dict[Any, SeriesGroup], ds: Any, records: list[SliceRecord]) -> None:
    uid = str(ds.get("SeriesInstanceUID", "") or "").strip()
    for_uid = str(ds.get("FrameOfReferenceUID", "") or "")
    if uid:
        key: Any = ("uid", uid)
    else:
        # No series UID: files that share frame of reference and in-plane geometry belong together.
        key = ("geometry", for_uid, records[0].geometry_key())
    group = by_key.get(key)
    if group is None:
        modality = str(ds.get("Modality", "") or "").upper()
        if not modality and str(ds.get("SOPClassUID", "")) in CT_SOP_CLASSES:
            modality = "CT"
        padding = ds.get("PixelPaddingValue")
        group = by_key[key] = SeriesGroup(
            uid=uid, modality=modality,
            description=str(ds.get("SeriesDescription", "") or ""),
            convolution_kernel=_text(ds.get("ConvolutionKernel", "")),
            manufacturer=str(ds.get("Manufacturer", "") or ""),
            frame_of_reference_uid=for_uid,
            study_instance_uid=str(ds.get("StudyInstanceUID", "") or ""),
            pixel_representation=int(ds.get("PixelRepresentation", 1) or 0),
            padding_value=(float(padding) * records[0].slope + records[0].intercept
                           if isinstance(padding, (int, float)) else None),
        )
    group.slices.extend(records)


def _records(ds: Any, path: Path) -> list[SliceRecord]:
    """Slice records of one dataset (one per frame)."""
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    rows, cols = int(ds.Rows), int(ds.Columns)
    image_type = [str(v).upper() for v in _as_list(ds.get("ImageType", []))]
    localizer = "LOCALIZER" in image_type
    thickness = _float_or_none(ds.get("SliceThickness"))
    sop = str(ds.get("SOPInstanceUID", "") or "")
    top_slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    has_intercept = "RescaleIntercept" in ds
    top_intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)

    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if n_frames > 1 and per_frame:
        return _enhanced_records(ds, path, rows, cols, localizer, sop)

    iop = np.array([float(v) for v in ds.ImageOrientationPatient], dtype=np.float64)
    ipp = np.array([float(v) for v in ds.ImagePositionPatient], dtype=np.float64)
    spacing_rc = [float(v) for v in ds.PixelSpacing]
    common = dict(path=path, orientation=iop, pixel_spacing_xy_mm=(spacing_rc[1], spacing_rc[0]),
                  rows=rows, columns=cols, slope=top_slope, intercept=top_intercept,
                  has_intercept=has_intercept, slice_thickness_mm=thickness, localizer=localizer)
    if n_frames == 1:
        return [SliceRecord(frame=None, position_lps_mm=ipp, sop_instance_uid=sop, **common)]
    # Plain multi-frame with shared geometry: frames step along the normal by
    # GridFrameOffsetVector, or else SpacingBetweenSlices (SliceThickness as a last resort).
    normal = np.cross(iop[:3], iop[3:])
    offsets = ds.get("GridFrameOffsetVector")
    if offsets is not None and len(offsets) == n_frames:
        steps = [float(v) for v in offsets]
    else:
        step = _float_or_none(ds.get("SpacingBetweenSlices")) or thickness
        if not step:
            raise ValueError("multi-frame image without per-frame positions or slice spacing")
        steps = [k * step for k in range(n_frames)]
    return [SliceRecord(frame=k, position_lps_mm=ipp + steps[k] * normal,
                        sop_instance_uid=f"{sop}#{k}", **common) for k in range(n_frames)]


def _enhanced_records(ds: Any, path: Path, rows: int, cols: int, localizer: bool,
                      sop: str) -> list[SliceRecord]:
    """Per-frame geometry of an Enhanced (multi-frame) CT from its functional groups."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared = shared[0] if shared else None
    has_top_intercept = "RescaleIntercept" in ds
    out = []
    for k, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        def find(seq_name: str, attr: str, item: Any = item) -> Any:
            for source in (item, shared):
                if source is not None and seq_name in source and len(source[seq_name].value):
                    inner = source[seq_name][0]
                    if attr in inner:
                        return inner[attr].value
            return ds.get(attr)

        ipp = find("PlanePositionSequence", "ImagePositionPatient")
        iop = find("PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = find("PixelMeasuresSequence", "PixelSpacing")
        if ipp is None or iop is None or spacing is None:
            raise ValueError(f"frame {k} lacks position, orientation or pixel spacing")
        slope = find("PixelValueTransformationSequence", "RescaleSlope")
        intercept = find("PixelValueTransformationSequence", "RescaleIntercept")
        thickness = find("PixelMeasuresSequence", "SliceThickness")
        out.append(SliceRecord(
            path=path, frame=k,
            position_lps_mm=np.array([float(v) for v in ipp]),
            orientation=np.array([float(v) for v in iop]),
            pixel_spacing_xy_mm=(float(spacing[1]), float(spacing[0])),
            rows=rows, columns=cols,
            slope=float(slope) if slope is not None else 1.0,
            intercept=float(intercept) if intercept is not None else 0.0,
            has_intercept=intercept is not None or has_top_intercept,
            slice_thickness_mm=_float_or_none(thickness), localizer=localizer,
            sop_instance_uid=f"{sop}#{k}"))
    return out


def _check_consistency(group: SeriesGroup) -> None:
    """Set localizers aside and flag a series whose slices disagree in in-plane geometry."""
    # Identical SOP instances (the same file copied twice) count once.
    seen: set[str] = set()
    unique = []
    for rec in group.slices:
        if rec.sop_instance_uid and rec.sop_instance_uid in seen:
            continue
        seen.add(rec.sop_instance_uid)
        unique.append(rec)
    group.slices = unique
    keys = Counter(rec.geometry_key() for rec in group.slices)
    if len(keys) > 1:
        kept = [rec for rec in group.slices if not rec.localizer]
        if kept and len(kept) < len(group.slices):
            group.localizers = len(group.slices) - len(kept)
            group.slices = kept
            keys = Counter(rec.geometry_key() for rec in kept)
    if len(keys) > 1:
        (a, _), (b, _) = keys.most_common(2)
        what = []
        if a[0] != b[0]:
            what.append("orientation")
        if a[1:3] != b[1:3]:
            what.append(f"matrix size ({a[2]}x{a[1]} vs {b[2]}x{b[1]})")
        if a[3] != b[3]:
            what.append(f"pixel spacing ({a[3][0]:g} vs {b[3][0]:g} mm)")
        group.problem = (f"its slices disagree in {' and '.join(what) or 'in-plane geometry'} "
                         f"({len(keys)} different geometries)")


def _looks_like_truncated_image(ds: Any) -> bool:
    """An image whose header ends early (pydicom reads a cut file up to the cut silently)."""
    return (str(ds.get("SOPClassUID", "")) in CT_SOP_CLASSES
            or "ImagePositionPatient" in ds or "PixelSpacing" in ds)


def _as_list(value: Any) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, str):
        return list(value)
    return [value]


def _text(value: Any) -> str:
    return "\\".join(str(v) for v in _as_list(value))


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
