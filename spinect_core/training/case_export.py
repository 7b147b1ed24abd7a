"""Export a reviewed case as a training case: CT + corrected labels into a site folder.

The desktop app calls :func:`export_training_case` after the operator reviewed (and perhaps
corrected) a case; ``spinect export-case CT LABELS SITE_DIR`` does the same from files. A case
folder is written under a **generated, non-identifying name** (``case-`` and 12 random hex
digits: nothing of the patient, the file names, the date or the CT goes into it)::

    SITE_DIR/case-3f9a0c1d2e4b/ct.nii.gz               the CT (HU, LPS geometry)
    SITE_DIR/case-3f9a0c1d2e4b/labels.nii.gz           the labels (class ids)
    SITE_DIR/case-3f9a0c1d2e4b/labels.labels.json      their label table (spinect sidecar)
    SITE_DIR/case-3f9a0c1d2e4b/segmentation.seg.nrrd   the same labels as a 3D Slicer
                                                       segmentation with named segments
    SITE_DIR/case-3f9a0c1d2e4b/case.json               what this case is (below)

This is the one-folder-per-case layout :func:`spinect_core.training.cases.discover_cases` reads,
so ``spinect train SITE_DIR -o RUN`` trains on every exported case (it takes ``labels.nii.gz``;
the ``.seg.nrrd`` beside it is for opening the case in 3D Slicer).

``case.json``::

    {"format": "spinect-training-case", "version": 1, "case_name": "case-3f9a0c1d2e4b",
     "source": "operator-reviewed", "exported": "2026-12-04", "coordinate_system": "LPS",
     "labels": [{"id": 0, "name": "background"}, ...], "edited": ["nerve"] or null,
     "ct": {"size_xyz": [...], "spacing_mm": [...]}, "files": {...},
     "software": {"name": "spinect", "version": "..."}}

``edited`` lists what the operator changed (class names, roots, ...) when the caller knows it,
``null`` when unknown. The export date is a day, not a time. No DICOM header, path, file name or
patient identifier is written: the CT is written from its voxels and geometry alone.

The case folder is assembled under a hidden temporary name in SITE_DIR and renamed into place at
the end, so an interrupted export leaves no half case that training would read; an existing case
is never overwritten.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spinect_core import __version__
from spinect_core.errors import InputError
from spinect_core.labels import LabelTable
from spinect_core.volume import Volume

__all__ = ["ExportedCase", "export_training_case", "new_case_name", "CASE_JSON",
           "CASE_NAME_PATTERN"]

#: The sidecar describing an exported case.
CASE_JSON = "case.json"
#: What a generated case name looks like.
CASE_NAME_PATTERN = re.compile(r"^case-[0-9a-f]{12}$")
_SOURCES = ("operator-reviewed", "automatic", "manual")


@dataclass(frozen=True, kw_only=True)
class ExportedCase:
    """A written training case.

    Attributes
    ----------
    name : str
        The generated case name (``case-<12 hex>``).
    folder : Path
        ``SITE_DIR/<name>``.
    files : dict
        Role (``ct``, ``labels``, ``label_table``, ``slicer_segmentation``, ``case``) -> path.
    """

    name: str
    folder: Path
    files: dict[str, Path]


def new_case_name() -> str:
    """A random, non-identifying case name: ``case-`` and 12 hex digits (48 random bits)."""
    return f"case-{secrets.token_hex(6)}"


def _clean(volume: Volume, array: np.ndarray) -> Volume:
    """A volume of ``array`` on ``volume``'s grid with no metadata or warnings (nothing from the
    source headers can reach the files)."""
    return Volume(array=array, spacing_mm=volume.spacing_mm.copy(),
                  origin_lps_mm=volume.origin_lps_mm.copy(), direction=volume.direction.copy())


def _ct_array(ct: Volume) -> np.ndarray:
    """The CT's voxels, as int16 when they are whole HU in range (half the size of float32)."""
    arr = np.asarray(ct.array)
    if np.issubdtype(arr.dtype, np.integer):
        return arr
    if (np.all(np.isfinite(arr)) and np.array_equal(arr, np.round(arr))
            and arr.min(initial=0) >= -32768 and arr.max(initial=0) <= 32767):
        return arr.astype(np.int16)
    return arr.astype(np.float32)


def export_training_case(ct: Volume, labels: Volume, table: LabelTable,
                         site_dir: str | os.PathLike, *, source: str = "operator-reviewed",
                         edited: Sequence[str] | None = None, slicer: bool = True,
                         name: str | None = None) -> ExportedCase:
    """Write one training case (layout in the module docstring) into ``site_dir``.

    Parameters
    ----------
    ct : Volume
        The CT in HU, array (z, y, x), LPS geometry.
    labels : Volume
        Class ids of ``table`` on the CT's grid, array (z, y, x).
    table : LabelTable
        Names of the ids (written into the sidecar and as the Slicer segment names).
    site_dir : path-like
        The site's training folder (created if needed).
    source : {"operator-reviewed", "automatic", "manual"}
        Where the labels come from.
    edited : sequence of str, optional
        What the operator changed (e.g. ``["nerve", "roots"]``); ``None`` when not known.
    slicer : bool
        Also write ``segmentation.seg.nrrd``.
    name : str, optional
        A case name of the ``case-<12 hex>`` form (default: a new random one); for tests and
        for re-exporting under a name the site already uses for this case.

    Returns
    -------
    ExportedCase

    Raises
    ------
    InputError
        Labels not on the CT's grid, ids the table does not name, an unknown source or name
        form, or a case of that name already in ``site_dir`` (never overwritten).
    """
    from spinect_core.io.labelmap import save_label_map, write_image
    from spinect_core.io.slicer_seg import write_slicer_segmentation

    if source not in _SOURCES:
        raise InputError(f"source must be one of {', '.join(_SOURCES)}, got {source!r}")
    if not ct.same_grid(labels, atol=1e-3):
        raise InputError("the labels are not on the CT's grid (size, spacing, origin or "
                         "direction differ); resample them onto the CT first")
    arr = np.asarray(labels.array)
    if arr.size and arr.min() < 0:
        raise InputError("the labels hold negative ids")
    unknown = sorted(set(int(v) for v in np.unique(arr)) - set(table.ids))
    if unknown:
        raise InputError(f"the labels hold ids {unknown} that the table "
                         f"{list(table.names.values())} does not name")
    name = name or new_case_name()
    if not CASE_NAME_PATTERN.match(name):
        raise InputError(f"a case name must look like case-<12 hex digits>, got {name!r}")
    site = Path(site_dir)
    site.mkdir(parents=True, exist_ok=True)
    final = site / name
    if final.exists():
        raise InputError(f"a case named {name} already exists in {site}; not overwritten")
    dtype = np.uint8 if max(table.ids) < 256 else np.uint16
    ct_out = _clean(ct, _ct_array(ct))
    labels_out = _clean(ct, arr.astype(dtype, copy=False))
    # Assemble under a hidden name (discover_cases skips dot-folders), rename at the end.
    tmp = site / f".{name}.partial"
    tmp.mkdir()
    try:
        files = {"ct": "ct.nii.gz", "labels": "labels.nii.gz",
                 "label_table": "labels.labels.json"}
        write_image(ct_out, tmp / files["ct"])
        save_label_map(labels_out, table, tmp / files["labels"])
        if slicer:
            files["slicer_segmentation"] = "segmentation.seg.nrrd"
            write_slicer_segmentation(labels_out, table, tmp / files["slicer_segmentation"])
        files["case"] = CASE_JSON
        doc: dict[str, Any] = {
            "format": "spinect-training-case", "version": 1, "case_name": name,
            "source": source,
            "exported": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
            "coordinate_system": "LPS", "units": {"length": "mm", "ct": "HU"},
            **table.to_json(),
            "edited": None if edited is None else [str(e) for e in edited],
            "ct": {"size_xyz": [int(v) for v in arr.shape[::-1]],
                   "spacing_mm": [float(v) for v in ct.spacing_mm]},
            "files": dict(files),
            "software": {"name": "spinect", "version": __version__},
        }
        (tmp / CASE_JSON).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        if final.exists():  # appeared while we wrote
            raise InputError(f"a case named {name} appeared in {site} while exporting; "
                             "not overwritten")
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return ExportedCase(name=name, folder=final,
                        files={role: final / f for role, f in files.items()})
