"""``spinect-app``: start the desktop planner, optionally open a case and run it unattended.

Usage::

    spinect-app [INPUT] [--weights FILE] [--segmentation FILE] [--plan]
                [--screenshot FILE] [--quit] [--settings FILE]

With INPUT the case is opened, segmented and meshed (``--segmentation`` uses a label map instead
of the network); ``--plan`` then plans L5/S1 (best views, needles) and shows the plan: the 3D view
at the best view of the first needle's window with the window outlines and the needles, and the
filled planning panel. ``--screenshot`` saves a PNG of the whole window once everything is shown;
``--quit`` then exits with 0, or with 1 and the message on stderr when a step failed (e.g. no
L5/S1 in the field of view).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from spinect_core import __version__

__all__ = ["main", "create_app", "build_parser", "Automation"]

#: Longest wait for the window areas of the final view before the screenshot, ms.
LIVE_WAIT_MS = 60_000


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spinect-app", description="SPINECT planner desktop app")
    p.add_argument("input", nargs="?", help="DICOM folder, zip of one, or NIfTI/NRRD/MHA file")
    p.add_argument("--weights", help="weights file (.safetensors) for this run (not saved)")
    p.add_argument("--segmentation", help="use this label map instead of running the network")
    p.add_argument("--plan", action="store_true",
                   help="also plan the L5/S1 approach (best views, window areas, needles)")
    p.add_argument("--screenshot", help="save a PNG of the window when done (replaced if present)")
    p.add_argument("--quit", action="store_true", help="exit when done (0 = success)")
    p.add_argument("--settings", help="keep settings in this INI file instead of the user's")
    p.add_argument("--version", action="version", version=f"spinect-app {__version__}")
    return p


class Automation(QObject):
    """Drives the window through one unattended run (open, segment, mesh, screenshot, quit)."""

    def __init__(self, window, args: argparse.Namespace) -> None:
        super().__init__(window)
        self.window = window
        self.args = args
        self.exit_code: int | None = None
        self._segmentation_opened = False
        self._waiting_live = False
        window.controller.pipeline_finished.connect(self._on_finished)
        window.live_windows_shown.connect(self._on_live_shown)

    def start(self) -> None:
        if not self.window.open_path(self.args.input):
            self._done(False, "could not start opening the input")

    def _on_finished(self, ok: bool, message: str) -> None:
        if ok and self.args.segmentation and not self._segmentation_opened:
            self._segmentation_opened = True
            if self.window.open_segmentation(self.args.segmentation):
                return
            ok, message = False, "could not open the segmentation"
        if ok and self.args.plan:
            session = self.window.controller.session
            if not session.has_plan:
                if self.window.plan():
                    return  # the plan step reports through pipeline_finished again
                ok, message = False, "could not start planning"
            else:
                print(plan_summary(session.plan), flush=True)
                if self.window.controller.live.busy:
                    # Screenshot once the window outlines of the final view are drawn.
                    self._waiting_live = True
                    QTimer.singleShot(LIVE_WAIT_MS, lambda: self._done(ok, message))
                    self._pending = (ok, message)
                    return
        # Let the 3D view finish rendering before grabbing the window.
        QTimer.singleShot(300, lambda: self._done(ok, message))

    def _on_live_shown(self, _live) -> None:
        if self._waiting_live and not self.window.controller.live.busy:
            self._waiting_live = False
            ok, message = self._pending
            QTimer.singleShot(300, lambda: self._done(ok, message))

    def _done(self, ok: bool, message: str) -> None:
        if self.exit_code is not None:
            return
        code = 0 if ok else 1
        if self.args.screenshot:
            try:
                path = self.window.save_screenshot(self.args.screenshot)
                print(f"spinect-app: screenshot saved to {path}", flush=True)
            except OSError as exc:
                print(f"spinect-app: {exc}", file=sys.stderr, flush=True)
                code = 1
        if not ok:
            print(f"spinect-app: failed: {message.splitlines()[0] if message else ''}",
                  file=sys.stderr, flush=True)
        else:
            print(f"spinect-app: {message}", flush=True)
        self.exit_code = code
        if self.args.quit:
            self.window.close()
            QApplication.instance().exit(code)


def plan_summary(plan) -> str:
    """A few lines on the plan for the console: how sure its level is, best views, needles
    (:func:`~spinect_core.report.level_text.plan_summary_lines`, as ``spinect plan`` prints)."""
    from spinect_core.report.level_text import plan_summary_lines

    return "\n".join(f"spinect-app: {line}" for line in plan_summary_lines(plan))


def create_app(argv: Sequence[str] | None = None, *, exec_app: bool = False,
               settings=None, dialogs=None):
    """Create (or reuse) the QApplication and the main window.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments without the program name (default ``sys.argv[1:]``).
    exec_app : bool
        Run the event loop before returning (the exit code is in ``window.exit_code``).
    settings : AppSettings, optional
        Defaults to ``--settings FILE`` or the per-user store.
    dialogs : object, optional
        Dialog provider (tests pass a recording double); default real dialogs, or
        non-blocking console dialogs with ``--quit``.

    Returns
    -------
    MainWindow
        Shown; with ``INPUT`` an :class:`Automation` is attached as ``window.automation``.
    """
    from app.dialogs import ConsoleDialogs
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from app.style import apply_style

    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "spinect-app"])
    app.setApplicationName("SPINECT planner")
    app.setOrganizationName("SPINECT")
    app.setApplicationVersion(__version__)
    from app import gc_guard

    gc_guard.install(app)  # cyclic garbage (Qt objects included) is freed on this thread only
    from PySide6.QtGui import QIcon

    from spinect_core.resources import asset_path

    icon = asset_path("icons", "spinect.png")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    app.setDesktopFileName("spinect")  # matches installers/linux/spinect.desktop
    apply_style(app)
    if settings is None:
        settings = AppSettings.from_file(args.settings) if args.settings else AppSettings()
    if dialogs is None and args.quit:
        dialogs = ConsoleDialogs()
    # An unattended run plans exactly when --plan says so, whatever the stored setting.
    overrides: dict[str, object] = {"auto_plan": bool(args.plan)} if args.input else {}
    if args.weights:
        overrides["weights_path"] = str(Path(args.weights).resolve())
    if args.segmentation:
        overrides["auto_segment"] = False  # the label map replaces the network
    # Command-line choices apply to this run only; the stored settings stay as they were. They
    # are part of the one settings source, so every reader sees them.
    settings.set_overrides(**overrides)
    window = MainWindow(settings, dialogs)
    if dialogs is not None and dialogs.parent is None:
        dialogs.parent = window
    window.show()
    if args.input:
        window.automation = Automation(window, args)
        QTimer.singleShot(0, window.automation.start)
    if exec_app:
        code = app.exec()
        automation = window.automation
        window.exit_code = (automation.exit_code if automation is not None
                            and automation.exit_code is not None else code)
    return window


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``spinect-app``; returns the process exit code."""
    import multiprocessing

    multiprocessing.freeze_support()  # frozen Windows builds re-execute themselves for children
    from app.logs import setup_logging

    setup_logging()
    window = create_app(argv, exec_app=True)
    return int(window.exit_code)


if __name__ == "__main__":
    raise SystemExit(main())
