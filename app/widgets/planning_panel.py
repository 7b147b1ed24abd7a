"""Right column: the L5/S1 plan, the windows of the current view, best views and the needle.

The panel only displays and asks: it is bound by the main window (``set_plan``,
``set_live_windows``, ``set_needle``) and emits requests (best view, needle window, nudges).
Areas are mm^2 projected on the view plane; C-arm angles are for a prone patient, from the
straight posteroanterior view, in the core's words (:mod:`spinect_core.planning.carm`): the best
views, the needle and "This view" (ipsilateral meaning the needle's side chosen here) alike.

The heading names "L5/S1" plainly only when the plan's level is established (high confidence, or
per-level instance labels); otherwise it reads "Plan at the level identified as L5/S1 (moderate
confidence)", the level box under it gives the reasons, and the needle's verdict carries the
level's confidence (:func:`app.planning.plan_level`). A refused plan shows no plan title: the
refusal and where the scan ends (:meth:`PlanningPanel.set_refusal`).
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout,
                               QLabel, QPushButton, QSizePolicy, QToolButton, QVBoxLayout,
                               QWidget)

from app.camera import describe_direction
from spinect_core.planning.carm import CARM_CONVENTION, CARM_CONVENTION_SHORT
from spinect_core.planning.carm import carm_text as _core_carm_text
from app.planning import KIND_LABELS, KINDS, plan_level
from app.state import SettingsValues
from app.widgets.view3d import WINDOW_COLORS

__all__ = ["PlanningPanel", "SIDES", "KINDS", "NUDGE_STEP_MM", "carm_text"]

SIDES = ("left", "right")
#: One click of a nudge arrow moves the needle tip this far, mm.
NUDGE_STEP_MM = 0.5
_VARIANT_TEXT = {"feasible": "feasible", "bony": "bony Kambin", "neural": "neural Kambin"}
#: Heading without a plan (no level is named before one is established).
NO_PLAN_HEADING = "Plan"
#: The level box's look per confidence (the app's dark theme; red where the level is in doubt).
_LEVEL_STYLE = {
    "established": "background: #1d3324; color: #cfeed6; border: 1px solid #4f9d63;",
    "moderate": "background: #3a3318; color: #ffe9a8; border: 2px solid #d9a400;",
    "low": "background: #3a1d1f; color: #ffd2cc; border: 2px solid #d9534f;",
}
_LEVEL_BOX = "border-radius: 5px; padding: 5px 7px;"


def carm_text(carm: dict[str, Any] | None, *, with_side: bool = True) -> str:
    """The core's C-arm words with degree signs ("25.0° ipsilateral (left) oblique, ...";
    :func:`spinect_core.planning.carm.carm_text`).

    ``with_side=False`` drops the "(left)" that repeats a side named nearby.
    """
    return _core_carm_text(carm, with_side=with_side, degree_sign=True)


def _swatch(rgb: tuple[int, int, int]) -> str:
    return f"<span style='color: rgb{tuple(rgb)}; font-size: 12pt;'>■</span>"


def _fmt_area(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.1f}"


class PlanningPanel(QWidget):
    """The planning column.

    Signals
    -------
    plan_requested()
    best_view_requested(str, str)
        side (``left``/``right``) and window (``kambin``/``safe``).
    posterior_view_requested()
    needle_side_changed(str)
        The side the needle section shows (and the nudges move).
    needle_window_requested(str, str)
        Plan this side's needle through this window.
    nudge_requested(str, float, float)
        side, right and up (mm) as seen along the needle with cranial up.
    pick_mode_toggled(bool)
        Target picking in the 3D view on/off.
    reset_target_requested(str)
        Aim the side's needle at its window's deepest point again.
    view_along_needle_requested(str)
    """

    plan_requested = Signal()
    best_view_requested = Signal(str, str)
    posterior_view_requested = Signal()
    needle_side_changed = Signal(str)
    needle_window_requested = Signal(str, str)
    nudge_requested = Signal(str, float, float)
    pick_mode_toggled = Signal(bool)
    reset_target_requested = Signal(str)
    view_along_needle_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(300)
        self.plan: Any = None
        self.last_direction: np.ndarray | None = None
        self.live: Any = None
        self._settings: SettingsValues | None = None

        # --- plan header -------------------------------------------------------------------------
        self.heading = heading = QLabel(NO_PLAN_HEADING)
        heading.setObjectName("sectionTitle")
        heading.setWordWrap(True)
        # How sure the level is (or why there is no plan), right under the heading.
        self.level_label = QLabel("")
        self.level_label.setObjectName("planLevel")
        self.level_label.setWordWrap(True)
        self.level_label.setTextFormat(Qt.TextFormat.RichText)
        self.level_label.setVisible(False)
        self.status = QLabel("Load a CT and its segmentation, then plan.")
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        self.plan_button = QPushButton("Plan L5/S1")
        self.plan_button.setObjectName("primary")
        self.plan_button.setToolTip("Find the best C-arm views of the Kambin and safe windows on "
                                    "both sides and plan a needle (Settings: gauge, margin, "
                                    "variant)")
        self.plan_button.setEnabled(False)
        self.plan_button.clicked.connect(self.plan_requested)
        # The plan's warnings (a segmentation that disagrees with the CT's own bone first): red,
        # right under the status line, never only in the notes.
        self.warnings = QLabel("")
        self.warnings.setObjectName("planWarnings")
        self.warnings.setWordWrap(True)
        self.warnings.setTextFormat(Qt.TextFormat.PlainText)
        self.warnings.setVisible(False)

        # --- this view ---------------------------------------------------------------------------
        view_box = QGroupBox("This view")
        vl = QVBoxLayout(view_box)
        self.view_label = QLabel("—")
        self.view_label.setWordWrap(True)
        self.view_label.setToolTip(CARM_CONVENTION)
        vl.addWidget(self.view_label)
        # The sign convention, shown once (the same words as the report and the CLI).
        self.carm_legend = QLabel(f"C-arm: {CARM_CONVENTION_SHORT}; relative to the needle's side.")
        self.carm_legend.setObjectName("muted")
        self.carm_legend.setWordWrap(True)
        self.carm_legend.setToolTip(CARM_CONVENTION)
        vl.addWidget(self.carm_legend)
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.addWidget(self._muted("mm²"), 0, 0)
        for c, side in enumerate(SIDES, start=1):
            grid.addWidget(self._muted(side.capitalize(), Qt.AlignmentFlag.AlignRight), 0, c)
        self.area_labels: dict[tuple[str, str], QLabel] = {}
        for r, kind in enumerate(KINDS, start=1):
            name = QLabel(f"{_swatch(WINDOW_COLORS[kind])} {KIND_LABELS[kind]}")
            name.setTextFormat(Qt.TextFormat.RichText)
            grid.addWidget(name, r, 0)
            for c, side in enumerate(SIDES, start=1):
                value = QLabel("—")
                value.setObjectName(f"area_{side}_{kind}")
                value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                value.setMinimumWidth(56)
                font = value.font()
                font.setBold(True)
                font.setPointSizeF(font.pointSizeF() * 1.1)
                value.setFont(font)
                grid.addWidget(value, r, c)
                self.area_labels[(side, kind)] = value
        grid.setColumnStretch(0, 1)
        vl.addLayout(grid)
        self.live_note = self._muted("Areas appear once the plan is ready.")
        self.live_note.setWordWrap(True)
        vl.addWidget(self.live_note)
        self.posterior_button = QPushButton("Posterior (PA) view")
        self.posterior_button.clicked.connect(self.posterior_view_requested)
        vl.addWidget(self.posterior_button)

        # --- best views --------------------------------------------------------------------------
        best_box = QGroupBox("Best views (C-arm, prone patient)")
        bl = QGridLayout(best_box)
        bl.setVerticalSpacing(2)
        self.best_buttons: dict[tuple[str, str], QPushButton] = {}
        self.best_area_labels: dict[tuple[str, str], QLabel] = {}
        self.carm_labels: dict[tuple[str, str], QLabel] = {}
        row = 0
        for side in SIDES:
            title = QLabel(side.capitalize())
            title.setObjectName("caseTitle")
            bl.addWidget(title, row, 0, 1, 3)
            row += 1
            for kind in KINDS:
                name = QLabel(f"{_swatch(WINDOW_COLORS[kind])} {KIND_LABELS[kind]}")
                name.setTextFormat(Qt.TextFormat.RichText)
                area = QLabel("—")
                area.setObjectName(f"best_area_{side}_{kind}")
                button = QPushButton("View")
                button.setObjectName(f"best_{side}_{kind}")
                button.setEnabled(False)
                button.setToolTip(f"Turn the 3D view to the {side} {KIND_LABELS[kind]} window's "
                                  "best view (centre of the views within 90 % of the largest)")
                button.clicked.connect(lambda _=False, s=side, k=kind:
                                       self.best_view_requested.emit(s, k))
                carm = QLabel("")
                carm.setObjectName("muted")
                carm.setWordWrap(True)
                bl.addWidget(name, row, 0)
                bl.addWidget(area, row, 1)
                bl.addWidget(button, row, 2)
                bl.addWidget(carm, row + 1, 0, 1, 3)
                row += 2
                self.best_buttons[(side, kind)] = button
                self.best_area_labels[(side, kind)] = area
                self.carm_labels[(side, kind)] = carm
        bl.setColumnStretch(0, 1)

        # --- needle ------------------------------------------------------------------------------
        needle_box = QGroupBox("Needle")
        nl = QVBoxLayout(needle_box)
        chooser = QHBoxLayout()
        self.side_combo = QComboBox()
        for side in SIDES:
            self.side_combo.addItem(side.capitalize(), side)
        self.window_combo = QComboBox()
        for kind in KINDS:
            self.window_combo.addItem(f"{KIND_LABELS[kind]} window", kind)
        self.window_combo.setToolTip("Window the needle goes through (aimed at its deepest point)")
        chooser.addWidget(self.side_combo)
        chooser.addWidget(self.window_combo, 1)
        nl.addLayout(chooser)
        self.side_combo.currentIndexChanged.connect(self._on_side)
        self.window_combo.activated.connect(self._on_window)

        form = QFormLayout()
        form.setVerticalSpacing(3)
        self.needle_values: dict[str, QLabel] = {}
        for key, label in (("length", "Length:"), ("axial", "To axial plane:"),
                           ("sagittal", "To mid-sagittal:"), ("clearance", "Nerve clearance:"),
                           ("midline", "Skin entry:"), ("carm", "C-arm:"),
                           ("verdict", "")):
            value = QLabel("—")
            value.setObjectName(f"needle_{key}")
            value.setWordWrap(True)
            form.addRow(label, value)
            self.needle_values[key] = value
        nl.addLayout(form)

        nudge_title = self._muted(f"Move the tip ({NUDGE_STEP_MM:g} mm per click, as seen along "
                                  "the needle):")
        nudge_title.setWordWrap(True)
        nl.addWidget(nudge_title)
        arrows = QGridLayout()
        arrows.setSpacing(2)
        self.nudge_buttons: dict[str, QToolButton] = {}
        for key, text, r, c, dx, dy, tip in (
                ("up", "▲", 0, 1, 0.0, 1.0, "cranial"), ("down", "▼", 2, 1, 0.0, -1.0, "caudal"),
                ("left", "◀", 1, 0, -1.0, 0.0, "left on screen"),
                ("right", "▶", 1, 2, 1.0, 0.0, "right on screen")):
            button = QToolButton()
            button.setText(text)
            button.setObjectName(f"nudge_{key}")
            button.setToolTip(f"Move the needle tip {NUDGE_STEP_MM:g} mm {tip}")
            button.setAutoRepeat(True)
            button.setAutoRepeatDelay(400)
            button.setAutoRepeatInterval(250)
            button.setFixedSize(30, 26)
            button.clicked.connect(lambda _=False, x=dx, y=dy: self.nudge_requested.emit(
                self.needle_side, x * NUDGE_STEP_MM, y * NUDGE_STEP_MM))
            arrows.addWidget(button, r, c)
            self.nudge_buttons[key] = button
        self.pick_button = QPushButton("Pick tip in 3D")
        self.pick_button.setCheckable(True)
        self.pick_button.setToolTip("Click in the 3D view to put the needle tip there (on the "
                                    "plane through the tip, across the needle); Esc or click "
                                    "this button again to rotate the view")
        self.pick_button.toggled.connect(self.pick_mode_toggled)
        self.reset_button = QPushButton("Re-aim")
        self.reset_button.setToolTip("Aim the needle at the deepest point of its window again")
        self.reset_button.clicked.connect(lambda: self.reset_target_requested.emit(
            self.needle_side))
        self.along_button = QPushButton("View along needle")
        self.along_button.clicked.connect(lambda: self.view_along_needle_requested.emit(
            self.needle_side))
        side_buttons = QVBoxLayout()
        side_buttons.setSpacing(3)
        side_buttons.addWidget(self.pick_button)
        side_buttons.addWidget(self.reset_button)
        side_buttons.addWidget(self.along_button)
        nudge_row = QHBoxLayout()
        nudge_row.addLayout(arrows)
        nudge_row.addSpacing(8)
        nudge_row.addLayout(side_buttons, 1)
        nl.addLayout(nudge_row)
        self.target_note = self._muted("")
        self.target_note.setWordWrap(True)
        nl.addWidget(self.target_note)
        self.needle_controls = [self.side_combo, self.window_combo, self.pick_button,
                                self.reset_button, self.along_button,
                                *self.nudge_buttons.values()]

        self.inputs = self._muted("")
        self.inputs.setWordWrap(True)
        disclaimer = self._muted("Planning support for research; check every plan on the "
                                 "images. Not a certified medical device.")
        disclaimer.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        head = QHBoxLayout()
        head.addWidget(heading, 1)
        head.addWidget(self.plan_button)
        layout.addLayout(head)
        layout.addWidget(self.level_label)
        layout.addWidget(self.status)
        layout.addWidget(self.warnings)
        layout.addWidget(view_box)
        layout.addWidget(best_box)
        layout.addWidget(needle_box)
        layout.addWidget(self.inputs)
        layout.addStretch(1)
        layout.addWidget(disclaimer)
        self.set_plan(None)

    @staticmethod
    def _muted(text: str, align: Qt.AlignmentFlag | None = None) -> QLabel:
        label = QLabel(text)
        label.setObjectName("muted")
        if align is not None:
            label.setAlignment(align)
        label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        return label

    # --- state -----------------------------------------------------------------------------------
    @property
    def needle_side(self) -> str:
        return self.side_combo.currentData() or "left"

    def set_can_plan(self, can_plan: bool) -> None:
        self.plan_button.setEnabled(bool(can_plan))

    def set_busy(self, text: str) -> None:
        self.status.setText(text)

    def set_settings(self, settings: SettingsValues) -> None:
        self._settings = settings
        window = {"auto": "automatic", "kambin": "Kambin", "safe": "safe"}.get(
            settings.trajectory_window, settings.trajectory_window)
        self.inputs.setText(f"Inputs: {settings.needle_gauge} G needle, "
                            f"{settings.safety_margin_mm:.1f} mm nerve margin, "
                            f"{_VARIANT_TEXT.get(settings.variant, settings.variant)} windows, "
                            f"needle window {window}.")

    # --- plan ------------------------------------------------------------------------------------
    def _show_level(self, lines: list[str], look: str, tooltip: str = "") -> None:
        """The level box: ``lines[0]`` in bold, then one line each (plain text, escaped)."""
        text = "<br>".join([f"<b>{html.escape(lines[0], quote=False)}</b>"] + [
            html.escape(line, quote=False) for line in lines[1:]]) if lines else ""
        self.level_label.setText(text)
        self.level_label.setToolTip(tooltip)
        self.level_label.setStyleSheet(f"QLabel {{ {_LEVEL_STYLE[look]} {_LEVEL_BOX} }}")
        self.level_label.setVisible(bool(text))

    def _set_level(self, plan: Any) -> None:
        """Heading and level box for ``plan`` (None: no plan, no level named)."""
        level = plan_level(plan)
        if level is None:
            self.heading.setText(NO_PLAN_HEADING)
            self._show_level([], "established")
            return
        self.heading.setText(level.plan_title("plan"))
        how = level.counted_from[:1].upper() + level.counted_from[1:]
        if level.established:
            said = level.counted_from.lower() in level.headline.lower()  # instance labels
            self._show_level([f"{level.headline}."] + ([] if said else [f"{how}."]),
                             "established", "\n".join(level.reasons))
            return
        lines = [f"⚠ {level.headline}.", f"{how}."] + [f"• {r}" for r in level.reasons]
        advice = level.advice[:1].upper() + level.advice[1:] + "."
        self._show_level(lines, "moderate" if level.confidence == "moderate" else "low", advice)

    def set_refusal(self, lines: list[str]) -> None:
        """The plan step refused the scan (L5/S1 not established): no plan title; the refusal
        and, when known, where the scan ends (``lines`` from
        :func:`app.planning.refusal_level`: the message first). The status line keeps the
        message; the box adds what the message does not say."""
        if not lines:
            return
        self.heading.setText("No plan")
        self._show_level(["⚠ L5/S1 not established: no plan was made."]
                         + [f"• {line}" for line in lines[1:]], "low", lines[0])

    def set_plan(self, plan: Any) -> None:
        """Show a :class:`~spinect_core.planning.plan.Plan` (``None`` clears)."""
        self.plan = plan
        self.live = None
        self._set_level(plan)
        for label in self.area_labels.values():
            label.setText("—")
        for key, button in self.best_buttons.items():
            side, kind = key
            wp = None
            if plan is not None and side in plan.sides:
                wp = plan.sides[side].window(kind)
            found = wp is not None and wp.found and wp.plateau_view is not None
            button.setEnabled(found)
            if found:
                self.best_area_labels[key].setText(f"{wp.plateau_view.area_mm2:.1f} mm²")
                self.carm_labels[key].setText(carm_text(wp.plateau_view.carm, with_side=False))
                self.carm_labels[key].setToolTip(
                    f"local view: alpha {wp.plateau_view.alpha_deg:.1f}°, beta "
                    f"{wp.plateau_view.beta_deg:.1f}°; inscribed circle "
                    f"{wp.inscribed_diameter_mm:.1f} mm; usable area {wp.usable_area_mm2:.1f} mm²")
            else:
                self.best_area_labels[key].setText("—" if plan is None else "none")
                self.carm_labels[key].setText("" if wp is None else (wp.reason or "not found"))
        warnings = list(plan.warnings) if plan is not None else []
        self.warnings.setText("\n".join(f"⚠ {w[:1].upper()}{w[1:]}" for w in warnings))
        self.warnings.setVisible(bool(warnings))
        if plan is None:
            self.live_note.setText("Areas appear once the plan is ready.")
            self.status.setText("No plan yet." if self.plan_button.isEnabled() else
                                "Load a CT and its segmentation, then plan.")
        else:
            sides = [s for s in SIDES if s in plan.sides]
            found = sum(plan.sides[s].window(k).found for s in sides for k in KINDS)
            self.status.setText(f"Plan ready: {found} of {2 * len(sides)} windows found. "
                                "Rotate the view to see the windows; \"View\" turns to a best "
                                "view.")
            self.live_note.setText("Measuring…")
            first = next((s for s in sides if plan.sides[s].trajectory is not None),
                         sides[0] if sides else "left")
            self.side_combo.blockSignals(True)
            self.side_combo.setCurrentIndex(max(0, self.side_combo.findData(first)))
            self.side_combo.blockSignals(False)
            if self.last_direction is not None:
                self.view_label.setText(describe_direction(self.last_direction, self.needle_side))
        self._show_needle()

    # --- live windows ----------------------------------------------------------------------------
    def update_for_view(self, direction_lps: np.ndarray, side: str | None = None) -> None:
        """The camera moved (throttled): show its direction in C-arm words, "ipsilateral"
        meaning ``side`` (a best view's side) or else the needle's side chosen here; areas
        follow from the worker."""
        d = np.asarray(direction_lps, float)
        self.last_direction = d
        self.view_label.setText(describe_direction(d, side or self.needle_side))
        if self.plan is not None:
            self.live_note.setText("Measuring…")

    def set_live_windows(self, live: Any) -> None:
        """Fill the areas of the view measured (:class:`app.planning.LiveWindows`)."""
        self.live = live
        for (side, kind), label in self.area_labels.items():
            value = live.areas_mm2.get((side, kind))
            label.setText(_fmt_area(value) if value is not None else "—")
        self.live_note.setText(f"Rays every {live.pixel_mm:g} mm; measured in "
                               f"{live.compute_s:.1f} s.")

    def show_area(self, side: str, kind: str, area_mm2: float) -> None:
        """Show one area at once (e.g. the plan's value right after a best-view click)."""
        self.area_labels[(side, kind)].setText(_fmt_area(area_mm2))

    def displayed_area(self, side: str, kind: str) -> float | None:
        text = self.area_labels[(side, kind)].text()
        try:
            return float(text)
        except ValueError:
            return None

    # --- needle ----------------------------------------------------------------------------------
    def _on_side(self, _index: int) -> None:
        self._show_needle()
        if self.last_direction is not None:  # "ipsilateral" now means the other side
            self.view_label.setText(describe_direction(self.last_direction, self.needle_side))
        self.needle_side_changed.emit(self.needle_side)

    def _on_window(self, _index: int) -> None:
        self.needle_window_requested.emit(self.needle_side, self.window_combo.currentData())

    def set_needle_pending(self, side: str, text: str) -> None:
        if side == self.needle_side:
            self.target_note.setText(text)

    def set_needle(self, side: str, note: str = "", *, plan: Any = None) -> None:
        """The side's trajectory changed: in ``plan``, the new plan that replaced the one shown
        (plans are never edited in place), or in ``self.plan`` when ``None``."""
        if plan is not None:
            self.plan = plan
        if side == self.needle_side:
            self._show_needle(note)

    def _show_needle(self, note: str = "") -> None:
        plan = self.plan
        side = self.needle_side
        sp = plan.sides.get(side) if plan is not None else None
        traj = sp.trajectory if sp is not None else None
        for kind in KINDS:
            item = self.window_combo.model().item(self.window_combo.findData(kind))
            if item is not None:
                item.setEnabled(sp is not None and sp.window(kind).found)
        enabled = traj is not None
        for widget in self.needle_controls:
            widget.setEnabled(enabled or (widget in (self.side_combo, self.window_combo)
                                          and sp is not None))
        if not enabled and self.pick_button.isChecked():
            self.pick_button.setChecked(False)
        if sp is not None and sp.trajectory_window is not None:
            self.window_combo.blockSignals(True)
            self.window_combo.setCurrentIndex(self.window_combo.findData(sp.trajectory_window))
            self.window_combo.blockSignals(False)
        v = self.needle_values
        if traj is None:
            for key, label in v.items():
                label.setText("" if key == "verdict" else "—")
            if sp is not None:
                v["verdict"].setText(sp.trajectory_reason or "No needle on this side.")
            self.target_note.setText(note)
            return
        from spinect_core.planning.carm import carm_angles

        v["length"].setText(f"{traj.length_mm:.1f} mm")
        v["axial"].setText(f"{traj.angle_to_axial_deg:.1f}°")
        v["sagittal"].setText(f"{traj.angle_to_sagittal_deg:.1f}°")
        clear = traj.min_nerve_clearance_mm
        v["clearance"].setText(f"{clear:.1f} mm" if math.isfinite(clear) else "—")
        mid = traj.skin_entry_from_midline_mm
        v["midline"].setText(f"{mid:.0f} mm from the midline" if math.isfinite(mid) else "—")
        v["carm"].setText(carm_text(carm_angles(traj.direction_lps, side)))
        if traj.safe:
            # "Clear of nerves and dura" never without the level's confidence when the level is
            # not established (a wrong-level needle is clear of the wrong nerves).
            level = plan_level(plan)
            where = ("" if level is None or level.established
                     else html.escape(f" at {level.level_name}", quote=False))
            v["verdict"].setText(f"<span style='color:#5cb85c;'>✓ clear of nerves and dura"
                                 f"{where}</span>")
        else:
            v["verdict"].setText(f"<span style='color:#e0645c;'>✗ not safe: "
                                 f"{traj.reason or ', '.join(traj.crosses)}</span>")
        v["verdict"].setTextFormat(Qt.TextFormat.RichText)
        if not note:
            note = ("Tip aimed at the window's deepest point." if traj.target_source == "window"
                    else "Tip placed by hand.")
        self.target_note.setText(note)

    def set_pick_checked(self, checked: bool) -> None:
        self.pick_button.setChecked(bool(checked))

