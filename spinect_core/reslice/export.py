"""Export oblique planes: NIfTI (3D affine), PNG (overlay + needle), DICOM (derived CT series).

Every writer is atomic and refuses to overwrite an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from spinect_core.io.atomic import atomic_path, check_writable
from spinect_core.reslice.plane import ObliquePlane
from spinect_core.reslice.render import RenderOptions, render_plane
from spinect_core.volume import CTMetadata


def _new_uid() -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid())

__all__ = ["export_plane_nifti", "export_plane_png", "export_plane_dicom", "export_planes"]


def export_plane_nifti(plane: ObliquePlane, path: str | os.PathLike, *,
                       labels_path: str | os.PathLike | None = None,
                       overwrite: bool = False) -> list[Path]:
    """Write the plane as a one-slice NIfTI (or NRRD / MHA, by extension) with its 3D affine.

    The image's direction columns are the column axis, the row axis and their cross product, so
    3D Slicer (and any ITK reader) puts every pixel at its LPS position.

    Parameters
    ----------
    plane : ObliquePlane
    path : path-like
        ``.nii.gz`` (recommended), ``.nii``, ``.nrrd`` or ``.mha``; float32 HU.
    labels_path : path-like, optional
        Also write the resampled labels (uint8) and their label-table sidecar JSON here.
    overwrite : bool

    Returns
    -------
    list of Path
        The image (and label map) written.
    """
    from spinect_core.io.labelmap import save_label_map, sidecar_path, write_image

    if labels_path is not None:
        if plane.labels is None or plane.table is None:
            raise ValueError("this plane has no labels to export")
        # Refuse up front so that we never leave the CT written without its labels.
        check_writable(labels_path, overwrite=overwrite)
        check_writable(sidecar_path(labels_path), overwrite=overwrite)
    check_writable(path, overwrite=overwrite)
    written = [write_image(plane.to_volume("ct"), path, overwrite=overwrite)]
    if labels_path is not None:
        written.append(save_label_map(plane.to_volume("labels"), plane.table, labels_path,
                                      overwrite=overwrite))
    return written


def export_plane_png(plane: ObliquePlane, path: str | os.PathLike, *,
                     options: RenderOptions | None = None, overwrite: bool = False) -> Path:
    """Write :func:`~spinect_core.reslice.render.render_plane`'s picture as a PNG (no metadata)."""
    from PIL import Image

    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ValueError(f"PNG export needs a .png path, got {target.name}")
    rgb = render_plane(plane, options=options)
    with atomic_path(target, overwrite=overwrite) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    return target


def export_plane_dicom(plane: ObliquePlane, folder: str | os.PathLike, *,
                       source_metadata: CTMetadata | None = None,
                       series_description: str | None = None, series_number: int = 901,
                       overwrite: bool = False) -> Path:
    """Write the plane as a one-image derived CT series ``folder/IM00001.dcm``.

    New SeriesInstanceUID and SOPInstanceUID; the source's StudyInstanceUID and
    FrameOfReferenceUID (so viewers register it with the CT; new ones when the source has none);
    ImageType ``DERIVED\\SECONDARY\\AXIAL`` (the CT Image IOD allows only AXIAL or LOCALIZER as
    value 3, and AXIAL covers oblique cross-sections); ImageOrientationPatient = column axis,
    row axis; ImagePositionPatient = pixel (0, 0); PixelSpacing = pixel_mm. HU are rounded to
    int16. No patient identifiers (PatientName and PatientID are empty).

    Parameters
    ----------
    plane : ObliquePlane
    folder : path-like
        Created if needed.
    source_metadata : CTMetadata, optional
        The CT's metadata; default ``plane.source_metadata``.
    series_description : str, optional
        Default ``plane.description`` (e.g. "SPINECT oblique plane (needle)").
    series_number : int
    overwrite : bool

    Returns
    -------
    Path
        The file written.
    """
    from spinect_core.io.dicom_write import DicomUIDs, ct_slice_dataset

    meta = source_metadata if source_metadata is not None else plane.source_metadata
    uids = DicomUIDs(study_instance_uid=meta.study_instance_uid or _new_uid(),
                     series_instance_uid=_new_uid(),
                     frame_of_reference_uid=meta.frame_of_reference_uid or _new_uid())
    image = np.where(plane.inside, plane.image, -1024.0)
    ds = ct_slice_dataset(
        image, position_lps_mm=plane.origin_lps_mm,
        orientation=np.concatenate([plane.col_axis_lps, plane.row_axis_lps]),
        pixel_spacing_xy_mm=(plane.pixel_mm, plane.pixel_mm), slice_thickness_mm=plane.pixel_mm,
        instance_number=1, uids=uids,
        series_description=series_description if series_description is not None else plane.description,
        series_number=int(series_number))
    ds.DerivationDescription = ("oblique reformat through the planned needle trajectory "
                                "(trilinear interpolation), SPINECT planner")
    if meta.series_instance_uid:
        from pydicom.dataset import Dataset

        ref = Dataset()
        ref.SeriesInstanceUID = meta.series_instance_uid
        ds.ReferencedSeriesSequence = [ref]
    target = Path(folder) / "IM00001.dcm"
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, overwrite=overwrite) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return target


def export_planes(planes: tuple[ObliquePlane, ...] | list[ObliquePlane], folder: str | os.PathLike,
                  *, source_metadata: CTMetadata | None = None, png_options: RenderOptions | None = None,
                  dicom: bool = True, overwrite: bool = False) -> dict[str, list[Path]]:
    """Write each plane as ``<kind>_plane.nii.gz`` (+ ``_labels``), ``.png`` and a DICOM folder.

    All DICOM series share one study and frame of reference (the source's, or new shared UIDs
    when the source has none).

    Returns
    -------
    dict
        ``kind -> files written``.
    """
    out = Path(folder)
    meta = source_metadata if source_metadata is not None else planes[0].source_metadata
    meta = dataclasses.replace(meta, study_instance_uid=meta.study_instance_uid or _new_uid(),
                               frame_of_reference_uid=meta.frame_of_reference_uid or _new_uid())
    written: dict[str, list[Path]] = {}
    for number, plane in enumerate(planes, start=901):
        stem = f"{plane.kind}_plane"
        files = export_plane_nifti(
            plane, out / f"{stem}.nii.gz",
            labels_path=out / f"{stem}_labels.nii.gz" if plane.labels is not None else None,
            overwrite=overwrite)
        files.append(export_plane_png(plane, out / f"{stem}.png", options=png_options,
                                      overwrite=overwrite))
        if dicom:
            files.append(export_plane_dicom(plane, out / f"{stem}_dicom", source_metadata=meta,
                                            series_number=number, overwrite=overwrite))
        written[plane.kind] = files
    return written
