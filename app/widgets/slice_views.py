"""Axial, sagittal and coronal slices of the CT with the label overlay (plain Qt).

The slices are the volume's array index planes (see :mod:`app.slicing`), drawn as a QImage with
the physical aspect ratio from the voxel spacing. They behave like a radiology viewer's (the
keys and gestures are listed in one table, :data:`app.widgets.shortcuts.SHORTCUTS`, which the
views dispatch on and Help > Keyboard shortcuts shows):

* the title names the slice by its LPS position ("Axial · S 12.5 mm · slice 31/60");
* window/level: a preset list (the series' own DICOM window first when it has one, then
  3D Slicer's CT presets) and a right-button drag (left/right = width, up/down = level,
  :data:`app.slicing.WL_HU_PER_PIXEL` HU per pixel);
* Ctrl + wheel zooms about the cursor, middle drag or Shift + left drag pans, ``R`` resets;
* the wheel, Up/Down and Page Up/Down step the slice (toward S, L or P first);
* the status line under the views gives the HU and LPS position under the cursor;
* ``M`` (or the Ruler button) then a left drag measures a distance in mm, through LPS, so
  anisotropic voxels measure right; Delete clears it;
* a left click or drag moves the other two planes to the point (crosshair) and emits
  :attr:`SliceViewsPanel.crosshair_moved` with the LPS point (the 3D view marks it, see
  :func:`app.widgets.shortcuts.install_slice_viewer`);
* the plan's nerve roots are drawn with their control points (:mod:`app.widgets.root_overlay`);
  a left drag on a control point moves it (the crosshair stays), and on release
  :attr:`SliceViewsPanel.root_point_moved` asks for the re-plan; a click selects it (Delete
  removes it), Ctrl + left click near a root adds a point there, Shift + wheel over a point
  changes its radius, a right click (without dragging) opens the root's menu (add, delete, set
  the radius of the point or the whole root); Ctrl+Z / Ctrl+Shift+Z undo and redo the edits;
* tools (a label brush, :meth:`SliceViewsPanel.set_tool`) can take the left button; the
  panel's :attr:`~SliceViewsPanel.slice_clicked` / ``slice_dragged`` / ``slice_released``
  carry the point (:class:`SliceEvent`) in LPS mm and voxel index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QKeySequence, QPainter, QPen
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QSlider, QToolButton,
                               QVBoxLayout, QWidget)

from spinect_core.labels import LabelTable
from spinect_core.volume import Volume

from app.colors import color_of
from app.widgets.root_overlay import (ROOT_COLOURS, RootHandle, RootOverlay, handles_in_view,
                                      lines_in_view, moved_point, nearest_root, root_words)
from app.slicing import (DICOM_PRESET, PRESETS, PlaneSpec, WindowLevel, display_to_index,
                         distance_mm, drag_window, extract_slice, label_lut, lps_text,
                         overlay_labels, plane_specs, position_text, presets_for,
                         slice_position_mm, value_at, window_to_uint8)
from app.widgets.shortcuts import RADIUS_STEP_MM, ZOOM_STEP, command_for_key

__all__ = ["SliceCanvas", "SliceView", "SliceViewsPanel", "SliceEvent", "MAX_ZOOM",
           "CUSTOM_PRESET", "HANDLE_GRAB_PX", "CLICK_SLOP_PX"]

#: Largest magnification of a slice over its fitted size.
MAX_ZOOM = 32.0
#: Combo entry of a window set by dragging.
CUSTOM_PRESET = "custom"
_RULER_COLOUR = QColor("#ffd24a")
#: A press within this many widget pixels of a root's control point grabs it.
HANDLE_GRAB_PX = 8.0
#: A press and release closer than this (widget pixels) is a click, not a drag: a click on a
#: control point selects it without moving it, a right click opens the context menu.
CLICK_SLOP_PX = 3.0


@dataclass(frozen=True)
class SliceEvent:
    """A left-button press, drag or release in a slice view, for tools such as a label brush.

    Attributes
    ----------
    kind : {"press", "drag", "release"}
    view : str
        ``"Axial"``, ``"Sagittal"`` or ``"Coronal"``.
    view_index : int
        0, 1, 2 (:attr:`SliceViewsPanel.views`).
    lps_mm : np.ndarray, shape (3,)
        The point under the cursor, LPS mm, on the view's current slice.
    index_xyz : np.ndarray, shape (3,)
        The same point as a continuous voxel index (x, y, z) of the CT (``round`` it for a
        voxel; may lie outside the grid when the cursor is outside the slice).
    axis : int
        Numpy axis (0 = z, 1 = y, 2 = x of the ``(z, y, x)`` array) the view cuts across.
    slice_index : int
        Index of the view's slice along ``axis``.
    buttons : int
        ``Qt.MouseButton`` flags held (``int(event.buttons())``; on release the button let go).
    modifiers : int
        ``Qt.KeyboardModifier`` flags.
    inside : bool
        The cursor lies on the displayed slice.
    """

    kind: str
    view: str
    view_index: int
    lps_mm: np.ndarray
    index_xyz: np.ndarray
    axis: int
    slice_index: int
    buttons: int
    modifiers: int
    inside: bool


class SliceCanvas(QWidget):
    """Draws one RGB slice with the right aspect, orientation letters, crosshair and ruler.

    Zoom and pan are the canvas's own (:meth:`zoom_by`, :meth:`pan_by`, :meth:`reset_view`);
    everything that needs the volume is emitted as a signal with positions as fractions
    ``[0, 1)`` of the displayed slice's rows and columns.

    Signals
    -------
    wheel_steps(int)
        Wheel notches without Ctrl (positive = away from the user).
    clicked(float, float)
        Left press or drag (crosshair) at row, column fractions.
    hovered(object)
        ``(row_frac, col_frac)`` under the cursor, or None when it leaves the slice.
    window_dragged(float, float)
        Right-drag movement since the last event, screen pixels (right, down positive).
    ruler_dragged(float, float, float, float)
        Ruler from (row, col) to (row, col), fractions (ruler mode, left drag).
    key_command(str, float)
        A slice-view key from the shortcut table that the canvas does not handle itself.
    handle_released(object, float, float)
        A root's control point (its key) dragged and let go at (row, col) fractions (a click
        that does not move it only selects it).
    handle_selected(object)
        The control point clicked (its key), or None when the selection is cleared.
    insert_requested(float, float)
        Ctrl + left click off the control points at (row, col) fractions: add a root point.
    context_requested(object, float, float, object)
        Right click without a drag: the control point under it (key or None), (row, col)
        fractions and the global ``QPoint`` where a menu would open.
    handle_wheel(object, int)
        Shift + wheel over a control point (its key): notches, positive away from the user.
    tool_event(str, float, float, int, int)
        ``"press"``, ``"drag"`` or ``"release"`` of the left button off the control points (or
        anywhere while a :attr:`tool` is set) at (row, col) fractions, with the buttons and
        modifiers as ints.

    Attributes
    ----------
    tool : str or None
        While set (e.g. ``"brush"``), the left button belongs to the tool: no crosshair, no
        control point grabbed, no ruler; only :attr:`tool_event` is emitted.
    tool_radius_mm : float or None
        With a tool, a circle of this radius (mm) follows the cursor.
    editable_handles : bool
        False: control points are drawn (with their tooltips) but a press does not grab them.
    """

    wheel_steps = Signal(int)
    clicked = Signal(float, float)  # row, column as fractions [0, 1) of the displayed slice
    hovered = Signal(object)
    window_dragged = Signal(float, float)
    ruler_dragged = Signal(float, float, float, float)
    key_command = Signal(str, float)
    handle_released = Signal(object, float, float)
    handle_selected = Signal(object)
    insert_requested = Signal(float, float)
    context_requested = Signal(object, float, float, object)
    handle_wheel = Signal(object, int)
    tool_event = Signal(str, float, float, int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        # Roots: (key, row_frac, col_frac, QColor) control points and (QColor, (M, 2)) lines.
        self._handles: list[tuple[object, float, float, QColor]] = []
        self._root_lines: list[tuple[QColor, np.ndarray]] = []
        self._grabbed: int | None = None
        self.selected: object | None = None  # key of the selected control point
        self.editable_handles = True  # False: control points are shown, not grabbed
        self.tool: str | None = None
        self.tool_radius_mm: float | None = None
        self._cursor: QPointF | None = None
        self._press = QPointF()
        self._moved = False
        self._spacing = (1.0, 1.0)  # mm per image row, column
        self._buffer: np.ndarray | None = None
        self._aspect = 1.0  # physical height / width of the slice
        self._edges: dict = {}
        self._cross: tuple[float | None, float | None] = (None, None)
        self._ruler: tuple[tuple[float, float], tuple[float, float], str] | None = None
        self.zoom = 1.0
        self.pan = QPointF(0.0, 0.0)  # widget pixels, offset of the image centre
        self.ruler_mode = False
        self._drag: str | None = None
        self._last = QPointF()
        self._ruler_start: tuple[float, float] | None = None
        self._wheel_rest = 0
        self.placeholder = "No CT"
        self.setMinimumSize(120, 120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMouseTracking(True)  # hover readout without a button held
        self.setFocusPolicy(Qt.FocusPolicy.WheelFocus)

    # --- content ---------------------------------------------------------------------------------
    def set_rgb(self, rgb: np.ndarray | None, *, row_spacing: float = 1.0,
                col_spacing: float = 1.0, edges: dict | None = None) -> None:
        """Show ``rgb`` (rows, cols, 3) uint8; pixel steps are ``row_spacing`` x ``col_spacing`` mm."""
        if rgb is None:
            self._image, self._buffer = None, None
        else:
            # QImage wraps the buffer without copying: keep the array alive with the image.
            self._buffer = np.ascontiguousarray(rgb, dtype=np.uint8)
            h, w, _ = self._buffer.shape
            self._image = QImage(self._buffer.data, w, h, 3 * w, QImage.Format.Format_RGB888)
            self._aspect = (h * row_spacing) / max(w * col_spacing, 1e-6)
            self._spacing = (float(row_spacing), float(col_spacing))
        self._edges = dict(edges or {})
        self.update()

    def set_crosshair(self, row_frac: float | None, col_frac: float | None) -> None:
        """Lines where the other two views cut this slice (fractions of rows / columns)."""
        self._cross = (row_frac, col_frac)
        self.update()

    def set_roots(self, handles: list[tuple[object, float, float, QColor]],
                  lines: list[tuple[QColor, np.ndarray]]) -> None:
        """Draw roots: control points ``(key, row_frac, col_frac, colour)`` and centreline
        pieces ``(colour, (M, 2) row/col fractions)``."""
        if self._grabbed is not None:
            return  # a drag in progress keeps its own preview until it is let go
        self._handles = list(handles)
        self._root_lines = list(lines)
        self.update()

    def select_handle(self, key: object | None) -> None:
        """Mark the control point ``key`` as selected (Delete removes it); None clears."""
        if key != self.selected:
            self.selected = key
            self.handle_selected.emit(key)
        self.update()

    def handle_key_at(self, pos: QPointF) -> object | None:
        """Key of the control point under ``pos`` (widget pixels), or None."""
        i = self.handle_at(pos)
        return None if i is None else self._handles[i][0]

    def handle_at(self, pos: QPointF) -> int | None:
        """Index of the control point within :data:`HANDLE_GRAB_PX` of ``pos`` (nearest)."""
        best, best_d = None, HANDLE_GRAB_PX
        for i, (_key, r, c, _colour) in enumerate(self._handles):
            p = self._point((r, c))
            d = float(np.hypot(p.x() - pos.x(), p.y() - pos.y()))
            if d <= best_d:
                best, best_d = i, d
        return best

    def set_ruler(self, start: tuple[float, float] | None, end: tuple[float, float] | None = None,
                  text: str = "") -> None:
        """Draw a ruler between two (row, col) fractions labelled ``text`` (None removes it)."""
        self._ruler = None if start is None or end is None else (start, end, text)
        self.update()

    # --- view transform --------------------------------------------------------------------------
    def fitted_rect(self) -> QRectF:
        """Largest rectangle of the slice's aspect, centred (zoom 1, no pan)."""
        w, h = self.width(), self.height()
        if w * self._aspect <= h:
            dw, dh = float(w), w * self._aspect
        else:
            dw, dh = h / self._aspect, float(h)
        return QRectF((w - dw) / 2, (h - dh) / 2, dw, dh)

    def image_rect(self) -> QRectF:
        """Where the slice is drawn, widget pixels: the fitted rectangle zoomed and panned."""
        base = self.fitted_rect()
        dw, dh = base.width() * self.zoom, base.height() * self.zoom
        centre = base.center() + self.pan
        return QRectF(centre.x() - dw / 2, centre.y() - dh / 2, dw, dh)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Multiply the zoom by ``factor`` (clamped to 1..:data:`MAX_ZOOM`) keeping the image
        point under ``anchor`` (widget pixels; the widget centre when None) where it is."""
        anchor = QPointF(self.width() / 2, self.height() / 2) if anchor is None else anchor
        old = self.image_rect()
        fx = (anchor.x() - old.left()) / max(old.width(), 1e-9)
        fy = (anchor.y() - old.top()) / max(old.height(), 1e-9)
        self.zoom = float(np.clip(self.zoom * factor, 1.0, MAX_ZOOM))
        base = self.fitted_rect()
        dw, dh = base.width() * self.zoom, base.height() * self.zoom
        # New rectangle with the same fraction of the image under the anchor.
        centre = QPointF(anchor.x() - fx * dw + dw / 2, anchor.y() - fy * dh + dh / 2)
        self.pan = centre - base.center()
        if self.zoom == 1.0:
            self.pan = QPointF(0.0, 0.0)  # back to fitted: nothing left to pan around
        self.update()

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) widget pixels."""
        self.pan = self.pan + QPointF(dx, dy)
        self.update()

    def reset_view(self) -> None:
        """Zoom 1, no pan: the whole slice in view."""
        self.zoom = 1.0
        self.pan = QPointF(0.0, 0.0)
        self.update()

    def fractions_at(self, pos: QPointF) -> tuple[float, float]:
        """(row, col) fractions of the slice at widget position ``pos`` (may be outside 0..1)."""
        rect = self.image_rect()
        return ((pos.y() - rect.top()) / rect.height(), (pos.x() - rect.left()) / rect.width())

    def _inside(self, pos: QPointF) -> bool:
        return self._image is not None and self.image_rect().contains(pos)

    def _point(self, frac: tuple[float, float]) -> QPointF:
        rect = self.image_rect()
        return QPointF(rect.left() + frac[1] * rect.width(), rect.top() + frac[0] * rect.height())

    # --- drawing ---------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#0b0e11"))
        if self._image is None:
            painter.setPen(QColor("#56606a"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        rect = self.image_rect()
        visible = rect.intersected(QRectF(self.rect()))
        if not visible.isEmpty():
            # Only the visible part is scaled: a 32x zoom would otherwise scale the whole slice.
            sx = self._image.width() / rect.width()
            sy = self._image.height() / rect.height()
            source = QRectF((visible.left() - rect.left()) * sx, (visible.top() - rect.top()) * sy,
                            visible.width() * sx, visible.height() * sy)
            painter.drawImage(visible, self._image, source)
        row_frac, col_frac = self._cross
        painter.setPen(QPen(QColor(90, 170, 230, 110), 1))
        if row_frac is not None:
            y = rect.top() + row_frac * rect.height()
            painter.drawLine(QPointF(visible.left(), y), QPointF(visible.right(), y))
        if col_frac is not None:
            x = rect.left() + col_frac * rect.width()
            painter.drawLine(QPointF(x, visible.top()), QPointF(x, visible.bottom()))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for colour, line in self._root_lines:
            pts = [self._point((float(r), float(c))) for r, c in line]
            painter.setPen(QPen(colour, 1.5, Qt.PenStyle.DashLine))
            for a, b in zip(pts[:-1], pts[1:]):
                painter.drawLine(a, b)
        for i, (key, r, c, colour) in enumerate(self._handles):
            p = self._point((r, c))
            selected = self.selected is not None and key == self.selected
            # The selected point (Delete removes it) wears a white ring.
            painter.setPen(QPen(QColor("#ffffff") if selected else QColor(0, 0, 0, 200),
                                2.5 if selected else 1.5))
            painter.setBrush(colour if i != self._grabbed else QColor("#ffffff"))
            painter.drawEllipse(p, 5.5 if selected else 4.5, 5.5 if selected else 4.5)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self.tool and self.tool_radius_mm and self._cursor is not None \
                and self._image is not None:
            # The tool's footprint: radius mm through the pixel size of each image axis.
            rx = self.tool_radius_mm / self._spacing[1] * rect.width() / self._image.width()
            ry = self.tool_radius_mm / self._spacing[0] * rect.height() / self._image.height()
            painter.setPen(QPen(QColor(255, 255, 255, 200), 1.0))
            painter.drawEllipse(self._cursor, rx, ry)
        if self._ruler is not None:
            start, end, text = self._ruler
            a, b = self._point(start), self._point(end)
            painter.setPen(QPen(QColor(0, 0, 0, 180), 3))
            painter.drawLine(a, b)
            painter.setPen(QPen(_RULER_COLOUR, 1.5))
            painter.drawLine(a, b)
            for p in (a, b):
                painter.drawEllipse(p, 3.0, 3.0)
            if text:
                painter.setPen(QPen(QColor(0, 0, 0, 200)))
                painter.drawText(b + QPointF(7, -5), text)
                painter.setPen(QPen(_RULER_COLOUR))
                painter.drawText(b + QPointF(6, -6), text)
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        m = 4
        r = self.rect().adjusted(m, m, -m, -m)
        shadow = r.translated(1, 1)
        for key, flag in (("top", Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter),
                          ("bottom", Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignHCenter),
                          ("left", Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                          ("right", Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)):
            if key in self._edges:
                # A dark shadow keeps the letter readable over bright bone.
                painter.setPen(QPen(QColor(0, 0, 0, 200)))
                painter.drawText(shadow, flag, self._edges[key])
                painter.setPen(QPen(QColor("#e8c547")))
                painter.drawText(r, flag, self._edges[key])

    # --- mouse and keys --------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos = event.position()
        button = event.button()
        mods = event.modifiers()
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        self._last = pos
        self._press = pos
        self._moved = False
        self._drag = None
        if button == Qt.MouseButton.LeftButton and self.tool and self._image is not None:
            # A tool (label brush...) owns the left button, on the slice or beside it.
            self._drag = "tool"
            self.tool_event.emit("press", *self.fractions_at(pos), int(event.buttons().value),
                                 int(mods.value))
        elif button == Qt.MouseButton.RightButton:
            self._drag = "window"
        elif button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton
                                                        and shift):
            self._drag = "pan"
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif button == Qt.MouseButton.LeftButton and self._inside(pos):
            grab = None if self.ruler_mode or not self.editable_handles else self.handle_at(pos)
            if self.ruler_mode:
                self._drag = "ruler"
                self._ruler_start = self.fractions_at(pos)
                self.ruler_dragged.emit(*self._ruler_start, *self._ruler_start)
            elif grab is not None:
                self._drag = "handle"
                self._grabbed = grab
                self.select_handle(self._handles[grab][0])
            elif ctrl:
                self.insert_requested.emit(*self.fractions_at(pos))
            else:
                self._drag = "cross"
                self.select_handle(None)
                self.clicked.emit(*self.fractions_at(pos))
                self.tool_event.emit("press", *self.fractions_at(pos),
                                     int(event.buttons().value), int(mods.value))
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        pos = event.position()
        delta = pos - self._last
        self._last = pos
        self._cursor = pos
        if (pos - self._press).manhattanLength() > CLICK_SLOP_PX:
            self._moved = True
        mods = int(event.modifiers().value)
        if self._drag == "tool":
            self.tool_event.emit("drag", *self.fractions_at(pos), int(event.buttons().value), mods)
        elif self._drag == "window":
            self.window_dragged.emit(delta.x(), delta.y())
        elif self._drag == "pan":
            self.pan_by(delta.x(), delta.y())
        elif self._drag == "ruler" and self._ruler_start is not None:
            row, col = self.fractions_at(pos)
            # The ruler's end stays on the slice: a measure outside the CT means nothing.
            end = (float(np.clip(row, 0.0, 1.0 - 1e-9)), float(np.clip(col, 0.0, 1.0 - 1e-9)))
            self.ruler_dragged.emit(*self._ruler_start, *end)
        elif self._drag == "cross" and self._inside(pos):
            self.clicked.emit(*self.fractions_at(pos))
            self.tool_event.emit("drag", *self.fractions_at(pos), int(event.buttons().value), mods)
        elif self._drag == "handle" and self._grabbed is not None:
            key, _r, _c, colour = self._handles[self._grabbed]
            self._handles[self._grabbed] = (key, *self.fractions_at(pos), colour)
            self.update()  # a preview: the re-plan waits for the release
        elif self._drag is None:
            key = self.handle_key_at(pos) if self._inside(pos) else None
            self.setToolTip(getattr(key, "tooltip", "") if key is not None else "")
        if self.tool:
            self.update()  # the tool's circle follows the cursor
        self.hovered.emit(self.fractions_at(pos) if self._inside(pos) else None)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        pos = event.position()
        mods = int(event.modifiers().value)
        if self._drag == "tool":
            self.tool_event.emit("release", *self.fractions_at(pos), int(event.button().value),
                                 mods)
        elif self._drag == "cross":
            self.tool_event.emit("release", *self.fractions_at(pos), int(event.button().value),
                                 mods)
        if self._drag == "handle" and self._grabbed is not None:
            key, r, c, _colour = self._handles[self._grabbed]
            self._grabbed = None
            self.update()
            if self._moved:  # a click only selects the point: no edit, no re-plan
                self.handle_released.emit(key, float(r), float(c))
        if self._drag == "window" and not self._moved and self._inside(pos):
            # A right click that did not drag the window: the root's context menu.
            key = self.handle_key_at(pos)
            global_pos = self.mapToGlobal(QPoint(round(pos.x()), round(pos.y())))
            self.context_requested.emit(key, *self.fractions_at(pos), global_pos)
        if self._drag == "pan":
            self.unsetCursor()
            if self.ruler_mode:
                self.setCursor(Qt.CursorShape.CrossCursor)
        self._drag = None
        self._ruler_start = None

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._cursor = None
        if self.tool:
            self.update()
        self.hovered.emit(None)
        super().leaveEvent(event)

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        # Some platforms turn Shift + wheel into a horizontal wheel.
        delta = event.angleDelta().y() or event.angleDelta().x()
        if not delta:
            return
        mods = event.modifiers()
        key = (self.handle_key_at(event.position())
               if mods & Qt.KeyboardModifier.ShiftModifier else None)
        if key is not None:
            # Shift + wheel over a control point: its radius (Ctrl + wheel stays the zoom).
            self._wheel_rest += delta
            steps = int(self._wheel_rest / 120)
            if steps:
                self._wheel_rest -= steps * 120
                self.handle_wheel.emit(key, steps)
        elif mods & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(ZOOM_STEP ** (delta / 120.0), event.position())
        else:
            # 120 = one notch; touchpads and free-spinning wheels send small deltas that add up.
            self._wheel_rest += delta
            steps = int(self._wheel_rest / 120)
            if steps:
                self._wheel_rest -= steps * 120
                self.wheel_steps.emit(steps)
        event.accept()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        found = command_for_key(event.key(), event.modifiers())
        if found is None:
            # Undo / redo of the root edits (Ctrl+Z, Ctrl+Shift+Z or the platform's keys) in the
            # view that has the focus, as the key reaches it (no window-wide shortcut).
            ctrl_shift = (Qt.KeyboardModifier.ControlModifier
                          | Qt.KeyboardModifier.ShiftModifier)
            if event.matches(QKeySequence.StandardKey.Redo) or (
                    event.key() == Qt.Key.Key_Z and (event.modifiers() & ctrl_shift) == ctrl_shift):
                self.key_command.emit("redo_roots", 0.0)
            elif event.matches(QKeySequence.StandardKey.Undo):
                self.key_command.emit("undo_roots", 0.0)
            else:
                super().keyPressEvent(event)
                return
            event.accept()
            return
        command, arg = found
        if command == "zoom":
            self.zoom_by(arg)
        elif command == "reset_view":
            self.reset_view()
        else:
            self.key_command.emit(command, arg)
        event.accept()


class SliceView(QWidget):
    """One plane: title, canvas and slice slider."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.spec: PlaneSpec | None = None
        self.title = QLabel(name)
        self.title.setObjectName("viewTitle")
        self.canvas = SliceCanvas()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.setToolTip(f"{name} slice (wheel, Up/Down and Page Up/Down in the view)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.slider)
        self.canvas.wheel_steps.connect(self.step)

    def step(self, steps: float) -> None:
        """Move ``steps`` slices toward the positive LPS end (S, L or P) of the view's axis."""
        sign = self.spec.positive_step if self.spec is not None else 1
        self.slider.setValue(self.slider.value() + int(steps) * sign)


class SliceViewsPanel(QWidget):
    """The three planes side by side with a shared window/level, overlay opacity and ruler.

    Bind with :meth:`set_volume` (CT) and :meth:`set_labels` (label map on the CT grid).

    Signals
    -------
    crosshair_moved(object)
        ``np.ndarray`` (3,) LPS mm of the point clicked in a view (the crosshair); None when a
        new CT (or none) is shown.
    root_point_moved(str, str, int, object)
        Side, root name, control point index and its new LPS position (3,) mm: a control
        point dragged and let go.
    root_point_inserted(str, str, object)
        Side, root name and the LPS point (3,) mm where a control point is to be added
        (Ctrl + left click near a root, or its context menu).
    root_point_deleted(str, str, int)
        Side, root name, index of the control point to delete (context menu, or Delete with
        the point selected).
    root_radius_set(str, str, float, object)
        Side, root name, the new radius (mm) and the control point's index, or None for the
        whole root (context menu, Shift + wheel over a point).
    root_undo_requested(), root_redo_requested()
        Ctrl+Z / Ctrl+Shift+Z in a view.
    slice_clicked(SliceEvent), slice_dragged(SliceEvent), slice_released(SliceEvent)
        The left button pressed, dragged, let go in a view, off the roots' control points (or
        anywhere while a tool is set, :meth:`set_tool`): the hook for label editing tools.
        Without a tool the crosshair follows the button as well.
    """

    crosshair_moved = Signal(object)
    root_point_moved = Signal(str, str, int, object)
    root_point_inserted = Signal(str, str, object)
    root_point_deleted = Signal(str, str, int)
    root_radius_set = Signal(str, str, float, object)
    root_undo_requested = Signal()
    root_redo_requested = Signal()
    slice_clicked = Signal(object)
    slice_dragged = Signal(object)
    slice_released = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ct: Volume | None = None
        self.labels: np.ndarray | None = None
        self.table: LabelTable | None = None
        self._lut: np.ndarray | None = None
        self._visible_ids: np.ndarray | None = None
        self.presets: dict[str, WindowLevel] = dict(PRESETS)
        self.root_overlay: RootOverlay | None = None
        self.window: WindowLevel = PRESETS["bone"]
        self.overlay_alpha = 0.45
        self.crosshair_lps: np.ndarray | None = None
        #: The ruler: view index, slice index, (x, y, z) indices of its ends, fractions, mm.
        self.ruler: dict | None = None
        self.views = [SliceView(n) for n in ("Axial", "Sagittal", "Coronal")]

        self.preset = QComboBox()
        self.preset.setToolTip("Window / level preset of the 2D views (keys 1 to 9 in a view); "
                               "the series' own DICOM window comes first. Right-drag in a view "
                               "to adjust.")
        self.preset.currentIndexChanged.connect(self._on_preset)
        self.wl_label = QLabel("")
        self.wl_label.setToolTip("Current window width / level, HU. Right-drag in a view: "
                                 "left/right changes the width, up/down the level.")
        self.overlay = QSlider(Qt.Orientation.Horizontal)
        self.overlay.setRange(0, 100)
        self.overlay.setValue(int(self.overlay_alpha * 100))
        self.overlay.setMaximumWidth(140)
        self.overlay.setToolTip("Opacity of the segmentation overlay")
        self.overlay.valueChanged.connect(self._on_overlay)
        self.ruler_button = QToolButton()
        self.ruler_button.setText("Ruler")
        self.ruler_button.setCheckable(True)
        self.ruler_button.setToolTip("Distance ruler (M): drag with the left button in a view to "
                                     "measure in mm")
        self.ruler_button.toggled.connect(self._on_ruler_mode)
        self.clear_ruler_button = QToolButton()
        self.clear_ruler_button.setText("Clear")
        self.clear_ruler_button.setToolTip("Remove the ruler (Delete)")
        self.clear_ruler_button.clicked.connect(self.clear_ruler)
        self.reset_button = QToolButton()
        self.reset_button.setText("Fit")
        self.reset_button.setToolTip("Reset zoom and pan of the three views (R in a view). "
                                     "Ctrl+wheel zooms, middle or Shift+left drag pans.")
        self.reset_button.clicked.connect(self.reset_views)
        self.note = QLabel("")
        self.note.setObjectName("muted")
        self.note.setToolTip("The views show the CT's own voxel planes, without resampling")
        self.readout = QLabel("")
        self.readout.setObjectName("muted")
        self.readout.setToolTip("Under the cursor: position in LPS millimetres (x = patient "
                                "left, y = posterior, z = superior) and the CT value in HU")
        self.ruler_label = QLabel("")
        self.ruler_label.setToolTip("Length of the ruler, mm (from the voxel spacing), and the "
                                    "slice it lies on")

        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 0)
        bar.addWidget(QLabel("Window:"))
        bar.addWidget(self.preset)
        bar.addWidget(self.wl_label)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Overlay:"))
        bar.addWidget(self.overlay)
        bar.addSpacing(12)
        bar.addWidget(self.ruler_button)
        bar.addWidget(self.clear_ruler_button)
        bar.addWidget(self.reset_button)
        bar.addStretch(1)
        bar.addWidget(self.note)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        for i, view in enumerate(self.views):
            row.addWidget(view, 1)
            # Moving one plane moves the crosshair in the other two: redraw all three.
            view.slider.valueChanged.connect(lambda _v: self.refresh())
            c = view.canvas
            c.clicked.connect(lambda r, col, v=view: self._on_click(v, r, col))
            c.hovered.connect(lambda f, v=view: self._on_hover(v, f))
            c.window_dragged.connect(self.drag_window)
            c.ruler_dragged.connect(lambda r0, c0, r1, c1, i=i: self.set_ruler(i, (r0, c0),
                                                                                (r1, c1)))
            c.key_command.connect(lambda cmd, arg, v=view: self._on_key(v, cmd, arg))
            c.handle_released.connect(lambda key, r, col, v=view: self._on_handle(v, key, r, col))
            c.handle_selected.connect(lambda key, v=view: self._on_selected(v, key))
            c.insert_requested.connect(lambda r, col, v=view: self.insert_root_point_at(v, r, col))
            c.context_requested.connect(
                lambda key, r, col, where, v=view: self._on_context(v, key, r, col, where))
            c.handle_wheel.connect(self._on_handle_wheel)
            c.tool_event.connect(
                lambda kind, r, col, b, m, i=i: self._on_tool_event(i, kind, r, col, b, m))
        status = QHBoxLayout()
        status.setContentsMargins(4, 0, 4, 0)
        status.addWidget(self.readout, 1)
        status.addWidget(self.ruler_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addLayout(row, 1)
        layout.addLayout(status)
        self._fill_presets("bone")

    # --- binding ---------------------------------------------------------------------------------
    def set_volume(self, ct: Volume | None) -> None:
        """Show a CT (or clear with ``None``); sliders start in the middle.

        The window starts at the series' own DICOM window when it has one (as radiology viewers
        and 3D Slicer open a series), else at CT-bone.
        """
        self.ct = ct
        self.labels, self.table, self._lut, self._visible_ids = None, None, None, None
        if self.crosshair_lps is not None:
            self.crosshair_moved.emit(None)  # the old case's point means nothing in the new one
        self.crosshair_lps = None
        self.ruler = None
        self.readout.setText("")
        self.ruler_label.setText("")
        self.presets = presets_for(ct)
        self._fill_presets(DICOM_PRESET if DICOM_PRESET in self.presets else "bone")
        specs = plane_specs(ct) if ct is not None else [None, None, None]
        for view, spec in zip(self.views, specs):
            view.spec = spec
            view.canvas.reset_view()
            view.canvas.set_ruler(None)
            view.slider.blockSignals(True)
            if spec is None:
                view.slider.setRange(0, 0)
                view.slider.setEnabled(False)
            else:
                n = spec.size(ct.array.shape)
                view.slider.setRange(0, n - 1)
                view.slider.setValue(n // 2)
                view.slider.setEnabled(True)
            view.slider.blockSignals(False)
        oblique = ct is not None and any(s.obliquity_deg >= 1.0 for s in specs)
        self.note.setText("Array index planes (oblique grid, not resampled)" if oblique
                          else "Array index planes" if ct is not None else "")
        self.refresh()

    def set_labels(self, labels: Volume | None, table: LabelTable | None) -> None:
        """Overlay a label map on the CT's grid (``None`` removes it).

        A new label map with the same class names as the one shown (an edited copy) keeps the
        classes hidden with :meth:`set_structure_visible` hidden.
        """
        if labels is None or table is None or self.ct is None:
            self.labels, self.table, self._lut, self._visible_ids = None, None, None, None
        else:
            same = (self.table is not None and self._visible_ids is not None
                    and dict(self.table.names) == dict(table.names))
            self.labels = labels.array
            self.table = table
            self._lut = label_lut(table.names, color_of)
            if not same or self._visible_ids is None or len(self._visible_ids) != len(self._lut):
                self._visible_ids = np.ones(len(self._lut), bool)
        self.refresh()

    def set_label_array(self, array: np.ndarray) -> None:
        """Show ``array`` (z, y, x) ids on the CT's grid with the label map's table and class
        visibility kept: cheap enough to call after each brush stroke."""
        if self.labels is None or self.ct is None:
            raise ValueError("set_label_array needs a label map shown (set_labels first)")
        if array.shape != self.ct.array.shape:
            raise ValueError(f"label array shape {array.shape} differs from the CT "
                             f"{self.ct.array.shape}")
        self.labels = array
        self.refresh()

    # --- tools (label editing) -------------------------------------------------------------------
    @property
    def tool(self) -> str | None:
        """The tool that owns the left button (:meth:`set_tool`), or None."""
        return self.views[0].canvas.tool

    def set_tool(self, tool: str | None, *, radius_mm: float | None = None) -> None:
        """Give the left button to a tool (e.g. ``"brush"``, ``"eraser"``) or back (None).

        While a tool is set, a left press, drag and release in any view emit
        :attr:`slice_clicked`, :attr:`slice_dragged` and :attr:`slice_released` only (no
        crosshair, no root control point grabbed, no ruler), and a circle of ``radius_mm``
        follows the cursor when given. Right drag (window), middle drag (pan), the wheel and
        the keys work as usual.
        """
        if tool:
            self.ruler_button.setChecked(False)
        for view in self.views:
            c = view.canvas
            c.tool = tool or None
            c.tool_radius_mm = float(radius_mm) if tool and radius_mm else None
            if tool:
                c.setCursor(Qt.CursorShape.CrossCursor)
            else:
                c.unsetCursor()
            c.update()

    def slice_event(self, view_index: int, kind: str, row_frac: float, col_frac: float,
                    buttons: int = 0, modifiers: int = 0) -> SliceEvent | None:
        """The :class:`SliceEvent` at (row, col) fractions of a view's slice (None without a
        CT)."""
        view = self.views[view_index]
        index = self.index_at(view, row_frac, col_frac)
        if index is None or self.ct is None or view.spec is None:
            return None
        inside = 0.0 <= row_frac < 1.0 and 0.0 <= col_frac < 1.0
        return SliceEvent(kind=kind, view=view.name, view_index=view_index,
                          lps_mm=self.ct.index_to_lps(index), index_xyz=index,
                          axis=view.spec.axis, slice_index=view.slider.value(),
                          buttons=int(buttons), modifiers=int(modifiers), inside=inside)

    def _on_tool_event(self, view_index: int, kind: str, row_frac: float, col_frac: float,
                       buttons: int, modifiers: int) -> None:
        event = self.slice_event(view_index, kind, row_frac, col_frac, buttons, modifiers)
        if event is None:
            return
        {"press": self.slice_clicked, "drag": self.slice_dragged,
         "release": self.slice_released}[kind].emit(event)

    def set_structure_visible(self, name: str, visible: bool) -> None:
        """Hide/show one class in the overlay (same toggles as the 3D view)."""
        if self.table is None or self._visible_ids is None or not self.table.has(name):
            return
        self._visible_ids[self.table.id_of(name)] = bool(visible)
        self.refresh()

    def set_preset(self, key: str) -> None:
        """Select a preset by key (``"dicom"``, ``"bone"``, ``"soft"``, ...); unknown keys are
        ignored (e.g. ``"dicom"`` for a NIfTI CT)."""
        index = self.preset.findData(key)
        if index >= 0:
            self.preset.setCurrentIndex(index)

    def set_window(self, window: WindowLevel) -> None:
        """Use ``window`` (shown as Custom unless it is one of the presets' values)."""
        key = next((k for k, wl in self.presets.items()
                    if (wl.width, wl.level) == (window.width, window.level)), CUSTOM_PRESET)
        self.window = window if key == CUSTOM_PRESET else self.presets[key]
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(self.preset.findData(key))
        self.preset.blockSignals(False)
        self._show_window()
        self.refresh()

    def drag_window(self, dx_px: float, dy_px: float) -> None:
        """Apply a window/level drag of (dx, dy) screen pixels (see :func:`app.slicing.drag_window`)."""
        self.set_window(drag_window(self.window, dx_px, dy_px))

    def set_slice(self, view_index: int, index: int) -> None:
        self.views[view_index].slider.setValue(int(index))

    def reset_views(self) -> None:
        """Zoom 1 and no pan in the three views."""
        for view in self.views:
            view.canvas.reset_view()

    # --- presets ---------------------------------------------------------------------------------
    def _fill_presets(self, selected: str) -> None:
        self.preset.blockSignals(True)
        self.preset.clear()
        for key, wl in self.presets.items():
            self.preset.addItem(f"{wl.name}  (W{wl.width:.0f} / L{wl.level:.0f})", key)
        self.preset.addItem("Custom (right-drag in a view)", CUSTOM_PRESET)
        self.preset.setCurrentIndex(max(0, self.preset.findData(selected)))
        self.preset.blockSignals(False)
        self.window = self.presets.get(self.preset.currentData(), PRESETS["bone"])
        self._show_window()

    def _show_window(self) -> None:
        self.wl_label.setText(f"W {self.window.width:.0f} / L {self.window.level:.0f}")

    def _on_preset(self, _index: int) -> None:
        key = self.preset.currentData()
        if key in self.presets:
            self.window = self.presets[key]
        self._show_window()
        self.refresh()

    def _on_overlay(self, value: int) -> None:
        self.overlay_alpha = value / 100.0
        self.refresh()

    # --- keys ------------------------------------------------------------------------------------
    def _on_key(self, view: SliceView, command: str, arg: float) -> None:
        """Run a slice-view command of the shortcut table (see app.widgets.shortcuts)."""
        if command == "step":
            view.step(arg)
        elif command == "end":
            view.slider.setValue(view.slider.minimum() if arg < 0 else view.slider.maximum())
        elif command == "ruler":
            self.ruler_button.toggle()
        elif command == "clear_ruler":
            # Delete removes the selected root control point; with none, the ruler.
            handle = view.canvas.selected
            if handle is not None:
                self.delete_root_point(handle)  # type: ignore[arg-type]
            else:
                self.clear_ruler()
        elif command == "undo_roots":
            self.root_undo_requested.emit()
        elif command == "redo_roots":
            self.root_redo_requested.emit()
        elif command == "preset":
            index = int(arg)
            if 0 <= index < len(self.presets):
                self.preset.setCurrentIndex(index)

    # --- positions -------------------------------------------------------------------------------
    def index_at(self, view: SliceView, row_frac: float, col_frac: float) -> np.ndarray | None:
        """Continuous voxel index (x, y, z) at fractions of ``view``'s displayed slice."""
        spec = view.spec
        if spec is None or self.ct is None:
            return None
        shape = self.ct.array.shape
        # Fraction f of n pixels -> continuous pixel coordinate with centres at integers.
        row = row_frac * shape[spec.row_axis] - 0.5
        col = col_frac * shape[spec.col_axis] - 0.5
        return display_to_index(spec, shape, view.slider.value(), row, col)

    def _display_fraction(self, spec: PlaneSpec, axis: int, flip: bool) -> float | None:
        """Where the view cutting along numpy ``axis`` lies in ``spec``'s rows or columns."""
        for other in self.views:
            if other.spec is not None and other.spec.axis == axis:
                n = self.ct.array.shape[axis]
                index = other.slider.value()
                if flip:
                    index = n - 1 - index
                return (index + 0.5) / n
        return None

    def _on_click(self, view: SliceView, row_frac: float, col_frac: float) -> None:
        """A click in one view moves the other two views to that point (the crosshair)."""
        spec = view.spec
        if spec is None or self.ct is None:
            return
        shape = self.ct.array.shape
        for axis, frac, flip in ((spec.row_axis, row_frac, spec.flip_rows),
                                 (spec.col_axis, col_frac, spec.flip_cols)):
            n = shape[axis]
            index = min(n - 1, max(0, int(frac * n)))
            if flip:
                index = n - 1 - index
            for other in self.views:
                if other.spec is not None and other.spec.axis == axis:
                    other.slider.setValue(index)
        index = self.index_at(view, row_frac, col_frac)
        self.crosshair_lps = self.ct.index_to_lps(index)
        self.crosshair_moved.emit(self.crosshair_lps.copy())

    def _on_hover(self, view: SliceView, fractions) -> None:
        """The status line: LPS position, HU (and structure) under the cursor."""
        index = None if fractions is None else self.index_at(view, *fractions)
        if index is None:
            self.readout.setText("")
            return
        value = value_at(self.ct.array, index)
        if value is None:
            self.readout.setText(f"{view.name}: outside the CT")
            return
        text = f"{view.name}: {lps_text(self.ct.index_to_lps(index))} · {value:.0f} HU"
        if self.labels is not None and self.table is not None:
            label = value_at(self.labels, index)
            name = self.table.names.get(int(label)) if label else None
            if name:
                text += f" · {name}"
        self.readout.setText(text)

    # --- ruler -----------------------------------------------------------------------------------
    def _on_ruler_mode(self, on: bool) -> None:
        for view in self.views:
            view.canvas.ruler_mode = bool(on)
            if on:
                view.canvas.setCursor(Qt.CursorShape.CrossCursor)
            else:
                view.canvas.unsetCursor()

    def set_ruler(self, view_index: int, start: tuple[float, float],
                  end: tuple[float, float]) -> float | None:
        """Put the ruler on ``view_index``'s current slice between two (row, col) fractions.

        Returns its length in mm (through LPS, so the voxel spacing of each axis counts).
        """
        view = self.views[view_index]
        a, b = self.index_at(view, *start), self.index_at(view, *end)
        if a is None or b is None:
            return None
        length = distance_mm(self.ct, a, b)
        index = view.slider.value()
        where = position_text(view.spec, slice_position_mm(self.ct, view.spec, index))
        self.ruler = {"view": view_index, "slice": index, "start_xyz": a, "end_xyz": b,
                      "fractions": (tuple(start), tuple(end)), "length_mm": length}
        self.ruler_label.setText(f"Ruler: {length:.1f} mm ({view.name}, {where})")
        self._draw_ruler()
        return length

    def set_root_overlay(self, overlay: RootOverlay | None) -> None:
        """Draw these roots and their control points (None: none)."""
        self.root_overlay = overlay
        for view in self.views:
            selected = view.canvas.selected
            if isinstance(selected, RootHandle):
                # The same point in the new roots (its radius or place may have changed); an
                # added or deleted point renumbers the root: the selection goes rather than
                # pointing at another point.
                new = overlay.handle(*selected.key) if overlay is not None else None
                view.canvas.selected = new if new is not None and new.count == selected.count \
                    else None
            self._draw_roots(view)

    def _draw_roots(self, view: SliceView) -> None:
        o = self.root_overlay
        if o is None or self.ct is None or view.spec is None:
            view.canvas.set_roots([], [])
            return
        index = view.slider.value()
        handles = [(h, r, c, QColor(*ROOT_COLOURS.get(h.name, (255, 255, 255))))
                   for h, r, c in handles_in_view(o, view.spec, self.ct, index)]
        lines = [(QColor(*ROOT_COLOURS.get(name, (255, 255, 255))), line)
                 for name, line in lines_in_view(o, view.spec, self.ct, index)]
        view.canvas.set_roots(handles, lines)

    def _on_handle(self, view: SliceView, handle, row_frac: float, col_frac: float) -> None:
        """A control point let go: its new LPS position, for the controller's re-plan."""
        if self.ct is None or view.spec is None:
            return
        lps = moved_point(view.spec, self.ct, handle, row_frac, col_frac)
        self.root_point_moved.emit(handle.side, handle.name, int(handle.index), lps)

    # --- root editing (add, delete, radius) ------------------------------------------------------
    def _on_selected(self, view: SliceView, key: object | None) -> None:
        """One selected control point across the three views."""
        if key is None:
            return
        for other in self.views:
            if other is not view and other.canvas.selected is not None:
                other.canvas.select_handle(None)

    def selected_handle(self) -> RootHandle | None:
        """The control point selected by a click (Delete removes it), or None."""
        for view in self.views:
            key = view.canvas.selected
            if key is not None:
                return key  # type: ignore[return-value]
        return None

    def root_near(self, view: SliceView, row_frac: float, col_frac: float
                  ) -> tuple[str, str, np.ndarray, float, float] | None:
        """The root nearest the point at (row, col) fractions of ``view``'s slice:
        ``(side, name, point LPS (3,) mm, distance mm, reach mm)``; None without roots."""
        if self.root_overlay is None or self.ct is None:
            return None
        index = self.index_at(view, row_frac, col_frac)
        if index is None:
            return None
        lps = self.ct.index_to_lps(index)
        found = nearest_root(self.root_overlay, lps)
        if found is None:
            return None
        side, name, distance, reach = found
        return side, name, lps, distance, reach

    def insert_root_point_at(self, view: SliceView, row_frac: float, col_frac: float) -> bool:
        """Ask for a control point on the root nearest (row, col) of ``view``'s slice (the
        controller refuses a click too far from every root, with the reason)."""
        found = self.root_near(view, row_frac, col_frac)
        if found is None:
            return False
        side, name, lps, _distance, _reach = found
        self.root_point_inserted.emit(side, name, lps)
        return True

    def delete_root_point(self, handle: RootHandle) -> None:
        """Ask for ``handle``'s control point to be deleted (a root keeps two: the controller
        refuses the third-last with the reason)."""
        for view in self.views:
            if view.canvas.selected is not None and view.canvas.selected == handle:
                view.canvas.select_handle(None)
        self.root_point_deleted.emit(handle.side, handle.name, int(handle.index))

    def ask_radius(self, words: str, current_mm: float) -> float | None:
        """The radius (mm) the operator types for ``words`` (None: cancelled). Tests replace it."""
        from PySide6.QtWidgets import QInputDialog

        lo, hi = self.root_overlay.radius_range_mm if self.root_overlay else (0.5, 10.0)
        value, ok = QInputDialog.getDouble(self, "Root radius", f"Radius of the {words} (mm):",
                                           float(np.clip(current_mm, lo, hi)), lo, hi, 2)
        return float(value) if ok else None

    def set_root_radius_dialog(self, side: str, name: str, index: int | None,
                               current_mm: float) -> bool:
        """Ask for a radius (one point when ``index`` is given, else the whole root) and emit
        :attr:`root_radius_set`."""
        words = root_words(side, name)
        if index is not None:
            words = f"{words}, control point {index + 1}"
        value = self.ask_radius(words, current_mm)
        if value is None:
            return False
        self.root_radius_set.emit(side, name, float(value), index)
        return True

    def root_actions(self, view: SliceView, handle: RootHandle | None, row_frac: float,
                     col_frac: float) -> list[tuple[str, Callable[[], object] | None]]:
        """The context menu's entries at a point: ``(text, action)``; a None action is shown
        disabled (the text says why)."""
        o = self.root_overlay
        if o is None:
            return []
        actions: list[tuple[str, Callable[[], object] | None]] = []
        if handle is not None:
            h = handle
            n = o.count(h.side, h.name)
            if n > 2:
                actions.append((f"Delete point {h.index + 1} of the {h.words}",
                                lambda: self.delete_root_point(h)))
            else:
                actions.append((f"Delete point: the {h.words} keeps at least two points", None))
            actions.append((f"Set radius of this point ({h.radius_mm:.2f} mm)…",
                            lambda: self.set_root_radius_dialog(h.side, h.name, h.index,
                                                                h.radius_mm)))
            whole = o.radius_mm.get((h.side, h.name), h.radius_mm)
            actions.append((f"Set radius of the whole {h.words}…",
                            lambda: self.set_root_radius_dialog(h.side, h.name, None, whole)))
            return actions
        found = self.root_near(view, row_frac, col_frac)
        if found is None:
            return actions
        side, name, lps, distance, reach = found
        words = root_words(side, name)
        if distance <= reach:
            actions.append((f"Add a control point to the {words} here",
                            lambda: self.root_point_inserted.emit(side, name, lps)))
            actions.append((f"Set radius of the whole {words}…",
                            lambda: self.set_root_radius_dialog(
                                side, name, None, o.radius_mm.get((side, name), 2.5))))
        else:
            actions.append((f"Add a point: {distance:.1f} mm from the {words}, click within "
                            f"{reach:.1f} mm", None))
        return actions

    def _on_context(self, view: SliceView, key: object | None, row_frac: float,
                    col_frac: float, where: object) -> None:
        from PySide6.QtWidgets import QMenu

        actions = self.root_actions(view, key, row_frac, col_frac)  # type: ignore[arg-type]
        if not actions:
            return
        menu = QMenu(self)
        for text, fn in actions:
            action = menu.addAction(text)
            if fn is None:
                action.setEnabled(False)
            else:
                action.triggered.connect(lambda _checked=False, fn=fn: fn())
        menu.exec(where)  # type: ignore[arg-type]
        menu.deleteLater()

    def _on_handle_wheel(self, handle: RootHandle, steps: int) -> None:
        """Shift + wheel over a control point: its radius by
        :data:`~app.widgets.shortcuts.RADIUS_STEP_MM` a notch."""
        lo, hi = self.root_overlay.radius_range_mm if self.root_overlay else (0.5, 10.0)
        current = handle.radius_mm if np.isfinite(handle.radius_mm) else 2.5
        new = float(np.clip(current + steps * RADIUS_STEP_MM, lo, hi))
        if new != current:
            self.root_radius_set.emit(handle.side, handle.name, new, int(handle.index))

    def clear_ruler(self) -> None:
        self.ruler = None
        self.ruler_label.setText("")
        self._draw_ruler()

    def _draw_ruler(self) -> None:
        r = self.ruler
        for i, view in enumerate(self.views):
            # Drawn on its own slice only: elsewhere it would lie over other anatomy.
            if r is not None and r["view"] == i and view.slider.value() == r["slice"]:
                view.canvas.set_ruler(*r["fractions"], f"{r['length_mm']:.1f} mm")
            else:
                view.canvas.set_ruler(None)

    # --- drawing ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        for view in self.views:
            self._render(view)
            self._draw_roots(view)
        self._draw_ruler()

    def _render(self, view: SliceView) -> None:
        spec = view.spec
        if self.ct is None or spec is None:
            view.title.setText(view.name)
            view.canvas.set_rgb(None)
            return
        index = view.slider.value()
        grey = window_to_uint8(extract_slice(self.ct.array, spec, index),
                               self.window.width, self.window.level)
        labels = extract_slice(self.labels, spec, index) if self.labels is not None else None
        rgb = overlay_labels(grey, labels, self._lut, alpha=self.overlay_alpha,
                             visible=self._visible_ids)
        position = position_text(spec, slice_position_mm(self.ct, spec, index))
        view.title.setText(spec.title(index, self.ct.array.shape, position))
        view.canvas.set_rgb(rgb, row_spacing=spec.row_spacing_mm,
                            col_spacing=spec.col_spacing_mm, edges=spec.edges)
        view.canvas.set_crosshair(self._display_fraction(spec, spec.row_axis, spec.flip_rows),
                                  self._display_fraction(spec, spec.col_axis, spec.flip_cols))
