"""Export (label map + sidecar, meshes, 3D screenshot; never overwrites silently), camera hook,
settings and about dialogs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.labels import DEFAULT_LABELS

from app.export import ExportRequest
from tests.app.test_segment_and_view import load, show_true_labels


@pytest.fixture()
def planned(qtbot, window, phantom_case):
    load(qtbot, window, phantom_case["ct"])
    show_true_labels(qtbot, window, phantom_case["phantom"])
    return window


def test_export_writes_label_map_meshes_and_screenshot(planned, dialogs, tmp_path,
                                                       phantom_case) -> None:
    from spinect_core.io import load_label_map

    window = planned
    out = tmp_path / "export"
    dialogs.export_answer = ExportRequest(folder=out, mesh_formats=["stl", "obj"],
                                          coordinate_system="RAS")
    written = window.export()
    names = sorted(p.name for p in written)
    assert names == sorted(["segmentation.nii.gz", "segmentation.labels.json", "view3d.png",
                            "bone_ras.stl", "bone_ras.obj", "nerve_ras.stl", "nerve_ras.obj",
                            "disc_ras.stl", "disc_ras.obj", "dura_ras.stl", "dura_ras.obj"])
    labels, table = load_label_map(out / "segmentation.nii.gz")
    assert table == DEFAULT_LABELS
    np.testing.assert_array_equal(labels.array, phantom_case["phantom"].labels.array)
    assert json.loads((out / "segmentation.labels.json").read_text())["coordinate_system"] == "LPS"
    assert (out / "bone_ras.stl").read_bytes()[:9] == b"SPACE=RAS"
    assert (out / "view3d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert window.settings.last_export_dir == str(out)
    # No patient identifiers in default names: fixed names and class names only.
    assert all(p.parent == out for p in written)


def test_export_asks_before_replacing(planned, dialogs, tmp_path) -> None:
    window = planned
    out = tmp_path / "export"
    request = ExportRequest(folder=out, mesh_formats=["ply"], screenshot=False)
    first = window.export_to(request)
    assert first and dialogs.overwrite_questions == []
    before = {p: p.stat().st_mtime_ns for p in first}
    dialogs.overwrite_answer = False
    assert window.export_to(request) == []
    assert sorted(dialogs.overwrite_questions[0]) == sorted(first)
    assert {p: p.stat().st_mtime_ns for p in first} == before
    dialogs.overwrite_answer = True
    again = window.export_to(request)
    assert sorted(again) == sorted(first)
    assert dialogs.errors == []


def test_camera_hook_reports_the_view_direction_throttled(planned, qtbot) -> None:
    window = planned
    d = np.array([-0.5, -0.8, -0.2])
    with qtbot.waitSignal(window.view3d.view_direction_changed, timeout=5000) as blocker:
        window.view3d.set_view_direction(d)
        window.view3d.set_view_direction(d)  # two changes, one report
    got = blocker.args[0]
    np.testing.assert_allclose(got, d / np.linalg.norm(d), atol=1e-6)
    assert window.planning_panel.last_direction is not None
    # C-arm words (detector over the patient's left, leaning to the head), for the needle's side.
    assert "(left) oblique" in window.planning_panel.view_label.text()
    assert "cranial tilt" in window.planning_panel.view_label.text()
    up = np.array(window.view3d.plotter.camera.GetViewUp())
    assert up[2] > 0.9  # cranial up
    window.reset_view()
    np.testing.assert_allclose(window.view3d.view_direction(), [0, -1, 0], atol=1e-9)


def test_settings_dialog_shows_devices_and_model_card(qtbot, settings, weights_file) -> None:
    from app.widgets.settings_dialog import SettingsDialog

    settings.weights_path = weights_file
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert "tiny-test" in dialog.card.text() and "nerve" in dialog.card.text()
    assert "CUDA" in dialog.device_note.text()
    dialog.gauge.setValue(25)
    dialog.margin.setValue(3.0)
    dialog.blend.setCurrentIndex(dialog.blend.findData("gaussian"))
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.apply()
    snap = settings.snapshot()
    assert (snap.needle_gauge, snap.safety_margin_mm, snap.blend, snap.device) == \
        (25, 3.0, "gaussian", "cpu")
    dialog.weights.setText("")
    dialog._show_card()
    assert dialog.card.text()  # default weights or the 'none installed' message


def test_about_dialog_has_version_disclaimer_and_card(qtbot, weights_file) -> None:
    from spinect_core import __version__

    from app.widgets.about_dialog import AboutDialog

    dialog = AboutDialog(str(weights_file))
    qtbot.addWidget(dialog)
    assert "not a certified medical device" in dialog.disclaimer.text()
    texts = " ".join(w.text() for w in dialog.findChildren(type(dialog.disclaimer)))
    assert __version__ in texts and "tiny-test" in texts


def test_series_picker_lists_series(qtbot) -> None:
    from spinect_core.io import SeriesInfo

    from app.widgets.series_picker import SeriesPickerDialog

    series = [SeriesInfo(uid="1", description="scout", modality="CT", number_of_slices=1,
                         problem="a single slice"),
              SeriesInfo(uid="2", description="bone 1mm", modality="CT", number_of_slices=300,
                         size=(512, 512, 300), spacing_mm=(0.7, 0.7, 1.0), extent_mm=299.0)]
    dialog = SeriesPickerDialog(series)
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 2
    assert dialog.selected().uid == "2"  # the loadable CT series is preselected
    assert dialog.table.item(1, 2).text() == "300"
