"""Derived DICOM images that a PACS files with their CT: oblique reformats and screenshots.

Every derived object carries the **source CT's** Patient, General Study and Frame of Reference
modules (same PatientName, PatientID, StudyInstanceUID and FrameOfReferenceUID), so a PACS files
it in the CT's study of the CT's patient; DICOM requires the patient module, so the identifiers
are copied into the DICOM files (and only there: file names, PNG, HTML and logs stay free of
them). The General Equipment module names the software that made the object (SPINECT), as the
standard asks of a derived object; the source's institution is not copied.

References to the source instances:

* ``SourceImageSequence`` (General Image / derivation, purpose *Source image for image
  processing operation*) lists the source slices the image was computed from, with
  ``DerivationCodeSequence`` (*Multiplanar reformatting* for the planes);
* ``ReferencedSeriesSequence`` (Common Instance Reference module) names the source series with
  its ``ReferencedInstanceSequence``, as the module requires.

When the CT was not read from DICOM (NIfTI, NRRD, a phantom) there are no source headers:
:func:`dicom_source` then makes a *generated* study (new Study and Series UIDs, PatientName
present and empty, PatientID :data:`GENERATED_PATIENT_ID`), keeps the CT's FrameOfReferenceUID
when it has one, and the derived objects reference the generated CT instances (which are not
written). ``plan.json`` says so (``dicom.source == "generated"``).

Objects written here:

* :func:`plane_dataset`: an oblique plane as a one-image derived CT series (CT Image Storage,
  ImageType ``DERIVED\\SECONDARY\\AXIAL``; AXIAL because the CT Image IOD allows only AXIAL or
  LOCALIZER as value 3, and it covers oblique cross-sections), registered to the CT through the
  shared frame of reference.
* :func:`secondary_capture_dataset`: an RGB picture (the 3D screenshots, the simulated
  fluoroscopy) as a Secondary Capture; a picture with a row / column patient direction (the DRR)
  names it in PatientOrientation (:func:`patient_orientation`).
* :func:`encapsulated_pdf_dataset`: the PDF report as an Encapsulated PDF.
"""

from __future__ import annotations

import copy
import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

from spinect_core.io.atomic import atomic_path
from spinect_core.io.dicom_write import (CT_IMAGE_STORAGE, EMPTY_TYPE2, ds_number, file_dataset,
                                         new_uid, set_empty_type2, set_int16_pixels)
from spinect_core.volume import Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "GENERATED_PATIENT_ID", "MANUFACTURER", "SECONDARY_CAPTURE_STORAGE", "DicomSource",
    "dicom_source", "encapsulated_pdf_dataset", "new_uid", "patient_orientation",
    "plane_dataset", "secondary_capture_dataset", "write_dataset",
]

#: PatientID of the generated study made for a CT without DICOM source (neutral, the same for
#: every case: it identifies no one).
GENERATED_PATIENT_ID = "SPINECT-ANON"
MANUFACTURER = "SPINECT"
MODEL_NAME = "SPINECT planner"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"

#: Attributes copied from the source: Patient, Patient Study and General Study modules, the
#: General Series attributes that describe the patient (position, body part, laterality) and the
#: Frame of Reference module.
PATIENT_STUDY_ATTRIBUTES = (
    "SpecificCharacterSet",
    # Patient
    "PatientName", "PatientID", "IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence",
    "PatientBirthDate", "PatientBirthTime", "PatientSex", "OtherPatientIDsSequence",
    "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
    "PatientSpeciesDescription", "PatientSpeciesCodeSequence", "ResponsiblePerson",
    # Patient Study
    "PatientAge", "PatientSize", "PatientWeight",
    # General Study
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
    "AccessionNumber", "IssuerOfAccessionNumberSequence", "StudyDescription",
)
SERIES_PATIENT_ATTRIBUTES = ("PatientPosition", "BodyPartExamined", "Laterality")
FRAME_OF_REFERENCE_ATTRIBUTES = ("FrameOfReferenceUID", "PositionReferenceIndicator")


def _version() -> str:
    from spinect_core import __version__

    return str(__version__)


def _code(value: str, scheme: str, meaning: str) -> "Dataset":
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


@dataclass(frozen=True)
class DicomSource:
    """The source CT as derived DICOM objects need it.

    Attributes
    ----------
    headers : tuple of pydicom Dataset
        One header (no pixel data) per source slice, in the loader's z order (the frames of a
        multi-frame source share one dataset); one per slice of the CT volume when
        :attr:`on_grid`. Generated headers when :attr:`generated`.
    generated : bool
        True when the CT had no DICOM source and the study is made up (see the module docstring).
    on_grid : bool
        ``headers[k]`` is slice ``k`` of the volume's grid (same position and orientation). False
        when the loader resampled the stack (gantry tilt, irregular spacing).
    study_instance_uid, series_instance_uid, frame_of_reference_uid : str
        Of the source (or generated) CT series.
    """

    headers: tuple[Any, ...]
    generated: bool
    on_grid: bool
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str

    @property
    def template(self) -> "Dataset":
        """The header whose patient and study modules the derived objects copy."""
        return self.headers[0]

    def instances(self, indices: Sequence[int] | None = None) -> list[tuple[str, str]]:
        """``(SOPClassUID, SOPInstanceUID)`` of the source instances (of the slices
        ``indices``), each once, in slice order."""
        chosen = self.headers if indices is None else [self.headers[i] for i in indices]
        seen: set[str] = set()
        out = []
        for ds in chosen:
            uid = str(ds.SOPInstanceUID)
            if uid not in seen:
                seen.add(uid)
                out.append((str(ds.SOPClassUID), uid))
        return out

    def unique_headers(self) -> list["Dataset"]:
        """One header per source instance (multi-frame files once), in slice order."""
        seen: set[str] = set()
        out = []
        for ds in self.headers:
            if str(ds.SOPInstanceUID) not in seen:
                seen.add(str(ds.SOPInstanceUID))
                out.append(ds)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The UIDs for ``plan.json`` (no patient identifiers)."""
        return {"source": "generated" if self.generated else "dicom",
                "study_instance_uid": self.study_instance_uid,
                "series_instance_uid": self.series_instance_uid,
                "frame_of_reference_uid": self.frame_of_reference_uid}


def dicom_source(ct: Volume) -> DicomSource:
    """The DICOM context of ``ct``: its source headers, or a generated study.

    Parameters
    ----------
    ct : Volume
        The CT as loaded; ``ct.metadata.source_headers`` holds the headers when it was read
        from DICOM (:func:`spinect_core.io.dicom.load_dicom`).

    Returns
    -------
    DicomSource
    """
    headers = tuple(ct.metadata.source_headers)
    if headers:
        first = headers[0]
        return DicomSource(
            headers=headers, generated=False, on_grid=_on_grid(ct, headers),
            study_instance_uid=str(first.get("StudyInstanceUID", "")
                                   or ct.metadata.study_instance_uid),
            series_instance_uid=str(first.get("SeriesInstanceUID", "")
                                    or ct.metadata.series_instance_uid),
            frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")
                                       or ct.metadata.frame_of_reference_uid))
    return _generated_source(ct)


def _on_grid(ct: Volume, headers: Sequence[Any], tol_mm: float = 0.01) -> bool:
    """Whether each header is the single-frame slice of the volume at its index."""
    if len(headers) != ct.shape_zyx[0]:
        return False
    d = ct.direction
    want_iop = np.concatenate([d[:, 0], d[:, 1]])
    for k, ds in enumerate(headers):
        if int(ds.get("NumberOfFrames", 1) or 1) != 1 or "ImagePositionPatient" not in ds:
            return False
        ipp = np.array([float(v) for v in ds.ImagePositionPatient])
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        if (np.abs(ipp - ct.index_to_lps(np.array([0.0, 0.0, k]))).max() > tol_mm
                or np.abs(iop - want_iop).max() > 1e-4):
            return False
    return True


def _generated_source(ct: Volume) -> DicomSource:
    """A made-up study and CT series for a CT without DICOM headers (see the module docstring).

    A new StudyInstanceUID: reusing a real study's UID with an empty patient is what makes a
    PACS file the objects as a second study of an empty patient.
    """
    from pydicom.dataset import Dataset

    study, series = new_uid(), new_uid()
    frame = ct.metadata.frame_of_reference_uid or new_uid()
    base = Dataset()
    base.SOPClassUID = CT_IMAGE_STORAGE
    base.Modality = "CT"
    base.PatientName = ""
    base.PatientID = GENERATED_PATIENT_ID
    base.StudyInstanceUID = study
    base.SeriesInstanceUID = series
    base.FrameOfReferenceUID = frame
    base.BodyPartExamined = "LSPINE"
    set_empty_type2(base, EMPTY_TYPE2)
    d = ct.direction
    base.ImageOrientationPatient = [ds_number(v) for v in np.concatenate([d[:, 0], d[:, 1]])]
    base.PixelSpacing = [ds_number(ct.spacing_mm[1]), ds_number(ct.spacing_mm[0])]
    base.SliceThickness = ds_number(ct.metadata.slice_thickness_mm or ct.spacing_mm[2])
    base.Rows, base.Columns = ct.shape_zyx[1], ct.shape_zyx[2]
    base.SamplesPerPixel = 1
    base.PhotometricInterpretation = "MONOCHROME2"
    base.BitsAllocated = 16
    base.BitsStored = 16
    base.HighBit = 15
    base.PixelRepresentation = 1
    headers = []
    for k in range(ct.shape_zyx[0]):
        ds = copy.deepcopy(base)
        ds.SOPInstanceUID = new_uid()
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [ds_number(v) for v in ct.index_to_lps(np.array([0.0, 0.0, k]))]
        headers.append(ds)
    return DicomSource(headers=tuple(headers), generated=True, on_grid=True,
                       study_instance_uid=study, series_instance_uid=series,
                       frame_of_reference_uid=frame)


# --- shared modules ----------------------------------------------------------------------------------
def copy_patient_and_study(source: DicomSource, ds: "Dataset") -> None:
    """Copy the Patient, Patient Study, General Study and Frame of Reference modules (and the
    patient-describing series attributes) of the source into ``ds``; fill missing Type 2
    attributes empty."""
    template = source.template
    for name in PATIENT_STUDY_ATTRIBUTES + SERIES_PATIENT_ATTRIBUTES + FRAME_OF_REFERENCE_ATTRIBUTES:
        if name in template:
            ds[name] = copy.deepcopy(template[name])
    if "BodyPartExamined" not in ds and "Laterality" not in ds:
        ds.BodyPartExamined = "LSPINE"  # unpaired: Laterality stays absent
    set_empty_type2(ds, tuple(n for n in EMPTY_TYPE2 if n != "AcquisitionNumber"))


def _set_equipment_and_dates(ds: "Dataset", *, series_description: str, series_number: int,
                             instance_number: int) -> None:
    now = datetime.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.SeriesDate, ds.SeriesTime = date, time
    ds.ContentDate, ds.ContentTime = date, time
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL_NAME
    ds.SoftwareVersions = _version()
    ds.SeriesDescription = series_description
    ds.SeriesNumber = int(series_number)
    ds.InstanceNumber = int(instance_number)


def _references(ds: "Dataset", source: DicomSource, instances: list[tuple[str, str]], *,
                derivation: tuple[str, str, str] | None, description: str) -> None:
    """SourceImageSequence, DerivationCodeSequence and the Common Instance Reference module."""
    from pydicom.dataset import Dataset

    purpose = _code("121322", "DCM", "Source image for image processing operation")
    items = []
    for sop_class, sop_uid in instances:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_uid
        item.PurposeOfReferenceCodeSequence = [copy.deepcopy(purpose)]
        items.append(item)
    ds.SourceImageSequence = items
    ds.DerivationDescription = description
    if derivation is not None:
        ds.DerivationCodeSequence = [_code(*derivation)]
    series = Dataset()
    series.SeriesInstanceUID = source.series_instance_uid
    refs = []
    for sop_class, sop_uid in instances:
        ref = Dataset()
        ref.ReferencedSOPClassUID = sop_class
        ref.ReferencedSOPInstanceUID = sop_uid
        refs.append(ref)
    series.ReferencedInstanceSequence = refs
    ds.ReferencedSeriesSequence = [series]


# --- oblique planes ----------------------------------------------------------------------------------
class PlaneImage(Protocol):
    """What the writers read from an oblique plane (an
    :class:`spinect_core.reslice.plane.ObliquePlane` has it), typed here so that io does not
    import the reslice layer above it.

    Attributes
    ----------
    image : np.ndarray, shape (rows, cols)
        HU.
    inside : np.ndarray, shape (rows, cols), bool
        Pixels inside the CT.
    origin_lps_mm : np.ndarray, shape (3,)
        LPS mm of pixel (0, 0).
    col_axis_lps, row_axis_lps : np.ndarray, shape (3,)
        Unit LPS directions of increasing column and row.
    pixel_mm : float
        Pixel size, mm.
    description : str
        Default series description.
    """

    image: np.ndarray
    inside: np.ndarray
    origin_lps_mm: np.ndarray
    col_axis_lps: np.ndarray
    row_axis_lps: np.ndarray
    pixel_mm: float
    description: str

    @property
    def shape(self) -> tuple[int, int]: ...

    def pixel_to_lps(self, rows: Any, cols: Any) -> np.ndarray: ...


def plane_source_slices(plane: PlaneImage, ct: Volume, source: DicomSource
                        ) -> list[int] | None:
    """Indices of the source slices the plane passes through (``None``: all of them, when the
    source slices are not the volume's grid)."""
    nz = ct.shape_zyx[0]
    if not source.on_grid:
        return None
    h, w = plane.shape
    corners = plane.pixel_to_lps(np.array([0, 0, h - 1, h - 1]), np.array([0, w - 1, 0, w - 1]))
    k = ct.lps_to_index(corners)[:, 2]
    lo = int(np.clip(np.floor(k.min()), 0, nz - 1))
    hi = int(np.clip(np.ceil(k.max()), 0, nz - 1))
    return list(range(lo, hi + 1))


def plane_dataset(plane: PlaneImage, source: DicomSource, *, ct: Volume,
                  series_number: int = 901, series_description: str | None = None,
                  series_instance_uid: str | None = None) -> "Dataset":
    """One oblique plane as a one-image derived CT series (see the module docstring).

    Parameters
    ----------
    plane : PlaneImage
        An :class:`~spinect_core.reslice.plane.ObliquePlane`:
        HU image (H, W); ImageOrientationPatient = its column axis then row axis (LPS),
        ImagePositionPatient = the LPS centre of pixel (0, 0), PixelSpacing = ``pixel_mm``.
        Pixels outside the CT get -1024 HU.
    source : DicomSource
        From :func:`dicom_source` of ``ct``.
    ct : Volume
        The CT the plane was cut from (which source slices it crosses).
    series_number : int
    series_description : str, optional
        Default ``plane.description``.
    series_instance_uid : str, optional
        New by default.

    Returns
    -------
    pydicom FileDataset
        Explicit VR little endian, int16 HU (RescaleSlope 1, RescaleIntercept 0).
    """
    sop_uid = new_uid()
    ds = file_dataset(CT_IMAGE_STORAGE, sop_uid)
    copy_patient_and_study(source, ds)
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_instance_uid or new_uid()
    _set_equipment_and_dates(
        ds, series_description=(plane.description if series_description is None
                                else series_description),
        series_number=series_number, instance_number=1)
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.AcquisitionNumber = None
    template = source.template
    ds.KVP = copy.deepcopy(template["KVP"].value) if "KVP" in template else None
    ds.ImagePositionPatient = [ds_number(v) for v in plane.origin_lps_mm]
    ds.ImageOrientationPatient = [ds_number(v) for v in
                                  np.concatenate([plane.col_axis_lps, plane.row_axis_lps])]
    ds.PixelSpacing = [ds_number(plane.pixel_mm), ds_number(plane.pixel_mm)]
    ds.SliceThickness = ds_number(plane.pixel_mm)
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "400"  # a bone window: the plane is read for bone, root and needle
    ds.WindowWidth = "1800"
    image = np.where(plane.inside, plane.image, -1024.0)
    set_int16_pixels(ds, np.clip(np.rint(image), -32768, 32767))
    _references(ds, source, source.instances(plane_source_slices(plane, ct, source)),
                derivation=("113072", "DCM", "Multiplanar reformatting"),
                description=("oblique reformat through the planned needle trajectory "
                             "(trilinear interpolation), SPINECT planner"))
    return ds


# --- screenshots ---------------------------------------------------------------------------------------
def patient_orientation(row_axis_lps: Sequence[float], col_axis_lps: Sequence[float], *,
                        min_share: float = 0.3) -> list[str]:
    """PatientOrientation (0020,0020) of a picture from its pixel axes in LPS.

    Parameters
    ----------
    row_axis_lps, col_axis_lps : (3,)
        LPS directions of increasing row (image down) and increasing column (image right).
    min_share : float
        A patient direction is named when its component is at least this share of the axis
        (largest first, at most two letters, e.g. "RP").

    Returns
    -------
    list of two str
        The direction of the rows (along increasing column) and of the columns (along
        increasing row) in DICOM letters: L/R, A/P, H (head) / F (feet).
    """
    letters = (("L", "R"), ("P", "A"), ("H", "F"))  # LPS +x, +y, +z and their opposites

    def name(axis: Sequence[float]) -> str:
        v = np.asarray(axis, dtype=np.float64).reshape(3)
        v = v / max(float(np.linalg.norm(v)), 1e-12)
        order = np.argsort(-np.abs(v))
        out = [letters[a][0 if v[a] > 0 else 1] for a in order if abs(v[a]) >= min_share]
        return "".join(out[:2]) or letters[order[0]][0 if v[order[0]] > 0 else 1]

    return [name(col_axis_lps), name(row_axis_lps)]


def secondary_capture_dataset(rgb: np.ndarray, source: DicomSource, *, series_description: str,
                              series_number: int, derivation_description: str,
                              series_instance_uid: str | None = None,
                              orientation: Sequence[str] | None = None,
                              burned_in_annotation: bool = True) -> "Dataset":
    """An RGB picture as a Secondary Capture image of the source's study.

    Parameters
    ----------
    rgb : np.ndarray, shape (H, W, 3), uint8
        The picture (e.g. a 3D screenshot with its legend, a simulated radiograph).
    source : DicomSource
    series_description, derivation_description : str
        What the picture shows (no identifiers).
    series_number : int
    series_instance_uid : str, optional
        New by default.
    orientation : (str, str), optional
        PatientOrientation (:func:`patient_orientation`) of a picture whose rows and columns
        have a patient direction (a radiograph); None: empty (a 3D rendering has none).
    burned_in_annotation : bool
        Whether text is drawn into the pixels (BurnedInAnnotation YES / NO; never identifiers).

    Returns
    -------
    pydicom FileDataset
        Secondary Capture Image Storage, ConversionType WSD (workstation), ImageType
        ``DERIVED\\SECONDARY``, referencing every source instance.
    """
    pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"a secondary capture needs an (H, W, 3) RGB picture, got {pixels.shape}")
    ds = file_dataset(SECONDARY_CAPTURE_STORAGE, new_uid())
    copy_patient_and_study(source, ds)
    for name in FRAME_OF_REFERENCE_ATTRIBUTES:  # not part of the Secondary Capture IOD
        if name in ds:
            del ds[name]
    ds.Modality = "OT"
    ds.SeriesInstanceUID = series_instance_uid or new_uid()
    _set_equipment_and_dates(ds, series_description=series_description,
                             series_number=series_number, instance_number=1)
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    # Type 2C: empty for a 3D rendering (no row/column patient direction).
    ds.PatientOrientation = list(orientation) if orientation is not None else ""
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "YES" if burned_in_annotation else "NO"
    ds.PixelData = pixels.tobytes()
    _references(ds, source, source.instances(), derivation=None,
                description=derivation_description)
    return ds


# --- the report as a PDF -------------------------------------------------------------------------------
ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"


def encapsulated_pdf_dataset(pdf: bytes, source: DicomSource, *, series_number: int,
                             title: str, series_instance_uid: str | None = None) -> "Dataset":
    """A PDF document (the plan report) as an Encapsulated PDF of the source's study.

    Parameters
    ----------
    pdf : bytes
        The whole PDF file.
    source : DicomSource
    series_number : int
    title : str
        DocumentTitle (no identifiers).
    series_instance_uid : str, optional

    Returns
    -------
    pydicom FileDataset
        Encapsulated PDF Storage, Modality DOC, referencing the source instances
        (SourceInstanceSequence).
    """
    from pydicom.dataset import Dataset

    if not pdf.startswith(b"%PDF"):
        raise ValueError("the document to encapsulate is not a PDF")
    ds = file_dataset(ENCAPSULATED_PDF_STORAGE, new_uid())
    copy_patient_and_study(source, ds)
    for name in FRAME_OF_REFERENCE_ATTRIBUTES + SERIES_PATIENT_ATTRIBUTES:
        if name in ds:  # not part of the Encapsulated PDF IOD
            del ds[name]
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = series_instance_uid or new_uid()
    _set_equipment_and_dates(ds, series_description=title, series_number=series_number,
                             instance_number=1)
    ds.ConversionType = "WSD"
    ds.AcquisitionDateTime = None
    ds.BurnedInAnnotation = "NO"  # the report prints no patient identifiers
    ds.DocumentTitle = title
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    data = bytes(pdf) + (b"\0" if len(pdf) % 2 else b"")  # OB values have even length
    ds.EncapsulatedDocument = data
    ds.EncapsulatedDocumentLength = len(pdf)
    refs = []
    for sop_class, sop_uid in source.instances():
        ref = Dataset()
        ref.ReferencedSOPClassUID = sop_class
        ref.ReferencedSOPInstanceUID = sop_uid
        refs.append(ref)
    ds.SourceInstanceSequence = refs
    return ds


def write_dataset(ds: "Dataset", path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``ds`` as a DICOM Part 10 file, atomically (never over an existing file unless
    ``overwrite``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, overwrite=overwrite) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return target
