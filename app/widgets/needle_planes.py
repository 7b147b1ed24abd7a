"""The oblique CT planes along the planned needle: the needle plane and its companion.

The pictures come from :func:`spinect_core.reslice.render_plane` (bone window, label overlay,
needle in orange, orientation letters and a 10 mm bar), computed in a worker
(:func:`app.planning.needle_planes`); this widget shows them with the right aspect and draws
the plan's nerve roots over them (:meth:`NeedlePlanesView.set_roots`: the centrelines and
control points within :data:`~app.widgets.root_overlay.OBLIQUE_SLAB_MM` of each plane, in the
slice views' colours), kept up to date after each root edit, undo and redo. The points are shown
here, not dragged (drag them in the slice views).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.widgets.root_overlay import ROOT_COLOURS, RootOverlay, in_oblique_plane
from app.widgets.slice_views import SliceCanvas

__all__ = ["NeedlePlanesView"]

_TITLES = {"needle": "Needle plane: along the needle, endplate normal up",
           "companion": "Companion plane: along the needle, across the needle plane"}


class NeedlePlanesView(QWidget):
    """Two canvases side by side; :meth:`set_planes` binds one side's planes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.planes: Any = None
        self.root_overlay: RootOverlay | None = None
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
            canvas.editable_handles = False
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
                canvas.set_roots([], [])
            self.note.setText(f"No oblique planes for the {side} needle." if side else
                              "The planes along the needle appear once a needle is planned.")
            return
        self.note.setText(f"{planes.side.capitalize()} needle, {planes.length_mm:.1f} mm "
                          "(orange; ring = tip). Bone window, segmentation overlaid.")
        for kind, rgb in (("needle", planes.needle_rgb), ("companion", planes.companion_rgb)):
            self.canvases[kind].set_rgb(rgb, row_spacing=planes.pixel_mm,
                                        col_spacing=planes.pixel_mm)
        self._draw_roots()

    def set_roots(self, overlay: RootOverlay | None) -> None:
        """Draw these roots on the planes (None: none); redrawn with each new pair of planes."""
        self.root_overlay = overlay
        self._draw_roots()

    def _draw_roots(self) -> None:
        for kind, canvas in self.canvases.items():
            plane = getattr(self.planes, f"{kind}_plane", None) if self.planes is not None \
                else None
            if self.root_overlay is None or plane is None:
                canvas.set_roots([], [])
                continue
            handles, lines = in_oblique_plane(self.root_overlay, plane)
            colour = {name: QColor(*rgb) for name, rgb in ROOT_COLOURS.items()}
            white = QColor(255, 255, 255)
            canvas.set_roots([(h, r, c, colour.get(h.name, white)) for h, r, c in handles],
                             [(colour.get(name, white), line) for name, line in lines])
