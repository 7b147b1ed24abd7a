"""Training cases on disk: discovery, 3D Slicer segmentations and label mapping.

A *case* is one CT plus its reference label map on the CT's grid, with class ids of the model's
label table. Three layouts of a data folder are recognised (all may mix NIfTI ``.nii``/``.nii.gz``,
NRRD ``.nrrd``/``.nhdr`` and MetaImage ``.mha``/``.mhd``):

1. one sub-folder per case (what ``spinect_core.phantom.write_phantom`` writes)::

       DATA/case001/ct.nii.gz          (or image.*, ct_*.*)
       DATA/case001/labels.nii.gz      (or label.*, labels*.*, seg.*, segmentation.*, *.seg.nrrd)

2. nnU-Net style::

       DATA/imagesTr/case001_0000.nii.gz   DATA/labelsTr/case001.nii.gz

3. flat pairs::

       DATA/case001_ct.nii.gz   +   DATA/case001_labels.nii.gz | DATA/case001.seg.nrrd

Label maps carry their class names in the ``<stem>.labels.json`` sidecar (``spinect_core.io``);
3D Slicer ``.seg.nrrd`` files carry them in their header and are read by segment name with the
one reader of :mod:`spinect_core.io.slicer_seg` (shared with ``spinect plan`` and the app).

Site names ("Vertebra L5", "L5 root left") are mapped to the model's classes by a **label-mapping
JSON** (:class:`spinect_core.io.labelmap.LabelMapping`, which also takes shell patterns and
``source_labels``)::

    {"labels":   [{"id": 0, "name": "background"}, {"id": 1, "name": "bone"},
                  {"id": 2, "name": "nerve"}],
     "segments": {"Vertebra L5": "bone", "Sacrum": "bone", "L5 root left": "nerve"},
     "ignore":   ["Skin"]}

``labels`` (the model's table) defaults to the study's background/bone/nerve. A source name maps,
case-insensitively, to the class ``segments`` names; else to the class of the same name; names in
``ignore`` (and ``background``) become background. Any other name is an error: silently dropping a
nerve segment would teach the network that nerves are background.

**Partial labels.** A label-map voxel of 255 (:data:`~spinect_core.training.loss.UNLABELLED`)
means "no reference label here" (e.g. the surroundings of the spine in a CT annotated for bone
only). When the label map's table does not name 255 itself, it is kept as 255 through loading and
resampling and is excluded from the loss, class counts, foreground sampling and validation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.io.labelmap import LabelMapping, labels_on_ct_grid
from spinect_core.io.slicer_seg import SlicerSegment, read_slicer_segmentation, slicer_to_labels
from spinect_core.labels import STUDY_LABELS, LabelTable
from spinect_core.progress import ProgressCallback, report
from spinect_core.training.loss import UNLABELLED
from spinect_core.volume import Volume

__all__ = [
    "CaseFiles", "Case", "LabelMapping", "SlicerSegment", "discover_cases", "load_case",
    "load_cases", "read_slicer_segmentation",
]

#: Image endings, longest first so ``.seg.nrrd`` and ``.nii.gz`` win over ``.nrrd`` and ``.gz``.
_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
_CT_STEMS = ("ct", "image", "img", "volume")
_LABEL_STEMS = ("labels", "label", "seg", "segmentation", "mask", "labelmap")


def _split_suffix(name: str) -> tuple[str, str] | None:
    low = name.lower()
    for suffix in _SUFFIXES:
        if low.endswith(suffix):
            return name[: -len(suffix)], suffix
    return None


# --- label mapping and 3D Slicer segmentations ------------------------------------------------------
# Both live in spinect_core.io (one reader for the CLI, the app and training); imported here so
# that ``from spinect_core.training.cases import LabelMapping`` keeps working.
def _slicer_to_labels(path: Path, mapping: LabelMapping) -> Volume:
    """A Slicer segmentation as a label map of the model's ids, by segment name."""
    return slicer_to_labels(path, mapping)


# --- discovery ------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CaseFiles:
    """Files of one case.

    Attributes
    ----------
    case_id : str
    image : Path
        The CT (NIfTI, NRRD or MHA).
    labels : Path
        A label map (with or without a ``.labels.json`` sidecar) or a Slicer ``.seg.nrrd``.
    """

    case_id: str
    image: Path
    labels: Path

    @property
    def is_slicer(self) -> bool:
        return self.labels.name.lower().endswith(".seg.nrrd")


def _images_in(folder: Path) -> list[tuple[Path, str]]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            split = _split_suffix(p.name)
            if split:
                out.append((p, split[0]))
    return out


def _case_from_folder(folder: Path) -> CaseFiles | None:
    images = _images_in(folder)
    seg = [p for p, _ in images if p.name.lower().endswith(".seg.nrrd")]
    labels = [p for p, stem in images if p not in seg and any(
        stem.lower() == s or stem.lower().startswith(s + "_") or stem.lower().startswith(s + ".")
        for s in _LABEL_STEMS)]
    cts = [p for p, stem in images if p not in seg and p not in labels and any(
        stem.lower() == s or stem.lower().startswith(s + "_") for s in _CT_STEMS)]
    if not cts:
        others = [p for p, _ in images if p not in seg and p not in labels]
        cts = others if len(others) == 1 else []
    # A label map beside a .seg.nrrd (an exported training case holds both, the same labels):
    # the label map, whose sidecar names its classes exactly.
    found = labels if len(labels) == 1 else labels + seg
    if len(cts) != 1 or len(found) != 1:
        return None
    return CaseFiles(case_id=folder.name, image=cts[0], labels=found[0])


def discover_cases(data_dir: str | os.PathLike) -> list[CaseFiles]:
    """Find CT + label pairs in a data folder (the layouts of the module docstring).

    Parameters
    ----------
    data_dir : path-like

    Returns
    -------
    list of CaseFiles
        Sorted by ``case_id`` (so splits do not depend on the file system's order).

    Raises
    ------
    InputError
        The folder does not exist or holds no recognisable case.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise InputError(f"training data folder {root} does not exist")
    cases: dict[str, CaseFiles] = {}
    images_tr, labels_tr = root / "imagesTr", root / "labelsTr"
    if images_tr.is_dir() and labels_tr.is_dir():
        labels = {stem: p for p, stem in _images_in(labels_tr)}
        for p, stem in _images_in(images_tr):
            cid = re.sub(r"_0000$", "", stem)
            if cid in labels:
                cases[cid] = CaseFiles(case_id=cid, image=p, labels=labels[cid])
    for sub in sorted(q for q in root.iterdir() if q.is_dir()):
        if sub.name in ("imagesTr", "labelsTr", "imagesTs", "labelsTs") or sub.name.startswith("."):
            continue
        case = _case_from_folder(sub)
        if case is not None:
            cases[case.case_id] = case
    flat = _images_in(root)
    by_stem = {stem: p for p, stem in flat}
    for p, stem in flat:
        m = re.match(r"^(.+?)[_-](ct|image)$", stem, flags=re.IGNORECASE)
        if not m:
            continue
        cid = m.group(1)
        for cand in (f"{cid}_labels", f"{cid}_label", f"{cid}_seg", f"{cid}-labels", cid):
            target = by_stem.get(cand)
            if target is not None and target != p:
                cases[cid] = CaseFiles(case_id=cid, image=p, labels=target)
                break
    if not cases:
        raise InputError(
            f"no cases found in {root}: expected one folder per case with ct.nii.gz and "
            "labels.nii.gz (or a .seg.nrrd), imagesTr/labelsTr, or <id>_ct.* + <id>_labels.*")
    return [cases[k] for k in sorted(cases)]


# --- loading --------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Case:
    """One training case in memory.

    Attributes
    ----------
    case_id : str
    ct : Volume
        CT in HU, array (z, y, x).
    labels : Volume
        Class ids of ``table`` on the CT's grid, array (z, y, x) uint8; 255
        (:data:`~spinect_core.training.loss.UNLABELLED`) where there is no reference label.
    table : LabelTable
        The model's label table.
    """

    case_id: str
    ct: Volume
    labels: Volume
    table: LabelTable

    def __post_init__(self) -> None:
        if not self.ct.same_grid(self.labels, atol=1e-3):
            raise InputError(f"case {self.case_id}: labels are not on the CT's grid")
        if self.labels.array.dtype != np.uint8:
            self.labels = self.labels.with_array(self.labels.array.astype(np.uint8))
        arr = self.labels.array
        top = int(arr.max(initial=0))
        if top == UNLABELLED and len(self.table.ids) <= UNLABELLED:
            top = int(np.where(arr == UNLABELLED, 0, arr).max(initial=0))
        if top >= len(self.table.ids):
            raise InputError(f"case {self.case_id}: label id {top} is not in the table "
                             f"{list(self.table.names.values())}")


def load_case(files: CaseFiles, *, mapping: LabelMapping | None = None) -> Case:
    """Load a CT and its labels, map the labels onto the model's table and the CT's grid.

    Parameters
    ----------
    files : CaseFiles
    mapping : LabelMapping, optional
        Site names -> model classes. Default: the identity onto the study table for files
        without a table, or onto the label map's own sidecar table.

    Returns
    -------
    Case
        Labels resampled (nearest neighbour) onto the CT's grid when the grids differ (Slicer
        crops segmentations to the segments' extent by default). Voxels of 255 in a label map
        whose table does not name 255 stay 255 (unlabelled; see the module docstring).
    """
    from spinect_core.io import load_ct, load_label_map, read_label_table

    ct = load_ct(files.image)
    if files.is_slicer:
        mapping = mapping or LabelMapping()
        labels = _slicer_to_labels(files.labels, mapping)
    else:
        source_table = read_label_table(files.labels)
        if mapping is None:
            mapping = LabelMapping(table=source_table or STUDY_LABELS)
        volume, table = load_label_map(files.labels, default_table=mapping.table)
        arr = np.asarray(volume.array)
        if arr.min(initial=0) < 0:
            raise InputError(f"{files.labels.name} holds negative label ids")
        lut = mapping.lookup(table.names, where=files.labels.name)
        named = lut.size
        top = int(arr.max(initial=0))
        if top == UNLABELLED and UNLABELLED not in table.names:
            # "no label here" passes through the mapping unchanged
            top = int(np.where(arr == UNLABELLED, 0, arr).max(initial=0))
            extra = np.zeros(max(0, UNLABELLED + 1 - lut.size), dtype=lut.dtype)
            lut = np.concatenate([lut, extra])
            lut[UNLABELLED] = UNLABELLED
        if top >= named:
            raise InputError(f"{files.labels.name} holds label id {top} that its table "
                             f"{list(table.names.values())} does not name")
        labels = volume.with_array(lut[arr])
    # No overlap check: a case whose labels miss the CT is caught by the case checks (no class).
    labels, _ = labels_on_ct_grid(labels, ct, atol=1e-3, check_overlap=False)
    labels = ct.with_array(np.asarray(labels.array).astype(np.uint8))
    return Case(case_id=files.case_id, ct=ct, labels=labels, table=mapping.table)


def load_cases(files: Sequence[CaseFiles], *, mapping: LabelMapping | None = None,
               progress: ProgressCallback | None = None) -> list[Case]:
    """Load several cases; all must end up with the same label table.

    Raises
    ------
    InputError
        A case cannot be read or its table differs from the first case's (pass a mapping).
    """
    cases: list[Case] = []
    for i, f in enumerate(files):
        report(progress, i / max(len(files), 1), f"loading {f.case_id}")
        case = load_case(f, mapping=mapping)
        if cases and case.table != cases[0].table:
            raise InputError(
                f"case {case.case_id} has the label table {list(case.table.names.values())}, "
                f"case {cases[0].case_id} {list(cases[0].table.names.values())}; pass a label "
                "mapping (--label-map) to bring them onto one table")
        cases.append(case)
    report(progress, 1.0, f"loaded {len(cases)} cases")
    return cases


def summarise_cases(cases: Iterable[Case]) -> dict[str, Any]:
    """JSON-ready summary of cases (ids, voxel spacing range, voxels per class) for model cards.

    ``unlabelled_voxels`` (voxels of 255 without a reference label) is present only when some
    case has any.
    """
    cases = list(cases)
    if not cases:
        return {"count": 0}
    spacings = np.array([c.ct.spacing_mm for c in cases])
    counts: dict[str, int] = {}
    unlabelled = 0
    for c in cases:
        bc = np.bincount(c.labels.array.ravel(), minlength=len(c.table.ids))
        for i, name in c.table.names.items():
            counts[name] = counts.get(name, 0) + int(bc[i])
        if UNLABELLED not in c.table.names and bc.size > UNLABELLED:
            unlabelled += int(bc[UNLABELLED])
    out = {"count": len(cases), "case_ids": [c.case_id for c in cases],
           "spacing_mm_min": spacings.min(axis=0).tolist(),
           "spacing_mm_max": spacings.max(axis=0).tolist(),
           "voxels_per_class": counts}
    if unlabelled:
        out["unlabelled_voxels"] = unlabelled
    return out
