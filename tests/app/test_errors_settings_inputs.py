"""Error reports, persistent settings, zip input."""

from __future__ import annotations

import zipfile

import pytest

from spinect_core import errors as E
from spinect_core.io.atomic import FileExistsRefusedError

from app.errors import describe_error
from app.inputs import TempFolders, prepare_input
from app.settings import MAX_RECENT, AppSettings


@pytest.mark.parametrize("exc, title", [
    (E.NotCTError("series is MR, not CT"), "Not a CT"),
    (E.NoImagesFoundError("no DICOM files in /x"), "No images found"),
    (E.NoWeightsInstalledError("no default weights"), "No trained weights installed"),
    (E.WeightsError("bad sha256"), "Weights cannot be used"),
    (FileExistsRefusedError("a exists"), "File exists"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "Out of memory"),
    (ValueError("device 'cuda' was requested but CUDA is not available"),
     "Device not available"),
    (KeyError("boom"), "Segmenting failed"),
])
def test_error_reports_have_title_message_and_hint(exc, title) -> None:
    report = describe_error(exc, action="Segmenting")
    assert report.title == title
    assert report.message
    assert report.hint
    assert not report.cancelled


def test_cancel_is_not_an_error() -> None:
    report = describe_error(E.Cancelled())
    assert report.cancelled and report.title == "Cancelled"


def test_settings_roundtrip_and_defaults(tmp_path) -> None:
    path = tmp_path / "s.ini"
    s = AppSettings.from_file(path)
    assert s.snapshot().device == "auto" and s.needle_gauge == 22 and s.blend == "sum"
    s.device = "cpu"
    s.weights_path = tmp_path / "w.safetensors"
    s.blend = "gaussian"
    s.needle_gauge = 25
    s.safety_margin_mm = 1.5
    s.auto_segment = False
    s.remember_recent_paths = True  # paths are kept on disk only when the user opts in
    for k in range(MAX_RECENT + 3):
        s.add_recent(tmp_path / f"case{k}")
    s.add_recent(tmp_path / "case5")
    s.sync()
    again = AppSettings.from_file(path).snapshot()
    assert again.device == "cpu" and again.blend == "gaussian"
    assert again.weights_path.endswith("w.safetensors")
    assert again.needle_gauge == 25 and again.safety_margin_mm == 1.5
    assert again.auto_segment is False
    assert len(again.recent_files) == MAX_RECENT
    assert again.recent_files[0].endswith("case5")
    assert len(set(again.recent_files)) == MAX_RECENT
    with pytest.raises(ValueError):
        s.device = "tpu"


def test_hand_edited_settings_fall_back_to_defaults(tmp_path) -> None:
    path = tmp_path / "s.ini"
    path.write_text("[segmentation]\ndevice=quantum\nblend=3\n[planning]\n"
                    "needle_gauge=abc\nsafety_margin_mm=99\n")
    s = AppSettings.from_file(path)
    assert s.device == "auto" and s.blend == "sum"
    assert s.needle_gauge == 22 and s.safety_margin_mm == 10.0


def test_zip_is_unpacked_to_a_temp_folder_and_cleaned(tmp_path) -> None:
    archive = tmp_path / "case.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("study/series/IM1.dcm", b"x")
        zf.writestr("../evil.txt", b"y")
    temp = TempFolders()
    folder = prepare_input(archive, temp)
    assert folder.name == "study" and (folder / "series" / "IM1.dcm").read_bytes() == b"x"
    assert not (tmp_path / "evil.txt").exists()
    assert not any(p.name == "evil.txt" for p in temp.paths[0].parent.glob("evil.txt"))
    temp.cleanup()
    assert not folder.exists()


def test_bad_zip_and_missing_path(tmp_path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(E.UnsupportedFormatError):
        prepare_input(bad, TempFolders())
    with pytest.raises(E.NoImagesFoundError):
        prepare_input(tmp_path / "absent", TempFolders())


def test_settings_dialog_opts_in_to_remembering_paths(qtbot, settings) -> None:
    """Recent paths are remembered only after the user ticks the privacy box."""
    from app.widgets.settings_dialog import SettingsDialog

    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert not dialog.remember_recent.isChecked()
    dialog.apply()
    assert not settings.remember_recent_paths
    dialog.remember_recent.setChecked(True)
    dialog.apply()
    assert settings.remember_recent_paths
