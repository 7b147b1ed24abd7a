"""Segmentation in the window: no weights, progress + Cancel, real tiny network, label files,
surfaces in the 3D view and a screenshot with bone and nerve colours."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from spinect_core.labels import DEFAULT_LABELS
from spinect_core.progress import report

from app.state import SegmentationSource
from tests.app.conftest import wait_idle
from tests.app.helpers import is_ivory, is_yellow, qimage_to_array


def load(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.controller.ct_changed, timeout=60_000):
        assert window.open_path(path)
    wait_idle(qtbot, window)


def show_true_labels(qtbot, window, phantom) -> None:
    """Use the phantom's exact labels as the segmentation (deterministic colours)."""
    with qtbot.waitSignal(window.surfaces_shown, timeout=120_000):
        window.controller.set_segmentation(
            phantom.labels, DEFAULT_LABELS, source=SegmentationSource(kind="file",
                                                                      description="truth"))
    wait_idle(qtbot, window)


def test_no_weights_installed_says_so_and_keeps_the_ct(qtbot, window, phantom_case, dialogs,
                                                       no_default_weights) -> None:
    window.settings.auto_segment = True
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=60_000) as blocker:
        window.open_path(phantom_case["ct"])
    wait_idle(qtbot, window)
    assert blocker.args[0] is False
    assert [e.title for e in dialogs.errors] == ["No trained weights installed"]
    assert "Settings" in dialogs.errors[0].hint
    assert window.controller.session.ct is not None
    assert window.case_panel.step_status("load") == "done"
    assert window.case_panel.step_status("segment") == "failed"
    assert window.slice_views.ct is window.controller.session.ct
    assert window.case_panel.segment_button.isEnabled()
    assert window.case_panel.open_seg_button.isEnabled()


def test_corrupt_weights_give_a_weights_dialog(qtbot, window, phantom_case, dialogs,
                                               tmp_path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    window.settings.weights_path = bad
    load(qtbot, window, phantom_case["ct"])
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=60_000):
        assert window.controller.segment()
    assert [e.title for e in dialogs.errors] == ["Weights cannot be used"]
    assert window.controller.session.ct is not None


def test_progress_is_shown_and_cancel_stops_segmentation(qtbot, window, phantom_case, dialogs,
                                                         monkeypatch) -> None:
    import app.pipeline as pipeline

    calls = []

    def slow_segment(ct, settings, *, progress=None, segmenters=None):
        for k in range(2000):
            report(progress, k / 2000, f"window {k}")
            calls.append(k)
            time.sleep(0.005)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(pipeline, "segment_volume", slow_segment)
    load(qtbot, window, phantom_case["ct"])
    ct = window.controller.session.ct
    progress = window.progress
    window.controller.segment()
    qtbot.waitUntil(lambda: progress.bar.value() > 0 and "window" in progress.message.text(),
                    timeout=20_000)
    assert progress.isVisible() and progress.stage.text() == "Segmenting"
    assert not window.case_panel.segment_button.isEnabled()  # busy: actions disabled
    assert window.isEnabled()                                # responsive, not modal
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=20_000) as blocker:
        qtbot.mouseClick(progress.cancel_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] is False
    assert len(calls) < 2000
    assert dialogs.errors == []
    assert "cancelled" in window.statusBar().currentMessage().lower()
    assert window.case_panel.step_status("segment") == "cancelled"
    assert window.controller.session.ct is ct and not progress.isVisible()
    assert window.case_panel.segment_button.isEnabled()


def test_real_network_segments_and_builds_surfaces(qtbot, window, phantom_case, weights_file,
                                                   dialogs) -> None:
    window.settings.weights_path = weights_file
    window.settings.device = "cpu"
    load(qtbot, window, phantom_case["ct"])
    stages = []
    window.controller.runner.started.connect(stages.append)
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=240_000) as blocker:
        window.controller.segment()
    assert blocker.args[0] is True, dialogs.errors
    session = window.controller.session
    assert session.labels.array.shape == session.ct.array.shape
    assert session.table.names == {0: "background", 1: "bone", 2: "nerve"}
    assert session.segmentation_source.kind == "network"
    assert stages == ["Segmenting", "Building 3D surfaces"]
    assert window.case_panel.step_status("segment") == "done"
    assert window.case_panel.step_status("surfaces") == "done"


def test_open_segmentation_shows_surfaces_and_toggles(qtbot, window, phantom_case) -> None:
    load(qtbot, window, phantom_case["ct"])
    with qtbot.waitSignal(window.surfaces_shown, timeout=120_000):
        assert window.open_segmentation(phantom_case["labels"])
    wait_idle(qtbot, window)
    assert window.view3d.structure_names == ["bone", "nerve", "disc", "dura"]
    assert window.controller.session.segmentation_source.kind == "file"
    # The plan and its exports describe the file by its format, never by its name.
    description = window.controller.session.segmentation_source.description
    assert Path(phantom_case["labels"]).name not in description
    assert description.startswith("label map file")
    assert window.slice_views.labels is not None
    rows = window.case_panel.structures.checks
    assert list(rows) == ["bone", "nerve", "disc", "dura"]
    rows["nerve"].setChecked(False)
    assert not window.view3d._actors["nerve"].GetVisibility()
    nerve_id = DEFAULT_LABELS.id_of("nerve")
    assert not window.slice_views._visible_ids[nerve_id]
    window.case_panel.structures.sliders["bone"].setValue(30)
    assert window.view3d._actors["bone"].GetProperty().GetOpacity() == pytest.approx(0.3)
    window.highlight_structures({"nerve"})
    assert window.view3d._actors["bone"].GetProperty().GetOpacity() < 0.2
    window.highlight_structures(None)
    assert window.view3d._actors["bone"].GetProperty().GetOpacity() == pytest.approx(0.3)


def test_segmentation_on_another_grid_is_resampled_with_a_note(qtbot, window, phantom_case,
                                                               tmp_path) -> None:
    from spinect_core.io import save_label_map
    from spinect_core.preprocess.resample import resample_to_spacing

    coarse = resample_to_spacing(phantom_case["phantom"].labels, 3.0, interpolation="nearest")
    path = save_label_map(coarse, DEFAULT_LABELS, tmp_path / "coarse.nii.gz")
    load(qtbot, window, phantom_case["ct"])
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=120_000) as blocker:
        window.open_segmentation(path)
    assert blocker.args[0] is True
    session = window.controller.session
    assert session.labels.same_grid(session.ct)
    assert any("resampled" in n for n in session.notes)
    assert "resampled" in window.case_panel.notes.text()


def test_label_file_without_sidecar_uses_default_table_with_a_note(qtbot, window, phantom_case,
                                                                   tmp_path) -> None:
    shutil.copy(phantom_case["labels"], tmp_path / "seg.nii.gz")
    load(qtbot, window, phantom_case["ct"])
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=120_000):
        window.open_segmentation(tmp_path / "seg.nii.gz")
    assert window.controller.session.table == DEFAULT_LABELS
    assert any("no label-table sidecar" in n for n in window.controller.session.notes)


def test_window_screenshot_shows_ivory_bone_and_yellow_nerves(qtbot, window, phantom_case,
                                                              tmp_path) -> None:
    load(qtbot, window, phantom_case["ct"])
    show_true_labels(qtbot, window, phantom_case["phantom"])
    qtbot.wait(200)
    path = window.save_screenshot(tmp_path / "window.png")
    from PySide6.QtGui import QImage

    full = qimage_to_array(QImage(str(path)))
    dpr = window.devicePixelRatioF()
    view = window.view3d
    top_left = view.mapTo(window, view.rect().topLeft())
    x0, y0 = int(top_left.x() * dpr), int(top_left.y() * dpr)
    w, h = int(view.width() * dpr), int(view.height() * dpr)
    region = full[y0:y0 + h, x0:x0 + w]
    assert region.shape[0] > 100 and region.shape[1] > 100
    # Not blank: the rendered scene varies, and bone and nerve colours are both present.
    assert region.std() > 10
    ivory = is_ivory(region).mean()
    yellow = is_yellow(region).mean()
    assert ivory > 0.02, ivory
    assert yellow > 0.0005, yellow
    # The 2D views show the overlay too (yellow nerve pixels below the 3D view).
    assert is_yellow(full[y0 + h:]).mean() > 0


def test_clicking_a_slice_moves_the_other_views(qtbot, window, phantom_case) -> None:
    from PySide6.QtCore import QPoint

    load(qtbot, window, phantom_case["ct"])
    panel = window.slice_views
    axial, sagittal, coronal = panel.views
    canvas = axial.canvas
    rect = canvas.image_rect()
    # Click a quarter from the left and top of the axial image: patient right, anterior.
    point = QPoint(int(rect.left() + 0.25 * rect.width()), int(rect.top() + 0.25 * rect.height()))
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=point)
    nz, ny, nx = window.controller.session.ct.array.shape
    assert abs(sagittal.slider.value() - nx // 4) <= 1      # sagittal plane = x index
    assert abs(coronal.slider.value() - ny // 4) <= 1       # coronal plane = y index
    row, col = canvas._cross
    assert row == pytest.approx(0.25, abs=1.5 / ny) and col == pytest.approx(0.25, abs=1.5 / nx)
    panel.set_preset("soft")
    assert panel.window.width == 350.0  # 3D Slicer's CT-abdomen window
