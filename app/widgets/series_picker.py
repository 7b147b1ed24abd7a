"""Choose one of several series found in a folder (slices, size, spacing; description on request).

A series description is free text that often carries the patient's name (issue 16): it stays
hidden until the user ticks "Show descriptions", as ``spinect info`` prints it only with
``--show-descriptions``.
"""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QDialogButtonBox, QLabel,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from spinect_core.io import SeriesInfo

__all__ = ["SeriesPickerDialog"]

HIDDEN = "(hidden)"
DESCRIPTION_COLUMN = 1
COLUMNS = ("Modality", "Description", "Slices", "Size (x×y×z)", "Spacing (mm)", "Extent (mm)",
           "Status")


class SeriesPickerDialog(QDialog):
    """A table of series; the first loadable CT series is preselected."""

    def __init__(self, series: Sequence[SeriesInfo], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a series")
        self.series = list(series)
        self.table = QTableWidget(len(self.series), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        first = None
        for row, info in enumerate(self.series):
            sx, sy, sz = info.spacing_mm
            cells = (info.modality or "?", HIDDEN, str(info.number_of_slices),
                     "×".join(str(v) for v in info.size), f"{sx:.2f} × {sy:.2f} × {sz:.2f}",
                     f"{info.extent_mm:.0f}", info.problem or "loadable")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if info.problem:
                    item.setForeground(Qt.GlobalColor.gray)
                self.table.setItem(row, col, item)
            if first is None and not info.problem and info.modality in ("CT", ""):
                first = row
        self.show_descriptions = QCheckBox("Show descriptions (free text that may name the patient)")
        self.show_descriptions.toggled.connect(self._show_descriptions)
        self.table.resizeColumnsToContents()
        self.table.selectRow(first if first is not None else 0)
        self.table.doubleClicked.connect(self.accept)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{len(self.series)} series were found. Choose the thin-slice "
                                "lumbar CT to plan on:"))
        layout.addWidget(self.table)
        layout.addWidget(self.show_descriptions)
        layout.addWidget(buttons)
        self.resize(760, 320)

    def _show_descriptions(self, show: bool) -> None:
        for row, info in enumerate(self.series):
            text = (info.description or "—") if show else HIDDEN
            self.table.item(row, DESCRIPTION_COLUMN).setText(text)
        self.table.resizeColumnsToContents()

    def selected(self) -> SeriesInfo | None:
        rows = self.table.selectionModel().selectedRows()
        return self.series[rows[0].row()] if rows else None
