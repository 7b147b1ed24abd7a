"""Export dialog: choose the folder and what to write; returns an :class:`ExportRequest`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox,
                               QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QRadioButton, QVBoxLayout, QWidget)

from app.export import LABEL_MAP_NAME, MESH_EXPORT_FORMATS, SCREENSHOT_NAME, ExportRequest

__all__ = ["ExportDialog"]


class ExportDialog(QDialog):
    """Collects an export request; the main window checks for existing files and writes."""

    def __init__(self, folder: str, *, has_labels: bool, has_meshes: bool,
                 has_plan: bool = False, pacs_nodes: Sequence[str] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.folder = QLineEdit(folder)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        frow = QHBoxLayout()
        frow.addWidget(self.folder, 1)
        frow.addWidget(browse)

        self.label_map = QCheckBox(f"Label map (NIfTI {LABEL_MAP_NAME} + label table .json)")
        self.label_map.setChecked(has_labels)
        self.label_map.setEnabled(has_labels)
        self.mesh_checks = {fmt: QCheckBox(fmt.upper()) for fmt in MESH_EXPORT_FORMATS}
        self.mesh_checks["stl"].setChecked(has_meshes)
        mrow = QHBoxLayout()
        for check in self.mesh_checks.values():
            check.setEnabled(has_meshes)
            mrow.addWidget(check)
        self.lps = QRadioButton("LPS (DICOM, 3D Slicer ≥ 4.11)")
        self.ras = QRadioButton("RAS")
        self.lps.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.lps)
        group.addButton(self.ras)
        crow = QHBoxLayout()
        crow.addWidget(self.lps)
        crow.addWidget(self.ras)
        self.screenshot = QCheckBox(f"Screenshot of the 3D view ({SCREENSHOT_NAME})")
        self.screenshot.setChecked(True)
        self.plan = QCheckBox("L5/S1 plan, needle trajectories and report")
        plan_note = QLabel("plan.json, needle_<side>.mrk.json (3D Slicer line, LPS), oblique "
                           "planes along each needle (NIfTI + labels, PNG), screenshots and "
                           "area maps per window, report.html and report.pdf")
        plan_note.setObjectName("muted")
        plan_note.setWordWrap(True)
        self.plan.setChecked(has_plan)
        self.plan.setEnabled(has_plan)
        if not has_plan:
            self.plan.setToolTip("Plan L5/S1 first")
        self.plan_dicom = QCheckBox("DICOM objects for the PACS (planes, screenshots, "
                                    "segmentation, report)")
        self.plan_dicom.setToolTip(
            "Also write the plan as DICOM into dicom/: the oblique planes as derived CT series, "
            "the screenshots as secondary captures, the segmentation as a DICOM SEG, the plan as "
            "a structured report and report.pdf encapsulated. They carry the CT's patient, study "
            "and frame of reference, so a PACS files them with the CT; Send to PACS stores them.")
        self.plan_dicom.setChecked(True)
        self.plan_dicom.setEnabled(has_plan)
        self.plan.toggled.connect(self.plan_dicom.setEnabled)
        # Send to PACS: the plan's DICOM objects, after writing them (configured nodes only), so
        # only while the plan is exported with them.
        self.send_to = QComboBox()
        self.send_to.addItem("(do not send)")
        self.send_to.addItems(list(pacs_nodes))
        self._has_nodes = bool(pacs_nodes)
        self.plan.toggled.connect(self._update_send)
        self.plan_dicom.toggled.connect(self._update_send)
        self._update_send()
        note = QLabel("File names contain no patient identifiers. Existing files are never "
                      "replaced without asking.")
        note.setObjectName("muted")
        note.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Folder:", frow)
        form.addRow("", self.label_map)
        form.addRow("Surfaces:", mrow)
        form.addRow("Coordinates:", crow)
        form.addRow("", self.screenshot)
        form.addRow("Plan:", self.plan)
        form.addRow("", plan_note)
        form.addRow("", self.plan_dicom)
        if pacs_nodes:
            form.addRow("Send to PACS:", self.send_to)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)

    def _update_send(self) -> None:
        self.send_to.setEnabled(self._has_nodes and self.plan.isChecked()
                                and self.plan.isEnabled() and self.plan_dicom.isChecked())

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export folder", self.folder.text())
        if path:
            self.folder.setText(path)

    def request(self) -> ExportRequest:
        return ExportRequest(
            folder=Path(self.folder.text().strip() or "."),
            label_map=self.label_map.isChecked(),
            mesh_formats=[f for f, c in self.mesh_checks.items() if c.isChecked()],
            coordinate_system="RAS" if self.ras.isChecked() else "LPS",
            screenshot=self.screenshot.isChecked(),
            plan=self.plan.isChecked() and self.plan.isEnabled(),
            plan_dicom=self.plan_dicom.isChecked(),
            send_to=self.send_to.currentText() if self.send_to.currentIndex() > 0
            and self.send_to.isEnabled() else "")
