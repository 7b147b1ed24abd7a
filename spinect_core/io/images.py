"""Load a CT from a single image file: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MHA/MHD.

SimpleITK reads the file and gives geometry in LPS (ITK's convention): a NIfTI affine, which is
RAS by the NIfTI standard, is converted by ITK on reading (x and y negated), so the volume we return
is LPS for every format. Image files carry no modality: once the Hounsfield check passes the
volume is labelled CT.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from spinect_core.errors import SingleSliceError, TruncatedFileError, UnsupportedFormatError
from spinect_core.io.hounsfield import check_hounsfield
from spinect_core.io.integrity import (check_finite, check_image_file, check_volume_size,
                                       truncation_message)
from spinect_core.io.options import LoadOptions
from spinect_core.io.series import SeriesInfo
from spinect_core.progress import ProgressCallback, report
from spinect_core.volume import CTMetadata, Volume

#: Lower-case file endings -> ``CTMetadata.source_format``.
IMAGE_FORMATS = {
    ".nii.gz": "nifti", ".nii": "nifti", ".nrrd": "nrrd", ".nhdr": "nrrd",
    ".mha": "mha", ".mhd": "mha",
}


def image_format(path: str | Path) -> str | None:
    """``"nifti"``, ``"nrrd"``, ``"mha"`` from the file name, or None for other files."""
    name = Path(path).name.lower()
    for suffix, fmt in IMAGE_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    return None


def image_series_info(path: str | Path) -> SeriesInfo:
    """Summary of an image file from its header (pixels are not read).

    The header's spacing is checked (a missing or non-positive spacing raises
    :class:`~spinect_core.errors.InvalidSpacingError`); so is a truncated file, which for a
    ``.nii.gz`` costs inflating the stream once. No description: a file name is not one, and it
    is often the patient's name.
    """
    import SimpleITK as sitk

    path = Path(path)
    check_image_file(path, image_format(path) or "")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise _read_error(path, exc) from None
    size = list(reader.GetSize()) + [1] * (3 - reader.GetDimension())
    spacing = list(reader.GetSpacing()) + [1.0] * (3 - reader.GetDimension())
    return SeriesInfo(
        uid="", description="", modality="", number_of_slices=int(size[2]),
        size=(int(size[0]), int(size[1]), int(size[2])),
        spacing_mm=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        extent_mm=float(spacing[2] * (size[2] - 1)), source_format=image_format(path) or "")


def load_image(path: str | Path, *, options: LoadOptions | None = None,
               progress: ProgressCallback | None = None) -> Volume:
    """Load a 3D CT image file.

    Parameters
    ----------
    path : path-like
        NIfTI, NRRD or MHA/MHD file.
    options : LoadOptions, optional
        Only ``check_hounsfield`` applies to image files.
    progress : callable, optional
        ``(fraction, message)``; returning False cancels.

    Returns
    -------
    Volume
        ``array`` (z, y, x): int16 when the file holds integers within int16, else float32;
        geometry in LPS as ITK gives it.

    Raises
    ------
    TruncatedFileError
        The file (or its gzip stream) ends before the data its header describes.
    InvalidSpacingError
        A missing, zero, negative or non-finite voxel spacing in the header.
    UnsupportedFormatError
        Unreadable file, colour/vector pixels, 4D data, or a sheared (non-orthogonal) affine.
    SingleSliceError
        A 2D image or a single slice.
    VolumeTooSmallError
        Fewer voxels or a smaller field of view than ``options`` accept.
    NonFiniteValuesError
        NaN or infinite voxels (counted and located in the message).
    NotHounsfieldError
        Intensities that are not HU (see :mod:`spinect_core.io.hounsfield`).
    """
    import SimpleITK as sitk

    opts = options or LoadOptions()
    path = Path(path)
    fmt = image_format(path) or ""
    report(progress, 0.0, f"reading {path.name}")
    check_image_file(path, fmt)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise _read_error(path, exc) from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise UnsupportedFormatError(
            f"{path.name} has {image.GetNumberOfComponentsPerPixel()} values per voxel (colour "
            "or vector image); a CT has one - export a scalar HU image")
    if image.GetDimension() == 4:
        if image.GetSize()[3] != 1:
            raise UnsupportedFormatError(
                f"{path.name} is 4D ({image.GetSize()[3]} volumes); export a single 3D CT")
        image = image[:, :, :, 0]
    if image.GetDimension() == 2 or image.GetSize()[2] < 2:
        raise SingleSliceError(f"{path.name} is a single 2D slice; a 3D CT volume is needed")
    array = sitk.GetArrayFromImage(image)
    report(progress, 0.8, "checking intensities")
    check_volume_size(array.shape, image.GetSpacing(), min_voxels_per_axis=opts.min_voxels_per_axis,
                      min_extent_mm=opts.min_extent_mm, source=path.name)
    check_finite(array, source=path.name)
    if np.issubdtype(array.dtype, np.integer) and array.size and (
            array.min() >= np.iinfo(np.int16).min and array.max() <= np.iinfo(np.int16).max):
        array = array.astype(np.int16, copy=False)
    else:
        array = array.astype(np.float32, copy=False)
    if opts.check_hounsfield:
        check_hounsfield(array, source=path.name)
    volume = Volume(
        array=array, spacing_mm=np.array(image.GetSpacing()),
        origin_lps_mm=np.array(image.GetOrigin()),
        direction=np.array(image.GetDirection()).reshape(3, 3),
        metadata=CTMetadata(modality="CT", source_format=fmt))
    report(progress, 1.0, "CT loaded")
    return volume


def _read_error(path: Path, exc: RuntimeError) -> UnsupportedFormatError | TruncatedFileError:
    text = str(exc)
    if re.search(r"expected \d+ bytes but received|data not read completely|unexpected end",
                 text, re.IGNORECASE):
        return TruncatedFileError(truncation_message(path.name))
    if "orthonormal" in text.lower():
        return UnsupportedFormatError(
            f"{path.name} has a sheared (non-orthogonal) affine, e.g. an uncorrected gantry "
            "tilt; resample it onto an orthogonal grid or load the original DICOM series")
    last = [line.strip() for line in text.splitlines() if line.strip()]
    detail = last[-1][:160] if last else "unknown error"
    return UnsupportedFormatError(f"cannot read {path.name} as an image ({detail}); "
                                  "use a valid NIfTI, NRRD or MHA file")
