"""Load a CT volume from DICOM: a folder (recursive), a single- or multi-frame file.

Pipeline: scan headers (:mod:`~spinect_core.io.dicom_scan`) -> choose a series -> read pixels of
that series only (files that fail are skipped with a warning) -> rescale to HU -> regularise the
geometry (:mod:`~spinect_core.io.stack_geometry`: irregular spacing, gantry tilt) -> check that
values are HU (:mod:`~spinect_core.io.hounsfield`).

Series choice when none is requested: among CT series whose slices agree in in-plane geometry,
the one with the largest extent along the slice normal, then the most slices. The others are
named in ``volume.warnings`` (and by :func:`list_dicom_series`).

Compressed transfer syntaxes (JPEG, JPEG-LS, JPEG 2000, RLE) are decoded by pydicom with the
pylibjpeg plugins.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from spinect_core.errors import (
    InconsistentSeriesError,
    NoImagesFoundError,
    NotCTError,
    SingleSliceError,
)
from spinect_core.io.dicom_scan import ScanResult, SeriesGroup, SliceRecord, scan
from spinect_core.io.hounsfield import check_hounsfield
from spinect_core.io.integrity import check_finite, check_volume_size
from spinect_core.io.options import LoadOptions
from spinect_core.io.series import SeriesInfo
from spinect_core.io.stack_geometry import plan_stack, resample_stack
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.volume import CTMetadata, Volume

log = logging.getLogger(__name__)

_INT16 = np.iinfo(np.int16)


def list_dicom_series(path: str | Path, *, progress: ProgressCallback | None = None
                      ) -> list[SeriesInfo]:
    """Summaries of every image series under ``path`` (headers only), largest CT first."""
    return series_list(scan(Path(path), progress=progress))


def series_list(result: ScanResult) -> list[SeriesInfo]:
    """Summaries of the series of a header scan (:func:`scan`), largest CT first."""
    infos = [series_info(g) for g in result.groups]
    return sorted(infos, key=lambda i: (i.modality != "CT", -i.extent_mm, -i.number_of_slices))


def series_info(group: SeriesGroup) -> SeriesInfo:
    """Summary of a scanned series (no pixels read)."""
    first = group.slices[0]
    spacing_z, extent = 0.0, 0.0
    if len(group.slices) > 1 and not group.problem:
        normal = np.cross(first.orientation[:3], first.orientation[3:])
        s = np.sort([rec.position_lps_mm @ normal for rec in group.slices])
        spacing_z = float(np.median(np.diff(s)))
        extent = float(s[-1] - s[0])
    return SeriesInfo(
        uid=group.uid, description=group.description, modality=group.modality,
        number_of_slices=len(group.slices), size=(first.columns, first.rows, len(group.slices)),
        spacing_mm=(first.pixel_spacing_xy_mm[0], first.pixel_spacing_xy_mm[1], spacing_z),
        extent_mm=extent, convolution_kernel=group.convolution_kernel, source_format="dicom",
        problem=group.problem or ("single slice" if len(group.slices) < 2 else ""))


def load_dicom(path: str | Path, *, options: LoadOptions | None = None,
               progress: ProgressCallback | None = None,
               scanned: ScanResult | None = None) -> Volume:
    """Load one CT series from a DICOM folder or file.

    Parameters
    ----------
    path : path-like
        A folder (searched recursively), a multi-frame DICOM file, or one file of a series (the
        series is then read from the files beside it).
    options : LoadOptions, optional
        Series choice and correction policies.
    progress : callable, optional
        ``(fraction, message)``; returning False cancels (:class:`~spinect_core.errors.Cancelled`).
    scanned : ScanResult, optional
        The header scan of ``path`` made earlier (:func:`~spinect_core.io.dicom_scan.scan`, e.g.
        to list the series and let the user choose); the headers are then not read again.

    Returns
    -------
    Volume
        ``array`` (z, y, x) in HU, int16 when the rescale is exact in int16, else float32;
        LPS geometry with orthonormal direction (columns: row, column, slice normal).

    Raises
    ------
    NoImagesFoundError, NotCTError, SingleSliceError, MissingSlicesError, GantryTiltError,
    VolumeTooSmallError, NonFiniteValuesError, NotHounsfieldError, InconsistentSeriesError
        See :mod:`spinect_core.errors`; messages are one line without patient identifiers.
        A non-CT object is named by its kind ("the input is a DICOM Secondary Capture, not a CT
        series"); one series UID holding interleaved acquisitions is refused.
    """
    opts = options or LoadOptions()
    path = Path(path)
    warnings: list[str] = []
    result = (scanned if scanned is not None
              else scan(path, progress=sub_progress(progress, 0.0, 0.25)))
    wanted_uid = opts.series_uid
    if path.is_file() and not wanted_uid and _is_lone_slice(result):
        # One file of a classic series: read its siblings (same SeriesInstanceUID) as well.
        wanted_uid = result.groups[0].uid
        result = scan(path.parent, progress=sub_progress(progress, 0.0, 0.25))
        # No folder name: folders are often named after the patient.
        warnings.append("a single file was given: loaded its series from the files beside it")
    if result.unreadable:
        warnings.append(_skipped_message(result.unreadable, "could not be read as DICOM"))
    group = _choose(result, wanted_uid, path)
    others = [g for g in result.groups if g is not group]
    for g in others[:10]:
        warnings.append(f"another series was found and not loaded: {series_info(g).summary()}")
    if len(others) > 10:
        warnings.append(f"... and {len(others) - 10} more series not loaded")
    if group.localizers:
        warnings.append(f"ignored {group.localizers} localizer image(s) of the series")

    # Read in slice order so the stack normally needs no reordering copy.
    o = group.slices[0].orientation
    normal = np.cross(o[:3], o[3:])
    ordered = sorted(group.slices, key=lambda r: float(r.position_lps_mm @ normal))
    slices, records, skipped, headers = _read_pixels(ordered, sub_progress(progress, 0.25, 0.9))
    if skipped:
        if not opts.skip_corrupt_files:
            raise InconsistentSeriesError(_skipped_message(skipped, "have unreadable pixel data"))
        warnings.append(_skipped_message(skipped, "have unreadable pixel data and were skipped"))
    if len(records) < 2:
        raise SingleSliceError(
            f"the series has {len(records)} readable slice(s); a 3D CT needs at least two "
            "- load the folder with the whole series")
    first = records[0]
    plan = plan_stack(
        np.stack([r.position_lps_mm for r in records]), first.orientation[:3],
        first.orientation[3:], first.pixel_spacing_xy_mm, (first.rows, first.columns),
        max_gap_ratio=opts.max_gap_ratio, allow_tilt=opts.correct_gantry_tilt,
        allow_irregular=opts.resample_irregular)
    warnings.extend(plan.warnings)
    in_order = bool(np.array_equal(plan.order, np.arange(len(records))))
    array = slices if in_order else slices[plan.order]
    headers = headers if in_order else [headers[i] for i in plan.order]
    array = resample_stack(array, plan, fill_value=opts.fill_value_hu,
                           progress=sub_progress(progress, 0.9, 0.98))
    check_volume_size(array.shape, plan.spacing_mm, min_voxels_per_axis=opts.min_voxels_per_axis,
                      min_extent_mm=opts.min_extent_mm, source="the CT series")
    check_finite(array, source="the CT series")
    if opts.check_hounsfield:
        missing_intercept = (group.pixel_representation == 0
                             and not any(r.has_intercept for r in records))
        check_hounsfield(array, padding_value=group.padding_value,
                         missing_intercept=missing_intercept,
                         source="the CT series")  # never the free-text description
    thickness = [r.slice_thickness_mm for r in records if r.slice_thickness_mm]
    metadata = CTMetadata(
        modality=group.modality, series_description=group.description,
        convolution_kernel=group.convolution_kernel,
        slice_thickness_mm=float(np.median(thickness)) if thickness else None,
        manufacturer=group.manufacturer, source_format="dicom",
        series_instance_uid=group.uid, frame_of_reference_uid=group.frame_of_reference_uid,
        study_instance_uid=group.study_instance_uid, source_headers=tuple(headers))
    for w in warnings:
        log.info("%s", w)
    report(progress, 1.0, "CT loaded")
    return Volume(array=array, spacing_mm=plan.spacing_mm, origin_lps_mm=plan.origin_lps_mm,
                  direction=plan.direction, metadata=metadata, warnings=warnings)


def _is_lone_slice(result: ScanResult) -> bool:
    return (len(result.groups) == 1 and len(result.groups[0].slices) == 1
            and result.groups[0].slices[0].frame is None and bool(result.groups[0].uid))


def _choose(result: ScanResult, wanted_uid: str | None, path: Path) -> SeriesGroup:
    """The series to load (see the module docstring), or a specific error."""
    groups = result.groups
    if wanted_uid:
        matches = [g for g in groups if g.uid == wanted_uid]
        if not matches:
            raise NoImagesFoundError(
                f"series {wanted_uid} is not in {path.name or path}; found {len(groups)} "
                "series - run `spinect info` to list them")
        group = matches[0]
    else:
        if not groups:
            if result.non_image_kinds:
                raise NotCTError(_not_ct_message(result.non_image_kinds))
            if result.dicomdir_listed is not None or result.dicomdirs:
                raise NoImagesFoundError(_dicomdir_message(result))
            extra = (f" ({len(result.unreadable)} DICOM file(s) were unreadable)"
                     if result.unreadable else "")
            raise NoImagesFoundError(
                f"no DICOM images found in {path}{extra}; choose a folder with a CT series "
                "or a NIfTI/NRRD/MHA file")
        ct = [g for g in groups if g.is_ct]
        if not ct:
            kinds: Counter = Counter(result.non_image_kinds)
            for g in groups:
                kinds[g.kind] += len(g.slices)
            raise NotCTError(_not_ct_message(kinds))
        good = [g for g in ct if not g.problem]
        pool = good or ct
        group = max(pool, key=lambda g: (series_info(g).extent_mm, len(g.slices)))
    if not group.is_ct:
        raise NotCTError(f"the series is a DICOM {group.kind}, not a CT series; SPINECT needs a "
                         "CT series")
    if group.problem:
        raise InconsistentSeriesError(f"the CT series cannot form one volume: {group.problem}; "
                                      "re-export it")
    if len(group.slices) < 2:
        raise SingleSliceError("the CT series has a single slice; a 3D CT volume is needed - "
                               "export the whole series")
    return group


def _read_pixels(records: list[SliceRecord], progress: ProgressCallback | None
                 ) -> tuple[np.ndarray, list[SliceRecord], list[str], list]:
    """Read and rescale the pixels of ``records``.

    Returns (slices, kept records, skipped names, headers): the array is (n, rows, cols) int16
    when every rescale is exact in int16, else float32; ``headers[i]`` is the dataset of kept
    record ``i`` without its pixel data (one shared dataset for the frames of a multi-frame
    file), kept in memory for derived DICOM objects.
    """
    import pydicom

    exact = all(r.slope == 1.0 and float(r.intercept).is_integer() for r in records)
    rows, cols = records[0].rows, records[0].columns
    out = np.empty((len(records), rows, cols), dtype=np.int16 if exact else np.float32)
    by_file: dict[Path, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        by_file[rec.path].append(i)
    ok = np.zeros(len(records), dtype=bool)
    headers: list = [None] * len(records)
    skipped: list[str] = []
    for n_done, (file, indices) in enumerate(by_file.items()):
        if n_done % 8 == 0:
            report(progress, n_done / len(by_file), f"reading DICOM pixels ({n_done}/{len(by_file)})")
        try:
            ds = pydicom.dcmread(file)
            pixels = ds.pixel_array
            if records[indices[0]].frame is None:
                pixels = pixels[None]
            if pixels.shape[-2:] != (rows, cols) or pixels.ndim != 3:
                raise ValueError(f"pixel data shape {pixels.shape} does not match the header")
        except Exception as exc:  # noqa: BLE001 - truncated or undecodable pixel data
            log.debug("unreadable pixels in %s: %s", file.name, exc)
            skipped.append(file.name)
            continue
        # The header only: the pixels are in ``out``, a second copy would double the memory.
        del ds.PixelData
        for i in indices:
            headers[i] = ds
            rec = records[i]
            frame = pixels[rec.frame if rec.frame is not None else 0]
            if out.dtype == np.int16:
                values = frame.astype(np.int32) + int(rec.intercept)
                if values.min() < _INT16.min or values.max() > _INT16.max:
                    out = out.astype(np.float32)  # rare: leaves int16 range, keep exact values
                out[i] = values
            else:
                out[i] = frame.astype(np.float32) * np.float32(rec.slope) + np.float32(rec.intercept)
            ok[i] = True
    report(progress, 1.0, "pixels read")
    kept = [r for r, good in zip(records, ok) if good]
    kept_headers = [h for h, good in zip(headers, ok) if good]
    return (out if ok.all() else out[ok]), kept, skipped, kept_headers


def _not_ct_message(kinds: Counter) -> str:
    """"the input is a DICOM Secondary Capture, not a CT series", or the list of what it holds."""
    items = kinds.most_common()
    if len(items) == 1:
        kind, n = items[0]
        what = f"a DICOM {kind}" + (f" ({n} objects)" if n > 1 else "")
        return f"the input is {what}, not a CT series; SPINECT needs a CT series"
    listed = ", ".join(f"{kind} ({n})" for kind, n in items[:6])
    return (f"the input holds DICOM {listed} objects, not a CT series; SPINECT needs a CT "
            "series")


def _dicomdir_message(result: ScanResult) -> str:
    if result.dicomdir_listed is not None:
        if result.dicomdir_listed == 0:
            return ("the input is a DICOMDIR (the index of a DICOM disc) that lists no images; "
                    "open the folder holding the CT series")
        if result.dicomdir_found == 0:
            return (f"the input is a DICOMDIR (the index of a DICOM disc) listing "
                    f"{result.dicomdir_listed} files, but none of them is beside it; copy the "
                    "whole disc (the DICOMDIR and its folders) and open it again")
    return ("the input holds a DICOMDIR (the index of a DICOM disc) but none of the images it "
            "indexes; copy the whole disc (the DICOMDIR and its folders) and open it again")


def _skipped_message(names: list[str], what: str) -> str:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{len(names)} file(s) {what}: {shown}"
