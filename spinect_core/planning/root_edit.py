"""The operator's corrections of a plan's nerve roots, and the fast re-plan at the current view.

A root of the plan (:class:`~spinect_core.anatomy.roots.Root`: a centreline sampled about every
millimetre) is edited through a few **control points** (the centreline subsampled every
``control_spacing_mm``, each with a radius): drag one, insert one on a click near the root,
delete one, set a radius. The edited root's tube is then refitted (:func:`fit_tube`: a spline
through the control points over their chord length, resampled every ``sample_mm``, the radii
interpolated linearly along it) and its source becomes ``"operator"``.

Every state of the edits is an immutable :class:`RootEditState`; :class:`RootEditor` holds the
history (undo / redo) and keeps a built :class:`~spinect_core.planning.plan.PlanEngine` in step
with the current state:

* the nerve is redrawn (the anatomy's parts and the label map's nerve class, as
  :func:`~spinect_core.anatomy.roots.apply_roots` draws it: the original tube of an edited root,
  grown by ``FusionOptions.replace_margin_mm``, taken out of the nerve, then every non-network
  root painted over background and nerve only) in the box the edit touches, not the whole grid;
* each side's scene (:class:`~spinect_core.planning.l5s1.SideScene`) gets the new exiting root
  as its dividing line, and its **blocker** field only is recomputed, only in a window around the
  voxels that changed (the target field never changes: a root is never drawn over L5 or the
  disc); a change outside the scene's crop rebuilds that scene;
* the windows of every side at the current view are recomputed for the sides whose scene
  changed (the others are reused).

Every change to the engine is recorded as the array regions and attributes it replaced, so
**undo restores the engine exactly** (the same bytes), not an approximation of it.

Speed, measured in CPU time of the process (``time.process_time``, torch's threads included)
on the shared 2-core machine at a load average of about 6: on the 0.8 mm phantom (seed 1, grid
147 x 203 x 287, scene crops 155 x 144 x 201 voxels) one control-point move of the left exiting
L5 root costs 0.46-0.51 s CPU (1.7-2.8 s wall at that load) with both sides' windows at 0.5 mm
rays, an undo 0.15 s; rebuilding one side's scene from scratch costs 6.5 s CPU. The move's
time is mostly the blocker's distance transform and rim search in the window (both sides:
the left root lies inside the right scene's crop sphere too) and the device copy of the region
(:func:`_sync_torch`); the redraw of the nerve is ~0.05 s.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from spinect_core.anatomy.parts import CLASS_ALIASES, PART_ID, find_ids
from spinect_core.anatomy.root_tracing import ROOT_NAMES, ROOT_WORDS
from spinect_core.anatomy.roots import FusionOptions, Root, RootsResult, tube_box, tube_mask
from spinect_core.errors import InputError
from spinect_core.labels import LabelTable
from spinect_core.planning.l5s1 import SideScene, SideWindows
from spinect_core.planning.scene import rim_cells, rim_weights, signed_distance_mm
from spinect_core.progress import ProgressCallback, report

#: Edited roots keep the exiting L5 root's points within this distance (mm) of the foramen centre
#: as the scene's dividing line (as :func:`~spinect_core.anatomy.roots.apply_roots`).
DIVIDING_REACH_MM = 20.0
#: Radius (mm) given to a root taken from the anatomy alone (no radius measured).
DEFAULT_RADIUS_MM = 2.5


@dataclass(frozen=True, kw_only=True)
class RootEditOptions:
    """How roots are edited.

    Attributes
    ----------
    control_spacing_mm : float
        Arc length (mm) between the control points a root is given when first edited.
    sample_mm : float
        Spacing (mm) of the refitted centreline.
    insert_reach_mm : float
        A click inserts a point when it lies within the root's radius plus this (mm) of its
        centreline.
    radius_range_mm : (float, float)
        Radii the operator may set (mm).
    """

    control_spacing_mm: float = 5.0
    sample_mm: float = 1.0
    insert_reach_mm: float = 5.0
    radius_range_mm: tuple[float, float] = (0.5, 10.0)


@dataclass(frozen=True, kw_only=True)
class EditableRoot:
    """One root as the operator sees it (immutable).

    Attributes
    ----------
    name : str
        ``exiting_l5``, ``exiting_l4`` or ``traversing_s1``.
    side : {"left", "right"}
    control_lps_mm : tuple of (x, y, z)
        Control points, LPS mm, in the centreline's order.
    radius_mm : tuple of float
        One radius (mm) per control point.
    original : Root
        The plan's root before any edit (read, never changed).
    edited : bool
        False: the plan's root is used as it is (its own centreline, not refitted).
    """

    name: str
    side: str
    control_lps_mm: tuple[tuple[float, float, float], ...]
    radius_mm: tuple[float, ...]
    # Not compared: (side, name) say which root it is, and a Root's arrays have no truth value.
    original: Root = field(compare=False)
    edited: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.side, self.name)

    @property
    def words(self) -> str:
        return f"{ROOT_WORDS.get(self.name, self.name)} on the {self.side}"

    def controls(self) -> tuple[np.ndarray, np.ndarray]:
        """Control points (K, 3) LPS mm and radii (K,) mm."""
        return (np.asarray(self.control_lps_mm, float).reshape(-1, 3),
                np.asarray(self.radius_mm, float))

    def to_root(self, options: RootEditOptions) -> Root:
        """The root the plan uses: the original, or the refitted tube (source ``operator``)."""
        if not self.edited:
            return self.original
        line, radius = fit_tube(*self.controls(), sample_mm=options.sample_mm)
        return Root(name=self.name, side=self.side, centreline_lps_mm=line, radius_mm=radius,
                    confidence=1.0, source="operator",
                    notes=[f"corrected by the operator (was {self.original.source})"])


@dataclass(frozen=True, kw_only=True)
class RootEditState:
    """An immutable snapshot of every editable root of a plan."""

    roots: tuple[EditableRoot, ...]

    def get(self, side: str, name: str) -> EditableRoot:
        for r in self.roots:
            if r.side == side and r.name == name:
                return r
        raise InputError(f"the plan has no {ROOT_WORDS.get(name, name)} on the {side} side to "
                         "edit")

    def with_root(self, root: EditableRoot) -> "RootEditState":
        return RootEditState(roots=tuple(root if r.key == root.key else r for r in self.roots))

    @property
    def edited(self) -> tuple[EditableRoot, ...]:
        return tuple(r for r in self.roots if r.edited)

    def notes(self) -> list[str]:
        """One line per root the operator changed, for the plan's warnings and the report."""
        return [f"{r.words}: corrected by the operator" for r in self.edited]


# --- geometry ------------------------------------------------------------------------------------
def _arc(points: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


def control_points(line_lps_mm: np.ndarray, radius_mm: np.ndarray, *, spacing_mm: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Subsample a centreline into control points about every ``spacing_mm`` (ends kept).

    Parameters
    ----------
    line_lps_mm : np.ndarray, shape (N, 3)
        LPS mm.
    radius_mm : np.ndarray, shape (N,)
    spacing_mm : float

    Returns
    -------
    points : np.ndarray, shape (K, 3)
        LPS mm, K >= 2 (for N >= 2), evenly spaced in arc length.
    radii : np.ndarray, shape (K,)
    """
    line = np.asarray(line_lps_mm, float).reshape(-1, 3)
    rad = np.broadcast_to(np.asarray(radius_mm, float), (len(line),))
    if len(line) < 2:
        raise InputError("a root needs at least two centreline points to be edited")
    s = _arc(line)
    n = max(1, int(round(s[-1] / max(float(spacing_mm), 1e-6))))
    at = np.linspace(0.0, s[-1], n + 1)
    pts = np.stack([np.interp(at, s, line[:, i]) for i in range(3)], 1)
    return pts, np.interp(at, s, rad)


def fit_tube(points_lps_mm: np.ndarray, radius_mm: np.ndarray, *, sample_mm: float = 1.0
             ) -> tuple[np.ndarray, np.ndarray]:
    """A smooth tube through control points: centreline resampled every ``sample_mm``.

    The centreline is an interpolating spline (cubic from 4 points, lower below) over the
    control points' chord length, so it passes through every control point; it is evaluated
    densely and resampled at equal arc length (the last point is the last control point).
    The radius is interpolated linearly in the spline's parameter.

    Parameters
    ----------
    points_lps_mm : np.ndarray, shape (K, 3)
        LPS mm, K >= 2; consecutive duplicates are dropped.
    radius_mm : np.ndarray, shape (K,)
    sample_mm : float

    Returns
    -------
    line : np.ndarray, shape (N, 3)
        LPS mm.
    radius : np.ndarray, shape (N,)
    """
    from scipy.interpolate import make_interp_spline

    pts = np.asarray(points_lps_mm, float).reshape(-1, 3)
    rad = np.asarray(radius_mm, float).reshape(-1)
    keep = np.concatenate([[True], np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-6])
    pts, rad = pts[keep], rad[keep]
    if len(pts) < 2:
        raise InputError("a root needs at least two distinct control points")
    u = _arc(pts)
    spline = make_interp_spline(u, pts, k=min(3, len(pts) - 1))
    dense_u = np.linspace(0.0, u[-1], max(8, int(math.ceil(u[-1] / 0.05))) + 1)
    dense = spline(dense_u)
    s = _arc(dense)
    n = max(1, int(math.ceil(s[-1] / float(sample_mm) - 1e-9)))
    at = np.minimum(np.arange(n + 1) * float(sample_mm), s[-1])
    at[-1] = s[-1]
    at = np.unique(at)
    line = np.stack([np.interp(at, s, dense[:, i]) for i in range(3)], 1)
    return line, np.interp(np.interp(at, s, dense_u), u, rad)


def _project(point: np.ndarray, line: np.ndarray) -> tuple[float, float]:
    """(distance mm, arc length mm) of the point's projection onto the polyline ``line``."""
    a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(((point - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
    near = a + t[:, None] * ab
    d = np.linalg.norm(point - near, axis=1)
    k = int(np.argmin(d))
    s = _arc(line)
    return float(d[k]), float(s[k] + t[k] * np.linalg.norm(ab[k]))


# --- operations on states (pure) -----------------------------------------------------------------
def _start(root: EditableRoot) -> EditableRoot:
    """The root marked as edited: from its first edit on, the plan uses the tube refitted
    through its control points (:meth:`EditableRoot.to_root`)."""
    if root.edited:
        return root
    return replace(root, edited=True)


def drag_point(state: RootEditState, side: str, name: str, index: int,
               point_lps_mm: Sequence[float], options: RootEditOptions) -> RootEditState:
    """Move control point ``index`` of one root to ``point_lps_mm`` (LPS mm)."""
    root = _start(state.get(side, name))
    pts, rad = root.controls()
    _check_index(index, len(pts))
    p = np.asarray(point_lps_mm, float).reshape(3)
    if not np.all(np.isfinite(p)):
        raise InputError("a control point must have finite coordinates")
    pts[index] = p
    return state.with_root(replace(root, control_lps_mm=_tuples(pts)))


def insert_point(state: RootEditState, side: str, name: str, point_lps_mm: Sequence[float],
                 options: RootEditOptions) -> tuple[RootEditState, int]:
    """Insert a control point where a click near the root projects onto its centreline.

    Returns the new state and the new point's index. Raises InputError when the click lies
    farther than the root's radius plus ``insert_reach_mm`` from its centreline.
    """
    root = _start(state.get(side, name))
    line = root.to_root(options)
    click = np.asarray(point_lps_mm, float).reshape(3)
    dist, s_click = _project(click, line.centreline_lps_mm)
    reach = float(np.max(line.radius_mm)) + options.insert_reach_mm
    if dist > reach:
        raise InputError(f"the click lies {dist:.1f} mm from the {root.words}: click within "
                         f"{reach:.1f} mm of it to add a control point")
    pts, rad = root.controls()
    s_ctrl = np.array([_project(p, line.centreline_lps_mm)[1] for p in pts])
    index = int(np.searchsorted(s_ctrl, s_click))
    index = min(max(index, 1), len(pts) - 1) if len(pts) >= 2 else 1
    s = _arc(line.centreline_lps_mm)
    on_line = np.array([np.interp(s_click, s, line.centreline_lps_mm[:, i]) for i in range(3)])
    r = float(np.interp(s_click, s, line.radius_mm))
    pts = np.insert(pts, index, on_line, axis=0)
    rad = np.insert(rad, index, r)
    return state.with_root(replace(root, control_lps_mm=_tuples(pts),
                                   radius_mm=tuple(float(v) for v in rad))), index


def delete_point(state: RootEditState, side: str, name: str, index: int,
                 options: RootEditOptions) -> RootEditState:
    """Delete control point ``index`` (a root keeps at least two)."""
    root = _start(state.get(side, name))
    pts, rad = root.controls()
    _check_index(index, len(pts))
    if len(pts) <= 2:
        raise InputError(f"the {root.words} needs at least two control points")
    return state.with_root(replace(root, control_lps_mm=_tuples(np.delete(pts, index, 0)),
                                   radius_mm=tuple(float(v) for v in np.delete(rad, index))))


def set_radius(state: RootEditState, side: str, name: str, radius_mm: float,
               options: RootEditOptions, *, index: int | None = None) -> RootEditState:
    """Set the radius (mm) of control point ``index``, or of all of them (``index=None``)."""
    lo, hi = options.radius_range_mm
    r = float(radius_mm)
    if not (math.isfinite(r) and lo <= r <= hi):
        raise InputError(f"a root's radius must lie between {lo:g} and {hi:g} mm, got {r:g}")
    root = _start(state.get(side, name))
    _, rad = root.controls()
    if index is None:
        rad[:] = r
    else:
        _check_index(index, len(rad))
        rad[index] = r
    return state.with_root(replace(root, radius_mm=tuple(float(v) for v in rad)))


def _check_index(index: int, n: int) -> None:
    if not 0 <= int(index) < n:
        raise InputError(f"control point {index} does not exist (the root has {n})")


def _tuples(pts: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    return tuple((float(p[0]), float(p[1]), float(p[2])) for p in pts)


def initial_state(engine: Any, options: RootEditOptions | None = None) -> RootEditState:
    """The editable roots of a built engine, unedited.

    With ``engine.roots`` (``PlanOptions.roots`` set) every root it chose; otherwise the
    exiting L5 root of each side from the anatomy (radius :data:`DEFAULT_RADIUS_MM`, source
    ``network``: it is the label map's).
    """
    o = options or RootEditOptions()
    out: list[EditableRoot] = []
    sides = list(engine.scenes)
    for side in sides:
        for name in ROOT_NAMES:
            root: Root | None = None
            if engine.roots is not None:
                root = engine.roots.roots.get(side, {}).get(name)
            elif name == "exiting_l5":
                line = engine.anatomy.sides[side].root_centreline_lps
                if line is not None and len(line) >= 2:
                    line = np.asarray(line, float)
                    root = Root(name=name, side=side, centreline_lps_mm=line.copy(),
                                radius_mm=np.full(len(line), DEFAULT_RADIUS_MM), confidence=0.5,
                                source="network", notes=["from the label map's nerve"])
            if root is None or len(root.centreline_lps_mm) < 2:
                continue
            pts, rad = control_points(root.centreline_lps_mm, root.radius_mm,
                                      spacing_mm=o.control_spacing_mm)
            out.append(EditableRoot(name=name, side=side, control_lps_mm=_tuples(pts),
                                    radius_mm=tuple(float(v) for v in rad), original=root))
    return RootEditState(roots=tuple(out))


# --- the editor ----------------------------------------------------------------------------------
@dataclass(kw_only=True)
class EditResult:
    """What one edit (or undo / redo) did to the engine.

    Attributes
    ----------
    windows : dict
        ``side -> SideWindows`` at the current view (None when no view is set).
    scenes_updated : dict
        ``side -> "none" | "window" | "rebuilt"``: how each side's blocker field was brought up
        to date (a window around the change, or the whole scene rebuilt).
    changed_voxels : int
        Voxels of the anatomy's parts that changed.
    cpu_s, wall_s : float
        CPU (this process) and wall time of the edit, the windows included.
    """

    windows: dict[str, SideWindows] | None
    scenes_updated: dict[str, str]
    changed_voxels: int
    cpu_s: float
    wall_s: float


@dataclass
class _Change:
    """One recorded change: how to undo and redo it."""

    undo: Callable[[], None]
    redo: Callable[[], None]


@dataclass
class _Step:
    before: RootEditState
    after: RootEditState
    changes: list[_Change] = field(default_factory=list)
    scenes: dict[str, str] = field(default_factory=dict)
    #: Run after the changes, on undo and redo alike (the device copies of patched fields).
    syncs: list[Callable[[], None]] = field(default_factory=list)


class RootEditor:
    """Edits the roots of one built :class:`~spinect_core.planning.plan.PlanEngine` in place.

    Parameters
    ----------
    engine : PlanEngine
        Its ``anatomy.parts``, ``labels``, ``table``, ``roots`` and ``scenes`` follow the edits
        (the label map is copied on the first edit: the caller's array is never written).
    options : RootEditOptions, optional
    view_direction_lps : (3,), optional
        The current view: every edit then returns the windows of each side along it.
    pixel_mm : float
        Ray spacing of those windows.
    """

    def __init__(self, engine: Any, *, options: RootEditOptions | None = None,
                 view_direction_lps: Sequence[float] | None = None, pixel_mm: float = 0.5) -> None:
        self.engine = engine
        self.options = options or RootEditOptions()
        self.fusion: FusionOptions = getattr(engine.options, "fusion", None) or FusionOptions()
        self.state = initial_state(engine, self.options)
        self._initial = self.state
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._parts0 = engine.anatomy.parts.array.copy()
        self._labels0 = engine.labels.array
        self._base_warnings = None if engine.roots is None else list(engine.roots.warnings)
        self._roots_owned = False
        self.pixel_mm = float(pixel_mm)
        self._view: np.ndarray | None = None
        self._windows: dict[str, SideWindows] = {}
        if view_direction_lps is not None:
            self.set_view(view_direction_lps)

    # --- the view --------------------------------------------------------------------------
    def set_view(self, view_direction_lps: Sequence[float]) -> dict[str, SideWindows]:
        """Set the current view and return the windows of every side along it."""
        self._view = np.asarray(view_direction_lps, float).reshape(3)
        self._windows = {s: sc.windows(self._view, pixel_mm=self.pixel_mm, polygons=True)
                         for s, sc in self.engine.scenes.items()}
        return dict(self._windows)

    @property
    def windows(self) -> dict[str, SideWindows]:
        """The windows at the current view (empty before :meth:`set_view`)."""
        return dict(self._windows)

    # --- operations ------------------------------------------------------------------------
    def drag(self, side: str, name: str, index: int, point_lps_mm: Sequence[float], *,
             progress: ProgressCallback | None = None) -> EditResult:
        """Move a control point (LPS mm) and re-plan."""
        return self.apply(drag_point(self.state, side, name, index, point_lps_mm, self.options),
                          progress=progress)

    def insert(self, side: str, name: str, point_lps_mm: Sequence[float], *,
               progress: ProgressCallback | None = None) -> tuple[EditResult, int]:
        """Insert a control point at a click near the root; returns the result and its index."""
        state, index = insert_point(self.state, side, name, point_lps_mm, self.options)
        return self.apply(state, progress=progress), index

    def delete(self, side: str, name: str, index: int, *,
               progress: ProgressCallback | None = None) -> EditResult:
        return self.apply(delete_point(self.state, side, name, index, self.options),
                          progress=progress)

    def set_radius(self, side: str, name: str, radius_mm: float, *, index: int | None = None,
                   progress: ProgressCallback | None = None) -> EditResult:
        return self.apply(set_radius(self.state, side, name, radius_mm, self.options,
                                     index=index), progress=progress)

    def root(self, side: str, name: str) -> Root:
        """The root the plan uses now."""
        return self.state.get(side, name).to_root(self.options)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> EditResult:
        """Restore the engine as it was before the last edit (exactly)."""
        if not self._undo:
            raise InputError("nothing to undo")
        t0, c0 = time.perf_counter(), time.process_time()
        step = self._undo.pop()
        for ch in reversed(step.changes):
            ch.undo()
        for sync in step.syncs:
            sync()
        self.state = step.before
        self._redo.append(step)
        return self._finish(step.scenes, 0, t0, c0)

    def redo(self) -> EditResult:
        if not self._redo:
            raise InputError("nothing to redo")
        t0, c0 = time.perf_counter(), time.process_time()
        step = self._redo.pop()
        for ch in step.changes:
            ch.redo()
        for sync in step.syncs:
            sync()
        self.state = step.after
        self._undo.append(step)
        return self._finish(step.scenes, 0, t0, c0)

    def apply(self, state: RootEditState, *, progress: ProgressCallback | None = None
              ) -> EditResult:
        """Bring the engine to ``state`` (one undoable step) and re-plan at the current view."""
        t0, c0 = time.perf_counter(), time.process_time()
        step = _Step(before=self.state, after=state)
        report(progress, 0.0, "redrawing the roots")
        self._own_arrays(step)
        changed = self._redraw(self.state, state, step)
        report(progress, 0.3, "updating the scenes")
        self._update_scenes(changed, state, step)
        self._update_records(state, step)
        self.state = state
        self._undo.append(step)
        self._redo.clear()
        report(progress, 0.7, "measuring the windows")
        out = self._finish(step.scenes, int(len(changed[0])), t0, c0)
        report(progress, 1.0, "re-planned")
        return out

    def _finish(self, scenes: dict[str, str], changed: int, t0: float, c0: float) -> EditResult:
        windows = None
        if self._view is not None:
            for side, how in scenes.items():
                if how != "none" or side not in self._windows:
                    self._windows[side] = self.engine.scenes[side].windows(
                        self._view, pixel_mm=self.pixel_mm, polygons=True)
            windows = dict(self._windows)
        return EditResult(windows=windows, scenes_updated=dict(scenes), changed_voxels=changed,
                          cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - t0)

    # --- internals -------------------------------------------------------------------------
    def _set(self, step: _Step, obj: Any, attr: str, value: Any) -> None:
        """Set an attribute and record it (a dict item when ``obj`` is a dict)."""
        if isinstance(obj, dict):
            old = obj.get(attr)

            def put(v: Any) -> Callable[[], None]:
                return lambda: obj.__setitem__(attr, v)
        else:
            old = getattr(obj, attr)

            def put(v: Any) -> Callable[[], None]:
                return lambda: setattr(obj, attr, v)
        put(value)()
        step.changes.append(_Change(undo=put(old), redo=put(value)))

    def _patch(self, step: _Step, arr: np.ndarray, sl: tuple, new: np.ndarray) -> None:
        """Write ``new`` into ``arr[sl]`` and record the region before and after."""
        before = arr[sl].copy()
        arr[sl] = new
        after = arr[sl].copy()

        def write(v: np.ndarray) -> Callable[[], None]:
            return lambda: arr.__setitem__(sl, v)
        step.changes.append(_Change(undo=write(before), redo=write(after)))

    def _own_arrays(self, step: _Step) -> None:
        """The label map is copied once (the engine's may be the caller's), a nerve class added
        when the table has none."""
        eng = self.engine
        if eng.labels.array is self._labels0:
            new = eng.labels.with_array(eng.labels.array.copy())
            new.warnings = list(getattr(eng.labels, "warnings", []))
            self._set(step, eng, "labels", new)
        if not find_ids(eng.table, CLASS_ALIASES["nerve"]):
            table = LabelTable({**eng.table.names, max(eng.table.names) + 1: "nerve"})
            self._set(step, eng, "table", table)
        nid = find_ids(eng.table, CLASS_ALIASES["nerve"])[0]
        if nid > np.iinfo(eng.labels.array.dtype).max:
            self._set(step, eng, "labels", eng.labels.with_array(
                eng.labels.array.astype(np.uint16)))

    def _redraw(self, old: RootEditState, new: RootEditState, step: _Step
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Redraw parts and nerve labels in the box the change touches; returns the (z, y, x)
        indices of the parts voxels that changed."""
        eng = self.engine
        o = self.options
        margin = self.fusion.replace_margin_mm
        moved = [r for r in new.roots if r != old.get(r.side, r.name)]
        # The box: the old and new tubes of the moved roots and their originals' removal tubes.
        grid = eng.anatomy.parts

        def radius(root: Root, extra: float) -> np.ndarray:
            return np.asarray(root.radius_mm, float) + float(extra)

        boxes = []
        for r in moved:
            for root, extra in ((old.get(r.side, r.name).to_root(o), 0.0), (r.to_root(o), 0.0),
                                (r.original, margin)):
                t = tube_box(root.centreline_lps_mm, radius(root, extra), grid)
                if t is not None:
                    boxes.append(t)
        empty = (np.zeros(0, int),) * 3
        if not boxes:
            return empty
        lo = [min(b[i].start for b in boxes) for i in range(3)]
        hi = [max(b[i].stop for b in boxes) for i in range(3)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        # The box's parts and labels as apply_roots would draw the new state over the originals.
        parts = self._parts0[box].copy()
        labels0 = eng.labels.array[box].copy()
        nerve_ids = find_ids(eng.table, CLASS_ALIASES["nerve"])
        nerve_id = nerve_ids[0]
        nerve_parts = np.array([PART_ID["root_L5_left"], PART_ID["root_L5_right"],
                                PART_ID["other_nerve"]])
        # The label map before any edit (the engine's own array, never written: the first edit
        # copied it).
        lab = np.asarray(self._labels0[box]).astype(labels0.dtype, copy=True)

        def local(root: Root, extra: float) -> np.ndarray:
            # The same voxels apply_roots draws: one rasteriser, clipped to the box.
            return tube_mask(root.centreline_lps_mm, radius(root, extra), grid, clip=box)

        remove = np.zeros(parts.shape, bool)
        for r in new.edited:
            remove |= local(r.original, margin)
        nerve_now = np.isin(lab, nerve_ids)
        lab[remove & nerve_now] = 0
        parts[remove & np.isin(parts, nerve_parts)] = 0
        for r in new.roots:
            root = r.to_root(o)
            if root.source == "network":
                continue
            m = local(root, 0.0)
            free = (parts == 0) | np.isin(parts, nerve_parts)
            pid = PART_ID[f"root_L5_{r.side}"] if r.name == "exiting_l5" else PART_ID["other_nerve"]
            parts[m & free] = pid
            lab[m & ((lab == 0) | nerve_now)] = nerve_id
        cur = eng.anatomy.parts.array
        diff = np.nonzero(parts != cur[box])
        changed = tuple(d + b.start for d, b in zip(diff, box))
        self._patch(step, cur, box, parts)
        self._patch(step, eng.labels.array, box, lab.astype(eng.labels.array.dtype))
        return changed[0], changed[1], changed[2]

    def _update_scenes(self, changed: tuple[np.ndarray, ...], state: RootEditState,
                       step: _Step) -> None:
        eng = self.engine
        for side, scene in list(eng.scenes.items()):
            how = "none"
            if len(changed[0]):
                how = _update_blockers(scene, eng.anatomy, changed, self, step)
                if how == "rebuild":
                    new = SideScene(eng.anatomy, side, variant=scene.variant,
                                    options=scene.options)
                    self._set(step, eng.scenes, side, new)
                    scene = new
                    how = "rebuilt"
            line = self._dividing_line(state, side)
            if line is not None and (scene.root_lps is None
                                     or not np.array_equal(line, scene.root_lps)):
                self._set(step, scene, "root_lps", line)
                self._set(step, eng.anatomy.sides[side], "root_centreline_lps", line.copy())
                if how == "none":
                    how = "split"
            step.scenes[side] = how

    def _dividing_line(self, state: RootEditState, side: str) -> np.ndarray | None:
        try:
            r = state.get(side, "exiting_l5")
        except InputError:
            return None
        if not r.edited:
            return None  # the engine's own line stays (undo restores it after an edit)
        return self._near(r.to_root(self.options), side)

    def _near(self, root: Root, side: str) -> np.ndarray | None:
        line = np.asarray(root.centreline_lps_mm, float)
        centre = np.asarray(self.engine.anatomy.sides[side].foramen_centre_lps, float)
        near = np.linalg.norm(line - centre, axis=1) <= DIVIDING_REACH_MM
        return line[near].copy() if near.sum() >= 2 else None

    def _update_records(self, state: RootEditState, step: _Step) -> None:
        """``engine.roots`` (what plan.json records) and the plan's warnings follow the state."""
        eng = self.engine
        o = self.options
        if eng.roots is None:
            if not state.edited:
                return
            roots: dict[str, dict[str, Root | None]] = {s: {n: None for n in ROOT_NAMES}
                                                        for s in eng.scenes}
            self._set(step, eng, "roots", RootsResult(
                mode="network", roots=roots, network=None, ct=None, warnings=[],
                labels=eng.labels, table=eng.table))
        rr = eng.roots
        new_roots = {s: dict(by) for s, by in rr.roots.items()}
        for r in state.roots:
            new_roots.setdefault(r.side, {})[r.name] = r.to_root(o)
        self._set(step, rr, "roots", new_roots)
        self._set(step, rr, "warnings", list(self._base_warnings or []) + state.notes())
        self._set(step, rr, "labels", eng.labels)
        self._set(step, rr, "table", eng.table)


def _update_blockers(scene: SideScene, anatomy: Any, changed: tuple[np.ndarray, ...],
                     editor: RootEditor, step: _Step) -> str:
    """Recompute the blocker channel of ``scene`` in a window around the changed voxels.

    Returns ``"none"`` (no changed voxel in the scene's crop sphere), ``"window"`` (updated in
    place, recorded in ``step``) or ``"rebuild"`` (a change outside the crop's box, or sharp rims
    appearing where the scene kept no feature transform: the caller rebuilds the scene).
    """
    fields = scene.scene
    opts = scene._scene_options()
    parts = anatomy.parts
    z, y, x = changed
    pts = parts.index_to_lps(np.stack([x, y, z], 1).astype(float))
    centre = np.asarray(opts.crop_center_lps, float)
    inside = np.linalg.norm(pts - centre, axis=1) <= float(opts.crop_radius_mm or math.inf)
    if not inside.any():
        return "none"
    off = np.asarray(fields.description["crop_offset_zyx"], int)
    czyx = np.stack([z, y, x], 1)[inside] - off
    shape = np.array(fields.shape_zyx)
    if np.any(czyx < 0) or np.any(czyx >= shape):
        return "rebuild"
    # New blocker state of the changed voxels: any part that is neither target nor transparent
    # (a changed voxel is background or a nerve part before and after: never the target).
    names = anatomy.parts_table.names
    transparent = set(scene.structures.get("transparent", []))
    vals = parts.array[z[inside], y[inside], x[inside]]
    block = np.array([v != 0 and names.get(int(v), "") not in transparent for v in vals], bool)
    smooth_sharp = fields.features is not None
    spacing_zyx = [float(v) for v in fields.spacing_mm[::-1]]
    clamp = float(opts.clamp_mm)
    reach = int(math.ceil(clamp / float(np.min(fields.spacing_mm)))) + 2
    reach = max(reach, int(opts.rim_face_voxels) + int(opts.rim_length_voxels)
                + int(opts.rim_reach_voxels) + 2)
    lo = np.maximum(czyx.min(0) - reach, 0)
    hi = np.minimum(czyx.max(0) + reach + 1, shape)
    wlo = np.maximum(lo - reach, 0)
    whi = np.minimum(hi + reach, shape)
    win = tuple(slice(a, b) for a, b in zip(wlo, whi))
    mask = fields.sdf[1][win] < 0
    local = czyx - wlo
    mask[local[:, 0], local[:, 1], local[:, 2]] = block
    out = signed_distance_mm(mask, spacing_zyx, clamp, features=smooth_sharp)
    sdf, feat = (out if smooth_sharp else (out, None))
    inner = tuple(slice(a - w, b - w) for a, b, w in zip(lo, hi, wlo))
    dst = (1,) + tuple(slice(a, b) for a, b in zip(lo, hi))
    if fields.rim_weight is not None or (opts.surface == "smooth" and opts.sharp_rims):
        weights = rim_weights(mask, opts)[inner]
        if fields.rim_weight is None:
            if weights.any():
                return "rebuild"  # rims where the scene kept no feature transform
        else:
            editor._patch(step, fields.rim_weight, dst, weights)
    editor._patch(step, fields.sdf, dst, sdf[inner])
    if feat is not None and fields.features is not None:
        # Window flat indices -> crop flat indices.
        f = feat[inner]
        ok = f >= 0
        wz, wy, wx = np.unravel_index(np.where(ok, f, 0), mask.shape)
        flat = np.ravel_multi_index((wz + wlo[0], wy + wlo[1], wx + wlo[2]), tuple(shape))
        editor._patch(step, fields.features, dst, np.where(ok, flat, -1).astype(np.int32))
    # The device copy of the fields (when built) gets the same region; rebuilding it whole
    # would cost more than everything else of the edit.
    region = (tuple(int(v) for v in lo), tuple(int(v) for v in hi))

    def sync() -> None:
        _sync_torch(fields, *region)
    sync()
    step.syncs.append(sync)
    return "window"


def _sync_torch(fields: Any, lo: tuple[int, ...], hi: tuple[int, ...]) -> None:
    """Copy the region ``[lo, hi)`` (crop z, y, x) of the fields' arrays into their device copy
    (:class:`~spinect_core.planning.scene.TorchFields`: flat distances, features, rim weights and
    the tiled image with its slice z + 1 and rim-cell channels); forget the cached maximum."""
    fields._cache.pop("max_abs", None)
    tf = fields._cache.get("torch")
    if tf is None:
        return
    import torch

    nz, ny, nx = fields.shape_zyx
    dev = tf.device
    # Cells read the 8 voxels of their upper corner: the region grows by one voxel downwards.
    c0 = np.maximum(np.asarray(lo) - 1, 0)
    c1 = np.asarray(hi)
    sl = (slice(None),) + tuple(slice(int(a), int(b)) for a, b in zip(c0, c1))

    def put(dst: Any, src: np.ndarray) -> None:
        dst.copy_(torch.from_numpy(np.ascontiguousarray(src)).to(dev))

    put(tf.sdf_flat.view(2, nz, ny, nx)[sl], fields.sdf[sl])
    if tf.features is not None and fields.features is not None:
        put(tf.features.view(2, nz, ny, nx)[sl], fields.features[sl].astype(np.int64))
    cells = None
    if tf.rim is not None and fields.rim_weight is not None:
        put(tf.rim[0][sl], fields.rim_weight[sl].astype(np.float32))
        ext = tuple(slice(int(a), int(min(b + 1, n))) for a, b, n in zip(c0, c1, (nz, ny, nx)))
        cells = rim_cells(fields.rim_weight[(slice(None),) + ext])
    columns = tf.columns
    ys, xs = slice(int(c0[1]), int(c1[1])), slice(int(c0[2]), int(c1[2]))
    for z in range(int(c0[0]), int(c1[0])):
        r, c = divmod(z, columns)
        rows = slice(r * ny + ys.start, r * ny + ys.stop)
        cols = slice(c * nx + xs.start, c * nx + xs.stop)
        put(tf.image[0, 0:2, rows, cols], fields.sdf[:, z, ys, xs])
        put(tf.image[0, 2:4, rows, cols], fields.sdf[:, min(z + 1, nz - 1), ys, xs])
        if cells is not None and tf.image.shape[1] > 4:
            put(tf.image[0, 4, rows, cols], cells[z - int(c0[0]), :ys.stop - ys.start,
                                                  :xs.stop - xs.start].astype(np.float32))
