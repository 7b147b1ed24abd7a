"""Label maps on disk: an image file (NIfTI, NRRD, MHA) plus a label-table sidecar JSON.

The sidecar sits beside the image with the image's stem and ``.labels.json``:
``seg.nii.gz`` -> ``seg.labels.json``. Its content::

    {"format": "spinect-labels", "version": 1, "coordinate_system": "LPS",
     "labels": [{"id": 0, "name": "background"}, {"id": 1, "name": "bone"}, ...]}

The image itself stores geometry in LPS through ITK (NIfTI files are converted to RAS on disk by
ITK as the NIfTI standard requires, and back on reading).

3D Slicer segmentations (``*.seg.nrrd``) are read and written **by segment name**
(:mod:`spinect_core.io.slicer_seg`): :func:`load_label_map` maps their segments' names onto the
default classes (bone, nerve, disc, dura), never their label values, so a file whose segments
are in another order gives the same label map; :func:`save_label_map` writes named, coloured
segments that Slicer opens natively.

**Label mappings** (:class:`LabelMapping`) map a site's names ("Vertebra L5", TotalSegmentator's
``vertebrae_L5``, MONAI Label's ``L5``) onto our classes. The JSON form::

    {"description": "what the mapping is for",
     "labels":   [{"id": 0, "name": "background"}, {"id": 1, "name": "bone"}, ...],
     "segments": {"Vertebra L5": "bone", "vertebrae_*": "bone", "L5 root left": "nerve"},
     "ignore":   ["Skin", "lung_*"],
     "unmapped": "error",
     "source_labels": {"1": "vertebrae_L5", "2": "sacrum"}}

``labels`` (the target table) defaults to the study's background/bone/nerve (training) or the
caller's table. Keys of ``segments`` and entries of ``ignore`` are matched case-insensitively;
keys with ``*``, ``?`` or ``[`` are shell patterns (exact names win over patterns, patterns are
tried in file order). A source name maps to the class ``segments`` names, else to the class of
the same name; names in ``ignore`` (and ``background``) become background; any other name is an
error with ``unmapped: "error"`` (the default) and background with ``"background"``.
``source_labels`` names the ids of a label map that has no ``.labels.json`` sidecar (for example
TotalSegmentator's single multi-label NIfTI). Ready mappings ship in ``assets/label_maps``
(:func:`ready_label_mapping`, ``--label-map totalsegmentator``).
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

from spinect_core.errors import InputError
from spinect_core.io.atomic import atomic_path, write_text_atomic
from spinect_core.labels import DEFAULT_LABELS, STUDY_LABELS, LabelTable
from spinect_core.progress import ProgressCallback, report
from spinect_core.volume import CTMetadata, Volume

#: File endings we write and read as images (longest first so ``.nii.gz`` wins over ``.gz``).
IMAGE_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def image_stem(path: str | os.PathLike) -> str:
    """File name without an image suffix: ``a/b.nii.gz`` -> ``b``."""
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def sidecar_path(path: str | os.PathLike) -> Path:
    """The label-table sidecar of an image path."""
    return Path(path).with_name(image_stem(path) + ".labels.json")


def write_image(volume: Volume, path: str | os.PathLike, *, overwrite: bool = False,
                compress: bool = True) -> Path:
    """Write ``volume`` atomically as NIfTI, NRRD or MHA, chosen by the extension."""
    import SimpleITK as sitk

    target = Path(path)
    if not target.name.lower().endswith(IMAGE_SUFFIXES):
        raise InputError(f"unsupported image extension in {target.name}; use .nii.gz, .nrrd or .mha")
    with atomic_path(target, overwrite=overwrite) as tmp:
        sitk.WriteImage(volume.to_sitk(), str(tmp), useCompression=compress)
    return target


def save_label_map(volume: Volume, table: LabelTable, path: str | os.PathLike, *,
                   overwrite: bool = False) -> Path:
    """Write a label map (uint8 ids on ``volume``'s grid) and its sidecar JSON.

    A path ending in ``.seg.nrrd`` is written as a 3D Slicer segmentation with one named,
    coloured segment per class present
    (:func:`spinect_core.io.slicer_seg.write_slicer_segmentation`), its sidecar beside it as for
    every label map (Slicer ignores it; the names are in the file).

    Parameters
    ----------
    volume : Volume
        ``array`` of integer class ids, shape (z, y, x).
    table : LabelTable
        Names of the ids; every id in the array must be in the table.
    path : path-like
        Image path; the extension picks the format.
    """
    present = np.unique(volume.array)
    unknown = sorted(set(int(v) for v in present) - set(table.ids))
    if unknown:
        raise ValueError(f"label map contains ids {unknown} that the label table does not name")
    dtype = np.uint8 if max(table.ids) < 256 else np.uint16
    labels = volume.with_array(volume.array.astype(dtype, copy=False))
    sidecar = sidecar_path(path)
    if sidecar.exists() and not overwrite:
        # Refuse before writing anything so we never leave an image without its table.
        from spinect_core.io.atomic import check_writable
        check_writable(sidecar, overwrite=False)
    if is_slicer_path(path):
        from spinect_core.io.slicer_seg import write_slicer_segmentation

        image_path = write_slicer_segmentation(labels, table, path, overwrite=overwrite)
    else:
        image_path = write_image(labels, path, overwrite=overwrite)
    doc = {"format": "spinect-labels", "version": 1, "coordinate_system": "LPS",
           "image": image_path.name, **table.to_json()}
    write_text_atomic(sidecar, json.dumps(doc, indent=2) + "\n", overwrite=overwrite)
    return image_path


def is_slicer_path(path: str | os.PathLike) -> bool:
    """True for a 3D Slicer segmentation file name (``*.seg.nrrd``)."""
    return Path(path).name.lower().endswith(".seg.nrrd")


def read_label_table(path: str | os.PathLike) -> LabelTable | None:
    """The label table of an image: its sidecar's, ``None`` when there is no sidecar.

    A 3D Slicer ``.seg.nrrd`` needs none: its segments are read by name onto
    :data:`~spinect_core.labels.DEFAULT_LABELS`, which is returned (without reading the file).
    """
    if is_slicer_path(path):
        return DEFAULT_LABELS
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        return None
    try:
        return LabelTable.from_json(json.loads(sidecar.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"label table {sidecar.name} is not valid: {exc}") from exc


def read_label_image(path: str | os.PathLike, *, exact_integers: bool = False) -> Volume:
    """Read a label image (no table): integer ids, shape (z, y, x), LPS geometry.

    Floating-point images are accepted when their values are integers (to ``np.allclose``, or
    exactly with ``exact_integers``) and converted to int32.

    Raises
    ------
    InputError
        Unreadable file, or values that are not integers.
    """
    import SimpleITK as sitk

    p = Path(path)
    try:
        image = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        raise InputError(f"cannot read label map {p.name}: {str(exc).splitlines()[0]}") from exc
    volume = Volume.from_sitk(image, metadata=CTMetadata(modality="SEG", source_format=p.suffix))
    if not np.issubdtype(volume.array.dtype, np.integer):
        rounded = np.rint(volume.array)
        same = np.array_equal if exact_integers else np.allclose
        if not same(rounded, volume.array):
            raise InputError(f"{p.name} holds non-integer values; it is not a label map")
        volume = volume.with_array(rounded.astype(np.int32))
    return volume


def load_label_map(path: str | os.PathLike, *, default_table: LabelTable | None = None,
                   mapping: "LabelMapping | None" = None) -> tuple[Volume, LabelTable]:
    """Read a label map and its table (sidecar, else ``default_table``).

    A 3D Slicer ``.seg.nrrd`` is read by segment name (never by label value): with ``mapping``
    its names go through it, else through :data:`DEFAULT_SEGMENT_MAPPING` (bone, nerve, disc,
    dura and their usual synonyms). With ``mapping``, a plain label map's names (its sidecar's,
    else the mapping's ``source_labels``) are mapped onto ``mapping.table`` too.

    Returns
    -------
    volume : Volume
        Integer ids, shape (z, y, x), LPS geometry.
    table : LabelTable

    Raises
    ------
    InputError
        Missing file, no table, or names the mapping does not match (the message lists the
        names found).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"label map {p} does not exist")
    if is_slicer_path(p):
        from spinect_core.io.slicer_seg import slicer_to_labels

        mapping = mapping or DEFAULT_SEGMENT_MAPPING
        return slicer_to_labels(p, mapping), mapping.table
    volume = read_label_image(p)
    if mapping is not None:
        return map_label_volume(volume, read_label_table(p), mapping, where=p.name), mapping.table
    table = read_label_table(p) or default_table
    if table is None:
        raise InputError(f"{p.name} has no label table ({sidecar_path(p).name}); "
                         "write one or say which table to use")
    return volume, table


def map_label_volume(volume: Volume, source: LabelTable | None, mapping: "LabelMapping", *,
                     where: str) -> Volume:
    """Ids of a label map (named by ``source``, else ``mapping.source_labels``) onto
    ``mapping.table``.

    Returns
    -------
    Volume
        uint8 (uint16 beyond 255 classes) ids of ``mapping.table``, same grid.

    Raises
    ------
    InputError
        No names for the ids, an id without a name, unmapped names, or no name matching any
        class of the mapping.
    """
    names = dict(source.names) if source is not None else dict(mapping.source_labels)
    if not names:
        raise InputError(f"{where} has no label table ({sidecar_path(where).name}) and the label "
                         "mapping gives no 'source_labels': the names of its ids are unknown")
    arr = np.asarray(volume.array)
    if arr.size and arr.min() < 0:
        raise InputError(f"{where} holds negative label ids")
    present = set(np.unique(arr).tolist()) - {0}
    unnamed = sorted(present - set(names))
    if unnamed:
        raise InputError(f"{where} holds ids {unnamed[:20]} that neither its table nor the label "
                         "mapping names")
    found = {i: names[i] for i in sorted(present)}
    mapping.check_matches(found.values(), where=where)
    lut = mapping.lookup(names, where=where)
    lut = np.concatenate([lut, np.zeros(max(0, int(arr.max(initial=0)) + 1 - lut.size),
                                        dtype=lut.dtype)])
    dtype = np.uint8 if max(mapping.table.ids) < 256 else np.uint16
    return volume.with_array(lut[arr].astype(dtype))


def labels_on_ct_grid(labels: Volume, ct: Volume, *, what: str = "label map",
                      atol: float = 1e-4, check_overlap: bool = True,
                      progress: ProgressCallback | None = None) -> tuple[Volume, str]:
    """``labels`` on ``ct``'s grid, and a note when it had to be resampled.

    The one place a label map (or instance map) is put on a CT's grid: the planner, the app's
    segmentation loader, ``spinect export-case``, the cohort validation and the training loader
    all call it (a 3D Slicer segmentation is cropped to its segments by default, so its grid
    rarely is the CT's).

    Parameters
    ----------
    labels : Volume
        Integer class ids, (z, y, x), any LPS grid.
    ct : Volume
        The reference grid.
    what : str
        How the note, the progress message and the error name ``labels``.
    atol : float
        Tolerance of the grid comparison (:meth:`Volume.same_grid`: spacing and origin in mm,
        direction cosines). The default is the one the anatomy checks with; loaders of files
        written by other software pass 1e-3 (headers round their geometry).
    check_overlap : bool
        Raise when ``labels`` holds classes but none of them lands inside the CT after
        resampling (the label map of another scan). False: return the empty map.
    progress : ProgressCallback or None
        Told when resampling starts and ends (nothing when the grids agree).

    Returns
    -------
    labels : Volume
        ``labels`` itself when the grids agree, else resampled onto ``ct``'s exact grid, nearest
        neighbour (0 outside ``labels``' extent), dtype, metadata and warnings of ``labels`` kept.
    note : str
        Empty when nothing was done; else says the map was resampled.

    Raises
    ------
    InputError
        ``check_overlap`` and ``labels`` holds classes but none of them lies inside the CT's
        field of view.
    """
    if labels.same_grid(ct, atol=atol):
        return labels, ""
    from spinect_core.preprocess.resample import resample_to_grid

    report(progress, 0.0, f"resampling the {what} onto the CT grid")
    out = resample_to_grid(labels, ct, interpolation="nearest", default_value=0)
    if check_overlap and np.any(labels.array) and not np.any(out.array):
        raise InputError(f"the {what} does not overlap the CT; give the {what} of this CT")
    report(progress, 1.0, f"{what} resampled")
    return out, (f"the {what} is on another grid than the CT; resampled onto the CT grid "
                 "(nearest neighbour)")


# --- label mappings -------------------------------------------------------------------------------
def _is_pattern(key: str) -> bool:
    return any(c in key for c in "*?[")


@dataclass(frozen=True, kw_only=True)
class LabelMapping:
    """Mapping of a site's segment / class names onto a label table (see the module docstring).

    Attributes
    ----------
    table : LabelTable
        The target classes (ids ``0 .. N-1``; 0 is background).
    segments : mapping of str to str
        Source name or shell pattern -> target class name (matched case-insensitively; exact
        names before patterns, patterns in order).
    ignore : tuple of str
        Source names or patterns that become background (stored lower-case).
    unmapped : {"error", "background"}
        What a source name that nothing matches becomes.
    source_labels : mapping of int to str
        Names of the ids of label maps without a sidecar table.
    description : str
        Free text (what the mapping is for).
    """

    table: LabelTable = STUDY_LABELS
    segments: Mapping[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] | frozenset[str] = ()
    unmapped: Literal["error", "background"] = "error"
    source_labels: Mapping[int, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        segs = {str(k).strip().lower(): str(v).strip() for k, v in self.segments.items()}
        names = {n.lower(): n for n in self.table.names.values()}
        bad = sorted({v for v in segs.values() if v.lower() not in names})
        if bad:
            raise InputError(f"label mapping names classes {bad} that the target table "
                             f"{list(self.table.names.values())} does not have")
        object.__setattr__(self, "segments", segs)
        ignore = self.ignore if isinstance(self.ignore, (list, tuple)) else sorted(self.ignore)
        object.__setattr__(self, "ignore", tuple(str(n).strip().lower() for n in ignore))
        try:
            source = {int(k): str(v) for k, v in dict(self.source_labels).items()}
        except (TypeError, ValueError):
            raise InputError("label mapping 'source_labels' must map integer ids to "
                             "names") from None
        object.__setattr__(self, "source_labels", source)
        if self.unmapped not in ("error", "background"):
            raise InputError(f"label mapping 'unmapped' must be 'error' or 'background', "
                             f"got {self.unmapped!r}")

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *,
                  default_table: LabelTable = STUDY_LABELS) -> "LabelMapping":
        """Parse the JSON form of the module docstring (``labels`` defaults to
        ``default_table``)."""
        if not isinstance(data, Mapping):
            raise InputError("a label mapping must be a JSON object with 'segments'")
        unknown = sorted(set(data) - {"labels", "segments", "ignore", "unmapped", "source_labels",
                                      "description"})
        if unknown:
            raise InputError(f"label mapping has unknown keys {unknown}; expected labels, "
                             "segments, ignore, unmapped, source_labels, description")
        try:
            table = LabelTable.from_json(data["labels"]) if "labels" in data else default_table
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"label mapping 'labels' is not a label table: {exc}") from None
        segments = data.get("segments", {})
        if not isinstance(segments, Mapping):
            raise InputError("label mapping 'segments' must map source names to class names")
        ignore = data.get("ignore", ())
        if isinstance(ignore, str) or not isinstance(ignore, (list, tuple)):
            raise InputError("label mapping 'ignore' must be a list of names")
        return cls(table=table, segments=dict(segments), ignore=tuple(ignore),
                   unmapped=data.get("unmapped", "error"),
                   source_labels=data.get("source_labels", {}) or {},
                   description=str(data.get("description", "")))

    @classmethod
    def from_file(cls, path: str | os.PathLike, *,
                  default_table: LabelTable = STUDY_LABELS) -> "LabelMapping":
        """Read a label-mapping JSON file."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read label mapping {p}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise InputError(f"label mapping {p.name} is not valid JSON: {exc}") from None
        return cls.from_json(data, default_table=default_table)

    def target_id(self, source_name: str) -> int | None:
        """Target class id of a source name; ``None`` when it is unmapped."""
        key = source_name.strip().lower()
        by_name = {n.lower(): i for i, n in self.table.names.items()}
        if key in self.segments:
            return by_name[self.segments[key].lower()]
        if key in by_name:
            return by_name[key]
        if key in self.ignore or key == "background":
            return 0
        for pattern, target in self.segments.items():
            if _is_pattern(pattern) and fnmatch.fnmatchcase(key, pattern):
                return by_name[target.lower()]
        if any(_is_pattern(p) and fnmatch.fnmatchcase(key, p) for p in self.ignore):
            return 0
        return 0 if self.unmapped == "background" else None

    def check_matches(self, names: Any, *, where: str) -> None:
        """Refuse source names of which none maps to a class other than background.

        Raises
        ------
        InputError
            Naming the names found, so the user sees which mapping would fit.
        """
        names = [str(n) for n in names]
        if not any(self.target_id(n) for n in names):
            shown = ", ".join(names[:30]) + (f" and {len(names) - 30} more" if len(names) > 30
                                             else "")
            raise InputError(
                f"{where}: none of its names matches the label mapping's classes "
                f"{[n for i, n in self.table.names.items() if i]}; names found: "
                f"{shown or 'none'}; choose the label mapping of the tool that wrote it "
                "(--label-map)")

    def lookup(self, source: Mapping[int, str], *, where: str) -> np.ndarray:
        """Look-up table ``lut[source_id] = target_id`` for the named source ids (0 stays 0).

        Raises
        ------
        InputError
            When a source name is unmapped (with ``unmapped="error"``).
        """
        size = max([0, *source]) + 1
        lut = np.zeros(size, dtype=np.uint8 if max(self.table.ids) < 256 else np.uint16)
        missing = []
        for sid, name in source.items():
            if sid == 0:
                continue
            tid = self.target_id(name)
            if tid is None:
                missing.append(name)
            else:
                lut[sid] = tid
        if missing:
            raise InputError(
                f"{where}: segments {missing} are not mapped to the classes "
                f"{list(self.table.names.values())}; add them to the label mapping's 'segments' "
                "or 'ignore'")
        return lut


#: How a ``.seg.nrrd`` is read without ``--label-map``: our class names and their usual
#: synonyms onto :data:`~spinect_core.labels.DEFAULT_LABELS` (a name nothing matches is refused).
DEFAULT_SEGMENT_MAPPING = LabelMapping(
    table=DEFAULT_LABELS,
    description="SPINECT's classes and common synonyms",
    segments={
        # bone: our class, vertebrae by level, sacrum, pelvis (the ilium blocks needles)
        "bone": "bone", "bones": "bone", "vertebra*": "bone", "vertebrae*": "bone",
        "spine": "bone", "l[1-6]": "bone", "s[1-5]": "bone", "t[1-9]": "bone", "t1[0-2]": "bone",
        "th[1-9]": "bone", "th1[0-2]": "bone", "sacrum": "bone", "coccyx": "bone",
        "ilium*": "bone", "iliac bone*": "bone", "hip*": "bone", "pelvis": "bone",
        "skeleton": "bone",
        # nerve: roots, spinal nerves, ganglia, cauda equina
        "nerve": "nerve", "nerves": "nerve", "nerve *": "nerve", "nerve_*": "nerve",
        "*nerve root*": "nerve", "*root*": "nerve",
        "spinal nerve*": "nerve", "*ganglion*": "nerve", "cauda equina": "nerve",
        # disc
        "disc": "disc", "disk": "disc", "discs": "disc", "disks": "disc",
        "intervertebral dis[ck]*": "disc", "intervertebral_dis[ck]*": "disc", "ivd": "disc",
        "dis[ck] *": "disc", "dis[ck]_*": "disc", "* dis[ck]": "disc", "*_dis[ck]": "disc",
        # dura: the dural (thecal) sac
        "dura": "dura", "dura mater": "dura", "dural sac": "dura", "thecal sac": "dura",
        "dural_sac": "dura", "thecal_sac": "dura", "dura *": "dura", "dura_*": "dura",
    },
    ignore=("skin", "body", "background", "unlabelled", "unlabeled"),
)


def ready_label_mapping_names() -> list[str]:
    """Names of the ready mappings shipped in ``assets/label_maps`` (``totalsegmentator``, ...)."""
    from spinect_core.resources import asset_path

    folder = asset_path("label_maps")
    return sorted(p.name[: -len(".json")] for p in folder.glob("*.json")) if folder.is_dir() else []


def resolve_label_mapping(value: str | os.PathLike, *,
                          default_table: LabelTable = DEFAULT_LABELS) -> LabelMapping:
    """A ``--label-map`` value: a mapping JSON file, or the name of a ready mapping.

    Raises
    ------
    InputError
        Neither a file nor a ready mapping's name (the message lists the ready ones).
    """
    from spinect_core.resources import asset_path

    text = str(value)
    p = Path(text)
    if p.is_file():
        return LabelMapping.from_file(p, default_table=default_table)
    ready = asset_path("label_maps", text.lower().removesuffix(".json") + ".json")
    if os.sep not in text and "/" not in text and ready.is_file():
        return LabelMapping.from_file(ready, default_table=default_table)
    raise InputError(f"label mapping {text} is neither a file nor a ready mapping; ready "
                     f"mappings: {', '.join(ready_label_mapping_names()) or 'none installed'}")
