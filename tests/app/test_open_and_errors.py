"""Opening cases in the window: drop a folder or zip, series choice, errors keep the app usable."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from tests.app.conftest import wait_idle


def drop(window, path: Path) -> bool:
    """Simulate dragging ``path`` from a file manager onto the window; True if accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)
    return event.isAccepted()


def test_start_screen_then_drop_a_dicom_folder_loads_the_ct(qtbot, window, phantom_case,
                                                            dialogs) -> None:
    assert window.stack.currentWidget() is window.start_screen
    with qtbot.waitSignal(window.controller.ct_changed, timeout=60_000):
        assert drop(window, phantom_case["dicom"])
    wait_idle(qtbot, window)
    session = window.controller.session
    expected = phantom_case["phantom"].ct
    assert session.ct.array.shape == expected.array.shape
    assert session.ct.same_grid(expected, atol=1e-3)
    assert window.stack.currentWidget() is window.workspace
    assert window.case_panel.step_status("load") == "done"
    assert dialogs.errors == []
    # The 2D views show the CT's middle slices named by their LPS position in mm.
    titles = [v.title.text() for v in window.slice_views.views]
    assert re.match(r"Axial · [SI] \d+\.\d mm · slice \d+/\d+", titles[0]), titles[0]
    assert window.slice_views.views[0].canvas._image is not None
    # Not remembered in the recent list by default (paths may name the patient) ...
    assert window.settings.recent_files == []
    # ... but once the user opts in.
    window.settings.remember_recent_paths = True
    with qtbot.waitSignal(window.controller.ct_changed, timeout=60_000):
        assert window.open_path(phantom_case["dicom"])
    wait_idle(qtbot, window)
    assert window.settings.recent_files[0] == str(phantom_case["dicom"])


def test_dropping_nothing_usable_is_refused(qtbot, window, tmp_path) -> None:
    mime = QMimeData()
    mime.setText("not a file")
    enter = QDragEnterEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()
    assert not window.controller.busy


def test_zip_of_a_dicom_folder_loads_and_its_temp_folder_is_removed(qtbot, window, phantom_case,
                                                                    tmp_path) -> None:
    archive = tmp_path / "case.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(phantom_case["dicom"].iterdir()):
            zf.write(f, f"export/{f.name}")
    with qtbot.waitSignal(window.controller.ct_changed, timeout=60_000):
        assert drop(window, archive)
    wait_idle(qtbot, window)
    session = window.controller.session
    assert session.source_path == archive
    assert session.input_path.name == "export" and session.input_path.exists()
    window.controller.shutdown()
    assert not session.input_path.exists()


def _write_mr_series(folder: Path) -> Path:
    from tests.io.dicom_factory import grid_positions, write_series

    slices = np.full((6, 16, 16), 300, np.int16)
    write_series(folder, slices, grid_positions(np.zeros(3), np.eye(3), 2.0, 6), modality="MR",
                 series_description="T2 sag", subfolders=False)
    return folder


def test_mr_series_gives_a_not_ct_dialog_and_the_app_stays_usable(qtbot, window, phantom_case,
                                                                  dialogs, tmp_path) -> None:
    mr = _write_mr_series(tmp_path / "mr")
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=60_000) as blocker:
        assert window.open_path(mr)
    assert blocker.args[0] is False
    assert [e.title for e in dialogs.errors] == ["Not a CT"]
    assert "MR" in dialogs.errors[0].message and dialogs.errors[0].hint
    assert window.controller.session.ct is None
    assert window.case_panel.step_status("load") == "failed"
    assert not window.controller.busy and window.act_open_file.isEnabled()
    # Still usable: a CT opens next.
    with qtbot.waitSignal(window.controller.ct_changed, timeout=60_000):
        window.open_path(phantom_case["ct"])
    wait_idle(qtbot, window)
    assert window.controller.session.ct is not None


def test_text_file_gives_an_unsupported_file_dialog(qtbot, window, dialogs, tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=30_000):
        assert drop(window, text)
    assert [e.title for e in dialogs.errors] == ["Unsupported file"]
    assert not window.controller.busy


def test_failed_new_case_keeps_the_loaded_one(qtbot, window, phantom_case, dialogs,
                                              tmp_path) -> None:
    with qtbot.waitSignal(window.controller.ct_changed, timeout=60_000):
        window.open_path(phantom_case["ct"])
    wait_idle(qtbot, window)
    ct = window.controller.session.ct
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=30_000):
        window.open_path(tmp_path)  # an empty folder
    assert [e.title for e in dialogs.errors] == ["No images found"]
    assert window.controller.session.ct is ct
    assert window.stack.currentWidget() is window.workspace


def test_several_series_ask_which_one(qtbot, window, phantom_case, dialogs, tmp_path) -> None:
    folder = tmp_path / "study"
    shutil.copytree(phantom_case["dicom"], folder / "ct")
    _write_mr_series(folder / "mr")
    picked = []

    def choose(series):
        picked.extend(s.modality for s in series)
        return next(s for s in series if s.modality == "CT")

    dialogs.choose = choose
    with qtbot.waitSignal(window.controller.ct_changed, timeout=60_000):
        window.open_path(folder)
    wait_idle(qtbot, window)
    assert sorted(picked) == ["CT", "MR"]
    assert window.controller.session.series_uid
    assert window.controller.session.ct.metadata.modality == "CT"


def test_cancelling_the_series_choice_loads_nothing(qtbot, window, phantom_case, dialogs,
                                                    tmp_path) -> None:
    folder = tmp_path / "study"
    shutil.copytree(phantom_case["dicom"], folder / "ct")
    _write_mr_series(folder / "mr")
    dialogs.choose = lambda series: None
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=60_000):
        window.open_path(folder)
    assert window.controller.session.ct is None
    assert dialogs.errors == []  # a cancellation is not an error dialog
