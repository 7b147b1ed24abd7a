"""The main window: start screen, then data/steps (left), 3D + 2D views (centre), planning (right).

The window binds widgets to :class:`~app.controller.SessionController` signals and forwards user
actions to it; it computes nothing itself. All modal interaction goes through :attr:`dialogs`
(replaceable in tests and unattended runs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QMainWindow, QScrollArea, QSplitter,
                               QStackedWidget, QVBoxLayout, QWidget)

from app import export as export_logic
from app.controller import STEPS, SessionController
from app.dialogs import LABEL_FILTER, Dialogs
from app.errors import ErrorReport, describe_error
from app.settings import AppSettings
from app.widgets.case_panel import CasePanel
from app.widgets.drop_zone import StartScreen, paths_from_mime
from app.widgets.planning_panel import PlanningPanel
from app.widgets.progress_panel import ProgressPanel
from app.widgets.slice_views import SliceViewsPanel
from app.widgets.view3d import View3D

__all__ = ["MainWindow"]

APP_TITLE = "SPINECT planner"


class MainWindow(QMainWindow):
    """SPINECT planner's window.

    Parameters
    ----------
    settings : AppSettings
    dialogs : Dialogs, optional
        Defaults to real Qt dialogs parented to this window.

    Signals
    -------
    surfaces_shown()
        The 3D view rendered a new set of surfaces (tests, automation).
    """

    surfaces_shown = Signal()

    def __init__(self, settings: AppSettings, dialogs: Dialogs | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.dialogs = dialogs if dialogs is not None else Dialogs(self)
        self.controller = SessionController(settings.snapshot, self.dialogs, self)
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.resize(1500, 920)

        # --- widgets ---------------------------------------------------------------------------
        self.start_screen = StartScreen()
        self.case_panel = CasePanel(STEPS)
        self.view3d = View3D()
        self.slice_views = SliceViewsPanel()
        self.planning_panel = PlanningPanel()
        self.progress = ProgressPanel()

        left = QScrollArea()
        left.setWidget(self.case_panel)
        left.setWidgetResizable(True)
        left.setMinimumWidth(270)
        right = QScrollArea()
        right.setWidget(self.planning_panel)
        right.setWidgetResizable(True)
        right.setMinimumWidth(270)
        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(self.view3d)
        centre.addWidget(self.slice_views)
        centre.setStretchFactor(0, 3)
        centre.setStretchFactor(1, 2)
        centre.setSizes([560, 330])
        self.workspace = QSplitter(Qt.Orientation.Horizontal)
        self.workspace.addWidget(left)
        self.workspace.addWidget(centre)
        self.workspace.addWidget(right)
        self.workspace.setStretchFactor(1, 1)
        self.workspace.setSizes([290, 920, 290])
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
        self._build_menus()
        self._connect()
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
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        self.act_open_seg = self._action(file_menu, "Open &segmentation…",
                                         self.choose_segmentation)
        self.act_segment = self._action(file_menu, "Se&gment", self.controller.segment,
                                        QKeySequence("Ctrl+G"))
        self.act_export = self._action(file_menu, "&Export…", self.export,
                                       QKeySequence("Ctrl+E"))
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        view_menu = bar.addMenu("&View")
        self._action(view_menu, "&Posterior (PA) view", self.reset_view, QKeySequence("Ctrl+R"))
        self._action(view_menu, "&Bone window", lambda: self.slice_views.set_preset("bone"))
        self._action(view_menu, "&Soft-tissue window", lambda: self.slice_views.set_preset("soft"))
        tools = bar.addMenu("&Tools")
        self._action(tools, "&Settings…", self.edit_settings, QKeySequence("Ctrl+,"))
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About SPINECT planner", self.about)
        self._update_actions()

    def _connect(self) -> None:
        c = self.controller
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
        self.planning_panel.posterior_view_requested.connect(self.reset_view)
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
        self.act_open_seg.setEnabled(session.has_ct and not busy)
        self.act_segment.setEnabled(session.has_ct and not busy)
        self.act_export.setEnabled(session.has_labels and not busy)
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
        """Throttled camera hook: stage 2 computes window areas for this direction here."""
        self.planning_panel.update_for_view(direction_lps)

    def highlight_structures(self, names) -> None:
        """Emphasise e.g. the L5 and S1 surfaces in the 3D view (``None`` restores)."""
        self.view3d.highlight(names)

    # --- export, settings, about -----------------------------------------------------------------
    def export(self) -> list[Path]:
        session = self.controller.session
        if not session.has_labels:
            return []
        folder = self.settings.last_export_dir or self.settings.last_open_dir or str(Path.home())
        request = self.dialogs.export_request(folder, has_labels=session.has_labels,
                                              has_meshes=session.has_meshes)
        if request is None:
            return []
        return self.export_to(request)

    def export_to(self, request: export_logic.ExportRequest) -> list[Path]:
        """Write an export, asking before replacing anything; returns the files written."""
        session = self.controller.session
        existing = export_logic.existing_targets(request, session)
        overwrite = False
        if existing:
            if not self.dialogs.confirm_overwrite(existing):
                self.statusBar().showMessage("Export cancelled: nothing was replaced", 6000)
                return []
            overwrite = True
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            written = export_logic.run_export(request, session,
                                              screenshot_png=self.view3d.screenshot_png,
                                              overwrite=overwrite)
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app stays usable
            QApplication.restoreOverrideCursor()
            self.show_error(describe_error(exc, action="Export"))
            return []
        QApplication.restoreOverrideCursor()
        self.settings.last_export_dir = str(request.folder)
        self.statusBar().showMessage(f"Exported {len(written)} files to {request.folder}", 8000)
        return written

    def edit_settings(self) -> None:
        if self.dialogs.edit_settings(self.settings):
            self.controller.refresh_settings()
            self.planning_panel.set_settings(self.settings.snapshot())

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
        self.settings.sync()
        self.view3d.close_plotter()
        super().closeEvent(event)


def _volume_bounds(ct) -> np.ndarray:
    """(2, 3) LPS bounds of the CT's voxel centres (corners of the index box)."""
    nx, ny, nz = ct.size_xyz
    corners = np.array([[i, j, k] for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)],
                       float)
    pts = ct.index_to_lps(corners)
    return np.stack([pts.min(axis=0), pts.max(axis=0)])
