"""Right column: where the planning results go (stage 1: the layout and the live view hook).

Stage 2 (the planning engine) fills the per-side window areas for the current view, the
"Best view" buttons and the needle summary. Until then the panel says so honestly and shows the
current view direction and the planning inputs from the settings.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QFormLayout, QGridLayout, QGroupBox, QLabel, QPushButton,
                               QVBoxLayout, QWidget)

from app.camera import describe_direction
from app.state import SettingsValues

__all__ = ["PlanningPanel", "SIDES", "WINDOWS"]

SIDES = ("left", "right")
WINDOWS = ("Kambin", "Safe")


class PlanningPanel(QWidget):
    """Placeholders with stable object names so stage 2 can fill them.

    Signals
    -------
    best_view_requested(str, str)
        side ("left"/"right") and window ("Kambin"/"Safe").
    posterior_view_requested()
    """

    best_view_requested = Signal(str, str)
    posterior_view_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(250)
        heading = QLabel("Planning (coming with the planning engine)")
        heading.setObjectName("sectionTitle")
        heading.setWordWrap(True)
        intro = QLabel("Kambin and safe-triangle window areas at L5/S1 for the current view, the "
                       "best view per side and the needle plan will appear here.")
        intro.setObjectName("muted")
        intro.setWordWrap(True)

        view_box = QGroupBox("Current view")
        vf = QFormLayout(view_box)
        self.view_label = QLabel("—")
        self.view_vector = QLabel("—")
        self.view_vector.setObjectName("muted")
        vf.addRow("Direction:", self.view_label)
        vf.addRow("LPS:", self.view_vector)
        self.posterior_button = QPushButton("Posterior (PA) view")
        self.posterior_button.clicked.connect(self.posterior_view_requested)
        vf.addRow(self.posterior_button)

        windows_box = QGroupBox("Window areas at L5/S1 (this view)")
        grid = QGridLayout(windows_box)
        grid.addWidget(QLabel(""), 0, 0)
        self.area_labels: dict[tuple[str, str], QLabel] = {}
        for c, side in enumerate(SIDES, start=1):
            head = QLabel(side.capitalize())
            head.setObjectName("muted")
            grid.addWidget(head, 0, c)
        for r, window in enumerate(WINDOWS, start=1):
            grid.addWidget(QLabel(window), r, 0)
            for c, side in enumerate(SIDES, start=1):
                value = QLabel("— mm²")
                value.setObjectName(f"area_{side}_{window.lower()}")
                grid.addWidget(value, r, c)
                self.area_labels[(side, window)] = value

        best_box = QGroupBox("Best view")
        bl = QGridLayout(best_box)
        self.best_buttons: dict[tuple[str, str], QPushButton] = {}
        for r, window in enumerate(WINDOWS):
            for c, side in enumerate(SIDES):
                button = QPushButton(f"{window} {side}")
                button.setEnabled(False)
                button.setToolTip("Available with the planning engine")
                button.clicked.connect(lambda _=False, s=side, w=window:
                                       self.best_view_requested.emit(s, w))
                bl.addWidget(button, r, c)
                self.best_buttons[(side, window)] = button

        needle_box = QGroupBox("Needle")
        nf = QFormLayout(needle_box)
        self.gauge_label = QLabel("—")
        self.margin_label = QLabel("—")
        self.needle_summary = QLabel("Trajectory, length and angles: coming")
        self.needle_summary.setObjectName("muted")
        self.needle_summary.setWordWrap(True)
        nf.addRow("Gauge:", self.gauge_label)
        nf.addRow("Safety margin:", self.margin_label)
        nf.addRow(self.needle_summary)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(heading)
        layout.addWidget(intro)
        layout.addWidget(view_box)
        layout.addWidget(windows_box)
        layout.addWidget(best_box)
        layout.addWidget(needle_box)
        layout.addStretch(1)
        self.last_direction: np.ndarray | None = None

    def update_for_view(self, direction_lps: np.ndarray) -> None:
        """Called (throttled) whenever the 3D camera moved.

        Stage 2 hook: compute the window areas for exactly this direction (LPS, rays travel
        along it) in a worker and fill :attr:`area_labels`.
        """
        d = np.asarray(direction_lps, float)
        self.last_direction = d
        self.view_label.setText(describe_direction(d))
        self.view_vector.setText(f"({d[0]:+.2f}, {d[1]:+.2f}, {d[2]:+.2f})")

    def set_settings(self, settings: SettingsValues) -> None:
        self.gauge_label.setText(f"{settings.needle_gauge} G")
        self.margin_label.setText(f"{settings.safety_margin_mm:.1f} mm")
