"""Export oblique planes: NIfTI (3D affine) and PNG (overlay + needle).

Every writer is atomic and refuses to overwrite an existing file unless ``overwrite=True``.

The planes as DICOM are written by the plan exports only
(:func:`spinect_core.report.exports.write_plan_outputs`, ``dicom/planes_<side>_<kind>/``), through
:func:`spinect_core.io.dicom_derived.plane_dataset`: a derived CT series that carries the source
CT's patient, study and frame of reference and references the source slices, so a PACS files it
with the CT. (The writer that was here wrote a series without the patient module, which a PACS
filed as another patient's study.)
"""

from __future__ import annotations

import os
from pathlib import Path

from spinect_core.io.atomic import atomic_path, check_writable
from spinect_core.reslice.plane import ObliquePlane
from spinect_core.reslice.render import RenderOptions, render_plane

__all__ = ["export_plane_nifti", "export_plane_png", "export_planes"]


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


def export_planes(planes: tuple[ObliquePlane, ...] | list[ObliquePlane], folder: str | os.PathLike,
                  *, png_options: RenderOptions | None = None,
                  overwrite: bool = False) -> dict[str, list[Path]]:
    """Write each plane as ``<kind>_plane.nii.gz`` (+ ``_labels.nii.gz`` and its sidecar) and
    ``<kind>_plane.png`` into ``folder``.

    Returns
    -------
    dict
        ``kind -> files written``.
    """
    out = Path(folder)
    written: dict[str, list[Path]] = {}
    for plane in planes:
        stem = f"{plane.kind}_plane"
        files = export_plane_nifti(
            plane, out / f"{stem}.nii.gz",
            labels_path=out / f"{stem}_labels.nii.gz" if plane.labels is not None else None,
            overwrite=overwrite)
        files.append(export_plane_png(plane, out / f"{stem}.png", options=png_options,
                                      overwrite=overwrite))
        written[plane.kind] = files
    return written
