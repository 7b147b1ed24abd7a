"""The nerve roots' control points in the slice views: where they are drawn, what a drag means.

The roots of the plan (:class:`~spinect_core.planning.root_edit.RootEditState`) are drawn in
each slice view as their centrelines (the part within :data:`LINE_SLAB_MM` of the slice) and
their control points (those within :data:`HANDLE_SLAB_MM`, so that each point shows on the few
slices through it). Dragging a handle moves the point within the slice's plane; it keeps its
own position across the slice (a drag never snaps it onto the slice). On release the panel
emits :attr:`app.widgets.slice_views.SliceViewsPanel.root_point_moved` and the controller
re-plans in the background (:meth:`app.controller.SessionController.move_root_point`).

:func:`install_root_editing` connects a controller and a slice panel both ways (the roots shown
follow the controller's state; drags, Ctrl+Z and Ctrl+Shift+Z go to the controller).

Everything here except :func:`install_root_editing` is plain numpy on the CT's index planes
(:mod:`app.slicing`): no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spinect_core.volume import Volume

from app.slicing import PlaneSpec, display_to_index

__all__ = ["RootHandle", "RootOverlay", "overlay_from_state", "handles_in_view",
           "lines_in_view", "moved_point", "install_root_editing", "HANDLE_SLAB_MM",
           "LINE_SLAB_MM"]

#: A control point shows on slices within this distance (mm) of it.
HANDLE_SLAB_MM = 2.5
#: The part of a centreline within this distance (mm) of the slice is drawn.
LINE_SLAB_MM = 4.0
#: Colours (RGB) of the roots: the exiting L5 root (the windows' hypotenuse) stands out.
ROOT_COLOURS = {"exiting_l5": (255, 196, 0), "exiting_l4": (255, 140, 200),
                "traversing_s1": (120, 220, 255)}


@dataclass(frozen=True)
class RootHandle:
    """One control point: which root, its index, where it is (LPS mm, shape (3,))."""

    side: str
    name: str
    index: int
    lps: tuple[float, float, float]

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.side, self.name, self.index)


@dataclass(frozen=True)
class RootOverlay:
    """What the slice views draw: the control points and the centrelines (LPS mm)."""

    handles: tuple[RootHandle, ...]
    lines: tuple[tuple[str, str, np.ndarray], ...]


def overlay_from_state(state: Any, options: Any = None) -> RootOverlay:
    """The overlay of a :class:`~spinect_core.planning.root_edit.RootEditState`."""
    from spinect_core.planning.root_edit import RootEditOptions

    o = options or RootEditOptions()
    handles, lines = [], []
    for r in state.roots:
        for i, p in enumerate(r.control_lps_mm):
            handles.append(RootHandle(r.side, r.name, i, tuple(float(v) for v in p)))
        lines.append((r.side, r.name, np.asarray(r.to_root(o).centreline_lps_mm, float)))
    return RootOverlay(handles=tuple(handles), lines=tuple(lines))


def _project(spec: PlaneSpec, ct: Volume, points_lps: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column fractions of LPS points (N, 3) in ``spec``'s slices, and their slice
    coordinate (continuous index along ``spec.axis``)."""
    shape = ct.array.shape
    zyx = ct.lps_to_index(np.asarray(points_lps, float).reshape(-1, 3))[:, ::-1]
    rows, cols = zyx[:, spec.row_axis], zyx[:, spec.col_axis]
    n_rows, n_cols = shape[spec.row_axis], shape[spec.col_axis]
    if spec.flip_rows:
        rows = n_rows - 1 - rows
    if spec.flip_cols:
        cols = n_cols - 1 - cols
    return (rows + 0.5) / n_rows, (cols + 0.5) / n_cols, zyx[:, spec.axis]


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
        near = np.abs(depth - slice_index) <= slab
        # Consecutive runs of points near the slice, each drawn as one polyline.
        edges = np.flatnonzero(np.diff(np.concatenate([[0], near.astype(int), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            if b - a >= 2:
                out.append((name, np.stack([rows[a:b], cols[a:b]], 1)))
    return out


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


def install_root_editing(controller: Any, panel: Any) -> None:
    """Connect a :class:`~app.controller.SessionController` and a
    :class:`~app.widgets.slice_views.SliceViewsPanel`: the panel shows the controller's roots
    (after a plan, an edit, an undo), its drags and undo / redo keys go to the controller."""

    def show() -> None:
        state = controller.root_state()
        panel.set_root_overlay(None if state is None else overlay_from_state(
            state, controller.root_edit_options))

    controller.roots_changed.connect(show)
    controller.plan_changed.connect(show)
    panel.root_point_moved.connect(controller.move_root_point)
    panel.root_undo_requested.connect(controller.undo_root_edit)
    panel.root_redo_requested.connect(controller.redo_root_edit)
    show()
