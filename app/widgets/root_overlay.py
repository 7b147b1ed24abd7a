"""The nerve roots' control points in the views: where they are drawn, what a gesture means.

The roots of the plan (:class:`~spinect_core.planning.root_edit.RootEditState`) are drawn in
each slice view as their centrelines (the part within :data:`LINE_SLAB_MM` of the slice) and
their control points (those within :data:`HANDLE_SLAB_MM`, so that each point shows on the few
slices through it). Dragging a handle moves the point within the slice's plane; it keeps its
own position across the slice (a drag never snaps it onto the slice). On release the panel
emits :attr:`app.widgets.slice_views.SliceViewsPanel.root_point_moved` and the controller
re-plans in the background (:meth:`app.controller.SessionController.move_root_point`).
Likewise a point is added where a click near a root projects onto it (:func:`nearest_root`
picks the root; the core's ``insert_point`` the place along it), deleted, or given a radius
(one point or the whole root); each is one undoable edit of the controller.

The same overlay is drawn on the planes along the needle (:func:`in_oblique_plane`, the roots
within :data:`OBLIQUE_SLAB_MM` of each plane) and in the 3D view (centrelines and control
points, :meth:`app.widgets.view3d.View3D.set_roots`).

:func:`install_root_editing` connects a controller and the views both ways (the roots shown
follow the controller's state; drags, added and deleted points, radii, Ctrl+Z and Ctrl+Shift+Z
go to the controller).

Everything here except :func:`install_root_editing` is plain numpy on the CT's index planes
(:mod:`app.slicing`) and LPS millimetres: no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spinect_core.volume import Volume

from app.slicing import PlaneSpec, display_to_index, index_to_display

__all__ = ["RootHandle", "RootOverlay", "overlay_from_state", "handles_in_view",
           "lines_in_view", "in_oblique_plane", "moved_point", "nearest_root", "distance_to_line", "root_words",
           "install_root_editing", "HANDLE_SLAB_MM", "LINE_SLAB_MM", "OBLIQUE_SLAB_MM", "ROOT_COLOURS"]

#: A control point shows on slices within this distance (mm) of it.
HANDLE_SLAB_MM = 2.5
#: The part of a centreline within this distance (mm) of the slice is drawn.
LINE_SLAB_MM = 4.0
#: In the planes along the needle, the roots within this distance (mm) of the plane are drawn
#: (wider than a slice's slab: the plane is one picture, not a stack to scroll through).
OBLIQUE_SLAB_MM = 5.0
#: Colours (RGB) of the roots: the exiting L5 root (the windows' hypotenuse) stands out.
ROOT_COLOURS = {"exiting_l5": (255, 196, 0), "exiting_l4": (255, 140, 200),
                "traversing_s1": (120, 220, 255)}


@dataclass(frozen=True)
class RootHandle:
    """One control point: which root, its index, where it is (LPS mm, shape (3,)), its radius
    (mm) and how many points the root has."""

    side: str
    name: str
    index: int
    lps: tuple[float, float, float]
    radius_mm: float = float("nan")
    count: int = 0

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.side, self.name, self.index)

    @property
    def words(self) -> str:
        """"exiting L5 root on the left"."""
        return root_words(self.side, self.name)

    @property
    def tooltip(self) -> str:
        """What the slice views show over the point: root, point, radius, what to do."""
        count = f"/{self.count}" if self.count else ""
        return (f"{self.words[0].upper()}{self.words[1:]}, control point {self.index + 1}{count}, "
                f"radius {self.radius_mm:.2f} mm\n"
                "Drag: move · Shift+wheel: radius · right click: menu · Delete: remove")


@dataclass(frozen=True)
class RootOverlay:
    """What the views draw: the control points and the centrelines (LPS mm).

    Attributes
    ----------
    handles : tuple of RootHandle
    lines : tuple of (side, name, np.ndarray (M, 3) LPS mm)
        Each root's centreline as the plan uses it (refitted once edited).
    radius_mm : dict
        ``(side, name)`` -> largest radius (mm) of the root's tube.
    radius_range_mm : (float, float)
        Radii the operator may set (:class:`~spinect_core.planning.root_edit.RootEditOptions`).
    insert_reach_mm : float
        A point is added to a root within its radius plus this (mm) of its centreline.
    """

    handles: tuple[RootHandle, ...]
    lines: tuple[tuple[str, str, np.ndarray], ...]
    radius_mm: dict = field(default_factory=dict)
    radius_range_mm: tuple[float, float] = (0.5, 10.0)
    insert_reach_mm: float = 5.0

    def handle(self, side: str, name: str, index: int) -> RootHandle | None:
        for h in self.handles:
            if h.key == (side, name, index):
                return h
        return None

    def count(self, side: str, name: str) -> int:
        """Number of control points of one root."""
        return sum(1 for h in self.handles if (h.side, h.name) == (side, name))


def root_words(side: str, name: str) -> str:
    from spinect_core.anatomy.root_tracing import ROOT_WORDS

    return f"{ROOT_WORDS.get(name, name)} on the {side}"


def overlay_from_state(state: Any, options: Any = None) -> RootOverlay:
    """The overlay of a :class:`~spinect_core.planning.root_edit.RootEditState`."""
    from spinect_core.planning.root_edit import RootEditOptions

    o = options or RootEditOptions()
    handles, lines, radius = [], [], {}
    for r in state.roots:
        pts, rad = r.controls()
        for i, p in enumerate(pts):
            handles.append(RootHandle(r.side, r.name, i, tuple(float(v) for v in p),
                                      float(rad[i]), len(pts)))
        root = r.to_root(o)
        lines.append((r.side, r.name, np.asarray(root.centreline_lps_mm, float)))
        radius[(r.side, r.name)] = float(np.max(root.radius_mm)) if np.size(root.radius_mm) \
            else float(np.max(rad))
    return RootOverlay(handles=tuple(handles), lines=tuple(lines), radius_mm=radius,
                       radius_range_mm=tuple(o.radius_range_mm),  # type: ignore[arg-type]
                       insert_reach_mm=float(o.insert_reach_mm))


def distance_to_line(point_lps: np.ndarray, line: np.ndarray) -> float:
    """Distance (mm) from an LPS point (3,) to a polyline (M, 3) LPS mm."""
    line = np.asarray(line, float).reshape(-1, 3)
    p = np.asarray(point_lps, float).reshape(3)
    if len(line) == 1:
        return float(np.linalg.norm(p - line[0]))
    a, ab = line[:-1], np.diff(line, axis=0)
    t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0.0, 1.0)
    return float(np.min(np.linalg.norm(p - (a + t[:, None] * ab), axis=1)))


def nearest_root(overlay: RootOverlay, point_lps: np.ndarray
                 ) -> tuple[str, str, float, float] | None:
    """The root whose centreline passes nearest an LPS point: ``(side, name, distance mm,
    reach mm)`` where reach is how near a click must be to add a point to it (the core's rule,
    :func:`~spinect_core.planning.root_edit.insert_point`); None without roots."""
    best = None
    for side, name, line in overlay.lines:
        if len(line) == 0:
            continue
        d = distance_to_line(point_lps, line)
        if best is None or d < best[2]:
            reach = overlay.radius_mm.get((side, name), 0.0) + overlay.insert_reach_mm
            best = (side, name, d, reach)
    return best


def _project(spec: PlaneSpec, ct: Volume, points_lps: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column fractions of LPS points (N, 3) in ``spec``'s slices, and their slice
    coordinate (continuous index along ``spec.axis``)."""
    shape = ct.array.shape
    depth, rows, cols = index_to_display(
        spec, shape, ct.lps_to_index(np.asarray(points_lps, float).reshape(-1, 3)))
    return ((rows + 0.5) / shape[spec.row_axis], (cols + 0.5) / shape[spec.col_axis], depth)


def _slab_voxels(ct: Volume, spec: PlaneSpec, mm: float) -> float:
    return float(mm) / float(ct.spacing_mm[::-1][spec.axis])


def handles_in_view(overlay: RootOverlay, spec: PlaneSpec, ct: Volume, slice_index: int
                    ) -> list[tuple[RootHandle, float, float]]:
    """The handles shown on slice ``slice_index`` of ``spec``: ``(handle, row_frac, col_frac)``."""
    if not overlay.handles:
        return []
    pts = np.array([h.lps for h in overlay.handles], float)
    rows, cols, depth = _project(spec, ct, pts)
    near = np.abs(depth - slice_index) <= _slab_voxels(ct, spec, HANDLE_SLAB_MM)
    return [(h, float(r), float(c)) for h, r, c, ok in zip(overlay.handles, rows, cols, near)
            if ok]


def lines_in_view(overlay: RootOverlay, spec: PlaneSpec, ct: Volume, slice_index: int
                  ) -> list[tuple[str, np.ndarray]]:
    """The centreline pieces near slice ``slice_index``: ``(root name, (M, 2) fractions)``."""
    out = []
    slab = _slab_voxels(ct, spec, LINE_SLAB_MM)
    for _side, name, line in overlay.lines:
        if len(line) < 2:
            continue
        rows, cols, depth = _project(spec, ct, line)
        # Consecutive runs of points near the slice, each drawn as one polyline.
        out += [(name, run) for run in _runs(rows, cols, np.abs(depth - slice_index) <= slab)]
    return out


def _runs(rows: np.ndarray, cols: np.ndarray, near: np.ndarray) -> list[np.ndarray]:
    """Consecutive runs (>= 2 points) of ``near`` points, each as (M, 2) row/col fractions."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], near.astype(int), [0]])))
    return [np.stack([rows[a:b], cols[a:b]], 1) for a, b in zip(edges[::2], edges[1::2])
            if b - a >= 2]


def in_oblique_plane(overlay: RootOverlay, plane: Any, slab_mm: float = OBLIQUE_SLAB_MM
                     ) -> tuple[list[tuple[RootHandle, float, float]],
                                list[tuple[str, np.ndarray]]]:
    """The roots on an oblique plane (:class:`~spinect_core.reslice.plane.ObliquePlane`, e.g.
    the planes along the needle): the control points and the centreline pieces within
    ``slab_mm`` of it, as (row, col) fractions of its picture (pixel centres at
    ``(i + 0.5) / n``): ``([(handle, row_frac, col_frac)], [(root name, (M, 2))])``."""
    h, w = plane.shape
    handles = []
    if overlay.handles:
        pts = np.array([hd.lps for hd in overlay.handles], float)
        rows, cols, off = plane.lps_to_pixel(pts)
        for hd, r, c, o in zip(overlay.handles, rows, cols, off):
            if abs(o) <= slab_mm:
                handles.append((hd, float((r + 0.5) / h), float((c + 0.5) / w)))
    lines = []
    for _side, name, line in overlay.lines:
        if len(line) < 2:
            continue
        rows, cols, off = plane.lps_to_pixel(np.asarray(line, float))
        lines += [(name, run) for run in _runs((rows + 0.5) / h, (cols + 0.5) / w,
                                               np.abs(off) <= slab_mm)]
    return handles, lines


def moved_point(spec: PlaneSpec, ct: Volume, handle: RootHandle, row_frac: float,
                col_frac: float) -> np.ndarray:
    """LPS (3,) of ``handle`` dragged to (row, col) fractions: in the slice's plane, at the
    handle's own position across it."""
    shape = ct.array.shape
    depth = float(_project(spec, ct, np.asarray(handle.lps, float)[None])[2][0])
    row = row_frac * shape[spec.row_axis] - 0.5
    col = col_frac * shape[spec.col_axis] - 0.5
    # display_to_index takes the slice index as a number: the continuous depth keeps the point
    # where it was across the slice.
    return ct.index_to_lps(display_to_index(spec, shape, depth, row, col))  # type: ignore[arg-type]


def install_root_editing(controller: Any, panel: Any, *, needle_planes: Any = None,
                         view3d: Any = None) -> None:
    """Connect a :class:`~app.controller.SessionController` and a
    :class:`~app.widgets.slice_views.SliceViewsPanel` both ways: the panel shows the
    controller's roots (after a plan, an edit, an undo); its drags, added and deleted points,
    radius changes and undo / redo keys go to the controller.

    The roots are also drawn in ``needle_planes``
    (:class:`~app.widgets.needle_planes.NeedlePlanesView`) and ``view3d``
    (:class:`~app.widgets.view3d.View3D`); when not given, those of the panel's window
    (``window.needle_planes``, ``window.view3d``) are used if it has them.
    """
    from PySide6.QtWidgets import QWidget

    # QWidget.window itself: the panel's own ``window`` attribute is its window/level.
    window = QWidget.window(panel) if isinstance(panel, QWidget) else None
    if needle_planes is None:
        needle_planes = getattr(window, "needle_planes", None)
    if view3d is None:
        view3d = getattr(window, "view3d", None)
    targets = [panel.set_root_overlay]
    for widget in (needle_planes, view3d):
        if widget is not None and hasattr(widget, "set_roots"):
            targets.append(widget.set_roots)

    def show() -> None:
        state = controller.root_state()
        overlay = None if state is None else overlay_from_state(
            state, controller.root_edit_options)
        for target in targets:
            target(overlay)

    controller.roots_changed.connect(show)
    controller.plan_changed.connect(show)
    panel.root_point_moved.connect(controller.move_root_point)
    panel.root_point_inserted.connect(controller.insert_root_point)
    panel.root_point_deleted.connect(controller.delete_root_point)
    panel.root_radius_set.connect(controller.set_root_radius)
    panel.root_undo_requested.connect(controller.undo_root_edit)
    panel.root_redo_requested.connect(controller.redo_root_edit)
    show()
