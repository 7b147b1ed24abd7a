"""Settings: device, weights file (with its model card), blend mode, bone source, needle gauge,
margin."""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from app.dialogs import WEIGHTS_FILTER
from app.model_info import card_html, weights_info
from app.pipeline import device_summary
from app.settings import BONE_SOURCES, PLAN_SEARCHES, TRAJECTORY_WINDOWS, VARIANTS, AppSettings

__all__ = ["SettingsDialog"]

_DEVICE_LABELS = {"auto": "Auto (GPU if available)", "cpu": "CPU", "cuda": "CUDA GPU"}
_VARIANT_LABELS = {"feasible": "Feasible (every structure a needle meets blocks)",
                   "bony": "Bony Kambin (traversing root and dura transparent)",
                   "neural": "Neural Kambin (S1 superior articular process transparent)"}
_WINDOW_LABELS = {"auto": "Automatic (larger usable window)", "kambin": "Kambin triangle",
                  "safe": "Safe (subpedicular) triangle"}
_SEARCH_LABELS = {"standard": "Standard (5° grid, refined to 0.5°)",
                  "quick": "Quick (15° grid, refined to 2°)"}
_BLEND_LABELS = {"sum": "Sum of softmax (study, Algorithm 1)",
                 "gaussian": "Gaussian-weighted (nnU-Net style)"}
_BONE_LABELS = {"network": "Network (as predicted)",
                "ct": "CT bone model (from the scan's own histogram)",
                "fused": "Fused (CT bone model + network bone within 3 mm)"}


class SettingsDialog(QDialog):
    """Edits an :class:`AppSettings`; values are written only on OK (:meth:`apply`)."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        devices = device_summary()

        self.device = QComboBox()
        for key, label in _DEVICE_LABELS.items():
            self.device.addItem(label, key)
        self.device.setCurrentIndex(self.device.findData(settings.device))
        cuda_item = self.device.model().item(self.device.findData("cuda"))
        if not devices["cuda"] and cuda_item is not None:
            cuda_item.setEnabled(settings.device == "cuda")  # keep a stored choice visible
        self.device_note = QLabel(str(devices["text"]))
        self.device_note.setObjectName("muted")

        self.weights = QLineEdit(settings.weights_path)
        self.weights.setPlaceholderText("bundled default weights")
        self.weights.editingFinished.connect(self._show_card)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        default = QPushButton("Use default")
        default.clicked.connect(lambda: (self.weights.setText(""), self._show_card()))
        wrow = QHBoxLayout()
        wrow.addWidget(self.weights, 1)
        wrow.addWidget(browse)
        wrow.addWidget(default)
        self.card = QLabel()
        self.card.setWordWrap(True)
        self.card.setObjectName("modelCard")
        self.card.setMinimumWidth(460)

        self.blend = QComboBox()
        for key, label in _BLEND_LABELS.items():
            self.blend.addItem(label, key)
        self.blend.setCurrentIndex(self.blend.findData(settings.blend))
        self.bone = _combo(_BONE_LABELS, BONE_SOURCES, settings.bone)
        self.bone.setToolTip("Where the bone class comes from. The network's bone is always "
                             "checked against the CT bone model at L4-S1; a disagreement is a "
                             "warning on the plan.")
        self.auto_segment = QCheckBox("Segment automatically after loading a CT")
        self.auto_segment.setChecked(settings.auto_segment)

        self.gauge = QSpinBox()
        self.gauge.setRange(18, 25)  # gauges with a known outer diameter (ISO 9626)
        self.gauge.setSuffix(" G")
        self.gauge.setValue(settings.needle_gauge)
        self.margin = QDoubleSpinBox()
        self.margin.setRange(0.0, 10.0)
        self.margin.setSingleStep(0.5)
        self.margin.setDecimals(1)
        self.margin.setSuffix(" mm")
        self.margin.setValue(settings.safety_margin_mm)

        seg_box = QGroupBox("Segmentation")
        sf = QFormLayout(seg_box)
        sf.addRow("Device:", self.device)
        sf.addRow("", self.device_note)
        sf.addRow("Weights:", wrow)
        sf.addRow("", self.card)
        sf.addRow("Blend:", self.blend)
        sf.addRow("Bone:", self.bone)
        sf.addRow("", self.auto_segment)
        self.variant = _combo(_VARIANT_LABELS, VARIANTS, settings.variant)
        self.trajectory_window = _combo(_WINDOW_LABELS, TRAJECTORY_WINDOWS,
                                        settings.trajectory_window)
        self.search = _combo(_SEARCH_LABELS, PLAN_SEARCHES, settings.plan_search)
        self.auto_plan = QCheckBox("Plan L5/S1 automatically after the surfaces are built")
        self.auto_plan.setChecked(settings.auto_plan)

        self.remember_recent = QCheckBox("Remember the paths of recently opened CTs")
        self.remember_recent.setToolTip("Off by default: folder and file names often name the "
                                        "patient. When on, they are kept in the settings.")
        self.remember_recent.setChecked(settings.remember_recent_paths)

        plan_box = QGroupBox("Planning")
        pf = QFormLayout(plan_box)
        pf.addRow("Needle gauge:", self.gauge)
        pf.addRow("Safety margin:", self.margin)
        pf.addRow("Blocking structures:", self.variant)
        pf.addRow("Needle window:", self.trajectory_window)
        pf.addRow("View search:", self.search)
        pf.addRow("", self.auto_plan)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(seg_box)
        layout.addWidget(plan_box)
        privacy_box = QGroupBox("Privacy")
        QVBoxLayout(privacy_box).addWidget(self.remember_recent)
        layout.addWidget(privacy_box)
        layout.addWidget(buttons)
        self._show_card()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose weights", self.weights.text(),
                                              WEIGHTS_FILTER)
        if path:
            self.weights.setText(path)
            self._show_card()

    def _show_card(self) -> None:
        self.card.setText(card_html(weights_info(self.weights.text().strip())))

    def apply(self) -> None:
        """Write the dialog's values into the settings."""
        self.settings.device = self.device.currentData()
        self.settings.weights_path = self.weights.text().strip()
        self.settings.blend = self.blend.currentData()
        self.settings.bone = self.bone.currentData()
        self.settings.auto_segment = self.auto_segment.isChecked()
        self.settings.needle_gauge = self.gauge.value()
        self.settings.safety_margin_mm = self.margin.value()
        self.settings.variant = self.variant.currentData()
        self.settings.trajectory_window = self.trajectory_window.currentData()
        self.settings.plan_search = self.search.currentData()
        self.settings.auto_plan = self.auto_plan.isChecked()
        self.settings.remember_recent_paths = self.remember_recent.isChecked()
        self.settings.sync()

    def accept(self) -> None:
        self.apply()
        super().accept()


def _combo(labels: dict[str, str], keys: tuple[str, ...], current: str) -> QComboBox:
    combo = QComboBox()
    for key in keys:
        combo.addItem(labels[key], key)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    return combo
