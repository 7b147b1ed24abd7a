"""The app's per-user log file."""

from __future__ import annotations

import logging
import sys

from app.logs import setup_logging, user_log_dir


def test_log_goes_to_the_override_folder_and_records_the_version(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPINECT_LOG_DIR", str(tmp_path / "logs"))
    assert user_log_dir() == tmp_path / "logs"
    root = logging.getLogger()
    handlers, level, hook = list(root.handlers), root.level, sys.excepthook
    try:
        path = setup_logging()
        logging.getLogger("spinect.test").warning("hello from the test")
        for h in root.handlers:
            h.flush()
        text = path.read_text(encoding="utf-8")
        assert "SPINECT planner" in text and "hello from the test" in text
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        root.setLevel(level)
        sys.excepthook = hook
        logging.captureWarnings(False)


def test_unwritable_log_folder_does_not_stop_the_app(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SPINECT_LOG_DIR", str(blocker / "logs"))
    assert setup_logging() is None
