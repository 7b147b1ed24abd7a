"""Find DICOM images under a path and group them into series, reading headers only.

Headers are read with ``stop_before_pixels`` so scanning a 400-file series costs well under a
second. Every image frame becomes a :class:`SliceRecord` (a single-frame file is one record; a
multi-frame file gives one record per frame with its own position), so the loader treats
classic series, Enhanced CT and plain multi-frame files alike.

Grouping: by SeriesInstanceUID; files without one are grouped by FrameOfReferenceUID, orientation,
matrix size and pixel spacing. Within a SeriesInstanceUID, slices with a different in-plane
geometry make the series *inconsistent* (localizer images are set aside first), and so do two
acquisitions (AcquisitionNumber) whose slices interleave along the slice normal: merged, they
would make one volume of alternating slices from two scans (blocks of a step-and-shoot scan that
meet or overlap by a slice or two are not interleaved).

What each object is comes from its SOP class (:func:`sop_kind`), so a Secondary Capture (a
screenshot) that carries Modality CT is not taken for a CT image, and a refusal can name what
was given ("a DICOM Secondary Capture, not a CT series"). A DICOMDIR given as the input is read
through its index: the files it lists (found case-insensitively, as on a disc) are scanned, or,
when none of them is there, the folder holding it.

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
#: Media Storage Directory (DICOMDIR).
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
#: Prefix of the SOP classes of the DICOM standard (others are private).
_STANDARD_PREFIX = "1.2.840.10008."
#: Interleaved acquisitions: at least this many slices of one lie inside the other's range ...
INTERLEAVE_MIN_SLICES = 3
#: ... and at least this share of the smaller acquisition's slices.
INTERLEAVE_MIN_SHARE = 0.2


def sop_kind(sop_class_uid: str, modality: str = "") -> str:
    """What a DICOM object is, for messages: ``"CT"``, ``"Secondary Capture"``, ``"Basic Text
    SR"``, ``"RT Structure Set"``, ``"MR"``... (the SOP class name without "Image Storage"),
    else the modality, else ``"object of unknown type"``."""
    sop = (sop_class_uid or "").strip()
    if sop in CT_SOP_CLASSES:
        return "CT"
    if sop == DICOMDIR_SOP_CLASS:
        return "DICOMDIR"
    if sop.startswith(_STANDARD_PREFIX):
        from pydicom.uid import UID

        name = UID(sop).name
        if name != sop:
            for tail in (" Storage", " Image"):
                name = name.removesuffix(tail)
            return {"Positron Emission Tomography": "PET"}.get(name, name)
    return modality or "object of unknown type"


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
    acquisition: str = ""  # AcquisitionNumber ("" when absent)

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
    sop_class_uid: str = ""
    slices: list[SliceRecord] = field(default_factory=list)
    localizers: int = 0
    problem: str = ""  # why the slices cannot form one volume ("" when consistent)

    @property
    def is_ct(self) -> bool:
        """Modality CT in a CT image SOP class (or a private / missing one): a Secondary Capture
        with Modality CT is a picture of a CT, not one."""
        sop = self.sop_class_uid
        return self.modality == "CT" and (not sop or sop in CT_SOP_CLASSES
                                          or not sop.startswith(_STANDARD_PREFIX))

    @property
    def kind(self) -> str:
        """What the series is, for messages (see :func:`sop_kind`)."""
        if self.is_ct:
            return "CT"
        if not self.sop_class_uid or self.sop_class_uid in CT_SOP_CLASSES:
            return self.modality or "object of unknown type"  # a CT SOP class saying e.g. MR
        return sop_kind(self.sop_class_uid, self.modality)


@dataclass(kw_only=True)
class ScanResult:
    """Everything found under a path."""

    groups: list[SeriesGroup]
    n_files: int = 0
    unreadable: list[str] = field(default_factory=list)  # file names of corrupt DICOM files
    #: Objects that are no 3D image slices, by kind (:func:`sop_kind`): SR, RT, PDF, a
    #: Secondary Capture without geometry, ...
    non_image_kinds: Counter = field(default_factory=Counter)
    dicomdirs: int = 0  # DICOMDIR files met (given, or inside a scanned folder)
    dicomdir_listed: int | None = None  # files listed by the DICOMDIR given as the input
    dicomdir_found: int = 0  # of those, files present


def iter_files(path: Path) -> list[Path]:
    """All regular files under ``path`` (recursive, sorted; hidden files skipped)."""
    if path.is_file():
        return [path]
    files: list[Path] = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
    return files


def scan(path: Path, *, progress: ProgressCallback | None = None) -> ScanResult:
    """Read the headers of every file under ``path`` and group the images into series."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    listed: int | None = None
    if path.is_file() and is_dicomdir(path):
        files, listed = dicomdir_files(path)
        if not files:  # a copied index without its folders, or paths we cannot resolve
            files = [f for f in iter_files(path.parent) if f != path]
    else:
        files = iter_files(path)
    by_key: dict[Any, SeriesGroup] = {}
    result = ScanResult(groups=[], n_files=len(files), dicomdir_listed=listed,
                        dicomdir_found=len(files) if listed is not None else 0)
    if listed is not None:
        result.dicomdirs = 1
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
        sop = _sop_class(ds)
        if sop == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
            if listed is None:
                result.dicomdirs += 1
            continue
        modality = str(ds.get("Modality", "") or "").upper()
        if "Rows" not in ds or "Columns" not in ds:
            if _looks_like_truncated_image(ds):
                result.unreadable.append(f.name)
                continue
            if modality or sop:
                result.non_image_kinds[sop_kind(sop, modality)] += 1
            continue
        try:
            records = _records(ds, f)
        except Exception as exc:  # noqa: BLE001 - malformed geometry tags
            if sop.startswith(_STANDARD_PREFIX) and sop not in CT_SOP_CLASSES:
                # A 2D picture without patient geometry (Secondary Capture, X-ray, ...):
                # not damaged, just not a CT slice.
                result.non_image_kinds[sop_kind(sop, modality)] += 1
                continue
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
            sop_class_uid=_sop_class(ds),
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
    acquisition = str(ds.get("AcquisitionNumber", "") or "").strip()
    top_slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    has_intercept = "RescaleIntercept" in ds
    top_intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)

    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if n_frames > 1 and per_frame:
        return _enhanced_records(ds, path, rows, cols, localizer, sop)

    iop = np.array([float(v) for v in ds.ImageOrientationPatient], dtype=np.float64)
    ipp = np.array([float(v) for v in ds.ImagePositionPatient], dtype=np.float64)
    spacing_rc = [float(v) for v in ds.PixelSpacing]
    common: dict[str, Any] = dict(path=path, orientation=iop, pixel_spacing_xy_mm=(spacing_rc[1], spacing_rc[0]),
                  rows=rows, columns=cols, slope=top_slope, intercept=top_intercept,
                  has_intercept=has_intercept, slice_thickness_mm=thickness, localizer=localizer,
                  acquisition=acquisition)
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
        return
    group.problem = _interleaved_acquisitions(group.slices)


def _interleaved_acquisitions(slices: list[SliceRecord]) -> str:
    """Why the slices hold interleaved acquisitions ("" when they do not).

    Two acquisitions (AcquisitionNumber) interleave when at least
    :data:`INTERLEAVE_MIN_SLICES` slices, and :data:`INTERLEAVE_MIN_SHARE` of the smaller one's,
    lie strictly inside the other's range along the slice normal. Blocks of a step-and-shoot
    scan, one acquisition per block or per slice, do not.
    """
    by_acq: dict[str, list[float]] = {}
    o = slices[0].orientation
    normal = np.cross(o[:3], o[3:])
    for rec in slices:
        by_acq.setdefault(rec.acquisition, []).append(float(rec.position_lps_mm @ normal))
    if len(by_acq) < 2:
        return ""
    groups = sorted(((a, np.sort(s)) for a, s in by_acq.items() if len(s) >= 2),
                    key=lambda item: -len(item[1]))
    for i, (a, sa) in enumerate(groups):
        for b, sb in groups[i + 1:]:
            tol = 0.05 * float(np.median(np.diff(sa))) if len(sa) > 1 else 0.0
            inside_b = int(np.count_nonzero((sb > sa[0] + tol) & (sb < sa[-1] - tol)))
            inside_a = int(np.count_nonzero((sa > sb[0] + tol) & (sa < sb[-1] - tol)))
            inside = max(inside_a, inside_b)
            smaller = min(len(sa), len(sb))
            if inside >= INTERLEAVE_MIN_SLICES and inside >= INTERLEAVE_MIN_SHARE * smaller:
                name_a, name_b = (x or "none" for x in (a, b))
                return (f"it holds {len(by_acq)} acquisitions whose slices interleave along the "
                        f"slice normal (AcquisitionNumber {name_a} and {name_b}: {len(sa)} and "
                        f"{len(sb)} slices over the same range), so one volume would mix two "
                        "scans; export each acquisition as its own series")
    return ""


def _sop_class(ds: Any) -> str:
    sop = str(ds.get("SOPClassUID", "") or "")
    if not sop and getattr(ds, "file_meta", None) is not None:
        sop = str(ds.file_meta.get("MediaStorageSOPClassUID", "") or "")
    return sop.strip()


def is_dicomdir(path: Path) -> bool:
    """True for a DICOMDIR file (the index of a DICOM disc or folder)."""
    import pydicom

    if path.name.upper() == "DICOMDIR":
        return True
    try:
        meta = pydicom.filereader.read_file_meta_info(path)
    except Exception:  # noqa: BLE001 - not DICOM (Part 10) at all
        return False
    return str(meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_SOP_CLASS


def dicomdir_files(path: Path) -> tuple[list[Path], int]:
    """``(files present, files listed)`` of the image records of a DICOMDIR.

    ReferencedFileID components are resolved below the DICOMDIR's folder, case-insensitively and
    without ISO 9660 version suffixes (``IM1;1``), as a disc copied to another file system has
    them. An unreadable DICOMDIR lists nothing.
    """
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - a damaged index: fall back to the folder
        log.debug("unreadable DICOMDIR %s: %s", path.name, exc)
        return [], 0
    root = path.parent
    listed: list[list[str]] = []
    for rec in ds.get("DirectoryRecordSequence", []) or []:
        ref = rec.get("ReferencedFileID")
        if ref is None or ref == "":
            continue
        parts = [str(p) for p in _as_list(ref)] if not isinstance(ref, str) else [ref]
        listed.append(parts)
    found: list[Path] = []
    seen: set[Path] = set()
    cache: dict[Path, dict[str, str]] = {}
    for parts in listed:
        p = _resolve_case(root, parts, cache)
        if p is not None and p not in seen:
            seen.add(p)
            found.append(p)
    return found, len(listed)


def _resolve_case(root: Path, parts: list[str], cache: dict[Path, dict[str, str]]) -> Path | None:
    direct = root.joinpath(*parts)
    if direct.is_file():
        return direct
    current = root
    for part in parts:
        key = part.split(";")[0].upper()
        if current not in cache:
            try:
                cache[current] = {n.split(";")[0].upper(): n for n in os.listdir(current)}
            except OSError:
                return None
        name = cache[current].get(key)
        if name is None:
            return None
        current = current / name
    return current if current.is_file() else None


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
