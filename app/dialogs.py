"""Every modal interaction goes through one object, so tests and automation can replace it.

:class:`Dialogs` is the protocol: the methods the window and the controller call. :class:`QtDialogs`
shows real Qt dialogs. :class:`ConsoleDialogs` (used by ``spinect-app ... --quit``) never blocks:
it prints errors to stderr and answers questions with safe defaults. Tests pass a recording
double that satisfies the same protocol (``tests/app/helpers.py``; a test checks the signatures).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from spinect_core.io import SeriesInfo

from app.errors import ErrorReport

if TYPE_CHECKING:
    from app.export import ExportRequest
    from app.pacs_dialog import PacsChoice
    from app.settings import AppSettings

__all__ = ["Dialogs", "QtDialogs", "ConsoleDialogs"]

IMAGE_FILTER = ("CT images (*.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.zip *.dcm);;"
                "Zip of a DICOM folder (*.zip);;All files (*)")
LABEL_FILTER = "Label maps (*.nii *.nii.gz *.nrrd *.seg.nrrd *.mha *.mhd);;All files (*)"
WEIGHTS_FILTER = "SPINECT weights (*.safetensors);;All files (*)"


class Dialogs(Protocol):
    """What the app asks of a dialog provider (real, console or a test double).

    ``parent`` is the window dialogs are parented to (set by :func:`app.main.create_app` when
    ``None``).
    """

    parent: Any

    def error(self, report: ErrorReport) -> None:
        """Show an error: its title, the core's message and what to do."""

    def info(self, title: str, text: str, detail: str = "") -> None:
        """Show a message."""

    def confirm_overwrite(self, paths: Sequence[Path]) -> bool:
        """Ask before replacing existing files; ``True`` replaces them."""

    def choose_series(self, series: Sequence[SeriesInfo]) -> SeriesInfo | None:
        """One of several series; ``None`` when cancelled."""

    def export_request(self, folder: str, *, has_labels: bool, has_meshes: bool,
                       has_plan: bool = False, pacs_nodes: Sequence[str] = ()
                       ) -> ExportRequest | None:
        """What to export where; ``None`` when cancelled."""

    def open_from_pacs(self, settings: AppSettings) -> PacsChoice | None:
        """A series chosen on a PACS; ``None`` when cancelled."""

    def edit_pacs_nodes(self, settings: AppSettings) -> bool:
        """Edit the PACS nodes; ``True`` when saved."""

    def edit_settings(self, settings: AppSettings) -> bool:
        """Edit the settings; ``True`` when saved."""

    def about(self, weights_path: str = "") -> None:
        """The About box."""

    def open_file(self, title: str, start_dir: str = "", file_filter: str = IMAGE_FILTER) -> str:
        """A file to open; ``""`` when cancelled."""

    def open_folder(self, title: str, start_dir: str = "") -> str:
        """A folder to open; ``""`` when cancelled."""


class QtDialogs:
    """Real dialogs, parented to ``parent`` (the main window); satisfies :class:`Dialogs`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.parent = parent

    # --- messages --------------------------------------------------------------------------------
    def error(self, report: ErrorReport) -> None:
        """An error with its title, the core's message and what to do."""
        box = QMessageBox(QMessageBox.Icon.Warning, report.title, report.message,
                          QMessageBox.StandardButton.Ok, self.parent)
        box.setInformativeText(report.hint)
        box.setObjectName("errorDialog")
        box.exec()

    def info(self, title: str, text: str, detail: str = "") -> None:
        box = QMessageBox(QMessageBox.Icon.Information, title, text,
                          QMessageBox.StandardButton.Ok, self.parent)
        if detail:
            box.setInformativeText(detail)
        box.exec()

    def confirm_overwrite(self, paths: Sequence[Path]) -> bool:
        """Ask before replacing existing files; ``True`` replaces them."""
        names = "\n".join(str(p) for p in list(paths)[:8])
        more = f"\n... and {len(paths) - 8} more" if len(paths) > 8 else ""
        answer = QMessageBox.question(
            self.parent, "Replace existing files?",
            f"These files already exist:\n{names}{more}\n\nReplace them?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def choose_series(self, series: Sequence[SeriesInfo]) -> SeriesInfo | None:
        """Let the user pick one series; ``None`` when cancelled."""
        from app.widgets.series_picker import SeriesPickerDialog

        dialog = SeriesPickerDialog(series, self.parent)
        return dialog.selected() if dialog.exec() else None

    # --- tool dialogs ----------------------------------------------------------------------------
    def export_request(self, folder: str, *, has_labels: bool, has_meshes: bool,
                       has_plan: bool = False, pacs_nodes: Sequence[str] = ()
                       ) -> ExportRequest | None:
        """The export dialog; an :class:`app.export.ExportRequest` or ``None`` if cancelled.
        ``pacs_nodes``: names of the configured PACS nodes offered for "Send to PACS"."""
        from app.widgets.export_dialog import ExportDialog

        dialog = ExportDialog(folder, has_labels=has_labels, has_meshes=has_meshes,
                              has_plan=has_plan, pacs_nodes=pacs_nodes, parent=self.parent)
        return dialog.request() if dialog.exec() else None

    def open_from_pacs(self, settings: AppSettings) -> PacsChoice | None:
        """Search a PACS and choose a series: :class:`app.pacs_dialog.PacsChoice` or ``None``."""
        from app.pacs_dialog import OpenFromPacsDialog

        dialog = OpenFromPacsDialog(settings, self.parent)
        return dialog.choice() if dialog.exec() else None

    def edit_pacs_nodes(self, settings: AppSettings) -> bool:
        """The PACS nodes dialog; ``True`` when saved."""
        from app.pacs_dialog import PacsNodesDialog

        return bool(PacsNodesDialog(settings, self.parent).exec())

    def edit_settings(self, settings: AppSettings) -> bool:
        """The settings dialog; ``True`` when the user saved changes."""
        from app.widgets.settings_dialog import SettingsDialog

        return bool(SettingsDialog(settings, self.parent).exec())

    def about(self, weights_path: str = "") -> None:
        from app.widgets.about_dialog import AboutDialog

        AboutDialog(weights_path, self.parent).exec()

    # --- file choosers ---------------------------------------------------------------------------
    def open_file(self, title: str, start_dir: str = "", file_filter: str = IMAGE_FILTER) -> str:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, start_dir, file_filter)
        return path

    def open_folder(self, title: str, start_dir: str = "") -> str:
        return QFileDialog.getExistingDirectory(self.parent, title, start_dir)


class ConsoleDialogs(QtDialogs):
    """Non-blocking dialogs for unattended runs: errors go to stderr, questions say no."""

    def __init__(self, parent: QWidget | None = None, *, stream=None) -> None:
        super().__init__(parent)
        self.stream = stream or sys.stderr
        self.errors: list[ErrorReport] = []

    def error(self, report: ErrorReport) -> None:
        self.errors.append(report)
        print(f"spinect-app: {report.text()}", file=self.stream, flush=True)

    def info(self, title: str, text: str, detail: str = "") -> None:
        print(f"spinect-app: {title}: {text}" + (f" {detail}" if detail else ""),
              file=self.stream, flush=True)

    def confirm_overwrite(self, paths: Sequence[Path]) -> bool:
        return False

    def choose_series(self, series: Sequence[SeriesInfo]) -> SeriesInfo | None:
        # Unattended: list_series orders CT first, then by extent, so the first loadable CT
        # series is the one the core itself would pick.
        for info in series:
            if not info.problem and info.modality in ("CT", ""):
                return info
        return series[0] if series else None

    def open_file(self, title: str, start_dir: str = "", file_filter: str = IMAGE_FILTER) -> str:
        return ""

    def export_request(self, folder: str, *, has_labels: bool, has_meshes: bool,
                       has_plan: bool = False, pacs_nodes: Sequence[str] = ()
                       ) -> ExportRequest | None:
        return None

    def open_from_pacs(self, settings: AppSettings) -> PacsChoice | None:
        return None

    def edit_pacs_nodes(self, settings: AppSettings) -> bool:
        return False

    def edit_settings(self, settings: AppSettings) -> bool:
        return False

    def about(self, weights_path: str = "") -> None:
        return None

    def open_folder(self, title: str, start_dir: str = "") -> str:
        return ""
