"""Write a volume as a DICOM CT series (one CT Image Storage file per slice, fresh UIDs).

Used by tests to build synthetic series and by exports (e.g. the phantom's ``--dicom``). The
files hold no patient identifiers: PatientName and PatientID are empty (type 2), no dates; every
other Type 2 attribute of the CT Image IOD is present and empty (:data:`EMPTY_TYPE2`), so the
files pass ``dciodvfy`` and highdicom accepts them as source images. Derived objects (SEG, SR,
reformats) are written by :mod:`~spinect_core.io.dicom_derived` and its siblings.
HU values are rounded to integers and stored as signed 16-bit with RescaleSlope 1 and
RescaleIntercept 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from spinect_core.io.atomic import atomic_path
from spinect_core.progress import ProgressCallback, report
from spinect_core.volume import Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def new_uid() -> str:
    """A new DICOM UID (pydicom's root)."""
    from pydicom.uid import generate_uid

    return str(generate_uid())


def file_dataset(sop_class: str, sop_uid: str) -> "Dataset":
    """An empty DICOM file dataset of ``sop_class`` (explicit VR little endian file meta)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    return ds


@dataclass(frozen=True, kw_only=True)
class DicomUIDs:
    """Study, series and frame-of-reference UIDs shared by the files of one series."""

    study_instance_uid: str = field(default_factory=new_uid)
    series_instance_uid: str = field(default_factory=new_uid)
    frame_of_reference_uid: str = field(default_factory=new_uid)


def ds_number(value: float) -> str:
    """A decimal string (DS) of at most 16 characters keeping as many digits as fit."""
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value))


def ct_slice_dataset(
    pixels_hu: np.ndarray,
    *,
    position_lps_mm: np.ndarray,
    orientation: np.ndarray,
    pixel_spacing_xy_mm: tuple[float, float],
    slice_thickness_mm: float,
    instance_number: int,
    uids: DicomUIDs,
    series_description: str = "",
    series_number: int = 1,
    modality: str = "CT",
) -> Any:
    """One CT slice as a pydicom ``FileDataset`` (uncompressed, explicit VR little endian).

    Parameters
    ----------
    pixels_hu : np.ndarray, shape (rows, columns)
        HU values of the slice (rounded to int16).
    position_lps_mm : np.ndarray, shape (3,)
        ImagePositionPatient: LPS centre of pixel (row 0, column 0).
    orientation : np.ndarray, shape (6,)
        ImageOrientationPatient: row (x) direction then column (y) direction.
    pixel_spacing_xy_mm : (float, float)
        Spacing along x (between columns) and y (between rows); written as PixelSpacing [y, x].
    slice_thickness_mm : float
        SliceThickness.
    instance_number : int
        InstanceNumber (1-based by convention).
    uids : DicomUIDs
        Shared UIDs; the SOPInstanceUID is new.
    """
    ds = file_dataset(CT_IMAGE_STORAGE, new_uid())
    ds.StudyInstanceUID = uids.study_instance_uid
    ds.SeriesInstanceUID = uids.series_instance_uid
    ds.FrameOfReferenceUID = uids.frame_of_reference_uid
    ds.Modality = modality
    ds.PatientName = ""  # type 2: present and empty, never an identifier
    ds.PatientID = ""
    ds.BodyPartExamined = "LSPINE"  # unpaired: no Laterality (see EMPTY_TYPE2)
    set_empty_type2(ds)
    ds.SeriesDescription = series_description
    ds.SeriesNumber = series_number
    ds.InstanceNumber = int(instance_number)
    ds.Manufacturer = "SPINECT"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.ImagePositionPatient = [ds_number(v) for v in np.asarray(position_lps_mm).reshape(3)]
    ds.ImageOrientationPatient = [ds_number(v) for v in np.asarray(orientation).reshape(6)]
    ds.PixelSpacing = [ds_number(pixel_spacing_xy_mm[1]), ds_number(pixel_spacing_xy_mm[0])]
    ds.SliceThickness = ds_number(slice_thickness_mm)
    ds.KVP = "120"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    set_int16_pixels(ds, np.clip(np.rint(pixels_hu), -32768, 32767))
    return ds


#: Type 2 (and 2C) attributes of the CT Image IOD that may be empty: Patient, General Study,
#: General Series, Frame of Reference, General Equipment and CT Image modules. dciodvfy reports
#: each one missing as an error and highdicom refuses a source image without them. Laterality
#: (2C) is left out: the lumbar spine is unpaired, so it must be absent, and BodyPartExamined
#: ``LSPINE`` tells validators so.
EMPTY_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
               "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
               "PatientPosition", "PositionReferenceIndicator", "Manufacturer", "AcquisitionNumber")


def set_empty_type2(ds: Dataset, names: tuple[str, ...] = EMPTY_TYPE2) -> None:
    """Add each attribute of ``names`` that ``ds`` lacks, empty (Type 2: present, may be empty)."""
    for name in names:
        if name not in ds:
            setattr(ds, name, None if name == "AcquisitionNumber" else "")


def set_int16_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    """Store signed 16-bit greyscale pixels and the image pixel module tags that describe them.

    Parameters
    ----------
    ds : pydicom Dataset
    pixels : np.ndarray, shape (rows, columns) or (frames, rows, columns)
        Values that fit int16 (the caller rounds and clips); a 3D array is a multi-frame image
        (``NumberOfFrames`` is the caller's to set).
    """
    data = np.asarray(pixels).astype("<i2")
    ds.Rows, ds.Columns = data.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = data.tobytes()


def write_dicom_series(
    volume: Volume,
    folder: str | os.PathLike,
    *,
    series_description: str | None = None,
    series_number: int = 1,
    modality: str = "CT",
    uids: DicomUIDs | None = None,
    transfer_syntax: str | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Write ``volume`` as a DICOM series, one file ``IM00001.dcm``... per z slice.

    Parameters
    ----------
    volume : Volume
        HU array (z, y, x) with LPS geometry; slice k lies at ``origin + k * spacing_z * dir_z``.
    folder : path-like
        Created if needed; existing files of the same names are refused unless ``overwrite``.
    series_description : str, optional
        Defaults to ``volume.metadata.series_description``.
    uids : DicomUIDs, optional
        Fresh UIDs by default.
    transfer_syntax : str, optional
        A UID pydicom can encode here (RLE Lossless; JPEG 2000 Lossless with pylibjpeg-openjpeg);
        default explicit VR little endian, uncompressed.
    progress : callable, optional
        ``(fraction, message)``; returning False cancels.

    Returns
    -------
    list of Path
        The files written, in slice order.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    uids = uids or DicomUIDs()
    desc = volume.metadata.series_description if series_description is None else series_description
    d = volume.direction
    orientation = np.concatenate([d[:, 0], d[:, 1]])
    thickness = volume.metadata.slice_thickness_mm or float(volume.spacing_mm[2])
    nz = volume.array.shape[0]
    paths = []
    for k in range(nz):
        report(progress, k / nz, f"writing DICOM slice {k + 1}/{nz}")
        position = volume.origin_lps_mm + d[:, 2] * volume.spacing_mm[2] * k
        ds = ct_slice_dataset(
            volume.array[k], position_lps_mm=position, orientation=orientation,
            pixel_spacing_xy_mm=(float(volume.spacing_mm[0]), float(volume.spacing_mm[1])),
            slice_thickness_mm=thickness, instance_number=k + 1, uids=uids,
            series_description=desc, series_number=series_number, modality=modality)
        if transfer_syntax:
            ds.compress(transfer_syntax)
        path = target / f"IM{k + 1:05d}.dcm"
        with atomic_path(path, overwrite=overwrite) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        paths.append(path)
    report(progress, 1.0, "DICOM series written")
    return paths
