"""The label tools bar above the slice views: brush / eraser, class, radius, undo, re-plan.

A row of controls, as 3D Slicer's Segment Editor in small: the tool (off, Brush, Eraser; off by
default, so the left button keeps its crosshair, root and ruler meanings), the class painted or
erased (bone or nerve), the radius in mm, undo and redo of the strokes, what the operator changed
so far, and, once the label map differs from the one the plan (and the 3D surfaces) used, a
warning with the "Re-plan with the edited labels" button.

The bar computes nothing: it emits what the operator asks for and shows what
:class:`app.label_editing.LabelEditing` tells it (:meth:`LabelToolsBar.show_state`).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel,
                               QPushButton, QToolButton, QWidget)

__all__ = ["LabelToolsBar", "TOOLS", "MIN_RADIUS_MM", "MAX_RADIUS_MM", "RADIUS_STEP_MM"]

#: Tool keys and their button texts.
TOOLS = {"brush": "Brush", "erase": "Eraser"}
#: Radius range and the step of one [ or ] press, mm.
MIN_RADIUS_MM = 0.5
MAX_RADIUS_MM = 25.0
RADIUS_STEP_MM = 0.5


class LabelToolsBar(QWidget):
    """Brush and eraser controls for the label map in the slice views.

    Signals
    -------
    tool_changed(object)
        ``"brush"``, ``"erase"`` or None (off).
    label_changed(str)
        The class name painted or erased.
    radius_changed(float)
        mm.
    undo_requested(), redo_requested()
    replan_requested()
        "Re-plan with the edited labels".
    """

    tool_changed = Signal(object)
    label_changed = Signal(str)
    radius_changed = Signal(float)
    undo_requested = Signal()
    redo_requested = Signal()
    replan_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Push buttons: the app's style shows a checked QPushButton (the tool that is on).
        self.buttons: dict[str, QPushButton] = {}
        self.group = QButtonGroup(self)
        self.group.setExclusive(False)  # exclusive by hand: a second click turns the tool off
        for key, text in TOOLS.items():
            b = QPushButton(text)
            b.setCheckable(True)
            b.setToolTip({"brush": "Paint the chosen class in the slice views with the left "
                                   "button (B). Paints over other classes.",
                          "erase": "Erase the chosen class with the left button (E): only that "
                                   "class becomes background; erasing nerve never removes bone."
                          }[key])
            b.toggled.connect(lambda on, k=key: self._on_toggled(k, on))
            self.group.addButton(b)
            self.buttons[key] = b
        self.label = QComboBox()
        self.label.setToolTip("The class the brush paints and the eraser removes")
        self.label.currentIndexChanged.connect(
            lambda _i: self.label_changed.emit(self.label.currentData() or ""))
        self.radius = QDoubleSpinBox()
        self.radius.setRange(MIN_RADIUS_MM, MAX_RADIUS_MM)
        self.radius.setSingleStep(RADIUS_STEP_MM)
        self.radius.setDecimals(1)
        self.radius.setSuffix(" mm")
        self.radius.setValue(3.0)
        self.radius.setToolTip("Brush radius in the slice, mm ([ smaller, ] larger)")
        self.radius.valueChanged.connect(lambda v: self.radius_changed.emit(float(v)))
        self.undo_button = QToolButton()
        self.undo_button.setText("Undo")
        self.undo_button.setToolTip("Undo the last brush or eraser stroke")
        self.undo_button.clicked.connect(self.undo_requested)
        self.redo_button = QToolButton()
        self.redo_button.setText("Redo")
        self.redo_button.setToolTip("Redo the stroke undone last")
        self.redo_button.clicked.connect(self.redo_requested)
        self.counts = QLabel("")
        self.counts.setObjectName("muted")
        self.counts.setToolTip("What the operator changed in the label map, per class, against "
                               "the segmentation (voxels added and removed)")
        self.outdated = QLabel("")
        self.outdated.setStyleSheet("color: #f0b429;")  # the app's style has no warning label
        self.replan_button = QPushButton("Re-plan with the edited labels")
        self.replan_button.setToolTip("Rebuild the 3D surfaces and plan L5/S1 again on the label "
                                      "map as edited")
        self.replan_button.clicked.connect(self.replan_requested)
        self.replan_button.setVisible(False)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 0, 4, 0)
        row.addWidget(QLabel("Labels:"))
        for b in self.buttons.values():
            row.addWidget(b)
        row.addWidget(self.label)
        row.addWidget(self.radius)
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        row.addWidget(self.counts, 1)
        row.addWidget(self.outdated)
        row.addWidget(self.replan_button)
        self.set_classes(["bone", "nerve"])
        self.show_state(enabled=False)

    # --- what the operator chose -----------------------------------------------------------------
    @property
    def tool(self) -> str | None:
        return next((k for k, b in self.buttons.items() if b.isChecked()), None)

    def set_tool(self, tool: str | None) -> None:
        """Turn a tool on (``"brush"``, ``"erase"``) or off (None)."""
        for key, b in self.buttons.items():
            b.setChecked(key == tool)
        if tool is None:
            self.tool_changed.emit(None)

    def toggle_tool(self, tool: str) -> None:
        """The tool's key: on, or off when it is on already."""
        self.set_tool(None if self.tool == tool else tool)

    def set_classes(self, names: list[str]) -> None:
        current = self.label.currentData()
        self.label.blockSignals(True)
        self.label.clear()
        for n in names:
            self.label.addItem(n.capitalize(), n)
        self.label.setCurrentIndex(max(0, self.label.findData(current)))
        self.label.blockSignals(False)

    def set_label(self, name: str) -> None:
        i = self.label.findData(name)
        if i >= 0:
            self.label.setCurrentIndex(i)

    def step_radius(self, steps: int) -> None:
        """[ and ]: the radius by ``steps`` times :data:`RADIUS_STEP_MM` (clamped)."""
        self.radius.setValue(self.radius.value() + steps * RADIUS_STEP_MM)

    def _on_toggled(self, key: str, on: bool) -> None:
        if on:
            for other, b in self.buttons.items():
                if other != key and b.isChecked():
                    b.blockSignals(True)
                    b.setChecked(False)
                    b.blockSignals(False)
            self.tool_changed.emit(key)
        elif self.tool is None:
            self.tool_changed.emit(None)

    # --- what the editor says --------------------------------------------------------------------
    def show_state(self, *, enabled: bool, counts: str = "", can_undo: bool = False,
                   can_redo: bool = False, outdated: str = "") -> None:
        """Enable the tools (a label map is shown) and show the edits and the plan's state."""
        for b in self.buttons.values():
            b.setEnabled(enabled)
        self.label.setEnabled(enabled)
        self.radius.setEnabled(enabled)
        self.undo_button.setEnabled(enabled and can_undo)
        self.redo_button.setEnabled(enabled and can_redo)
        self.counts.setText(counts)
        self.outdated.setText(outdated)
        self.replan_button.setVisible(bool(outdated))
