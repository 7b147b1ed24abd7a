"""3D Slicer segmentations (``*.seg.nrrd``), read and written **by segment name**.

One reader for the CLI (``spinect plan --segmentation``), the desktop app ("Open segmentation")
and training (:mod:`spinect_core.training.cases`).

Slicer writes each segment as key/value fields in the NRRD header: ``SegmentN_Name``,
``SegmentN_LabelValue``, ``SegmentN_Layer``, ``SegmentN_ID``, ``SegmentN_Color`` (RGB 0-1),
``SegmentN_Extent`` (voxel box ``i0 i1 j0 j1 k0 k1``) and ``SegmentN_Tags``. In the single-layer
form (Slicer 4.11+ when segments do not overlap) the voxels hold each segment's ``LabelValue``;
in the multi-layer form the file is 4D (``kinds: list domain domain domain``) and segment N is
``LabelValue`` in layer ``Layer``. Both are read with SimpleITK (its NRRD reader keeps the
key/value fields as metadata).

**The label values mean nothing by themselves**: Slicer numbers segments in the order they were
created, so the same anatomy is 1 = bone in one file and 1 = nerve in the next. A segmentation
is therefore mapped onto our classes by its segments' *names* through a
:class:`~spinect_core.io.labelmap.LabelMapping` (by default
:data:`~spinect_core.io.labelmap.DEFAULT_SEGMENT_MAPPING`: bone, nerve, disc, dura and their
usual synonyms, case-insensitive); a file whose names the mapping does not know is refused with
the names found.

Geometry: the NRRD ``space`` is written as ``left-posterior-superior``, so the file is in LPS
millimetres like everything else here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spinect_core.errors import InputError
from spinect_core.io.labelmap import LabelMapping
from spinect_core.labels import LabelTable
from spinect_core.vocabulary import colour_of_float
from spinect_core.volume import CTMetadata, Volume

__all__ = ["SlicerSegment", "read_slicer_segmentation", "slicer_to_labels",
           "write_slicer_segmentation"]

_SEGMENT_KEY = re.compile(r"^Segment(\d+)_(\w+)$")


@dataclass(frozen=True, kw_only=True)
class SlicerSegment:
    """One segment of a Slicer ``.seg.nrrd`` header.

    Attributes
    ----------
    index : int
        N of the ``SegmentN_*`` fields.
    name : str
        ``SegmentN_Name``.
    label_value : int
        ``SegmentN_LabelValue``: the voxel value of the segment in its layer (1 when absent,
        as in files older than Slicer 4.11 that stored one binary layer per segment).
    layer : int
        ``SegmentN_Layer``: the layer (4D component) holding the segment (N when absent).
    segment_id : str
        ``SegmentN_ID``.
    """

    index: int
    name: str
    label_value: int
    layer: int
    segment_id: str = ""


def read_slicer_segmentation(path: str | os.PathLike) -> tuple[list[np.ndarray], Volume,
                                                                list[SlicerSegment]]:
    """Read a 3D Slicer ``.seg.nrrd`` (single- or multi-layer labelmap form).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    layers : list of np.ndarray, each (z, y, x) integer
        The voxel values of each layer.
    geometry : Volume
        Layer 0 as a volume: the segmentation's LPS grid (which may be a sub-box of the CT's).
    segments : list of SlicerSegment
        In header order.

    Raises
    ------
    InputError
        Unreadable file or no ``SegmentN_*`` fields.
    """
    import SimpleITK as sitk

    p = Path(path)
    if not p.exists():
        raise InputError(f"segmentation {p} does not exist")
    try:
        image = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        raise InputError(f"cannot read segmentation {p.name}: {str(exc).splitlines()[0]}") from None
    fields: dict[int, dict[str, str]] = {}
    for key in image.GetMetaDataKeys():
        m = _SEGMENT_KEY.match(key)
        if m:
            fields.setdefault(int(m.group(1)), {})[m.group(2)] = image.GetMetaData(key).strip()
    if not fields:
        raise InputError(f"{p.name} has no SegmentN_Name fields: not a 3D Slicer segmentation")
    segments = []
    for n in sorted(fields):
        f = fields[n]
        try:
            segments.append(SlicerSegment(
                index=n, name=f.get("Name", f.get("ID", f"Segment_{n}")),
                label_value=int(f.get("LabelValue", 1)), layer=int(f.get("Layer", n)),
                segment_id=f.get("ID", "")))
        except ValueError:
            raise InputError(f"{p.name}: Segment{n}_LabelValue/Layer are not integers") from None
    array = sitk.GetArrayFromImage(image)  # (z, y, x) or (z, y, x, layers)
    if image.GetNumberOfComponentsPerPixel() > 1:
        layers = [np.ascontiguousarray(array[..., k]) for k in range(array.shape[-1])]
    else:
        layers = [array]
    n_layers = len(layers)
    bad = [s.name for s in segments if not 0 <= s.layer < n_layers]
    if bad:
        raise InputError(f"{p.name}: segments {bad} name a layer beyond the file's {n_layers}")
    first = sitk.VectorIndexSelectionCast(image, 0) if n_layers > 1 else image
    geometry = Volume.from_sitk(first,
                                metadata=CTMetadata(modality="SEG", source_format="seg.nrrd"))
    return layers, geometry, segments


def slicer_to_labels(path: str | os.PathLike, mapping: LabelMapping) -> Volume:
    """A Slicer segmentation as a label map of ``mapping.table``'s ids, by segment name.

    Later segments win where segments overlap (multi-layer files).

    Returns
    -------
    Volume
        uint8 ids (uint16 beyond 255 classes), shape (z, y, x), on the file's LPS grid.

    Raises
    ------
    InputError
        A segment name the mapping does not map (``unmapped="error"``), or no segment mapping to
        any class (both list the names found).
    """
    p = Path(path)
    layers, geometry, segments = read_slicer_segmentation(p)
    mapping.check_matches([s.name for s in segments], where=p.name)
    dtype = np.uint8 if max(mapping.table.ids) < 256 else np.uint16
    out = np.zeros(layers[0].shape, dtype=dtype)
    missing = []
    for seg in segments:
        tid = mapping.target_id(seg.name)
        if tid is None:
            missing.append(seg.name)
            continue
        if tid:
            out[layers[seg.layer] == seg.label_value] = tid
    if missing:
        raise InputError(
            f"{p.name}: segments {missing} are not mapped to the classes "
            f"{list(mapping.table.names.values())}; names found: "
            f"{', '.join(s.name for s in segments)}; add them to a label mapping's 'segments' "
            "or 'ignore' (--label-map)")
    return geometry.with_array(out)


def write_slicer_segmentation(volume: Volume, table: LabelTable, path: str | os.PathLike, *,
                              overwrite: bool = False) -> Path:
    """Write a label map as a single-layer 3D Slicer segmentation with named, coloured segments.

    One segment per class present (background excluded), its ``LabelValue`` the class id and its
    name the class name, so Slicer shows "bone", "nerve", ... in our colours, and
    :func:`slicer_to_labels` reads it back by name. Written atomically; LPS space.

    Parameters
    ----------
    volume : Volume
        Integer class ids of ``table``, array (z, y, x).
    table : LabelTable
    path : path-like
        Must end in ``.seg.nrrd``.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
    """
    import SimpleITK as sitk

    from spinect_core.io.atomic import atomic_path

    target = Path(path)
    if not target.name.lower().endswith(".seg.nrrd"):
        raise InputError(f"a Slicer segmentation's name must end in .seg.nrrd, got {target.name}")
    arr = np.asarray(volume.array)
    dtype = np.uint8 if max(table.ids) < 256 else np.uint16
    image = volume.with_array(arr.astype(dtype, copy=False)).to_sitk()
    present = sorted(int(v) for v in np.unique(arr) if int(v) != 0)
    image.SetMetaData("Segmentation_MasterRepresentation", "Binary labelmap")
    image.SetMetaData("Segmentation_ContainedRepresentationNames", "Binary labelmap|")
    image.SetMetaData("Segmentation_ConversionParameters", "")
    image.SetMetaData("Segmentation_ReferenceImageExtentOffset", "0 0 0")
    for n, cid in enumerate(present):
        name = table.names[cid]
        zz, yy, xx = np.nonzero(arr == cid)
        r, g, b = colour_of_float(name)
        for key, value in (
                ("ID", f"Segment_{cid}"), ("Name", name), ("NameAutoGenerated", "0"),
                ("LabelValue", str(cid)), ("Layer", "0"),
                ("Color", f"{r:.4f} {g:.4f} {b:.4f}"), ("ColorAutoGenerated", "0"),
                ("Extent", f"{xx.min()} {xx.max()} {yy.min()} {yy.max()} {zz.min()} {zz.max()}"),
                ("Tags", "Segmentation.Status:completed|Source:SPINECT|")):
            image.SetMetaData(f"Segment{n}_{key}", value)
    with atomic_path(target, overwrite=overwrite) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
    return target
