"""Per-structure colour swatch, visibility toggle and opacity slider (3D view and 2D overlay)."""

from __future__ import annotations

from typing import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFrame, QGridLayout, QLabel, QSlider, QWidget

from app.colors import color_of, default_opacity

__all__ = ["StructuresPanel"]


class StructuresPanel(QWidget):
    """One row per structure.

    Signals
    -------
    visibility_changed(str, bool)
    opacity_changed(str, float)
    """

    visibility_changed = Signal(str, bool)
    opacity_changed = Signal(str, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(4)
        self.checks: dict[str, QCheckBox] = {}
        self.sliders: dict[str, QSlider] = {}
        self.empty = QLabel("No structures yet")
        self.empty.setObjectName("muted")
        self.grid.addWidget(self.empty, 0, 0, 1, 3)

    def set_structures(self, names: Iterable[str]) -> None:
        """Rebuild the rows for ``names`` (keeps nothing from before)."""
        while self.grid.count():
            widget = self.grid.takeAt(0).widget()
            if widget is not None and widget is not self.empty:
                widget.deleteLater()
        self.checks.clear()
        self.sliders.clear()
        names = list(names)
        self.empty.setVisible(not names)
        if not names:
            self.grid.addWidget(self.empty, 0, 0, 1, 3)
        for row, name in enumerate(names):
            swatch = QFrame()
            swatch.setFixedSize(14, 14)
            r, g, b = color_of(name)
            swatch.setStyleSheet(f"background: rgb({r},{g},{b}); border: 1px solid #222;"
                                 "border-radius: 3px;")
            check = QCheckBox(name)
            check.setChecked(True)
            check.toggled.connect(lambda on, n=name: self.visibility_changed.emit(n, on))
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            slider.setValue(int(round(default_opacity(name) * 100)))
            slider.setToolTip(f"Opacity of {name}")
            slider.valueChanged.connect(lambda v, n=name: self.opacity_changed.emit(n, v / 100))
            self.grid.addWidget(swatch, row, 0)
            self.grid.addWidget(check, row, 1)
            self.grid.addWidget(slider, row, 2)
            self.checks[name] = check
            self.sliders[name] = slider
        self.grid.setColumnStretch(2, 1)
