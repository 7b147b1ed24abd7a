"""The main window: start screen, then data/steps (left), 3D + 2D views (centre), planning (right).

Planning in the window: the plan step fills the right panel, draws the needles and turns the 3D
view to the best view of the first needle's window. While the operator rotates, the window areas
of the exact current view are measured in the background (latest request wins) and the window
outlines are drawn over the scene. At a best view the areas are measured with the plan's own ray
spacing, so they equal the plan's numbers.

The window binds widgets to :class:`~app.controller.SessionController` signals and forwards user
actions to it; it computes nothing itself. What it shows that is no data (the best view snapped
to, target picking) is part of the app's state too (:class:`app.state.ViewState`, in the
controller's store). All modal interaction goes through :attr:`dialogs` (the
:class:`app.dialogs.Dialogs` protocol: replaceable in tests and unattended runs); every setting
is read from the one :class:`~app.settings.AppSettings`.

Label editing (issue 13): the tools bar above the slice views and the Tools menu's label entries
drive :class:`app.label_editing.LabelEditing` (brush and eraser, "Re-plan with the edited
labels"); an export writes the edited label map and the planning session beside its files,
File > Open planning session reopens them, and File > Export as training case writes the
reviewed case (CT, corrected labels, 3D Slicer segmentation) into a site folder under a
generated, non-identifying name. Edit > Undo / Redo (Ctrl+Z, Ctrl+Shift+Z) act on the label
strokes while a label tool is on and has one to undo or redo, else on the root corrections; the
items say which ("Undo label stroke", "Undo root correction").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (QApplication, QMainWindow, QScrollArea, QSplitter,
                               QStackedWidget, QTabWidget, QVBoxLayout, QWidget)

from spinect_core.progress import report

from app import export as export_logic
from app import planning
from app.controller import STEPS, SessionController
from app.dialogs import LABEL_FILTER, Dialogs, QtDialogs
from app.errors import ErrorReport, describe_error
from app.label_editing import LabelEditing, training_labels
from app.settings import AppSettings
from app.state import AppState
from app.widgets.case_panel import CasePanel
from app.widgets.drop_zone import StartScreen, paths_from_mime
from app.widgets.needle_planes import NeedlePlanesView
from app.widgets.drr_view import DRRView
from app.widgets.label_tools import LabelToolsBar
from app.widgets.root_overlay import install_root_editing
from app.widgets.shortcuts import install_slice_viewer
from app.widgets.planning_panel import PlanningPanel, carm_text
from app.widgets.progress_panel import ProgressPanel
from app.widgets.slice_views import SliceViewsPanel
from app.widgets.view3d import View3D

__all__ = ["MainWindow"]

APP_TITLE = "SPINECT planner"
#: Magnification of the 3D view at a best view (centred on the side's foramen).
BEST_VIEW_ZOOM = 1.6
#: Views closer than this to a best view count as that view (rad).
_SNAP_RAD = 1e-4
#: File filter of File > Open planning session.
SESSION_FILTER = "Planning session (planning_session.json *.json);;All files (*)"


class MainWindow(QMainWindow):
    """SPINECT planner's window.

    Parameters
    ----------
    settings : AppSettings
        The one settings source (the controller and the dialogs read the same object).
    dialogs : Dialogs, optional
        Defaults to real Qt dialogs parented to this window (:class:`~app.dialogs.QtDialogs`).

    Signals
    -------
    surfaces_shown()
        The 3D view rendered a new set of surfaces (tests, automation).
    plan_shown()
        A new plan is in the panel and the 3D view.
    live_windows_shown(object)
        The window areas and outlines of a view are displayed (``planning.LiveWindows``).
    """

    surfaces_shown = Signal()
    plan_shown = Signal()
    live_windows_shown = Signal(object)

    def __init__(self, settings: AppSettings, dialogs: Dialogs | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.dialogs: Dialogs = dialogs if dialogs is not None else QtDialogs(self)
        self.controller = SessionController(settings, self.dialogs, self)
        #: Exit code of an unattended run and its driver (:mod:`app.main`).
        self.exit_code = 0
        self.automation: QObject | None = None
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.resize(1500, 920)

        # --- widgets ---------------------------------------------------------------------------
        self.start_screen = StartScreen()
        self.case_panel = CasePanel(STEPS)
        self.view3d = View3D()
        self.slice_views = SliceViewsPanel()
        self.label_tools = LabelToolsBar()
        self.planning_panel = PlanningPanel()
        self.needle_planes = NeedlePlanesView()
        self.drr_view = DRRView()
        self.progress = ProgressPanel()
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.setDocumentMode(True)
        slices_page = QWidget()
        slices_layout = QVBoxLayout(slices_page)
        slices_layout.setContentsMargins(0, 0, 0, 0)
        slices_layout.setSpacing(2)
        slices_layout.addWidget(self.label_tools)
        slices_layout.addWidget(self.slice_views, 1)
        self.bottom_tabs.addTab(slices_page, "CT slices")
        self.bottom_tabs.addTab(self.needle_planes, "Planes along the needle")
        self.bottom_tabs.addTab(self.drr_view, "Fluoroscopy (DRR)")
        self.bottom_tabs.setTabToolTip(
            self.bottom_tabs.indexOf(self.drr_view),
            "Simulated C-arm image of this CT at the 3D view's angle (follows the view)")

        left = QScrollArea()
        left.setWidget(self.case_panel)
        left.setWidgetResizable(True)
        left.setMinimumWidth(240)
        right = QScrollArea()
        right.setWidget(self.planning_panel)
        right.setWidgetResizable(True)
        right.setMinimumWidth(330)
        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(self.view3d)
        centre.addWidget(self.bottom_tabs)
        centre.setStretchFactor(0, 3)
        centre.setStretchFactor(1, 2)
        centre.setSizes([560, 330])
        self.workspace = QSplitter(Qt.Orientation.Horizontal)
        self.workspace.addWidget(left)
        self.workspace.addWidget(centre)
        self.workspace.addWidget(right)
        self.workspace.setStretchFactor(1, 1)
        self.workspace.setSizes([250, 870, 380])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.start_screen)
        self.stack.addWidget(self.workspace)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.progress)
        self.setCentralWidget(body)
        #: The label brush and eraser (bound to the controller, the slice views and the bar).
        self.label_editing: LabelEditing | None = None
        self._build_menus()
        self._connect()
        # Help > Keyboard shortcuts and the slice views' crosshair in the 3D view (the slice
        # viewer's own wiring, app.widgets.shortcuts).
        install_slice_viewer(self)
        # The plan's roots in the slice views, dragged and undone there (issue 13).
        install_root_editing(self.controller, self.slice_views)
        # The label map's brush and eraser in the slice views (issue 13).
        self.label_editing = LabelEditing(self.controller, self.slice_views, self.label_tools,
                                          parent=self)
        self.label_editing.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.label_editing.changed.connect(self._update_actions)
        self._refresh_recent()
        self.planning_panel.set_settings(settings.snapshot())
        self.statusBar().showMessage("Ready. Works offline; no data leaves this computer.")

    # --- construction ----------------------------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.act_open_file = self._action(file_menu, "&Open file…", self.choose_file,
                                          QKeySequence.StandardKey.Open)
        self.act_open_folder = self._action(file_menu, "Open &DICOM folder…", self.choose_folder,
                                            QKeySequence("Ctrl+Shift+O"))
        self.act_open_pacs = self._action(file_menu, "Open from &PACS…", self.open_from_pacs)
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        self.act_open_seg = self._action(file_menu, "Open &segmentation…",
                                         self.choose_segmentation)
        self.act_segment = self._action(file_menu, "Se&gment", self.controller.segment,
                                        QKeySequence("Ctrl+G"))
        self.act_plan = self._action(file_menu, "&Plan L5/S1", self.plan, QKeySequence("Ctrl+P"))
        self.act_export = self._action(file_menu, "&Export…", self.export,
                                       QKeySequence("Ctrl+E"))
        self.act_export_training = self._action(file_menu, "Export as &training case…",
                                                self.export_training_case)
        self.act_open_session = self._action(file_menu, "Open planning se&ssion…",
                                             self.open_planning_session)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit_menu = bar.addMenu("&Edit")
        # Window-wide Ctrl+Z / Ctrl+Shift+Z: the menu's shortcut takes the key before a slice
        # view's own root undo sees it, so one place decides what is undone (undo()).
        self.act_undo = self._action(edit_menu, "&Undo", self.undo,
                                     QKeySequence.StandardKey.Undo)
        self.act_redo = self._action(edit_menu, "&Redo", self.redo)
        self.act_redo.setShortcuts(_redo_keys())
        view_menu = bar.addMenu("&View")
        self._action(view_menu, "&Posterior (PA) view", self.reset_view, QKeySequence("Ctrl+R"))
        self._action(view_menu, "&Bone window", lambda: self.slice_views.set_preset("bone"))
        self._action(view_menu, "&Soft-tissue window", lambda: self.slice_views.set_preset("soft"))
        tools = bar.addMenu("&Tools")
        self._action(tools, "&Settings…", self.edit_settings, QKeySequence("Ctrl+,"))
        self._action(tools, "PACS &nodes…", self.edit_pacs_nodes)
        labels = tools.addMenu("&Label editing")
        # Single keys, as 3D Slicer's Segment Editor; the Help dialog lists them from here.
        self.act_brush = self._action(labels, "Label &brush", lambda: self._toggle_tool("brush"),
                                      QKeySequence("B"))
        self.act_eraser = self._action(labels, "Label &eraser",
                                       lambda: self._toggle_tool("erase"), QKeySequence("E"))
        self.act_smaller = self._action(labels, "S&maller brush",
                                        lambda: self._step_radius(-1), QKeySequence("["))
        self.act_larger = self._action(labels, "&Larger brush", lambda: self._step_radius(1),
                                       QKeySequence("]"))
        labels.addSeparator()
        self.act_label_undo = self._action(labels, "&Undo label edit",
                                           lambda: self.label_editing and self.label_editing.undo())
        self.act_label_redo = self._action(labels, "&Redo label edit",
                                           lambda: self.label_editing and self.label_editing.redo())
        self.act_replan_labels = self._action(labels, "Re-&plan with the edited labels",
                                              self.replan_with_edited_labels)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About SPINECT planner", self.about)
        self._update_actions()

    def _connect(self) -> None:
        c = self.controller
        c.store.changed.connect(self._on_state_changed)
        c.ct_changed.connect(self._on_ct_changed)
        c.labels_changed.connect(self._on_labels_changed)
        c.meshes_changed.connect(self._on_meshes_changed)
        c.notes_changed.connect(lambda: self.case_panel.set_notes(c.session.notes))
        c.step_changed.connect(self.case_panel.set_step)
        c.busy_changed.connect(self._on_busy_changed)
        c.error.connect(self.show_error)
        c.runner.started.connect(self.progress.start)
        c.runner.progress.connect(self.progress.set_progress)
        self.progress.cancel_requested.connect(c.cancel)
        self.start_screen.open_file_requested.connect(self.choose_file)
        self.start_screen.open_folder_requested.connect(self.choose_folder)
        self.start_screen.recent_requested.connect(self.open_path)
        self.case_panel.segment_requested.connect(c.segment)
        self.case_panel.open_segmentation_requested.connect(self.choose_segmentation)
        self.case_panel.export_requested.connect(self.export)
        self.case_panel.structures.visibility_changed.connect(self._on_visibility)
        self.case_panel.structures.opacity_changed.connect(self.view3d.set_opacity)
        self.view3d.view_direction_changed.connect(self.on_view_direction_changed)
        self.view3d.target_picked.connect(self._on_target_picked)
        c.plan_changed.connect(self._on_plan_changed)
        c.trajectory_changed.connect(self._on_trajectory_changed)
        c.live_windows_ready.connect(self._on_live_windows)
        c.live_windows_failed.connect(self._on_live_failed)
        c.step_changed.connect(self._on_step)
        self.case_panel.plan_requested.connect(self.plan)
        p = self.planning_panel
        p.plan_requested.connect(self.plan)
        p.posterior_view_requested.connect(self.reset_view)
        p.best_view_requested.connect(self.show_best_view)
        p.needle_side_changed.connect(self._on_needle_side)
        p.needle_window_requested.connect(self.choose_needle_window)
        p.nudge_requested.connect(self.nudge_target)
        p.pick_mode_toggled.connect(self.set_picking)
        p.reset_target_requested.connect(
            lambda side: self.choose_needle_window(side, self.controller.needle_window(side)))
        p.view_along_needle_requested.connect(self.view_along_needle)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self,
                  activated=lambda: p.set_pick_checked(False))
        QApplication.instance().aboutToQuit.connect(c.temp.cleanup)

    # --- opening ---------------------------------------------------------------------------------
    def open_path(self, path: str | Path) -> bool:
        """Open a DICOM folder, zip or image file (drop, menu, recent, automation)."""
        if self.controller.busy:
            self.statusBar().showMessage("Busy: wait for the current step or cancel it", 5000)
            return False
        p = Path(path)
        self.settings.last_open_dir = str(p.parent if p.is_file() else p)
        return self.controller.open_path(p)

    def open_segmentation(self, path: str | Path) -> bool:
        """Use a label map file as the segmentation of the loaded CT."""
        if self.controller.session.ct is None:
            self.show_error(ErrorReport(title="No CT loaded", message="Open a CT first.",
                                        hint="The segmentation is placed on the CT's grid."))
            return False
        return self.controller.open_segmentation(path)

    def choose_file(self) -> None:
        path = self.dialogs.open_file("Open CT", self.settings.last_open_dir)
        if path:
            self.open_path(path)

    def choose_folder(self) -> None:
        path = self.dialogs.open_folder("Open DICOM folder", self.settings.last_open_dir)
        if path:
            self.open_path(path)

    def open_from_pacs(self) -> bool:
        """File > Open from PACS: search, choose a series, retrieve it (progress, Cancel) and
        open it like a dropped folder."""
        if self.controller.busy:
            self.statusBar().showMessage("Busy: wait for the current step or cancel it", 5000)
            return False
        choice = self.dialogs.open_from_pacs(self.settings)
        if choice is None:
            return False
        return self.controller.open_from_pacs(choice.client, choice.study_uid, choice.series_uid,
                                              move=choice.node.move)

    def edit_pacs_nodes(self) -> None:
        if self.dialogs.edit_pacs_nodes(self.settings):
            self.statusBar().showMessage("PACS nodes saved", 5000)

    def choose_segmentation(self) -> None:
        path = self.dialogs.open_file("Open segmentation", self.settings.last_open_dir,
                                      LABEL_FILTER)
        if path:
            self.open_segmentation(path)

    def _refresh_recent(self) -> None:
        recent = self.settings.recent_files
        self.recent_menu.clear()
        for p in recent:
            action = self.recent_menu.addAction(p)
            action.triggered.connect(lambda _=False, p=p: self.open_path(p))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._clear_recent)
        self.recent_menu.setEnabled(bool(recent))
        self.start_screen.set_recent(recent)

    def _clear_recent(self) -> None:
        self.settings.clear_recent()
        self._refresh_recent()

    # --- drag and drop ---------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if any(p.exists() for p in paths_from_mime(event.mimeData())):
            event.acceptProposedAction()
            self.start_screen.drop_zone.set_active(True)
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.start_screen.drop_zone.set_active(False)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.start_screen.drop_zone.set_active(False)
        paths = [p for p in paths_from_mime(event.mimeData()) if p.exists()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        if len(paths) > 1:
            self.statusBar().showMessage(f"Several items dropped; opening {paths[0].name}", 6000)
        self.open_path(paths[0])

    # --- session -> widgets ----------------------------------------------------------------------
    def _on_ct_changed(self) -> None:
        session = self.controller.session
        ct = session.ct
        self.stack.setCurrentWidget(self.workspace)
        self.case_panel.set_case(session.case_title(), ct)
        self.slice_views.set_volume(ct)
        self.drr_view.set_ct(ct)
        self.view3d.clear_meshes(render=False)
        self.view3d.set_volume_box(_volume_bounds(ct) if ct is not None else None)
        self.view3d.show_hint("CT loaded: segment it, or open an existing segmentation")
        self.setWindowTitle(f"{session.case_title()} — {APP_TITLE}")
        if session.source_path is not None:
            self.settings.add_recent(session.source_path)
            self._refresh_recent()
        self.statusBar().showMessage("CT loaded", 5000)
        self._update_actions()

    def _on_labels_changed(self) -> None:
        session = self.controller.session
        self.slice_views.set_labels(session.labels, session.table)
        self._update_actions()

    def _on_meshes_changed(self) -> None:
        meshes = self.controller.session.meshes
        self.case_panel.structures.set_structures(
            [n for n, m in meshes.items() if not m.is_empty])
        if meshes:
            self.view3d.set_volume_box(None)
            self.view3d.set_meshes(meshes)
            self.statusBar().showMessage(f"Surfaces ready: {', '.join(meshes)}", 8000)
            self.surfaces_shown.emit()
        else:
            self.view3d.clear_meshes()
        self._update_actions()

    def _on_visibility(self, name: str, visible: bool) -> None:
        self.view3d.set_visible(name, visible)
        self.slice_views.set_structure_visible(name, visible)

    def _on_busy_changed(self, busy: bool) -> None:
        if not busy:
            self.progress.stop()
        self._update_actions()

    def _update_actions(self) -> None:
        session = self.controller.session
        busy = self.controller.busy
        self.act_open_file.setEnabled(not busy)
        self.act_open_folder.setEnabled(not busy)
        self.act_open_pacs.setEnabled(not busy)
        self.act_open_seg.setEnabled(session.has_ct and not busy)
        self.act_segment.setEnabled(session.has_ct and not busy)
        self.act_plan.setEnabled(session.has_labels and not busy)
        self.act_export.setEnabled(session.has_labels and not busy)
        self.act_export_training.setEnabled(session.has_labels and not busy)
        self.act_open_session.setEnabled(session.has_labels and not busy)
        editing = self.label_editing
        for act in (self.act_brush, self.act_eraser, self.act_smaller, self.act_larger):
            act.setEnabled(session.has_labels)
        self.act_label_undo.setEnabled(editing is not None and editing.editor is not None
                                       and editing.editor.can_undo)
        self.act_label_redo.setEnabled(editing is not None and editing.editor is not None
                                       and editing.editor.can_redo)
        self.act_replan_labels.setEnabled(editing is not None and editing.pending and not busy)
        # Edit > Undo / Redo name what they act on (undo() and redo() decide the same way).
        roots = session.engine is not None
        for act, verb, labels in ((self.act_undo, "Undo", editing is not None
                                   and editing.owns_undo),
                                  (self.act_redo, "Redo", editing is not None
                                   and editing.owns_redo)):
            act.setText(f"&{verb} label stroke" if labels
                        else f"&{verb} root correction" if roots else f"&{verb}")
            act.setEnabled(labels or roots)
        self.label_tools.replan_button.setEnabled(not busy)
        self.planning_panel.set_can_plan(session.has_labels and not busy)
        self.case_panel.set_enabled_actions(has_ct=session.has_ct,
                                            has_labels=session.has_labels, busy=busy)

    def show_error(self, report: ErrorReport) -> None:
        """Errors as a dialog; a cancellation only in the status bar."""
        if report.cancelled:
            self.statusBar().showMessage(f"{report.message}. {report.hint}", 8000)
            return
        self.statusBar().showMessage(f"{report.title}: {report.message}", 10000)
        self.dialogs.error(report)

    # --- 3D view and planning hooks --------------------------------------------------------------
    def reset_view(self) -> None:
        """Posterior (PA) view with the head up: the prone patient seen from the operator."""
        from app.camera import POSTERIOR_VIEW

        self.view3d.set_view_direction(POSTERIOR_VIEW)

    def on_view_direction_changed(self, direction_lps: np.ndarray) -> None:
        """Throttled camera hook: measure the windows of exactly this view in the background.

        At a best view (the camera was turned there and not moved since) the plan's exact
        direction and ray spacing are used, so the areas equal the plan's.
        """
        d = np.asarray(direction_lps, float)
        d = d / np.linalg.norm(d)
        pixel = planning.LIVE_PIXEL_MM
        snapped = self.controller.store.view.snapped
        if snapped is not None:
            if float(np.arccos(np.clip(d @ snapped[0], -1.0, 1.0))) < _SNAP_RAD:
                d, pixel = snapped[0], planning.SNAPPED_PIXEL_MM
            else:
                snapped = None
                self.controller.store.replace_view(snapped=None)
        # At a best view, "ipsilateral" is that view's side (the words of the best-view list).
        side = snapped[1] if snapped is not None else None
        self.planning_panel.update_for_view(d, side)
        self._update_drr(d, side)
        if not self.controller.session.has_plan:
            return
        self._request_live(d, pixel)

    def _update_drr(self, d: np.ndarray, side: str | None = None) -> None:
        """The fluoroscopy view follows the view; its central ray passes through the foramen of
        the side named (or the needle's side) once there is a plan, else the CT's centre."""
        session = self.controller.session
        if session.ct is None:
            return
        side = side or self.planning_panel.needle_side
        landmarks = session.engine.anatomy.sides.get(side) if session.engine else None
        iso = getattr(landmarks, "foramen_centre_lps", None)
        if iso is None:
            iso = _volume_bounds(session.ct).mean(axis=0)
        self.drr_view.set_view(d, iso, side)

    def _request_live(self, direction: np.ndarray, pixel_mm: float) -> None:
        key = (tuple(np.round(direction, 12)), float(pixel_mm))
        if key == self.controller.store.view.live_key:
            return  # this exact view is already measured or being measured
        self.controller.store.replace_view(live_key=key)
        self.controller.request_live_windows(direction, pixel_mm)

    def _on_live_windows(self, live) -> None:
        if not self.controller.session.has_plan:
            return
        self.planning_panel.set_live_windows(live)
        self.view3d.set_window_outlines(live.outlines_lps)
        self.drr_view.set_outlines(live.outlines_lps)
        self.live_windows_shown.emit(live)

    def _on_live_failed(self, report: ErrorReport) -> None:
        self.controller.store.replace_view(live_key=None)
        self.planning_panel.live_note.setText(f"Could not measure this view: {report.message}")

    # --- planning --------------------------------------------------------------------------------
    def plan(self) -> bool:
        """Plan L5/S1 on the current segmentation (background, progress + Cancel)."""
        if self.controller.busy:
            self.statusBar().showMessage("Busy: wait for the current step or cancel it", 5000)
            return False
        if not self.controller.session.has_labels:
            self.show_error(ErrorReport(title="No segmentation",
                                        message="Planning needs a segmentation of the CT.",
                                        hint="Segment the CT or open a segmentation first."))
            return False
        self.controller.refresh_settings()
        if self.label_editing is not None and self.label_editing.pending:
            return self.label_editing.replan()  # the plan must use the labels as edited
        return self.controller.plan()

    # --- label editing ---------------------------------------------------------------------------
    def _toggle_tool(self, tool: str) -> None:
        if self.label_editing is None:
            return
        self.label_editing.toggle_tool(tool)
        if self.label_editing.tool is not None:
            self.bottom_tabs.setCurrentIndex(0)  # the slice views, where the tool paints
            self.statusBar().showMessage(
                f"Label {'brush' if tool == 'brush' else 'eraser'}: left drag in a slice view "
                f"({self.label_editing.label}, {self.label_editing.radius_mm:g} mm); "
                f"{'B' if tool == 'brush' else 'E'} again ends it", 8000)

    def _step_radius(self, steps: int) -> None:
        if self.label_editing is not None:
            self.label_editing.step_radius(steps)
            self.statusBar().showMessage(f"Brush radius {self.label_editing.radius_mm:g} mm",
                                         3000)

    def undo(self) -> bool:
        """Edit > Undo (Ctrl+Z): the last label stroke while a label tool is on and has one
        (:attr:`LabelEditing.owns_undo`), else the last root correction (in the background);
        False when neither can be undone."""
        editing = self.label_editing
        if editing is not None and editing.owns_undo:
            return editing.undo()
        return self.controller.undo_root_edit()

    def redo(self) -> bool:
        """Edit > Redo (Ctrl+Shift+Z): as :meth:`undo`, the other way."""
        editing = self.label_editing
        if editing is not None and editing.owns_redo:
            return editing.redo()
        return self.controller.redo_root_edit()

    def replan_with_edited_labels(self) -> bool:
        """Surfaces and plan again on the label map as the operator edited it."""
        if self.label_editing is None or not self.label_editing.pending:
            return False
        self.controller.refresh_settings()
        return self.label_editing.replan()

    def open_planning_session(self) -> bool:
        path = self.dialogs.open_file("Open planning session",
                                      self.settings.last_export_dir or self.settings.last_open_dir,
                                      SESSION_FILTER)
        return bool(path) and self.open_planning_session_file(path)

    def open_planning_session_file(self, path: str | Path) -> bool:
        """Reopen a planning session saved beside an export: its label edits (the edited map,
        one undo step; re-plan to use it) and its root corrections (applied to the current plan
        in the background). The loaded CT must be the session's."""
        from spinect_core.planning.session_file import load_session

        if self.label_editing is None or self.controller.busy:
            return False
        try:
            labels = self.label_editing.restore(path)
            saved = load_session(path)
        except Exception as exc:  # noqa: BLE001 - shown to the user, nothing changed
            self.show_error(describe_error(exc, action="Opening the planning session"))
            return False
        done = ["label edits"] if labels else []
        if saved.roots:
            if self.controller.session.has_plan and self.controller.open_root_session(path):
                done.append("root corrections")
            else:
                self.statusBar().showMessage("The session's root corrections apply to a plan: "
                                             "plan L5/S1, then open the session again", 10000)
                return labels
        if labels and self.controller.session.has_plan:
            done.append("re-plan with the edited labels to use them")
        self.statusBar().showMessage(f"Planning session opened: {', '.join(done) or 'no edits'}",
                                     10000)
        return True

    def export_training_case(self) -> Path | None:
        """File > Export as training case: ask for the site's training folder, then write the
        case (see :meth:`export_training_case_to`)."""
        if self.controller.busy:
            self.statusBar().showMessage("Busy: wait for the current step or cancel it", 5000)
            return None
        if not self.controller.session.has_labels:
            self.show_error(ErrorReport(title="No segmentation",
                                        message="A training case needs the CT's labels.",
                                        hint="Segment the CT or open a segmentation first."))
            return None
        site = self.dialogs.open_folder("Export as training case: the site's training folder",
                                        self.settings.last_export_dir or str(Path.home()))
        return self.export_training_case_to(site) if site else None

    def export_training_case_to(self, site_dir: str | Path) -> Path | None:
        """Write the reviewed case into ``site_dir`` in the background (progress, Cancel): the
        CT, the corrected labels (the edited label map; with root corrections, the plan's labels
        with the corrected roots drawn in), their table and a 3D Slicer ``.seg.nrrd``, under a
        generated case name (:func:`spinect_core.training.case_export.export_training_case`:
        nothing of the patient in any name). Returns the case folder."""
        from spinect_core.training.case_export import export_training_case

        session = self.controller.session
        if session.ct is None:
            return None
        try:
            chosen = training_labels(self.controller, self.label_editing)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.show_error(describe_error(exc, action="Export as training case"))
            return None
        ct, site = session.ct, Path(site_dir)

        def job(progress):
            report(progress, 0.0, "writing the CT, the labels and the 3D Slicer segmentation")
            case = export_training_case(ct, chosen.labels, chosen.table, site,
                                        source="operator-reviewed", edited=list(chosen.edited))
            report(progress, 1.0, "training case written")
            return case

        try:
            case = self.controller.run_and_wait("Exporting the training case", job)
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app stays usable
            self.show_error(describe_error(exc, action="Export as training case"))
            return None
        edited = ", ".join(chosen.edited) or "nothing edited"
        note = f"; {chosen.note}" if chosen.note else ""
        self.statusBar().showMessage(f"Training case {case.name} written to the site folder "
                                     f"({edited}){note}", 12000)
        return case.folder

    def _on_step(self, key: str, status: str) -> None:
        if key != "plan":
            return
        if status == "running":
            self.planning_panel.set_busy("Planning: finding the best views of both windows on "
                                         "both sides…")
        elif status in ("failed", "cancelled"):
            report = self.controller.last_error
            text = report.message if report is not None else status
            self.planning_panel.set_busy(f"Planning {status}: {text}")
            # A refusal (L5/S1 not established): no plan title, and where the scan ends.
            self.planning_panel.set_refusal(list(self.controller.session.plan_refusal))

    def _on_plan_changed(self) -> None:
        session = self.controller.session
        plan = session.plan if session.has_plan else None
        self.controller.store.replace_view(snapped=None, live_key=None)
        self.planning_panel.set_pick_checked(False)
        self.planning_panel.set_plan(plan)
        self.view3d.set_window_outlines(None)
        self.drr_view.set_outlines(None)
        if self.planning_panel.last_direction is not None:
            self._update_drr(self.planning_panel.last_direction)  # the plan's foramen centre
        self._show_needles()
        self._show_planes()
        self._update_actions()
        if plan is None:
            return
        side = self.planning_panel.needle_side
        sp = plan.sides.get(side)
        kind = sp.trajectory_window if sp is not None else None
        if kind is None and sp is not None:
            kind = next((k for k in planning.KINDS if sp.window(k).found), None)
        if kind is None or not self.show_best_view(side, kind):
            self._request_live(self.view3d.view_direction(), planning.LIVE_PIXEL_MM)
        if session.planes:
            self.bottom_tabs.setCurrentWidget(self.needle_planes)
        found = [f"{s} {planning.KIND_LABELS[k]}" for s, p in plan.sides.items()
                 for k in planning.KINDS if p.window(k).found]
        level = planning.plan_level(plan)
        self.statusBar().showMessage(f"Plan ready{level.qualifier()}: "
                                     f"{', '.join(found) or 'no windows found'}", 10000)
        self.plan_shown.emit()

    def show_best_view(self, side: str, kind: str) -> bool:
        """Turn the 3D view to the plateau (best) view of ``side``'s ``kind`` window."""
        session = self.controller.session
        plan = session.plan
        if plan is None or side not in plan.sides:
            return False
        wp = plan.sides[side].window(kind)
        if not wp.found or wp.plateau_view is None:
            return False
        d = np.asarray(wp.plateau_view.view_direction_lps, float)
        d = d / np.linalg.norm(d)
        landmarks = session.engine.anatomy.sides.get(side) if session.engine else None
        focal = getattr(landmarks, "foramen_centre_lps", None)
        self.controller.store.replace_view(snapped=(d, side, kind))
        self.view3d.set_view_direction(d, focal_lps_mm=focal, zoom=BEST_VIEW_ZOOM)
        self.planning_panel.update_for_view(d, side)
        self._update_drr(d, side)
        self.planning_panel.show_area(side, kind, wp.plateau_view.area_mm2)
        self._request_live(d, planning.SNAPPED_PIXEL_MM)
        self.statusBar().showMessage(
            f"{side.capitalize()} {planning.KIND_LABELS[kind]} best view: "
            f"{wp.plateau_view.area_mm2:.1f} mm², C-arm {carm_text(wp.plateau_view.carm)}", 10000)
        return True

    def view_along_needle(self, side: str) -> None:
        plan = self.controller.session.plan
        traj = plan.sides[side].trajectory if plan is not None and side in plan.sides else None
        if traj is not None:
            self.view3d.set_view_direction(traj.direction_lps, focal_lps_mm=traj.target_lps_mm,
                                           zoom=BEST_VIEW_ZOOM)

    def _show_needles(self) -> None:
        plan = self.controller.session.plan
        needles = {}
        if plan is not None:
            needles = {side: (sp.trajectory.entry_lps_mm, sp.trajectory.target_lps_mm)
                       for side, sp in plan.sides.items() if sp.trajectory is not None}
        self.view3d.set_needles(needles, active=self.planning_panel.needle_side)
        self.drr_view.set_needles(needles)

    def _show_planes(self) -> None:
        side = self.planning_panel.needle_side
        planes = self.controller.session.planes.get(side)
        self.needle_planes.set_planes(planes, side=side if self.controller.session.plan else "")

    def _on_needle_side(self, side: str) -> None:
        if (self.planning_panel.last_direction is not None
                and self.controller.store.view.snapped is None):
            self._update_drr(self.planning_panel.last_direction)  # words and isocentre follow
        self._show_needles()
        self._show_planes()
        self._update_pick_plane()

    def choose_needle_window(self, side: str, kind: str | None) -> bool:
        if kind is None or not self.controller.choose_needle_window(side, kind):
            return False
        self.planning_panel.set_needle_pending(
            side, f"Planning the needle through the {planning.KIND_LABELS[kind]} window…")
        return True

    def nudge_target(self, side: str, right_mm: float, up_mm: float) -> bool:
        """Move ``side``'s needle tip (mm, as seen along the needle with cranial up)."""
        if not self.controller.nudge_target(side, right_mm, up_mm):
            return False
        self.planning_panel.set_needle_pending(side, "Re-planning the needle…")
        return True

    def set_picking(self, on: bool) -> None:
        """Target picking in the 3D view: a left click moves the active needle's tip there."""
        self.controller.store.replace_view(picking=bool(on))  # the pick plane follows
        if on:
            self.statusBar().showMessage("Click in the 3D view to place the needle tip; Esc "
                                         "ends picking", 8000)

    def _on_state_changed(self, old: AppState, new: AppState) -> None:
        """The store replaced the state: redraw what follows it directly."""
        if (old.view.picking != new.view.picking or old.session.plan is not new.session.plan
                or old.session.pending_targets is not new.session.pending_targets):
            self._update_pick_plane()  # through the tip asked for, across the needle

    def _update_pick_plane(self) -> None:
        side = self.planning_panel.needle_side
        plan = self.controller.session.plan
        traj = plan.sides[side].trajectory if plan is not None and side in plan.sides else None
        if not self.controller.store.view.picking or traj is None:
            self.view3d.set_pick_plane(None)
            return
        self.view3d.set_pick_plane(self.controller.current_target(side),
                                   traj.entry_direction_lps)

    def _on_target_picked(self, point: np.ndarray) -> None:
        side = self.planning_panel.needle_side
        if self.controller.set_target(side, point):
            self.planning_panel.set_needle_pending(side, "Re-planning the needle…")

    def _on_trajectory_changed(self, side: str) -> None:
        session = self.controller.session
        result = self.controller.replans.get(side)
        note = ""
        if result is not None:
            kind = planning.KIND_LABELS[result.kind]
            if result.trajectory.target_source == "point":
                note = (f"Tip placed by hand, inside the {kind} window." if result.in_window else
                        f"⚠ Tip placed by hand, outside the {kind} window (as seen at its best "
                        "view).")
            if side in self.controller.pending_targets:
                note = "Re-planning the needle…"
            if result.planes_error:
                note += f" No oblique planes: {result.planes_error}"
        self.planning_panel.set_needle(side, note, plan=session.plan)
        self._show_needles()
        if side == self.planning_panel.needle_side:
            self._show_planes()
        traj = session.plan.sides[side].trajectory
        # "safe" carries the level's confidence when the level is not established.
        safe = f"safe{planning.plan_level(session.plan).qualifier()}"
        self.statusBar().showMessage(
            f"{side.capitalize()} needle: {traj.length_mm:.1f} mm, nerve clearance "
            f"{traj.min_nerve_clearance_mm:.1f} mm, {safe if traj.safe else 'NOT safe'}", 8000)

    def highlight_structures(self, names) -> None:
        """Emphasise e.g. the L5 and S1 surfaces in the 3D view (``None`` restores)."""
        self.view3d.highlight(names)

    # --- export, settings, about -----------------------------------------------------------------
    def export(self) -> list[Path]:
        session = self.controller.session
        if not session.has_labels:
            return []
        folder = self.settings.last_export_dir or self.settings.last_open_dir or str(Path.home())
        nodes = [n.name for n in self.settings.pacs_nodes]
        request = self.dialogs.export_request(folder, has_labels=session.has_labels,
                                              has_meshes=session.has_meshes,
                                              has_plan=session.has_plan, pacs_nodes=nodes)
        if request is None:
            return []
        return self.export_to(request)

    def export_to(self, request: export_logic.ExportRequest) -> list[Path]:
        """Write an export, asking before replacing anything; returns the files written."""
        session = self.controller.session
        if request.send_to and request.send_client is None:
            from app.pacs_nodes import client_for

            node = next((n for n in self.settings.pacs_nodes if n.name == request.send_to), None)
            if node is None:
                self.show_error(ErrorReport(title="Unknown PACS node",
                                            message=f"No PACS node is called {request.send_to!r}.",
                                            hint="Add it in Tools > PACS nodes…"))
                return []
            request.send_client = client_for(node, aet=self.settings.pacs_aet,
                                             scp_port=self.settings.pacs_scp_port)
        from spinect_core.planning.session_file import SESSION_FILE_NAME

        editing = self.label_editing
        if request.plan and editing is not None and editing.plan_outdated:
            self.show_error(ErrorReport(
                title="Plan outdated",
                message="The label map was edited after this plan; the plan would not match "
                        "the edited labels.",
                hint="Press \"Re-plan with the edited labels\" above the slice views (or undo "
                     "the edits), then export."))
            return []
        session_file = (Path(request.folder) / SESSION_FILE_NAME
                        if request.plan and self.controller.has_root_corrections else None)
        existing = export_logic.existing_targets(request, session)
        if session_file is not None and session_file.exists():
            existing.append(session_file)
        # The edited label map and the session file that names it (issue 13).
        label_files = editing.session_targets(request.folder) if editing is not None else []
        existing += [p for p in label_files if p.exists() and p not in existing]
        overwrite = False
        if existing:
            if not self.dialogs.confirm_overwrite(existing):
                self.statusBar().showMessage("Export cancelled: nothing was replaced", 6000)
                return []
            overwrite = True
        if self.controller.busy:
            self.statusBar().showMessage("Busy: wait for the current step or cancel it", 5000)
            return []
        if request.plan and self.controller.plan_outdated_by_root_edits:
            # The exported plan must be the one the corrected roots give, not the plan from
            # before the corrections with today's live windows.
            try:
                self.controller.set_replanned_roots(self.controller.run_and_wait(
                    "Re-planning with the corrected roots", self.controller.replan_roots))
            except Exception as exc:  # noqa: BLE001 - shown to the user, nothing was written
                self.show_error(describe_error(exc, action="Re-planning with the corrected roots"))
                return []
            session = self.controller.session
        # Rendering stays on the GUI thread: grab the 3D view before the worker writes.
        png = self.view3d.screenshot_png() if request.screenshot else None
        lock = self.controller.engine_lock
        try:
            written = self.controller.run_and_wait(
                "Exporting", lambda progress: export_logic.run_export(
                    request, session, screenshot_png=png, overwrite=overwrite,
                    engine_lock=lock, progress=progress))
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app stays usable
            self.show_error(describe_error(exc, action="Export"))
            return []
        roots_file = None
        if session_file is not None:
            try:  # the operator's corrections, to reopen the corrected plan later
                roots_file = self.controller.save_root_session(session_file, overwrite=overwrite)
                written.append(roots_file)
            except Exception as exc:  # noqa: BLE001 - the export itself is written
                self.show_error(describe_error(exc, action="Saving the planning session"))
        if label_files:
            try:  # the edited label map beside the exports, named by the session file
                written += editing.save_files(request.folder, overwrite=overwrite,
                                              session_written=roots_file)
            except Exception as exc:  # noqa: BLE001 - the export itself is written
                self.show_error(describe_error(exc, action="Saving the edited label map"))
        self.settings.last_export_dir = str(request.folder)
        sent = " and sent its DICOM objects to the PACS" if request.send_client is not None else ""
        self.statusBar().showMessage(f"Exported {len(written)} files to {request.folder}{sent}",
                                     8000)
        return written

    def edit_settings(self) -> None:
        if self.dialogs.edit_settings(self.settings):
            self.controller.refresh_settings()
            self.planning_panel.set_settings(self.settings.snapshot())
            if self.controller.session.has_plan:
                self.statusBar().showMessage("Settings saved; press Plan L5/S1 to plan again with "
                                             "the new planning inputs", 10000)

    def about(self) -> None:
        self.dialogs.about(self.settings.weights_path)

    # --- automation ------------------------------------------------------------------------------
    def save_screenshot(self, path: str | Path) -> Path:
        """PNG of the whole window (3D view rendered first)."""
        self.view3d.render()
        QApplication.processEvents()
        pixmap = self.grab()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not pixmap.save(str(target), "PNG"):
            raise OSError(f"could not write the screenshot {target}")
        return target

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.controller.shutdown()
        self.drr_view.worker.clear()
        self.drr_view.wait(10_000)
        self.settings.sync()
        self.view3d.close_plotter()
        super().closeEvent(event)


def _redo_keys() -> list[QKeySequence]:
    """The platform's redo keys and Ctrl+Shift+Z (what the slice views took for redo)."""
    keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
    extra = QKeySequence("Ctrl+Shift+Z")
    return list(keys) + ([] if extra in keys else [extra])


def _volume_bounds(ct) -> np.ndarray:
    """(2, 3) LPS bounds of the CT's voxel centres (corners of the index box)."""
    nx, ny, nz = ct.size_xyz
    corners = np.array([[i, j, k] for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)],
                       float)
    pts = ct.index_to_lps(corners)
    return np.stack([pts.min(axis=0), pts.max(axis=0)])
