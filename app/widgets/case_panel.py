"""Left column: the case, the steps with their status, actions, structures and notes."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QGroupBox, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from spinect_core.volume import Volume

from app.widgets.structures_panel import StructuresPanel

__all__ = ["CasePanel"]

_STATUS = {"pending": ("○", "#8a949e"), "running": ("◐", "#e8c547"), "done": ("●", "#5cb85c"),
           "failed": ("✕", "#e0645c"), "cancelled": ("–", "#c0a060")}


class CasePanel(QWidget):
    """Binds to the session through the main window's slots.

    Signals
    -------
    segment_requested, open_segmentation_requested, plan_requested, export_requested
    """

    segment_requested = Signal()
    plan_requested = Signal()
    open_segmentation_requested = Signal()
    export_requested = Signal()

    def __init__(self, steps: dict[str, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(250)
        self.case = QLabel("No case open")
        self.case.setWordWrap(True)
        self.case.setObjectName("caseTitle")
        self.details = QLabel("")
        self.details.setObjectName("muted")
        self.details.setWordWrap(True)
        case_box = QGroupBox("Case")
        cl = QVBoxLayout(case_box)
        cl.addWidget(self.case)
        cl.addWidget(self.details)

        self.steps = QListWidget()
        self.steps.setObjectName("steps")
        self.steps.setFocusPolicy(self.steps.focusPolicy().NoFocus)
        self._step_items: dict[str, QListWidgetItem] = {}
        self._step_labels = dict(steps)
        for n, (key, label) in enumerate(steps.items(), start=1):
            item = QListWidgetItem()
            self.steps.addItem(item)
            self._step_items[key] = item
            self.set_step(key, "pending")
        self.steps.setFixedHeight(26 * len(steps) + 6)
        self.segment_button = QPushButton("Segment")
        self.segment_button.setToolTip("Run the network on the loaded CT (Settings: weights, "
                                       "device)")
        self.segment_button.clicked.connect(self.segment_requested)
        self.open_seg_button = QPushButton("Open segmentation…")
        self.open_seg_button.clicked.connect(self.open_segmentation_requested)
        self.plan_button = QPushButton("Plan L5/S1")
        self.plan_button.setToolTip("Best views of the Kambin and safe windows on both sides and "
                                    "a needle plan (Settings: gauge, margin, variant)")
        self.plan_button.clicked.connect(self.plan_requested)
        self.export_button = QPushButton("Export…")
        self.export_button.setObjectName("primary")
        self.export_button.clicked.connect(self.export_requested)
        steps_box = QGroupBox("Steps")
        sl = QVBoxLayout(steps_box)
        sl.addWidget(self.steps)
        sl.addWidget(self.segment_button)
        sl.addWidget(self.open_seg_button)
        sl.addWidget(self.plan_button)
        sl.addWidget(self.export_button)

        self.structures = StructuresPanel()
        structures_box = QGroupBox("Structures")
        QVBoxLayout(structures_box).addWidget(self.structures)

        self.notes = QLabel("")
        self.notes.setObjectName("muted")
        self.notes.setWordWrap(True)
        notes_box = QGroupBox("Notes")
        QVBoxLayout(notes_box).addWidget(self.notes)
        self.notes_box = notes_box

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(case_box)
        layout.addWidget(steps_box)
        layout.addWidget(structures_box)
        layout.addWidget(notes_box)
        layout.addStretch(1)
        self.set_enabled_actions(has_ct=False, has_labels=False, busy=False)
        self.set_notes([])

    def set_step(self, key: str, status: str) -> None:
        symbol, colour = _STATUS.get(status, _STATUS["pending"])
        item = self._step_items[key]
        label = self._step_labels[key]
        item.setText(f"{symbol}  {label}")
        item.setForeground(_qcolor(colour))
        item.setToolTip(status)
        item.setData(256, status)

    def step_status(self, key: str) -> str:
        return self._step_items[key].data(256)

    def set_case(self, title: str, ct: Volume | None) -> None:
        self.case.setText(title)
        if ct is None:
            self.details.setText("")
            return
        nx, ny, nz = ct.size_xyz
        sx, sy, sz = ct.spacing_mm
        meta = ct.metadata
        parts = [f"{nx} × {ny} × {nz} voxels", f"{sx:.2f} × {sy:.2f} × {sz:.2f} mm",
                 f"{meta.modality or 'CT'} · {meta.source_format or 'image'}"]
        if meta.convolution_kernel:
            parts.append(f"kernel {meta.convolution_kernel}")
        self.details.setText("\n".join(parts))

    def set_enabled_actions(self, *, has_ct: bool, has_labels: bool, busy: bool) -> None:
        self.segment_button.setEnabled(has_ct and not busy)
        self.open_seg_button.setEnabled(has_ct and not busy)
        self.plan_button.setEnabled(has_labels and not busy)
        self.export_button.setEnabled(has_labels and not busy)

    def set_notes(self, notes: Sequence[str]) -> None:
        self.notes.setText("\n".join(f"• {n}" for n in notes[-8:]))
        self.notes_box.setVisible(bool(notes))


def _qcolor(text: str):
    from PySide6.QtGui import QColor

    return QColor(text)
