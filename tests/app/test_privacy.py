"""Privacy and size caps of the app (issue 16, cases 5 and 8).

* No patient-named path is kept in the settings unless the user opts in
  (``remember_recent_paths``); the last folders are remembered for the session only.
* The case label (case panel, window title, hence screenshots) names no folder or file.
* A dropped zip is refused before unpacking when it is too large or holds too many files.
"""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest

from spinect_core.errors import InputTooLargeError

PATIENT = "Doe_Jane_1957"


# --- settings ------------------------------------------------------------------------------------
def test_paths_are_not_stored_unless_the_user_opts_in(tmp_path):
    from app.settings import AppSettings

    ini = tmp_path / "s.ini"
    s = AppSettings.from_file(ini)
    assert s.remember_recent_paths is False and s.snapshot().remember_recent_paths is False
    case = tmp_path / PATIENT
    assert s.add_recent(case) == [] and s.recent_files == []
    s.last_open_dir = case
    s.last_export_dir = case / "plan"
    assert s.last_open_dir == str(case)  # remembered for this session ...
    s.device = "cpu"
    s.sync()
    assert PATIENT not in ini.read_text()  # ... but not on disk
    again = AppSettings.from_file(ini)
    assert again.last_open_dir == "" and again.recent_files == [] and again.device == "cpu"

    # Opting in keeps them (this session's folders too), opting out removes them again.
    s.remember_recent_paths = True
    s.add_recent(case)
    s.sync()
    text = ini.read_text()
    assert text.count(PATIENT) >= 2  # recent list and last open folder
    assert AppSettings.from_file(ini).recent_files == [str(case)]
    s.remember_recent_paths = False
    s.sync()
    assert PATIENT not in ini.read_text()
    assert s.last_open_dir == str(case)  # still known to this session


def test_paths_an_earlier_version_stored_are_removed(tmp_path):
    from app.settings import AppSettings

    ini = tmp_path / "old.ini"
    ini.write_text(f"[paths]\nrecent_files=/data/{PATIENT}\nlast_open_dir=/data/{PATIENT}\n"
                   "[segmentation]\ndevice=cpu\n")
    s = AppSettings.from_file(ini)
    s.sync()
    assert PATIENT not in ini.read_text() and s.device == "cpu"


# --- case label ------------------------------------------------------------------------------------
def test_the_case_title_is_neutral(tmp_path):
    from app.state import Session
    from spinect_core.volume import CTMetadata, Volume

    ct = Volume(array=np.zeros((30, 20, 10), np.int16), spacing_mm=(0.7, 0.7, 3.0),
                origin_lps_mm=(0, 0, 0),
                metadata=CTMetadata(series_description=f"lumbar {PATIENT}"))
    s = Session(source_path=tmp_path / PATIENT / "ct.nii.gz", ct=ct)
    assert s.case_title() == "CT (10x20x30, 0.70x0.70x3.00 mm)"
    assert Session().case_title() == "No case"
    assert Session(source_path=tmp_path / PATIENT).case_title() == "CT"


def test_no_folder_name_on_screen_or_in_settings(qtbot, window, phantom_case, tmp_path):
    from PySide6.QtWidgets import QLabel

    case = tmp_path / PATIENT
    case.mkdir()
    shutil.copy(phantom_case["ct"], case / "ct.nii.gz")
    with qtbot.waitSignal(window.controller.ct_changed, timeout=60_000):
        assert window.open_path(case / "ct.nii.gz")
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=60_000)
    shown = [window.windowTitle(), window.statusBar().currentMessage()]
    shown += [label.text() for label in window.findChildren(QLabel)]
    assert window.case_panel.case.text().startswith("CT (")
    assert not [t for t in shown if PATIENT in t]
    window.settings.sync()
    assert PATIENT not in window.settings.store.fileName() and \
        PATIENT not in open(window.settings.store.fileName(), encoding="utf-8").read()


# --- zip caps --------------------------------------------------------------------------------------
def _zip(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_a_zip_too_large_unpacked_is_refused_before_unpacking(tmp_path):
    from app.inputs import MAX_ZIP_BYTES, extract_zip

    assert MAX_ZIP_BYTES == 4 * 1024 ** 3
    archive = _zip(tmp_path / "bomb.zip", {"a.dcm": b"\0" * 3_000_000, "b.dcm": b"\0" * 3_000_000})
    assert archive.stat().st_size < 50_000  # compresses 6 MB of zeros to a few kB
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(InputTooLargeError, match=r"bomb.zip unpacks to 5.7 MB, more than the "
                                                  r"4.8 MB accepted"):
        extract_zip(archive, target, max_bytes=5_000_000)
    assert list(target.iterdir()) == []


def test_a_zip_with_too_many_files_is_refused(tmp_path):
    from app.inputs import extract_zip

    archive = _zip(tmp_path / "many.zip", {f"f{k}.dcm": b"x" for k in range(30)})
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(InputTooLargeError, match="holds 30 files, more than the 20 accepted"):
        extract_zip(archive, target, max_entries=20)
    assert list(target.iterdir()) == []


def test_a_refused_zip_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import app.inputs as inputs

    monkeypatch.setattr(inputs, "MAX_ZIP_BYTES", 1000)
    archive = _zip(tmp_path / "ct.zip", {"ct/a.dcm": b"\0" * 5000})
    temp = inputs.TempFolders()
    with pytest.raises(InputTooLargeError):
        inputs.prepare_input(archive, temp)
    assert temp.paths == []
    # Within the caps it unpacks as before.
    monkeypatch.setattr(inputs, "MAX_ZIP_BYTES", 10_000)
    folder = inputs.prepare_input(archive, temp)
    assert (folder / "a.dcm").stat().st_size == 5000
    temp.cleanup()


def test_the_series_picker_hides_descriptions_until_asked(qtbot):
    from spinect_core.io import SeriesInfo

    from app.widgets.series_picker import DESCRIPTION_COLUMN, HIDDEN, SeriesPickerDialog

    series = [SeriesInfo(uid="1", description="DOE^JANE lumbar", modality="CT",
                         number_of_slices=300, size=(512, 512, 300), spacing_mm=(0.7, 0.7, 1.0),
                         extent_mm=299.0)]
    dialog = SeriesPickerDialog(series)
    qtbot.addWidget(dialog)
    texts = [dialog.table.item(0, c).text() for c in range(dialog.table.columnCount())]
    assert not any("DOE" in t for t in texts)
    assert dialog.table.item(0, DESCRIPTION_COLUMN).text() == HIDDEN
    dialog.show_descriptions.setChecked(True)
    assert dialog.table.item(0, DESCRIPTION_COLUMN).text() == "DOE^JANE lumbar"
    dialog.show_descriptions.setChecked(False)
    assert dialog.table.item(0, DESCRIPTION_COLUMN).text() == HIDDEN
