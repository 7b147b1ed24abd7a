"""The label map as a DICOM Segmentation (binary SEG, highdicom) referencing the source CT.

One segment per class of the label table that has voxels (bone, nerve, disc, dura, ...), with
coded terms (:data:`SEGMENT_CODES`): SNOMED CT codes from pydicom's code dictionary where it has
one, and SCT 360499006 *Intervertebral disc structure* for the disc (a SNOMED code that the
dictionary lacks). The nerve class (exiting and traversing roots of the planned level) is coded
*Nerve* (SCT 91728009): the dictionary has no *spinal nerve root* concept. A class without a
known code gets the generic *Anatomical structure* type and keeps its name as the segment label.

The SEG carries the source's Patient and Study modules (highdicom copies them from the source
images) and its frame of reference. The label map must lie on the CT's grid; when the source
slices are that grid the frames reference them one to one, otherwise (a stack the loader
resampled: gantry tilt, irregular spacing) each frame gets its own plane position on the
volume's grid and the SEG references every source instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from spinect_core.io.dicom_derived import MANUFACTURER, MODEL_NAME, DicomSource, new_uid
from spinect_core.labels import LabelTable
from spinect_core.vocabulary import STRUCTURE_COLOURS, class_of_name
from spinect_core.volume import Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["SEGMENT_CODES", "SegmentInfo", "segment_code", "segmentation_dataset"]

#: Class name -> (category (value, scheme, meaning), type (value, scheme, meaning)).
SEGMENT_CODES: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "bone": (("91723000", "SCT", "Anatomical Structure"),
             ("272673000", "SCT", "Bone structure")),
    "nerve": (("91723000", "SCT", "Anatomical Structure"),
              ("91728009", "SCT", "Nerve")),
    "disc": (("91723000", "SCT", "Anatomical Structure"),
             ("360499006", "SCT", "Intervertebral disc structure")),
    "dura": (("91723000", "SCT", "Anatomical Structure"),
             ("18545000", "SCT", "Dura mater structure")),
}
_GENERIC = (("91723000", "SCT", "Anatomical Structure"), ("91723000", "SCT", "Anatomical Structure"))

@dataclass(frozen=True)
class SegmentInfo:
    """One segment: its number in the SEG, the label id and class name it came from."""

    segment_number: int
    label_id: int
    name: str


def segment_code(name: str) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """``(category, type)`` codes of a class name (generic *Anatomical structure* if unknown)."""
    return SEGMENT_CODES.get(str(name).lower(), _GENERIC)


def _coded(code: tuple[str, str, str]) -> Any:
    from highdicom.sr.coding import CodedConcept

    return CodedConcept(value=code[0], scheme_designator=code[1], meaning=code[2])


def segmentation_dataset(labels: Volume, table: LabelTable, source: DicomSource, *,
                         series_number: int = 990, series_description: str = "SPINECT segmentation",
                         algorithm_name: str = "SPINECT", series_instance_uid: str | None = None
                         ) -> tuple["Dataset", list[SegmentInfo]]:
    """The label map as a binary DICOM SEG.

    Parameters
    ----------
    labels : Volume
        Class ids (z, y, x) of ``table`` on the CT's grid (the grid of ``source``); ids the
        table does not name (e.g. 255, unlabelled) are left out.
    table : LabelTable
    source : DicomSource
        From :func:`~spinect_core.io.dicom_derived.dicom_source` of the CT.
    series_number : int
    series_description : str
    algorithm_name : str
        Where the labels came from (the network's name, "label map file", ...), recorded as the
        segments' algorithm.
    series_instance_uid : str, optional

    Returns
    -------
    (pydicom Dataset, list of SegmentInfo)
        The SEG (highdicom ``Segmentation``) and its segments in order.

    Raises
    ------
    ValueError
        The label map is not on the source's grid, or it has no labelled voxel.
    """
    import highdicom as hd
    from highdicom.sr.coding import CodedConcept

    if source.on_grid and labels.shape_zyx[0] != len(source.headers):
        raise ValueError(f"the label map has {labels.shape_zyx[0]} slices, the CT "
                         f"{len(source.headers)}: a SEG needs the labels on the CT's grid")
    array = np.asarray(labels.array)
    segments: list[SegmentInfo] = []
    numbered = np.zeros(array.shape, dtype=np.uint8)
    for label_id, name in sorted(table.foreground().items()):
        mask = array == label_id
        if not mask.any():
            continue
        number = len(segments) + 1
        numbered[mask] = number
        segments.append(SegmentInfo(segment_number=number, label_id=int(label_id), name=str(name)))
    if not segments:
        raise ValueError("the label map has no labelled voxel; there is nothing to write as SEG")
    algorithm = hd.AlgorithmIdentificationSequence(
        name=str(algorithm_name)[:64] or "SPINECT", version=_version()[:64],
        family=CodedConcept(value="123109", scheme_designator="DCM",
                            meaning="Automatic segmentation"))
    descriptions = []
    for seg in segments:
        category, kind = segment_code(seg.name)
        # Display colours (sRGB) as the app and the screenshots show the class; none for a name
        # no class claims (viewers then pick their own).
        cls = class_of_name(seg.name)
        colour = None if cls is None else STRUCTURE_COLOURS[cls]
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=seg.segment_number, segment_label=seg.name[:64],
            segmented_property_category=_coded(category), segmented_property_type=_coded(kind),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm, tracking_uid=new_uid(),
            tracking_id=f"{seg.name} (label {seg.label_id})"[:64],
            display_color=None if colour is None else hd.color.CIELabColor.from_rgb(*colour)))
    grid: dict[str, Any] = {}
    source_images = list(source.headers)
    if not source.on_grid:
        # Frames on the volume's grid, not the source slices': give each its own position.
        d = labels.direction
        grid = dict(
            plane_orientation=hd.PlaneOrientationSequence(
                coordinate_system="PATIENT",
                image_orientation=[float(v) for v in np.concatenate([d[:, 0], d[:, 1]])]),
            pixel_measures=hd.PixelMeasuresSequence(
                pixel_spacing=[float(labels.spacing_mm[1]), float(labels.spacing_mm[0])],
                slice_thickness=float(labels.spacing_mm[2])),
            plane_positions=[hd.PlanePositionSequence(
                coordinate_system="PATIENT",
                image_position=[float(v) for v in labels.index_to_lps(np.array([0.0, 0.0, k]))])
                for k in range(labels.shape_zyx[0])])
        source_images = source.unique_headers()
    dataset = hd.seg.Segmentation(
        source_images=source_images, pixel_array=numbered,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_instance_uid or new_uid(), series_number=int(series_number),
        sop_instance_uid=new_uid(), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name=MODEL_NAME, software_versions=_version(),
        device_serial_number="none", series_description=series_description,
        content_label="SEGMENTATION", content_description="bone, nerve, disc and dura of the plan",
        **grid)
    return dataset, segments


def _version() -> str:
    from spinect_core import __version__

    return str(__version__)
