"""Per-user log file of the desktop app (``spinect-app.log`` in the platform's log folder).

Linux ``~/.local/state/spinect/log``, Windows ``%LOCALAPPDATA%\\spinect\\logs``, macOS
``~/Library/Logs/spinect``; ``SPINECT_LOG_DIR`` overrides all three. Called from ``main()`` only
(not from ``create_app``), so tests never write into the user's log folder.
"""

from __future__ import annotations

import logging
import logging.handlers
import platform
import sys
from pathlib import Path

from spinect_core import __version__
from spinect_core.cli import user_log_dir  # one definition of the folder, shared with the CLI

log = logging.getLogger("spinect.app")


def setup_logging(level: int = logging.INFO) -> Path | None:
    """Rotating log file (5 x 2 MB), Qt messages and uncaught exceptions; returns its path.

    Returns ``None`` (and logs nowhere) when the folder cannot be created: a read-only home must
    not stop the app.
    """
    try:
        folder = user_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "spinect-app.log"
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=5,
                                                       encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    previous_hook = sys.excepthook

    def excepthook(exc_type, exc, tb):  # type: ignore[no-untyped-def]
        log.critical("uncaught exception", exc_info=(exc_type, exc, tb))
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    levels = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}
    qt_log = logging.getLogger("spinect.qt")
    qInstallMessageHandler(lambda mode, ctx, msg: qt_log.log(levels.get(mode, logging.WARNING), msg))
    log.info("SPINECT planner %s, Python %s, %s, frozen=%s, log %s", __version__,
             platform.python_version(), platform.platform(), getattr(sys, "frozen", False), path)
    return path
