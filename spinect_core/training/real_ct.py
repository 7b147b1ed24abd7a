"""A real CT with an automatic multi-structure label map, turned into a *bone-only* training case.

The synthetic phantoms teach the network every class (background, bone, nerve, disc, dura) but not
what real bone looks like (cortical and cancellous bone, partial volume, scanner noise). A real CT
whose only trustworthy annotation is bone (e.g. ``shared/data/real_ct_chest``: a 118-class map of an
automatic segmenter, ``structures.csv`` naming the ids) adds that, provided the network is not
taught that the unannotated nerves, discs and dura around the spine are background. The label map
written here therefore has three values:

* ``1`` (the table's ``bone``): every bone structure (:data:`DEFAULT_BONE_STRUCTURES`);
* ``255`` (:data:`~spinect_core.training.loss.UNLABELLED`): voxels within
  ``unlabelled_margin_mm`` of any vertebra (or the sacrum) that are not bone - the canal, the
  cord and dura, the discs, the exiting roots in the foramina and the paraspinal tissue they run
  through - and the ambiguous structures (:data:`DEFAULT_UNLABELLED_STRUCTURES`); training
  excludes them from the loss, class counts, sampling and validation;
* ``0`` (background) everywhere else: lung, organs, muscle, fat, air far from the spine, where
  there is no nerve, disc or dura of the planner's classes to miss.

The margin is a Euclidean distance on the CT's anisotropic grid (``distance_transform_edt`` with
the voxel spacing; 0.7 x 0.7 x 2.5 mm here), not a voxel count.

A slab of axial slices (``z_range``, fractions of the cranio-caudal extent counted from the top)
can be kept so that the rest of the scan stays unseen for testing; :func:`bone_mask_reference`
gives the reference bone mask of any slab for measuring bone Dice there. The slab's CT keeps its
geometry: spacing and direction unchanged, origin moved to its first slice.

**Pseudo-labels.** A real CT without any annotation becomes the same kind of case with
:func:`pseudo_label_case`: bone is the model-free CT bone model's
(:func:`spinect_core.bone.segment_bone_from_ct`), every non-bone voxel within
``unlabelled_margin_mm`` of bone and the spinal canal are 255, and so is a thin band on both
sides of the bone surface (the threshold model's exact edge is not a reference the network should
copy). ``conversion.json`` says the labels are pseudo-labels and records the method and its
thresholds, never the source's path or name (the caller names the case). Command line::

    python -m spinect_core.training.real_ct pseudo CT_OR_DICOM_FOLDER DATA_DIR --case-id ID

Typical use::

    from spinect_core.training.real_ct import BoneOnlyOptions, bone_only_case
    src = Path("shared/data/real_ct_chest")
    bone_only_case(src / "ct.nii.gz", src / "labels.nii.gz", src / "structures.csv", "data/",
                   options=BoneOnlyOptions(z_range=(0.0, 0.67)))
    # data/real_ct_chest/ct.nii.gz + labels.nii.gz (+ .labels.json) + conversion.json
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.io.labelmap import read_label_image
from spinect_core.labels import DEFAULT_LABELS, LabelTable
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.training.loss import UNLABELLED
from spinect_core.volume import Volume

__all__ = ["BoneOnlyOptions", "BoneOnlyCase", "DEFAULT_BONE_STRUCTURES",
           "DEFAULT_VERTEBRA_STRUCTURES", "DEFAULT_UNLABELLED_STRUCTURES", "PseudoLabelCase",
           "PseudoLabelOptions", "axial_slab", "bone_mask_reference", "bone_only_case",
           "pseudo_label_case", "pseudo_label_map", "read_structures", "slab_slices"]

#: Structure names (``fnmatch`` patterns, matched case-insensitively against ``structures.csv``)
#: that are bone. For the TotalSegmentator-style names of ``real_ct_chest`` they select:
#: ``vertebrae_C1`` .. ``vertebrae_S1`` and ``sacrum``; ``rib_left_1..12`` and ``rib_right_1..12``;
#: ``sternum``; ``clavicula_left/right``; ``scapula_left/right``; ``humerus_left/right``;
#: ``hip_left/right``; ``femur_left/right``; ``skull``; ``carpal``.
#: Not bone: ``costal_cartilages`` (hyaline cartilage: soft-tissue density, calcified in patches
#: with age; see :data:`DEFAULT_UNLABELLED_STRUCTURES`), ``spinal_cord`` and all organs, vessels
#: and muscles.
DEFAULT_BONE_STRUCTURES: tuple[str, ...] = (
    "vertebrae_*", "sacrum", "rib_left_*", "rib_right_*", "sternum", "clavicula_*", "scapula_*",
    "humerus_*", "hip_*", "femur_*", "skull", "carpal",
)
#: Structures whose surroundings (within ``unlabelled_margin_mm``) become unlabelled.
DEFAULT_VERTEBRA_STRUCTURES: tuple[str, ...] = ("vertebrae_*", "sacrum")
#: Structures that are neither bone nor background for the model: costal cartilage is
#: soft-tissue dense where uncalcified and bone dense where calcified, so either label would teach
#: the network something wrong about a part of it; it is excluded (255) wherever it lies.
DEFAULT_UNLABELLED_STRUCTURES: tuple[str, ...] = ("costal_cartilages",)

_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _range(value: Sequence[float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(f"z_range must be (start, stop) fractions with 0 <= start < stop <= 1, "
                         f"got {tuple(value)!r}")
    return lo, hi


@dataclass(frozen=True, kw_only=True)
class BoneOnlyOptions:
    """How :func:`bone_only_case` builds the case.

    Attributes
    ----------
    unlabelled_margin_mm : float
        Voxels within this Euclidean distance (mm) of a vertebra that are not bone become
        unlabelled (255). 20 mm reaches past the foramina and the disc rims. 0: none.
    z_range : (float, float)
        Slab kept, as fractions of the axial slices counted from the most cranial one: ``(0.0,
        0.67)`` keeps the upper two thirds, ``(0.67, 1.0)`` the rest; the two never overlap.
    case_id : str
        Name of the case folder written under ``out_dir``.
    bone_structures, vertebra_structures, unlabelled_structures : tuple of str
        ``fnmatch`` patterns of ``structures.csv`` names (case-insensitive): bone (-> 1), the
        structures whose margin is unlabelled, and structures unlabelled wherever they are
        (bone wins where patterns overlap). Defaults: :data:`DEFAULT_BONE_STRUCTURES`,
        :data:`DEFAULT_VERTEBRA_STRUCTURES`, :data:`DEFAULT_UNLABELLED_STRUCTURES`.
    table : LabelTable
        The label table written beside the label map (the training run's table; default the
        5-class phantom / demo table, so the case trains together with phantoms).
    bone_class : str
        Name of the bone class in ``table``.
    overwrite : bool
        Replace an existing case folder's files.
    """

    unlabelled_margin_mm: float = 20.0
    z_range: tuple[float, float] = (0.0, 1.0)
    case_id: str = "real_ct_chest"
    bone_structures: tuple[str, ...] = DEFAULT_BONE_STRUCTURES
    vertebra_structures: tuple[str, ...] = DEFAULT_VERTEBRA_STRUCTURES
    unlabelled_structures: tuple[str, ...] = DEFAULT_UNLABELLED_STRUCTURES
    table: LabelTable = DEFAULT_LABELS
    bone_class: str = "bone"
    overwrite: bool = False

    def __post_init__(self) -> None:
        margin = float(self.unlabelled_margin_mm)
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"unlabelled_margin_mm must be >= 0, got {self.unlabelled_margin_mm}")
        object.__setattr__(self, "unlabelled_margin_mm", margin)
        object.__setattr__(self, "z_range", _range(self.z_range))
        if not _CASE_ID.match(str(self.case_id)):
            raise ValueError(f"case_id {self.case_id!r} must be a plain folder name")
        for name in ("bone_structures", "vertebra_structures", "unlabelled_structures"):
            object.__setattr__(self, name, tuple(str(p) for p in getattr(self, name)))
        if not self.bone_structures or not self.vertebra_structures:
            raise ValueError("bone_structures and vertebra_structures must not be empty")
        if not isinstance(self.table, LabelTable):
            raise ValueError("table must be a LabelTable")
        if not self.table.has(self.bone_class):
            raise ValueError(f"the table {list(self.table.names.values())} has no class "
                             f"{self.bone_class!r}")
        if UNLABELLED in self.table.names:
            raise ValueError(f"the table must not use id {UNLABELLED} (it means 'unlabelled')")


@dataclass(frozen=True, kw_only=True)
class BoneOnlyCase:
    """What :func:`bone_only_case` wrote.

    Attributes
    ----------
    folder : Path
        The case folder (``out_dir / case_id``), as :func:`~.cases.discover_cases` reads it.
    ct, labels, label_table, provenance : Path
        ``ct.nii.gz`` (HU), ``labels.nii.gz`` (uint8: 0, bone id, 255), its
        ``labels.labels.json`` table sidecar and ``conversion.json`` (sources, options, the
        structures chosen, slab, voxel counts).
    slab : (int, int, int)
        ``(array axis, start, stop)`` of the kept slices in the source arrays.
    voxels : dict of str to int
        ``background``, ``bone`` and ``unlabelled`` voxels of the written label map.
    """

    folder: Path
    ct: Path
    labels: Path
    label_table: Path
    provenance: Path
    slab: tuple[int, int, int]
    voxels: dict[str, int]

    @property
    def paths(self) -> list[Path]:
        """Every file written."""
        return [self.ct, self.labels, self.label_table, self.provenance]


# --- inputs ---------------------------------------------------------------------------------------
def read_structures(path: str | os.PathLike) -> dict[int, str]:
    """Read a ``structures.csv`` (columns ``id`` and ``structure``; others ignored).

    Returns
    -------
    dict of int to str
        Label id -> structure name.

    Raises
    ------
    InputError
        Unreadable file, missing columns, non-integer or duplicate ids.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror or exc}") from None
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    if "id" not in fields or "structure" not in fields:
        raise InputError(f"{p.name} must have 'id' and 'structure' columns, has {fields}")
    out: dict[int, str] = {}
    for row in reader:
        row = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k}
        try:
            sid = int(row["id"])
        except ValueError:
            raise InputError(f"{p.name}: id {row['id']!r} is not an integer") from None
        if sid in out:
            raise InputError(f"{p.name}: id {sid} is listed twice")
        out[sid] = row["structure"]
    return out


def _ids_matching(structures: Mapping[int, str], patterns: Sequence[str]) -> dict[int, str]:
    pats = [p.lower() for p in patterns]
    return {i: n for i, n in structures.items()
            if i != 0 and any(fnmatch.fnmatchcase(n.lower(), p) for p in pats)}


def _read_label_volume(path: str | os.PathLike) -> Volume:
    volume = read_label_image(path, exact_integers=True)
    p = Path(path)
    if volume.array.min(initial=0) < 0:
        raise InputError(f"{p.name} holds negative label ids")
    return volume


def _check_ids(array: np.ndarray, structures: Mapping[int, str], name: str) -> np.ndarray:
    """Voxel count per id (bincount); refuses ids the structure list does not name."""
    counts = np.bincount(array.ravel())
    present = {int(i) for i in np.flatnonzero(counts)} - {0}
    unknown = sorted(present - set(structures))
    if unknown:
        raise InputError(f"{name} holds ids {unknown[:10]} that structures.csv does not name; "
                         "is it the right structure list?")
    return counts


# --- geometry -------------------------------------------------------------------------------------
def _superior_axis(direction: np.ndarray) -> tuple[int, bool]:
    """Array axis (0 = z) closest to the patient's superior direction, and whether the index
    grows superiorly along it."""
    d = np.asarray(direction, dtype=np.float64).reshape(3, 3)
    k = int(np.argmax(np.abs(d[2, :])))  # index axis (x, y, z) closest to S
    return 2 - k, bool(d[2, k] > 0)


def _slab_bounds(n: int, z_range: Sequence[float], *, grows_superiorly: bool) -> tuple[int, int]:
    lo, hi = _range(z_range)
    # floor(f n + 1/2) for both ends: complementary ranges split the slices without overlap
    top_lo, top_hi = int(math.floor(lo * n + 0.5)), int(math.floor(hi * n + 0.5))
    start, stop = (n - top_hi, n - top_lo) if grows_superiorly else (top_lo, top_hi)
    if stop <= start:
        raise InputError(f"z_range {tuple(z_range)} keeps no slice of the {n}")
    return start, stop


def _slab(volume: Volume, z_range: Sequence[float]) -> tuple[int, int, int]:
    """``(array axis, start, stop)`` of the slices in ``z_range`` (fractions from the top)."""
    axis, up = _superior_axis(volume.direction)
    start, stop = _slab_bounds(volume.shape_zyx[axis], z_range, grows_superiorly=up)
    return axis, start, stop


def slab_slices(n_slices: int, z_range: Sequence[float], *, ct: Volume | None = None) -> slice:
    """Array index range of the slices in ``z_range`` (fractions counted from the top).

    Parameters
    ----------
    n_slices : int
        Slices along the axial array axis.
    z_range : (float, float)
        As in :class:`BoneOnlyOptions`.
    ct : Volume, optional
        Geometry deciding which end is the top; its axial axis must be array axis 0 (use
        :func:`axial_slab` otherwise). Without it the index is taken to grow superiorly (the
        last slice is the top), as in ITK/NIfTI axial scans with an identity-like direction.

    Returns
    -------
    slice
        ``start:stop`` along array axis 0.
    """
    up = True
    if ct is not None:
        axis, up = _superior_axis(ct.direction)
        if axis != 0 or ct.shape_zyx[0] != int(n_slices):
            raise InputError("slab_slices needs an axial volume whose array axis 0 has "
                             f"{n_slices} slices; use axial_slab for other layouts")
    start, stop = _slab_bounds(int(n_slices), z_range, grows_superiorly=up)
    return slice(start, stop)


def axial_slab(volume: Volume, z_range: Sequence[float]) -> Volume:
    """The slices of ``volume`` in ``z_range`` as a volume with correct geometry.

    Parameters
    ----------
    volume : Volume
    z_range : (float, float)
        Fractions of the slices along the index axis closest to the patient's superior
        direction, counted from the most cranial slice.

    Returns
    -------
    Volume
        Spacing and direction unchanged; ``origin_lps_mm`` is the LPS position of the slab's
        first voxel, so every kept voxel keeps its world position.
    """
    axis, start, stop = _slab(volume, z_range)
    index = [slice(None)] * 3
    index[axis] = slice(start, stop)
    first = np.zeros(3)
    first[2 - axis] = start  # (x, y, z) index of the slab's voxel (0, 0, 0)
    return dataclasses.replace(volume, array=np.ascontiguousarray(volume.array[tuple(index)]),
                               origin_lps_mm=volume.index_to_lps(first),
                               warnings=list(volume.warnings))


def _near(mask: np.ndarray, spacing_zyx: Sequence[float], margin_mm: float) -> np.ndarray:
    """Voxels within ``margin_mm`` (Euclidean, anisotropic) of a ``mask`` voxel (mask included).

    The distance transform runs on the mask's bounding box grown by the margin: every voxel
    within the margin lies inside it, and all mask voxels do, so the distances there are exact.
    """
    from scipy import ndimage

    out = np.zeros(mask.shape, dtype=bool)
    if not mask.any():
        return out
    box = []
    for axis, (n, s) in enumerate(zip(mask.shape, spacing_zyx)):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        pad = int(math.ceil(margin_mm / float(s)))
        box.append(slice(max(int(hit[0]) - pad, 0), min(int(hit[-1]) + pad + 1, n)))
    box_t = tuple(box)
    dist = ndimage.distance_transform_edt(~mask[box_t], sampling=[float(s) for s in spacing_zyx])
    out[box_t] = dist <= margin_mm
    return out


# --- the converter --------------------------------------------------------------------------------
def _bone_only_labels(source: np.ndarray, structures: Mapping[int, str], spacing_zyx: np.ndarray,
                      options: BoneOnlyOptions) -> tuple[np.ndarray, dict[str, list[str]]]:
    bone = _ids_matching(structures, options.bone_structures)
    vertebrae = _ids_matching(structures, options.vertebra_structures)
    ambiguous = _ids_matching(structures, options.unlabelled_structures)
    if not bone:
        raise InputError(f"no structure matches the bone patterns {list(options.bone_structures)}")
    if not vertebrae:
        raise InputError("no structure matches the vertebra patterns "
                         f"{list(options.vertebra_structures)}")
    vert_mask = np.isin(source, list(vertebrae))
    if not vert_mask.any():
        raise InputError("the label map holds no vertebra voxel: the spine's surroundings cannot "
                         "be marked unlabelled")
    out = np.zeros(source.shape, dtype=np.uint8)
    if options.unlabelled_margin_mm > 0:
        out[_near(vert_mask, spacing_zyx, options.unlabelled_margin_mm)] = UNLABELLED
    if ambiguous:
        out[np.isin(source, list(ambiguous))] = UNLABELLED
    out[np.isin(source, list(bone))] = options.table.id_of(options.bone_class)  # bone wins
    chosen = {"bone": sorted(bone.values()), "vertebrae": sorted(vertebrae.values()),
              "unlabelled": sorted(set(ambiguous.values()) - set(bone.values()))}
    return out, chosen


def bone_only_case(ct_path: str | os.PathLike, labels_path: str | os.PathLike,
                   structures_csv: str | os.PathLike, out_dir: str | os.PathLike, *,
                   options: BoneOnlyOptions | None = None) -> BoneOnlyCase:
    """Write a bone-only training case (see the module docstring) from a CT and its label map.

    Parameters
    ----------
    ct_path : path-like
        CT in HU (NIfTI, NRRD, MHA or DICOM).
    labels_path : path-like
        Multi-structure label map on the CT's grid (integer ids).
    structures_csv : path-like
        ``id`` -> ``structure`` names of the label map (:func:`read_structures`).
    out_dir : path-like
        Data folder; receives ``<case_id>/ct.nii.gz``, ``labels.nii.gz`` (+ ``labels.labels.json``)
        and ``conversion.json``, the layout :func:`~.cases.discover_cases` reads.
    options : BoneOnlyOptions, optional
        Margin, slab, structure choice, table.

    Returns
    -------
    BoneOnlyCase
        The written paths, the slab and the voxel counts.

    Raises
    ------
    InputError
        Unreadable inputs, grids that differ, ids missing from the structure list, no vertebra.
    spinect_core.io.atomic.FileExistsRefusedError
        The case files exist and ``options.overwrite`` is false.
    """
    from spinect_core.io import load_ct

    options = options or BoneOnlyOptions()
    structures = read_structures(structures_csv)
    ct = load_ct(ct_path)
    source = _read_label_volume(labels_path)
    if not ct.same_grid(source, atol=1e-3):
        raise InputError(f"{Path(labels_path).name} is not on the grid of {Path(ct_path).name}")
    _check_ids(source.array, structures, Path(labels_path).name)
    # The margin is computed on the whole scan before cutting the slab: a vertebra just outside
    # the slab still shields the roots and disc beside it.
    labels, chosen = _bone_only_labels(source.array, structures, source.spacing_mm[::-1], options)
    axis, start, stop = _slab(ct, options.z_range)
    ct_slab = axial_slab(ct, options.z_range)
    label_slab = axial_slab(ct.with_array(labels), options.z_range)

    provenance: dict[str, Any] = {
        "format": "spinect-bone-only-case", "version": 1,
        "source": {"ct": Path(ct_path).name, "labels": Path(labels_path).name,
                   "structures": Path(structures_csv).name,
                   "geometry": ct.geometry_dict()},
        "options": {"unlabelled_margin_mm": options.unlabelled_margin_mm,
                    "z_range": list(options.z_range), "case_id": options.case_id,
                    "bone_structures": list(options.bone_structures),
                    "vertebra_structures": list(options.vertebra_structures),
                    "unlabelled_structures": list(options.unlabelled_structures),
                    "bone_class": options.bone_class},
        "structures": chosen,
        "slab": {"array_axis": axis, "start": start, "stop": stop,
                 "geometry": ct_slab.geometry_dict()},
    }
    return _write_case(Path(out_dir) / options.case_id, ct_slab, label_slab, provenance,
                       table=options.table, bone_class=options.bone_class,
                       slab=(axis, start, stop), overwrite=options.overwrite)


def _write_case(folder: Path, ct: Volume, labels: Volume, provenance: dict[str, Any], *,
                table: LabelTable, bone_class: str, slab: tuple[int, int, int],
                overwrite: bool, case_type: type[BoneOnlyCase] | None = None,
                **extra: Any) -> BoneOnlyCase:
    """Write a bone-only case folder: CT, label map (+ table sidecar) and ``conversion.json``.

    ``provenance`` receives ``label_values`` and ``voxels`` before it is written. Every target is
    checked before the first is written, so a refused overwrite leaves no half-written case.
    """
    from spinect_core.io import write_image, write_text_atomic
    from spinect_core.io.atomic import check_writable
    from spinect_core.io.labelmap import sidecar_path

    for name in ("ct.nii.gz", "labels.nii.gz", "labels.labels.json", "conversion.json"):
        check_writable(folder / name, overwrite=overwrite)  # refuse before writing any
    folder.mkdir(parents=True, exist_ok=True)
    ct_file = write_image(ct, folder / "ct.nii.gz", overwrite=overwrite)
    # save_label_map refuses ids its table does not name; 255 is deliberately not a class, so
    # the image and its sidecar (same format) are written here.
    label_file = write_image(labels, folder / "labels.nii.gz", overwrite=overwrite)
    doc = {"format": "spinect-labels", "version": 1, "coordinate_system": "LPS",
           "image": label_file.name, **table.to_json(), "unlabelled_value": UNLABELLED}
    table_file = write_text_atomic(sidecar_path(label_file), json.dumps(doc, indent=2) + "\n",
                                   overwrite=overwrite)
    counts = np.bincount(np.asarray(labels.array).ravel(), minlength=UNLABELLED + 1)
    bone_id = table.id_of(bone_class)
    voxels = {"background": int(counts[0]), "bone": int(counts[bone_id]),
              "unlabelled": int(counts[UNLABELLED])}
    provenance = {**provenance,
                  "label_values": {"background": 0, "bone": bone_id, "unlabelled": UNLABELLED},
                  "voxels": voxels}
    prov_file = write_text_atomic(folder / "conversion.json",
                                  json.dumps(provenance, indent=2) + "\n", overwrite=overwrite)
    return (case_type or BoneOnlyCase)(folder=folder, ct=ct_file, labels=label_file,
                                       label_table=table_file, provenance=prov_file, slab=slab,
                                       voxels=voxels, **extra)


def bone_mask_reference(labels_path: str | os.PathLike, structures_csv: str | os.PathLike, *,
                        z_range: Sequence[float] = (0.0, 1.0),
                        bone_structures: Sequence[str] = DEFAULT_BONE_STRUCTURES) -> np.ndarray:
    """Reference bone mask of a slab, for measuring bone Dice on held-out slices.

    Parameters
    ----------
    labels_path : path-like
        The multi-structure label map.
    structures_csv : path-like
    z_range : (float, float)
        The slab, as in :class:`BoneOnlyOptions` (e.g. ``(0.67, 1.0)`` for the slices that
        ``z_range=(0.0, 0.67)`` left out of training).
    bone_structures : sequence of str
        Bone patterns (default :data:`DEFAULT_BONE_STRUCTURES`).

    Returns
    -------
    np.ndarray, bool, shape (z, y, x)
        On the slab's grid (that of ``axial_slab(ct, z_range)``).
    """
    structures = read_structures(structures_csv)
    source = _read_label_volume(labels_path)
    bone = _ids_matching(structures, bone_structures)
    if not bone:
        raise InputError(f"no structure matches the bone patterns {list(bone_structures)}")
    slab = axial_slab(source, z_range)
    return np.isin(slab.array, list(bone))


# --- pseudo-labels: any unlabelled CT, bone from the CT bone model -------------------------------
@dataclass(frozen=True, kw_only=True)
class PseudoLabelOptions:
    """How :func:`pseudo_label_case` turns an unlabelled CT into a bone-only training case.

    Attributes
    ----------
    case_id : str
        Name of the case folder written under ``out_dir`` and the only name the case carries
        (required: a file or folder name of the source could be a patient's name, so none is
        ever copied into the case).
    unlabelled_margin_mm : float
        Non-bone voxels within this Euclidean distance (mm) of the CT bone model's bone become
        unlabelled (255): the canal, discs, roots and the tissue around them, which the CT does
        not label. 0: none (the canal and the edge band still are).
    edge_band_mm : float
        Voxels within this distance of the bone surface, on both sides, are unlabelled, and
        always the one layer of voxels on each side of it: the threshold model's exact edge is
        not a reference the network should copy. 0: no band.
    canal : bool
        Mark the spinal canal unlabelled whatever the margin (axial holes enclosed by bone,
        bridged along the spine across the disc levels where the bony ring is open).
    canal_area_mm2 : (float, float)
        Smallest and largest axial area of a hole taken for the canal (an adult canal is about
        100-300 mm2; the thorax and the pelvic ring are far larger).
    canal_bridge_mm : float
        Longest cranio-caudal gap (mm) between canal slices that is bridged.
    z_range : (float, float)
        Slab kept, as in :class:`BoneOnlyOptions` (fractions from the most cranial slice).
    table : LabelTable
        Label table written beside the label map (default the 5-class demo table).
    bone_class : str
        Name of the bone class in ``table``.
    ct_bone : CTBoneOptions or None
        Options of :func:`~spinect_core.bone.segment_bone_from_ct` (``None``: its defaults).
    overwrite : bool
        Replace an existing case folder's files.
    """

    case_id: str
    unlabelled_margin_mm: float = 20.0
    edge_band_mm: float = 1.0
    canal: bool = True
    canal_area_mm2: tuple[float, float] = (30.0, 800.0)
    canal_bridge_mm: float = 20.0
    z_range: tuple[float, float] = (0.0, 1.0)
    table: LabelTable = DEFAULT_LABELS
    bone_class: str = "bone"
    ct_bone: Any = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not _CASE_ID.match(str(self.case_id)):
            raise ValueError(f"case_id {self.case_id!r} must be a plain folder name")
        for name in ("unlabelled_margin_mm", "edge_band_mm", "canal_bridge_mm"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
            object.__setattr__(self, name, value)
        lo, hi = (float(v) for v in self.canal_area_mm2)
        if not (0 <= lo < hi):
            raise ValueError(f"canal_area_mm2 must be (min, max) with 0 <= min < max, "
                             f"got {self.canal_area_mm2!r}")
        object.__setattr__(self, "canal_area_mm2", (lo, hi))
        object.__setattr__(self, "z_range", _range(self.z_range))
        if not isinstance(self.table, LabelTable) or not self.table.has(self.bone_class):
            raise ValueError(f"table must be a LabelTable with a class {self.bone_class!r}")
        if UNLABELLED in self.table.names:
            raise ValueError(f"the table must not use id {UNLABELLED} (it means 'unlabelled')")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready options (the table by its class names, the CT bone options by field)."""
        ct_bone = None if self.ct_bone is None else dataclasses.asdict(self.ct_bone)
        return {"case_id": self.case_id, "unlabelled_margin_mm": self.unlabelled_margin_mm,
                "edge_band_mm": self.edge_band_mm, "canal": self.canal,
                "canal_area_mm2": list(self.canal_area_mm2),
                "canal_bridge_mm": self.canal_bridge_mm, "z_range": list(self.z_range),
                "bone_class": self.bone_class, "ct_bone": ct_bone}


@dataclass(frozen=True, kw_only=True)
class PseudoLabelCase(BoneOnlyCase):
    """What :func:`pseudo_label_case` wrote (the fields of :class:`BoneOnlyCase`) plus the CT
    bone model's summary (``method``, ``thresholds_hu``, ``bone_ml``, rejected voxels)."""

    ct_bone: dict[str, Any] = dataclasses.field(default_factory=dict)


def _pad_box(mask: np.ndarray, pad: Sequence[int]) -> tuple[slice, ...] | None:
    """Bounding box of ``mask`` grown by ``pad`` voxels per axis (clipped), or None if empty."""
    if not mask.any():
        return None
    box = []
    for axis, (n, p) in enumerate(zip(mask.shape, pad)):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(int(hit[0]) - int(p), 0), min(int(hit[-1]) + int(p) + 1, n)))
    return tuple(box)


def _band_structure(radius_mm: float, spacing_zyx: np.ndarray) -> np.ndarray:
    """Voxel offsets within ``radius_mm`` (an ellipsoid on the anisotropic grid), always
    including the 6 face neighbours so the band is at least one voxel thick."""
    r = np.maximum(np.floor(radius_mm / spacing_zyx + 1e-9), 1).astype(int)
    zz, yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    d2 = (zz * spacing_zyx[0]) ** 2 + (yy * spacing_zyx[1]) ** 2 + (xx * spacing_zyx[2]) ** 2
    ball = d2 <= radius_mm ** 2 + 1e-6
    ball |= (np.abs(zz) + np.abs(yy) + np.abs(xx)) <= 1
    return ball


def _edge_band(bone: np.ndarray, spacing_zyx: np.ndarray, band_mm: float) -> np.ndarray:
    """Voxels within ``band_mm`` of the bone surface on either side (at least one voxel each)."""
    from scipy import ndimage

    out = np.zeros(bone.shape, bool)
    structure = _band_structure(band_mm, spacing_zyx)
    pad = [s // 2 + 1 for s in structure.shape]
    box = _pad_box(bone, pad)
    if box is None:
        return out
    sub = bone[box]
    grown = ndimage.binary_dilation(sub, structure=structure)
    # border_value=1: bone touching the box's (= the scan's) edge is not a surface there
    shrunk = ndimage.binary_erosion(sub, structure=structure, border_value=1)
    out[box] = grown & ~shrunk
    return out


def _spinal_canal(bone: np.ndarray, spacing_zyx: np.ndarray, axis: int,
                  options: PseudoLabelOptions) -> np.ndarray:
    """The spinal canal as the CT bone model shows it, on the CT's grid.

    Per axial slice (array ``axis`` is the one closest to superior): holes enclosed by bone
    (after a 2 mm closing, so a thin broken lamina still encloses) whose area lies within
    ``canal_area_mm2``; the CT bone model never fills the canal (CSF and fat are below its
    hole-filling density). At disc levels the ring is open, so slices up to
    ``canal_bridge_mm`` apart are bridged along ``axis``.
    """
    from scipy import ndimage

    canal = np.zeros(bone.shape, bool)
    box = _pad_box(bone, (1, 1, 1))
    if box is None:
        return canal
    moved = np.moveaxis(bone[box], axis, 0)
    out = np.moveaxis(canal[box], axis, 0)  # a view: writes land in ``canal``
    plane = np.delete(spacing_zyx, axis)
    pixel_mm2 = float(np.prod(plane))
    r = np.maximum(np.floor(2.0 / plane), 1).astype(int)
    yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1]
    disk = (yy * plane[0]) ** 2 + (xx * plane[1]) ** 2 <= 4.0 + 1e-6
    lo, hi = options.canal_area_mm2
    for k in range(moved.shape[0]):
        sl = moved[k]
        if not sl.any():
            continue
        closed = ndimage.binary_closing(sl, structure=disk) | sl
        holes = ndimage.binary_fill_holes(closed) & ~closed
        if not holes.any():
            continue
        lab, n = ndimage.label(holes)
        area = np.bincount(lab.ravel(), minlength=n + 1) * pixel_mm2
        ok = (area >= lo) & (area <= hi)
        ok[0] = False
        out[k] = ok[lab]
    gap = int(math.floor(options.canal_bridge_mm / float(spacing_zyx[axis])))
    if gap >= 1 and out.any():
        line = np.zeros((2 * gap + 1, 1, 1), bool)
        line[:, 0, 0] = True
        # closing along the spine joins canal slices across an open disc level; padding by the
        # line's half-length keeps the erosion from eating the bridges near the scan's ends
        padded = np.pad(out, ((gap, gap), (0, 0), (0, 0)))
        out[:] = ndimage.binary_closing(padded, structure=line)[gap:-gap] | out
    return canal


def pseudo_label_map(ct: Volume, bone: np.ndarray, options: PseudoLabelOptions) -> np.ndarray:
    """Pseudo-label map of a CT from a bone mask on its grid.

    Parameters
    ----------
    ct : Volume
        The CT (only its geometry is used), array (z, y, x).
    bone : np.ndarray, bool or 0/1, shape (z, y, x)
        The CT bone model's mask (:func:`~spinect_core.bone.segment_bone_from_ct`).
    options : PseudoLabelOptions

    Returns
    -------
    np.ndarray, uint8, shape (z, y, x)
        ``bone id`` where ``bone`` holds outside the edge band; :data:`UNLABELLED` (255) in the
        edge band, within ``unlabelled_margin_mm`` of bone and in the spinal canal; 0 elsewhere.
    """
    bone = np.asarray(bone).astype(bool)
    if bone.shape != ct.shape_zyx:
        raise ValueError(f"bone mask shape {bone.shape} differs from the CT's {ct.shape_zyx}")
    sp = np.asarray(ct.spacing_mm, dtype=np.float64)[::-1]
    out = np.zeros(bone.shape, np.uint8)
    if options.unlabelled_margin_mm > 0:
        out[_near(bone, sp, options.unlabelled_margin_mm)] = UNLABELLED
    if options.canal:
        axis, _ = _superior_axis(ct.direction)
        out[_spinal_canal(bone, sp, axis, options)] = UNLABELLED
    out[bone] = options.table.id_of(options.bone_class)
    if options.edge_band_mm > 0:
        out[_edge_band(bone, sp, options.edge_band_mm)] = UNLABELLED  # the band wins over bone
    return out


def pseudo_label_case(ct_path_or_volume: str | os.PathLike | Volume, out_dir: str | os.PathLike,
                      *, options: PseudoLabelOptions,
                      progress: ProgressCallback | None = None) -> PseudoLabelCase:
    """Turn any unlabelled CT into a bone-only training case labelled by the CT bone model.

    Bone (the table's bone id) is what :func:`~spinect_core.bone.segment_bone_from_ct` finds;
    nerve, disc and dura are unknown, so every non-bone voxel within
    ``options.unlabelled_margin_mm`` of bone, and the spinal canal, are :data:`UNLABELLED`
    (255), as is a thin band on both sides of the bone surface (the threshold model's exact
    edge is not a reference); the rest is background (0). The folder layout is that of
    :func:`bone_only_case`, so :func:`~.cases.discover_cases` reads it.

    Parameters
    ----------
    ct_path_or_volume : path-like or Volume
        A DICOM folder or file, a NIfTI/NRRD/MHA file (:func:`~spinect_core.io.load_ct`), or a
        CT already loaded (HU, array (z, y, x)).
    out_dir : path-like
        Data folder; receives ``<case_id>/ct.nii.gz``, ``labels.nii.gz`` (+
        ``labels.labels.json``) and ``conversion.json``.
    options : PseudoLabelOptions
        ``case_id`` is required; margin, band, canal, slab, table.
    progress : callable, optional
        ``progress(fraction, message)``; returning ``False`` raises
        :class:`~spinect_core.errors.Cancelled` (nothing is written before the labels exist).

    Returns
    -------
    PseudoLabelCase
        Written paths, slab, voxel counts and the CT bone model's summary. ``conversion.json``
        records ``"pseudo_labels": true``, the method and its thresholds, the options, and the
        geometry; never the source's path or file name.

    Raises
    ------
    InputError
        Unreadable CT, or no bone found in it (nothing to learn from).
    spinect_core.io.atomic.FileExistsRefusedError
        The case files exist and ``options.overwrite`` is false.
    """
    from spinect_core.bone import segment_bone_from_ct
    from spinect_core.io import load_ct

    if isinstance(ct_path_or_volume, Volume):
        ct = ct_path_or_volume
    else:
        ct = load_ct(ct_path_or_volume, progress=sub_progress(progress, 0.0, 0.15, "loading: "))
    report(progress, 0.15, "finding bone in the CT")
    result = segment_bone_from_ct(ct, options=options.ct_bone,
                                  progress=sub_progress(progress, 0.15, 0.7, "bone: "))
    bone = np.asarray(result.mask.array).astype(bool)
    if not bone.any():
        raise InputError("the CT bone model found no bone in this CT; it cannot be a bone-only "
                         "training case")
    report(progress, 0.7, "marking the unlabelled surroundings")
    labels = pseudo_label_map(ct, bone, options)
    axis, start, stop = _slab(ct, options.z_range)
    ct_slab = axial_slab(ct, options.z_range)
    label_slab = axial_slab(ct.with_array(labels), options.z_range)
    report(progress, 0.85, "writing the case")
    summary = result.summary()
    method = {"name": summary["method"], "function": "spinect_core.bone.segment_bone_from_ct",
              "thresholds_hu": summary["thresholds_hu"], "bone_ml": summary["bone_ml"],
              "rejected_voxels": summary["rejected_voxels"], "notes": summary["notes"]}
    provenance: dict[str, Any] = {
        "format": "spinect-pseudo-label-case", "version": 1,
        "pseudo_labels": True,
        "note": "bone from the model-free CT bone model, not a manual or reference annotation; "
                "nerve, disc and dura unlabelled (255)",
        "source": {"geometry": ct.geometry_dict()},
        "method": method,
        "options": options.to_json(),
        "slab": {"array_axis": axis, "start": start, "stop": stop,
                 "geometry": ct_slab.geometry_dict()},
    }
    case = _write_case(Path(out_dir) / options.case_id, ct_slab, label_slab, provenance,
                       table=options.table, bone_class=options.bone_class,
                       slab=(axis, start, stop), overwrite=options.overwrite,
                       case_type=PseudoLabelCase, ct_bone=method)
    report(progress, 1.0, "pseudo-label case written")
    return case  # type: ignore[return-value]


# --- command line ---------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spinect_core.training.real_ct pseudo CT OUT --case-id ID [...]``."""
    import argparse
    import sys

    from spinect_core.errors import SpinectError

    parser = argparse.ArgumentParser(prog="python -m spinect_core.training.real_ct",
                                     description="Real CTs as bone-only training cases.")
    sub = parser.add_subparsers(dest="command", required=True)
    ps = sub.add_parser("pseudo", help="label an unlabelled CT's bone with the CT bone model "
                                       "(nerve, disc, dura unlabelled)")
    ps.add_argument("ct", help="DICOM folder or NIfTI/NRRD/MHA file")
    ps.add_argument("out", help="data folder; the case goes to OUT/CASE_ID")
    ps.add_argument("--case-id", required=True,
                    help="name of the case (never derived from the input's name)")
    ps.add_argument("--margin-mm", type=float, default=20.0,
                    help="non-bone voxels this close to bone are unlabelled (default 20)")
    ps.add_argument("--edge-band-mm", type=float, default=1.0,
                    help="unlabelled band on both sides of the bone surface (default 1)")
    ps.add_argument("--z-range", type=float, nargs=2, default=(0.0, 1.0),
                    metavar=("START", "STOP"), help="slab kept, fractions from the top")
    ps.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    def progress(fraction: float, message: str) -> bool:
        print(f"\r{100 * fraction:5.1f}% {message[:70]:<70}", end="", file=sys.stderr, flush=True)
        return True

    try:
        options = PseudoLabelOptions(case_id=args.case_id, unlabelled_margin_mm=args.margin_mm,
                                     edge_band_mm=args.edge_band_mm,
                                     z_range=tuple(args.z_range), overwrite=args.overwrite)
        case = pseudo_label_case(args.ct, args.out, options=options, progress=progress)
    except (SpinectError, ValueError) as exc:
        print(file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    print(json.dumps({"folder": str(case.folder), "voxels": case.voxels,
                      "thresholds_hu": case.ct_bone["thresholds_hu"]}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
