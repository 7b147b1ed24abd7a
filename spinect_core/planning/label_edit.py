"""The operator's brush and eraser on a label map (as 3D Slicer's Segment Editor, in small).

A :class:`LabelEditor` holds a working copy of a label map (uint8 class ids, array (z, y, x), on
the CT's grid; names from a :class:`~spinect_core.labels.LabelTable`) and changes it one *dab*
at a time: a disc of a radius in millimetres, in one slice through the dab's centre.

* ``mode="brush"`` sets the disc's voxels to the class (over any other class unless
  ``overwrite=False``, then over background only);
* ``mode="erase"`` sets to background only the disc's voxels *of that class*: erasing nerve
  never deletes bone.

The slice is given as a plane name (``"axial"``, ``"coronal"``, ``"sagittal"``: the index plane
of the grid closest to it, as the app's slice views show them), or as a normal (LPS, (3,)): a
normal within :data:`AXIS_TOLERANCE_DEG` of an index axis means that index plane (one voxel
thick, the slice nearest the centre); any other normal paints the voxels whose centres lie
within half a voxel of the oblique plane. Distances within the plane are measured in mm (LPS),
so a disc is round whatever the spacing. The voxel nearest the centre is always painted, so a
click with a tiny radius still does something.

Several dabs between :meth:`LabelEditor.begin_stroke` and :meth:`LabelEditor.end_stroke` (or in
``with editor.stroke():``) are one undo step. Undo and redo are exact: a step stores only the
flat indices of the voxels it changed, their values before and after (a dab touches only its
disc's bounding box, so a stroke costs what it paints, not the volume).

What the operator changed is counted against the label map the editor started from, per class
(voxels that became the class, voxels that stopped being it), kept up to date at every write;
:meth:`LabelEditor.summary` adds where (centroid and bounding box, LPS mm) and the volume in
ml, for the report, ``plan.json`` and the planning session file
(:mod:`spinect_core.planning.session_file`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.labels import LabelTable
from spinect_core.volume import Volume

__all__ = ["LabelEditor", "LabelEditOptions", "LabelEditSummary", "ClassEdit", "PLANES",
           "AXIS_TOLERANCE_DEG", "EDITABLE_CLASSES", "summary_from_dict"]

#: Anatomical plane names and their normals (LPS).
PLANES: dict[str, tuple[float, float, float]] = {
    "axial": (0.0, 0.0, 1.0), "coronal": (0.0, 1.0, 0.0), "sagittal": (1.0, 0.0, 0.0)}
#: A normal this close to an index axis paints that index plane (deg).
AXIS_TOLERANCE_DEG = 1.0
#: The classes the operator touches up by default (the study's protocol).
EDITABLE_CLASSES = ("bone", "nerve")
_MODES = ("brush", "erase")


@dataclass(frozen=True, kw_only=True)
class LabelEditOptions:
    """Options of a :class:`LabelEditor`.

    Attributes
    ----------
    classes : tuple of str
        Class names that may be painted or erased (others are refused with InputError).
    max_radius_mm : float
        Largest dab radius accepted (mm); the smallest is any positive radius.
    max_undo_steps : int
        Undo steps kept (the oldest are dropped; the edits themselves stay).
    """

    classes: tuple[str, ...] = EDITABLE_CLASSES
    max_radius_mm: float = 50.0
    max_undo_steps: int = 200


@dataclass(frozen=True, kw_only=True)
class ClassEdit:
    """What the operator changed of one class, against the label map the editor started from.

    Attributes
    ----------
    name : str
    added, removed : int
        Voxels that became the class / stopped being it.
    voxel_ml : float
        Volume of one voxel, ml.
    centroid_lps_mm : tuple of 3 float or None
        Centre of the changed voxels (LPS mm).
    bbox_lps_mm : tuple of two (3,) tuples or None
        Lowest and highest LPS coordinates of the changed voxels' centres (mm).
    """

    name: str
    added: int
    removed: int
    voxel_ml: float
    centroid_lps_mm: tuple[float, float, float] | None = None
    bbox_lps_mm: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None

    @property
    def changed(self) -> int:
        """Voxels of this class changed (added + removed)."""
        return self.added + self.removed

    @property
    def changed_ml(self) -> float:
        return self.changed * self.voxel_ml

    def text(self) -> str:
        """``"bone edited by the operator: 1234 voxels (1.23 ml; 1000 added, 234 removed)
        around LPS (12.0, -30.5, 101.2) mm"``."""
        where = ""
        if self.centroid_lps_mm is not None:
            x, y, z = self.centroid_lps_mm
            where = f" around LPS ({x:.1f}, {y:.1f}, {z:.1f}) mm"
        return (f"{self.name} edited by the operator: {self.changed} voxels "
                f"({self.changed_ml:.2f} ml; {self.added} added, {self.removed} removed){where}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "changed_voxels": self.changed, "added_voxels": self.added,
                "removed_voxels": self.removed, "changed_ml": round(self.changed_ml, 4),
                "centroid_lps_mm": (None if self.centroid_lps_mm is None
                                    else [round(v, 3) for v in self.centroid_lps_mm]),
                "bbox_lps_mm": (None if self.bbox_lps_mm is None
                                else [[round(v, 3) for v in p] for p in self.bbox_lps_mm])}


@dataclass(frozen=True, kw_only=True)
class LabelEditSummary:
    """The operator's label edits, per class changed (JSON: :meth:`to_dict`, LPS mm).

    Attributes
    ----------
    classes : tuple of ClassEdit
        Only the classes with changes, in the label table's order.
    voxel_ml : float
    """

    classes: tuple[ClassEdit, ...] = ()
    voxel_ml: float = 0.0

    @property
    def edited(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    def __bool__(self) -> bool:
        return bool(self.classes)

    def get(self, name: str) -> ClassEdit | None:
        return next((c for c in self.classes if c.name == name), None)

    def lines(self) -> list[str]:
        """One sentence per class changed (:meth:`ClassEdit.text`), for the report."""
        return [c.text() for c in self.classes]

    def to_dict(self) -> dict[str, Any]:
        return {"coordinate_system": "LPS", "units": {"length": "mm", "volume": "ml"},
                "voxel_ml": self.voxel_ml, "classes": [c.to_dict() for c in self.classes],
                "text": self.lines()}


def summary_from_dict(doc: Mapping[str, Any]) -> LabelEditSummary:
    """A :class:`LabelEditSummary` from :meth:`LabelEditSummary.to_dict` (InputError when it is
    malformed)."""
    try:
        voxel_ml = float(doc.get("voxel_ml", 0.0))
        classes = []
        for c in doc.get("classes") or []:
            centroid = c.get("centroid_lps_mm")
            bbox = c.get("bbox_lps_mm")
            classes.append(ClassEdit(
                name=str(c["name"]), added=int(c["added_voxels"]),
                removed=int(c["removed_voxels"]), voxel_ml=voxel_ml,
                centroid_lps_mm=None if centroid is None else _triple(centroid),
                bbox_lps_mm=None if bbox is None else (_triple(bbox[0]), _triple(bbox[1]))))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        raise InputError("the label edits' summary is incomplete (classes with name, "
                         "added_voxels, removed_voxels)") from None
    return LabelEditSummary(classes=tuple(classes), voxel_ml=voxel_ml)


def _triple(v: Sequence[Any]) -> tuple[float, float, float]:
    a = [float(x) for x in v]
    if len(a) != 3:
        raise ValueError("three coordinates expected")
    return (a[0], a[1], a[2])


@dataclass
class _Step:
    """One undo step: flat indices (K,), values before and after (K,)."""

    index: np.ndarray
    before: np.ndarray
    after: np.ndarray


@dataclass
class _Stroke:
    index: list[np.ndarray] = field(default_factory=list)
    before: list[np.ndarray] = field(default_factory=list)


class LabelEditor:
    """Brush and eraser on a working copy of a label map, with exact undo / redo.

    Parameters
    ----------
    labels : Volume
        Class ids (non-negative integers < 256), array (z, y, x), LPS geometry (the CT's grid).
        It is not changed: the editor paints on its own copy (:attr:`volume`) and counts the
        edits against this array (kept by reference when it is uint8 in C order: do not write
        into it while editing).
    table : LabelTable
        Names the ids; the painted classes are looked up by name in it.
    options : LabelEditOptions, optional

    Attributes
    ----------
    volume : Volume
        The working label map (uint8, C order, the same grid). Its array changes in place at
        every dab, undo and redo: a viewer may show it directly.
    original : np.ndarray
        The label map the editor started from (read-only view); what the counts are against.
    """

    def __init__(self, labels: Volume, table: LabelTable, *,
                 options: LabelEditOptions | None = None) -> None:
        arr = np.asarray(labels.array)
        if arr.ndim != 3:
            raise InputError(f"a label map is 3D (z, y, x), got shape {arr.shape}")
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise InputError("the label map holds ids outside 0-255; the editor edits uint8 "
                             "class ids")
        if max(table.ids) > 255:
            raise InputError("the label table has ids above 255")
        self.table = table
        self.options = options or LabelEditOptions()
        for name in self.options.classes:
            if not table.has(name):
                raise InputError(f"the label table {list(table.names.values())} has no class "
                                 f"{name!r} to edit")
        # The original is the caller's array when it is already uint8 in C order (a label map
        # of a whole CT is hundreds of MB): a read-only view, never written here; the caller
        # must not write into it either while the editor is in use (the app's state never is).
        if arr.dtype == np.uint8 and arr.flags.c_contiguous:
            self.original = arr.view()
        else:
            self.original = np.ascontiguousarray(arr, dtype=np.uint8)
        self.original.setflags(write=False)
        self.volume = Volume(array=self.original.copy(order="C"),
                             spacing_mm=labels.spacing_mm.copy(),
                             origin_lps_mm=labels.origin_lps_mm.copy(),
                             direction=labels.direction.copy())
        self._flat = self.volume.array.reshape(-1)  # a view: writes reach the array
        self._orig_flat = self.original.reshape(-1)
        self._added = np.zeros(256, np.int64)
        self._removed = np.zeros(256, np.int64)
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._stroke: _Stroke | None = None
        # Union of the index boxes (z0, z1, y0, y1, x0, x1; exclusive ends) ever written: the
        # summary looks for changes only there.
        self._touched: list[int] | None = None
        self.voxel_ml = float(np.prod(labels.spacing_mm)) / 1000.0

    # --- the dab ---------------------------------------------------------------------------------
    def paint(self, center_lps_mm: Sequence[float], radius_mm: float, label: str | int, *,
              plane: str | Sequence[float] = "axial", mode: str = "brush",
              overwrite: bool = True) -> int:
        """Paint (or erase) a disc; returns how many voxels it changed.

        Parameters
        ----------
        center_lps_mm : (3,) float
            The disc's centre, LPS mm.
        radius_mm : float
            Its radius in the plane, mm (> 0, at most ``options.max_radius_mm``).
        label : str or int
            The class painted or erased, by name (or id), one of ``options.classes``.
        plane : {"axial", "coronal", "sagittal"} or (3,) float
            The slice through the centre: a plane name (the closest index plane) or a normal
            (LPS; within :data:`AXIS_TOLERANCE_DEG` of an index axis: that index plane).
        mode : {"brush", "erase"}
            The brush sets the class; the eraser sets background where the class is.
        overwrite : bool
            Brush only: paint over other classes (3D Slicer's default) or over background only.

        Raises
        ------
        InputError
            Unknown class, mode or plane, a radius out of range, a centre that is not finite.
        """
        if mode not in _MODES:
            raise InputError(f"mode must be 'brush' or 'erase', got {mode!r}")
        label_id = self._label_id(label)
        r = float(radius_mm)
        if not (np.isfinite(r) and 0.0 < r <= self.options.max_radius_mm):
            raise InputError(f"the brush radius must be above 0 and at most "
                             f"{self.options.max_radius_mm:g} mm, got {radius_mm!r}")
        c = np.asarray(center_lps_mm, float).reshape(-1)
        if c.shape != (3,) or not np.all(np.isfinite(c)):
            raise InputError("the brush centre must be three finite LPS coordinates (mm)")
        found = self._disc(c, r, self._normal(plane))
        if found is None:
            return 0
        index, box = found
        current = self._flat[index]
        if mode == "brush":
            keep = current != label_id if overwrite else current == 0
            new_value = label_id
        else:
            keep = current == label_id
            new_value = 0
        index = index[keep]
        if index.size == 0:
            return 0
        before = current[keep]
        self._write(index, np.full(index.size, new_value, np.uint8), box)
        if self._stroke is not None:
            self._stroke.index.append(index)
            self._stroke.before.append(before)
        else:
            self._push(_Step(index, before, np.full(index.size, new_value, np.uint8)))
        return int(index.size)

    def erase(self, center_lps_mm: Sequence[float], radius_mm: float, label: str | int, *,
              plane: str | Sequence[float] = "axial") -> int:
        """``paint(..., mode="erase")``."""
        return self.paint(center_lps_mm, radius_mm, label, plane=plane, mode="erase")

    # --- strokes, undo, redo ---------------------------------------------------------------------
    def begin_stroke(self) -> None:
        """Dabs from now to :meth:`end_stroke` are one undo step (a second call is ignored)."""
        if self._stroke is None:
            self._stroke = _Stroke()

    def end_stroke(self) -> int:
        """Close the stroke; returns the voxels it changed (0: no undo step is added)."""
        stroke, self._stroke = self._stroke, None
        if stroke is None or not stroke.index:
            return 0
        index = np.concatenate(stroke.index)
        before = np.concatenate(stroke.before)
        # A voxel painted by several dabs: its value before the stroke is its first record.
        index, first = np.unique(index, return_index=True)
        before = before[first]
        after = self._flat[index].copy()
        changed = before != after  # painted, then erased within the stroke: no change
        if not np.any(changed):
            return 0
        self._push(_Step(index[changed], before[changed], after[changed]))
        return int(np.count_nonzero(changed))

    @contextlib.contextmanager
    def stroke(self) -> Iterator["LabelEditor"]:
        """``with editor.stroke(): editor.paint(...); editor.paint(...)``: one undo step."""
        self.begin_stroke()
        try:
            yield self
        finally:
            self.end_stroke()

    @property
    def in_stroke(self) -> bool:
        return self._stroke is not None

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        """Undo the last step (an open stroke is closed first); False when there is none."""
        self.end_stroke()
        if not self._undo:
            return False
        step = self._undo.pop()
        self._write(step.index, step.before, None)
        self._redo.append(step)
        return True

    def redo(self) -> bool:
        self.end_stroke()
        if not self._redo:
            return False
        step = self._redo.pop()
        self._write(step.index, step.after, None)
        self._undo.append(step)
        return True

    def replace_all(self, array: np.ndarray) -> int:
        """Make the working map equal ``array`` (same shape; e.g. a saved edited map reopened)
        as one undo step; returns the voxels changed."""
        a = np.asarray(array)
        if a.shape != self.original.shape:
            raise InputError(f"the edited label map has shape {a.shape}, the label map "
                             f"{self.original.shape}: not the same grid")
        if a.size and (a.min() < 0 or a.max() > 255):
            raise InputError("the edited label map holds ids outside 0-255")
        unknown = sorted(set(int(v) for v in np.unique(a)) - set(self.table.ids))
        if unknown:
            raise InputError(f"the edited label map holds ids {unknown} that the table "
                             f"{list(self.table.names.values())} does not name")
        self.end_stroke()
        index = np.flatnonzero(a.reshape(-1) != self._flat)
        if index.size == 0:
            return 0
        after = a.reshape(-1)[index].astype(np.uint8)
        before = self._flat[index].copy()
        self._write(index, after, None)
        self._push(_Step(index, before, after))
        return int(index.size)

    # --- what changed ----------------------------------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        """Per class with changes: ``{"added", "removed", "changed"}`` voxels, against the label
        map the editor started from (kept up to date at every write: no scan of the volume)."""
        out = {}
        for i, name in self.table.names.items():
            if i == 0:
                continue
            a, r = int(self._added[i]), int(self._removed[i])
            if a or r:
                out[name] = {"added": a, "removed": r, "changed": a + r}
        return out

    def edited(self) -> tuple[str, ...]:
        """Names of the classes the operator changed (empty: the map is as it started)."""
        return tuple(self.counts())

    def summary(self) -> LabelEditSummary:
        """The edits per class with where they are (LPS mm) and their volume (ml)."""
        counts = self.counts()
        if not counts or self._touched is None:
            return LabelEditSummary(voxel_ml=self.voxel_ml)
        z0, z1, y0, y1, x0, x1 = self._touched
        now = self.volume.array[z0:z1, y0:y1, x0:x1]
        was = self.original[z0:z1, y0:y1, x0:x1]
        classes = []
        for name, n in counts.items():
            i = self.table.id_of(name)
            mask = (now == i) != (was == i)
            zyx = np.argwhere(mask) + np.array([z0, y0, x0])
            pts = self.volume.index_to_lps(zyx[:, ::-1].astype(float))
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            classes.append(ClassEdit(
                name=name, added=n["added"], removed=n["removed"], voxel_ml=self.voxel_ml,
                centroid_lps_mm=_triple(pts.mean(axis=0)),
                bbox_lps_mm=(_triple(lo), _triple(hi))))
        return LabelEditSummary(classes=tuple(classes), voxel_ml=self.voxel_ml)

    def written_region(self) -> tuple[slice, slice, slice] | None:
        """Slices (z, y, x) of a box holding every voxel the editor ever wrote (None: none).

        The working map equals any earlier snapshot of it outside this box, so comparing the
        two there is enough (the app asks whether the map shown still equals the planned one)."""
        if self._touched is None:
            return None
        z0, z1, y0, y1, x0, x1 = self._touched
        return (slice(z0, z1), slice(y0, y1), slice(x0, x1))

    def to_volume(self) -> Volume:
        """A snapshot of the working map (a copy: later dabs do not reach it)."""
        return self.volume.with_array(self.volume.array.copy())

    # --- internals -------------------------------------------------------------------------------
    def _label_id(self, label: str | int) -> int:
        try:
            name = self.table.name_of(int(label)) if not isinstance(label, str) else label
            label_id = self.table.id_of(name)
        except (KeyError, ValueError, TypeError):
            raise InputError(f"no class {label!r} in the label table "
                             f"{list(self.table.names.values())}") from None
        if name not in self.options.classes:
            raise InputError(f"the class {name!r} cannot be edited here (editable: "
                             f"{', '.join(self.options.classes)})")
        return label_id

    def _normal(self, plane: str | Sequence[float]) -> np.ndarray:
        if isinstance(plane, str):
            if plane not in PLANES:
                raise InputError(f"plane must be one of {', '.join(PLANES)} or a normal, "
                                 f"got {plane!r}")
            n = np.asarray(PLANES[plane], float)
            # A named plane is the index plane closest to it (what the slice views show).
            k = int(np.argmax(np.abs(self.volume.direction.T @ n)))
            return self.volume.direction[:, k].copy()
        n = np.asarray(plane, float).reshape(-1)
        norm = float(np.linalg.norm(n)) if n.shape == (3,) else 0.0
        if not (np.isfinite(norm) and norm > 0):
            raise InputError("a plane normal must be three finite numbers, not all zero")
        return n / norm

    def _disc(self, c: np.ndarray, r: float, n: np.ndarray
              ) -> tuple[np.ndarray, list[int]] | None:
        """Flat indices of the disc's voxels and their index box (z0, z1, y0, y1, x0, x1)."""
        vol = self.volume
        shape = np.array(vol.array.shape[::-1])  # (nx, ny, nz)
        centre = vol.lps_to_index(c)  # continuous (x, y, z)
        cos = np.abs(vol.direction.T @ n)  # |n . axis| per index axis (x, y, z)
        k = int(np.argmax(cos))
        on_axis = cos[k] >= np.cos(np.radians(AXIS_TOLERANCE_DEG))
        # Off an index axis: voxels within half a voxel (its extent along n) of the plane.
        thick = 0.0 if on_axis else 0.5 * float(np.sum(cos * vol.spacing_mm))
        # The box: the disc's extent along each index axis, in voxels, plus one.
        half = np.ceil((r + thick) / vol.spacing_mm) + 1
        lo = np.floor(centre - half).astype(int)
        hi = np.ceil(centre + half).astype(int) + 1
        s = int(np.rint(centre[k]))
        if on_axis:
            if not 0 <= s < shape[k]:
                return None
            lo[k], hi[k] = s, s + 1
        lo = np.clip(lo, 0, shape)
        hi = np.clip(hi, 0, shape)
        if np.any(hi <= lo):
            return None
        ii, jj, kk = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]),
                                 np.arange(lo[2], hi[2]), indexing="ij")
        idx = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], 1)
        d = vol.index_to_lps(idx.astype(float)) - c
        along = d @ n
        inplane = np.linalg.norm(d - along[:, None] * n[None, :], axis=1)
        inside = inplane <= r
        if not on_axis:
            inside &= np.abs(along) <= thick
        if not np.any(inside):
            # A radius below the voxel size: the voxel nearest the centre, when inside the grid.
            near = np.rint(centre).astype(int)
            if np.any(near < 0) or np.any(near >= shape):
                return None
            inside = np.all(idx == near, axis=1)
            if not np.any(inside):
                return None
        sel = idx[inside]
        flat = np.ravel_multi_index((sel[:, 2], sel[:, 1], sel[:, 0]), vol.array.shape)
        box = [int(lo[2]), int(hi[2]), int(lo[1]), int(hi[1]), int(lo[0]), int(hi[0])]
        return flat.astype(np.intp), box

    def _write(self, index: np.ndarray, values: np.ndarray, box: list[int] | None) -> None:
        """Write ``values`` at flat ``index`` and keep the per-class counts exact."""
        old = self._flat[index]
        g = self._orig_flat[index]
        # added[c] = #(now == c and was != c); removed[c] = #(was == c and now != c).
        self._added += (np.bincount(values[values != g], minlength=256)
                        - np.bincount(old[old != g], minlength=256))
        self._removed += (np.bincount(g[values != g], minlength=256)
                          - np.bincount(g[old != g], minlength=256))
        self._flat[index] = values
        if box is None:
            z, y, x = np.unravel_index(index, self.volume.array.shape)
            box = [int(z.min()), int(z.max()) + 1, int(y.min()), int(y.max()) + 1,
                   int(x.min()), int(x.max()) + 1]
        if self._touched is None:
            self._touched = list(box)
        else:
            t = self._touched
            self._touched = [min(t[0], box[0]), max(t[1], box[1]), min(t[2], box[2]),
                             max(t[3], box[3]), min(t[4], box[4]), max(t[5], box[5])]

    def _push(self, step: _Step) -> None:
        self._undo.append(step)
        del self._undo[:-self.options.max_undo_steps]
        self._redo.clear()
