"""Axial, sagittal and coronal slices of the CT with the label overlay (plain Qt).

The slices are the volume's array index planes (see :mod:`app.slicing`), drawn as a QImage with
the physical aspect ratio from the voxel spacing; the title states the index plane and whether the
grid is oblique. Window/level presets: bone (W2000/L400) and soft tissue (W400/L40).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget)

from spinect_core.labels import LabelTable
from spinect_core.volume import Volume

from app.colors import color_of
from app.slicing import (PRESETS, PlaneSpec, WindowLevel, extract_slice, label_lut,
                         overlay_labels, plane_specs, window_to_uint8)

__all__ = ["SliceCanvas", "SliceView", "SliceViewsPanel"]


class SliceCanvas(QWidget):
    """Draws one RGB slice with the right aspect, orientation letters, and nothing else."""

    wheel_steps = Signal(int)
    clicked = Signal(float, float)  # row, column as fractions [0, 1) of the displayed slice

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._buffer: np.ndarray | None = None
        self._aspect = 1.0  # physical height / width of the slice
        self._edges: dict = {}
        self._cross: tuple[float | None, float | None] = (None, None)
        self.placeholder = "No CT"
        self.setMinimumSize(120, 120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

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
        self._edges = dict(edges or {})
        self.update()

    def set_crosshair(self, row_frac: float | None, col_frac: float | None) -> None:
        """Lines where the other two views cut this slice (fractions of rows / columns)."""
        self._cross = (row_frac, col_frac)
        self.update()

    def image_rect(self) -> QRectF:
        """Where the slice is drawn: largest rectangle of the right aspect, centred."""
        w, h = self.width(), self.height()
        if w * self._aspect <= h:
            dw, dh = float(w), w * self._aspect
        else:
            dw, dh = h / self._aspect, float(h)
        return QRectF((w - dw) / 2, (h - dh) / 2, dw, dh)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#0b0e11"))
        if self._image is None:
            painter.setPen(QColor("#56606a"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        rect = self.image_rect()
        painter.drawImage(rect, self._image)
        row_frac, col_frac = self._cross
        painter.setPen(QPen(QColor(90, 170, 230, 110), 1))
        if row_frac is not None:
            y = rect.top() + row_frac * rect.height()
            painter.drawLine(int(rect.left()), int(y), int(rect.right()), int(y))
        if col_frac is not None:
            x = rect.left() + col_frac * rect.width()
            painter.drawLine(int(x), int(rect.top()), int(x), int(rect.bottom()))
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

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        rect = self.image_rect()
        pos = event.position()
        if self._image is not None and rect.contains(pos):
            self.clicked.emit((pos.y() - rect.top()) / rect.height(),
                              (pos.x() - rect.left()) / rect.width())

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        steps = int(np.sign(event.angleDelta().y()))
        if steps:
            self.wheel_steps.emit(steps)


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
        self.slider.setToolTip(f"{name} slice")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.slider)
        self.canvas.wheel_steps.connect(lambda s: self.slider.setValue(self.slider.value() + s))


class SliceViewsPanel(QWidget):
    """The three planes side by side with a shared window/level preset and overlay opacity.

    Bind with :meth:`set_volume` (CT) and :meth:`set_labels` (label map on the CT grid).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ct: Volume | None = None
        self.labels: np.ndarray | None = None
        self.table: LabelTable | None = None
        self._lut: np.ndarray | None = None
        self._visible_ids: np.ndarray | None = None
        self.window: WindowLevel = PRESETS["bone"]
        self.overlay_alpha = 0.45
        self.views = [SliceView(n) for n in ("Axial", "Sagittal", "Coronal")]

        self.preset = QComboBox()
        for key, wl in PRESETS.items():
            self.preset.addItem(f"{wl.name}  (W{wl.width:.0f} / L{wl.level:.0f})", key)
        self.preset.setToolTip("Window / level preset of the 2D views")
        self.preset.currentIndexChanged.connect(self._on_preset)
        self.overlay = QSlider(Qt.Orientation.Horizontal)
        self.overlay.setRange(0, 100)
        self.overlay.setValue(int(self.overlay_alpha * 100))
        self.overlay.setMaximumWidth(140)
        self.overlay.setToolTip("Opacity of the segmentation overlay")
        self.overlay.valueChanged.connect(self._on_overlay)
        self.note = QLabel("")
        self.note.setObjectName("muted")

        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 0)
        bar.addWidget(QLabel("Window:"))
        bar.addWidget(self.preset)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Overlay:"))
        bar.addWidget(self.overlay)
        bar.addStretch(1)
        bar.addWidget(self.note)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        for view in self.views:
            row.addWidget(view, 1)
            # Moving one plane moves the crosshair in the other two: redraw all three.
            view.slider.valueChanged.connect(lambda _v: self.refresh())
            view.canvas.clicked.connect(lambda r, c, v=view: self._on_click(v, r, c))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addLayout(row, 1)

    # --- binding ---------------------------------------------------------------------------------
    def set_volume(self, ct: Volume | None) -> None:
        """Show a CT (or clear with ``None``); sliders start in the middle."""
        self.ct = ct
        self.labels, self.table, self._lut, self._visible_ids = None, None, None, None
        specs = plane_specs(ct) if ct is not None else [None, None, None]
        for view, spec in zip(self.views, specs):
            view.spec = spec
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
        """Overlay a label map on the CT's grid (``None`` removes it)."""
        if labels is None or table is None or self.ct is None:
            self.labels, self.table, self._lut, self._visible_ids = None, None, None, None
        else:
            self.labels = labels.array
            self.table = table
            self._lut = label_lut(table.names, color_of)
            self._visible_ids = np.ones(len(self._lut), bool)
        self.refresh()

    def set_structure_visible(self, name: str, visible: bool) -> None:
        """Hide/show one class in the overlay (same toggles as the 3D view)."""
        if self.table is None or self._visible_ids is None or not self.table.has(name):
            return
        self._visible_ids[self.table.id_of(name)] = bool(visible)
        self.refresh()

    def set_preset(self, key: str) -> None:
        index = self.preset.findData(key)
        if index >= 0:
            self.preset.setCurrentIndex(index)

    def set_slice(self, view_index: int, index: int) -> None:
        self.views[view_index].slider.setValue(int(index))

    # --- drawing ---------------------------------------------------------------------------------
    def _on_preset(self, _index: int) -> None:
        self.window = PRESETS[self.preset.currentData()]
        self.refresh()

    def _on_overlay(self, value: int) -> None:
        self.overlay_alpha = value / 100.0
        self.refresh()

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
        """A click in one view moves the other two views to that point."""
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

    def refresh(self) -> None:
        for view in self.views:
            self._render(view)

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
        view.title.setText(spec.title(index, self.ct.array.shape))
        view.canvas.set_rgb(rgb, row_spacing=spec.row_spacing_mm,
                            col_spacing=spec.col_spacing_mm, edges=spec.edges)
        view.canvas.set_crosshair(self._display_fraction(spec, spec.row_axis, spec.flip_rows),
                                  self._display_fraction(spec, spec.col_axis, spec.flip_cols))
