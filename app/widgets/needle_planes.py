"""The oblique CT planes along the planned needle: the needle plane and its companion.

The pictures come from :func:`spinect_core.reslice.render_plane` (bone window, label overlay,
needle in orange, orientation letters and a 10 mm bar), computed in a worker
(:func:`app.planning.needle_planes`); this widget only shows them with the right aspect.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.widgets.slice_views import SliceCanvas

__all__ = ["NeedlePlanesView"]

_TITLES = {"needle": "Needle plane: along the needle, endplate normal up",
           "companion": "Companion plane: along the needle, across the needle plane"}


class NeedlePlanesView(QWidget):
    """Two canvases side by side; :meth:`set_planes` binds one side's planes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.planes: Any = None
        self.canvases: dict[str, SliceCanvas] = {}
        self.titles: dict[str, QLabel] = {}
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        for kind in ("needle", "companion"):
            box = QVBoxLayout()
            box.setContentsMargins(2, 2, 2, 2)
            box.setSpacing(2)
            title = QLabel(_TITLES[kind])
            title.setObjectName("viewTitle")
            canvas = SliceCanvas()
            canvas.placeholder = "No needle"
            box.addWidget(title)
            box.addWidget(canvas, 1)
            row.addLayout(box, 1)
            self.canvases[kind] = canvas
            self.titles[kind] = title
        self.note = QLabel("The planes along the needle appear once a needle is planned.")
        self.note.setObjectName("muted")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 0)
        layout.setSpacing(2)
        layout.addWidget(self.note)
        layout.addLayout(row, 1)
        self.set_planes(None)

    def set_planes(self, planes: Any, *, side: str = "") -> None:
        """Show :class:`app.planning.NeedlePlanes` (``None`` clears)."""
        self.planes = planes
        if planes is None:
            for canvas in self.canvases.values():
                canvas.set_rgb(None)
            self.note.setText(f"No oblique planes for the {side} needle." if side else
                              "The planes along the needle appear once a needle is planned.")
            return
        self.note.setText(f"{planes.side.capitalize()} needle, {planes.length_mm:.1f} mm "
                          "(orange; ring = tip). Bone window, segmentation overlaid.")
        for kind, rgb in (("needle", planes.needle_rgb), ("companion", planes.companion_rgb)):
            self.canvases[kind].set_rgb(rgb, row_spacing=planes.pixel_mm,
                                        col_spacing=planes.pixel_mm)
