"""The slice viewer behaves like a radiology viewer: window/level drag and presets, zoom and pan,
keyboard slice stepping with the position in mm, HU readout, ruler, crosshair, shortcut help.

A small synthetic CT (40 x 32 x 24 voxels of 0.5 x 0.8 x 2.0 mm: anisotropic on purpose) with a
block of known HU; mouse events carry fractional positions, so voxel centres are hit exactly.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QComboBox, QMainWindow, QSlider, QToolButton

from spinect_core.volume import CTMetadata, Volume

from app.slicing import PRESETS, WL_HU_PER_PIXEL, lps_text, window_to_uint8
from app.widgets.shortcuts import (SHORTCUTS, ZOOM_STEP, command_for_key, install_help_menu,
                                   install_slice_viewer, shortcut_rows)
from app.widgets.slice_views import CUSTOM_PRESET, SliceViewsPanel

BLOCK_HU = 1234
BLOCK = (slice(6, 12), slice(8, 16), slice(10, 20))  # z, y, x
SPACING = (0.5, 0.8, 2.0)  # x, y, z mm
ORIGIN = (-10.0, 5.0, -30.0)
NONE = Qt.KeyboardModifier.NoModifier


@pytest.fixture(scope="module")
def ct() -> Volume:
    array = np.full((24, 32, 40), -1000, np.int16)
    array[BLOCK] = BLOCK_HU
    return Volume(array=array, spacing_mm=SPACING, origin_lps_mm=ORIGIN)


@pytest.fixture()
def panel(qtbot, ct) -> SliceViewsPanel:
    widget = SliceViewsPanel()
    qtbot.addWidget(widget)
    widget.resize(1200, 520)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_volume(ct)
    return widget


# --- event helpers ---------------------------------------------------------------------------------
def _send_mouse(widget, kind, pos, button, buttons, modifiers=NONE) -> None:
    pos = QPointF(pos)
    event = QMouseEvent(kind, pos, QPointF(widget.mapToGlobal(pos)), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def _drag(widget, button, start, end, modifiers=NONE, steps: int = 5) -> None:
    start, end = QPointF(start), QPointF(end)
    _send_mouse(widget, QMouseEvent.Type.MouseButtonPress, start, button, button, modifiers)
    for i in range(1, steps + 1):
        _send_mouse(widget, QMouseEvent.Type.MouseMove, start + (end - start) * (i / steps),
                    Qt.MouseButton.NoButton, button, modifiers)
    _send_mouse(widget, QMouseEvent.Type.MouseButtonRelease, end, button,
                Qt.MouseButton.NoButton, modifiers)


def _click(widget, pos) -> None:
    _send_mouse(widget, QMouseEvent.Type.MouseButtonPress, pos, Qt.MouseButton.LeftButton,
                Qt.MouseButton.LeftButton)
    _send_mouse(widget, QMouseEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.LeftButton,
                Qt.MouseButton.NoButton)


def _hover(widget, pos) -> None:
    _send_mouse(widget, QMouseEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton,
                Qt.MouseButton.NoButton)


def _wheel(widget, pos, notches: int, modifiers=NONE) -> None:
    pos = QPointF(pos)
    event = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos)), QPoint(0, 0),
                        QPoint(0, 120 * notches), Qt.MouseButton.NoButton, modifiers,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def _pixel_pos(canvas, row: float, col: float, shape_rc: tuple[int, int]) -> QPointF:
    """Widget position of the centre of displayed pixel (row, col)."""
    rect = canvas.image_rect()
    return QPointF(rect.left() + (col + 0.5) / shape_rc[1] * rect.width(),
                   rect.top() + (row + 0.5) / shape_rc[0] * rect.height())


def _position_mm(title: str) -> float:
    """Signed LPS coordinate of a title's "S 12.5 mm" (I, R and A are negative)."""
    letter, value = re.search(r"· ([LRPASI]) (\d+\.\d) mm ·", title).groups()
    return float(value) * (1 if letter in "LPS" else -1)


# --- tests -----------------------------------------------------------------------------------------
def test_keys_and_wheel_step_one_voxel_and_the_mm_label_follows(qtbot, panel, ct) -> None:
    axial, sagittal, _ = panel.views
    start, mm = axial.slider.value(), _position_mm(axial.title.text())
    assert mm == pytest.approx(ORIGIN[2] + start * SPACING[2])
    qtbot.keyClick(axial.canvas, Qt.Key.Key_Up)
    assert axial.slider.value() == start + 1
    assert _position_mm(axial.title.text()) == pytest.approx(mm + SPACING[2])  # one voxel, S
    qtbot.keyClick(axial.canvas, Qt.Key.Key_Down)
    qtbot.keyClick(axial.canvas, Qt.Key.Key_Down)
    assert axial.slider.value() == start - 1
    qtbot.keyClick(axial.canvas, Qt.Key.Key_PageUp)
    assert axial.slider.value() == start + 9
    qtbot.keyClick(axial.canvas, Qt.Key.Key_Home)
    assert axial.slider.value() == 0 and axial.title.text().startswith("Axial · I 30.0 mm ·")
    # The wheel steps the sagittal plane by one x voxel (0.5 mm toward L).
    before = _position_mm(sagittal.title.text())
    _wheel(sagittal.canvas, sagittal.canvas.rect().center(), +1)
    assert _position_mm(sagittal.title.text()) == pytest.approx(before + SPACING[0])


def test_right_drag_changes_window_and_level_by_the_drag(panel, ct) -> None:
    axial = panel.views[0]
    assert (panel.window.width, panel.window.level) == (1000.0, 400.0)  # CT-bone, no DICOM
    centre = QPointF(axial.canvas.image_rect().center())
    _drag(axial.canvas, Qt.MouseButton.RightButton, centre, centre + QPointF(50, -30))
    assert panel.window.width == pytest.approx(1000.0 + 50 * WL_HU_PER_PIXEL)
    assert panel.window.level == pytest.approx(400.0 - 30 * WL_HU_PER_PIXEL)
    assert panel.preset.currentData() == CUSTOM_PRESET
    assert panel.wl_label.text() == "W 1200 / L 280"
    # The slices are redrawn with the new window (a block pixel of the axial slice).
    panel.set_slice(0, 8)
    grey = window_to_uint8(np.array([BLOCK_HU]), panel.window.width, panel.window.level)[0]
    assert tuple(axial.canvas._buffer[10, 12]) == (grey,) * 3
    # Key 1 in a view selects the first preset again.
    panel.views[0].canvas.setFocus()
    QApplication.sendEvent(axial.canvas, _key(Qt.Key.Key_1))
    assert (panel.window.width, panel.window.level) == (1000.0, 400.0)


def _key(key):
    from PySide6.QtGui import QKeyEvent

    return QKeyEvent(QKeyEvent.Type.KeyPress, key, NONE)


def test_zoom_about_the_cursor_pan_and_reset(qtbot, panel, ct) -> None:
    axial = panel.views[0]
    canvas = axial.canvas
    fitted = canvas.fitted_rect()
    anchor = QPointF(fitted.left() + 0.3 * fitted.width(), fitted.top() + 0.6 * fitted.height())
    before = canvas.fractions_at(anchor)
    _wheel(canvas, anchor, +2, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom == pytest.approx(ZOOM_STEP ** 2)
    assert canvas.image_rect().width() == pytest.approx(fitted.width() * ZOOM_STEP ** 2)
    assert canvas.fractions_at(anchor) == pytest.approx(before)  # the point under the cursor
    slice_before = axial.slider.value()
    assert slice_before == 12  # Ctrl+wheel zoomed and did not step
    # Pan: middle drag and Shift + left drag move the image by the drag.
    rect = canvas.image_rect()
    _drag(canvas, Qt.MouseButton.MiddleButton, QPointF(100, 100), QPointF(130, 120))
    _drag(canvas, Qt.MouseButton.LeftButton, QPointF(100, 100), QPointF(90, 105),
          Qt.KeyboardModifier.ShiftModifier)
    moved = canvas.image_rect()
    assert (moved.left() - rect.left(), moved.top() - rect.top()) == pytest.approx((20, 25))
    # A click on a zoomed, panned view still lands on the voxel under the cursor.
    nz, ny, nx = ct.array.shape
    _click(canvas, _pixel_pos(canvas, 20, 7, (ny, nx)))
    assert panel.views[1].slider.value() == 7 and panel.views[2].slider.value() == 20
    qtbot.keyClick(canvas, Qt.Key.Key_R)
    assert canvas.zoom == 1.0 and canvas.image_rect() == canvas.fitted_rect()
    qtbot.keyClick(canvas, Qt.Key.Key_Plus)
    assert canvas.zoom == pytest.approx(ZOOM_STEP)
    panel.reset_button.click()
    assert canvas.zoom == 1.0


def test_hu_and_lps_position_under_the_cursor(panel, ct) -> None:
    axial = panel.views[0]
    nz, ny, nx = ct.array.shape
    panel.set_slice(0, 7)
    for (y, x), hu in (((9, 12), BLOCK_HU), ((2, 30), -1000)):
        _hover(axial.canvas, _pixel_pos(axial.canvas, y, x, (ny, nx)))
        expected = lps_text(ct.index_to_lps(np.array([x, y, 7.0])))
        assert panel.readout.text() == f"Axial: {expected} · {hu} HU"
    # The sagittal view flips its rows (superior up): row 0 is the top z slice.
    sagittal = panel.views[1]
    panel.set_slice(1, 15)
    _hover(sagittal.canvas, _pixel_pos(sagittal.canvas, nz - 1 - 10, 12, (nz, ny)))
    assert panel.readout.text().endswith(f"· {BLOCK_HU} HU")
    assert lps_text(ct.index_to_lps(np.array([15, 12, 10.0]))) in panel.readout.text()
    QApplication.sendEvent(sagittal.canvas, _leave())
    assert panel.readout.text() == ""


def _leave():
    from PySide6.QtCore import QEvent

    return QEvent(QEvent.Type.Leave)


def test_ruler_measures_mm_with_anisotropic_spacing(qtbot, panel, ct) -> None:
    nz, ny, nx = ct.array.shape
    axial, _, coronal = panel.views
    qtbot.keyClick(axial.canvas, Qt.Key.Key_M)
    assert panel.ruler_button.isChecked() and axial.canvas.ruler_mode
    # 10 voxels across (x, 0.5 mm) and 10 down (y, 0.8 mm) measure differently.
    _drag(axial.canvas, Qt.MouseButton.LeftButton, _pixel_pos(axial.canvas, 4, 5, (ny, nx)),
          _pixel_pos(axial.canvas, 4, 15, (ny, nx)))
    assert panel.ruler["length_mm"] == pytest.approx(10 * SPACING[0])
    _drag(axial.canvas, Qt.MouseButton.LeftButton, _pixel_pos(axial.canvas, 4, 5, (ny, nx)),
          _pixel_pos(axial.canvas, 14, 5, (ny, nx)))
    assert panel.ruler["length_mm"] == pytest.approx(10 * SPACING[1])
    # Coronal: 20 x voxels and 10 z voxels (2 mm) = sqrt(10^2 + 20^2) mm.
    _drag(coronal.canvas, Qt.MouseButton.LeftButton, _pixel_pos(coronal.canvas, 4, 5, (nz, nx)),
          _pixel_pos(coronal.canvas, 14, 25, (nz, nx)))
    assert panel.ruler["length_mm"] == pytest.approx(np.hypot(20 * SPACING[0], 10 * SPACING[2]))
    assert panel.ruler_label.text().startswith("Ruler: 22.4 mm (Coronal, P ")
    assert coronal.canvas._ruler is not None and axial.canvas._ruler is None
    # It is drawn on its own slice only, and Delete clears it.
    qtbot.keyClick(coronal.canvas, Qt.Key.Key_Up)
    assert coronal.canvas._ruler is None and panel.ruler is not None
    qtbot.keyClick(coronal.canvas, Qt.Key.Key_Delete)
    assert panel.ruler is None and panel.ruler_label.text() == ""
    # Ruler off: a left click is the crosshair again.
    panel.ruler_button.click()
    assert not coronal.canvas.ruler_mode


def test_click_moves_the_crosshair_and_emits_its_lps_point(qtbot, panel, ct) -> None:
    nz, ny, nx = ct.array.shape
    axial, sagittal, coronal = panel.views
    points = []
    panel.crosshair_moved.connect(points.append)
    _click(axial.canvas, _pixel_pos(axial.canvas, 9, 31, (ny, nx)))
    assert (sagittal.slider.value(), coronal.slider.value()) == (31, 9)
    np.testing.assert_allclose(points[-1], ct.index_to_lps(np.array([31, 9, axial.slider.value()])),
                               atol=1e-9)
    np.testing.assert_allclose(panel.crosshair_lps, points[-1])
    panel.set_volume(ct)  # a new case removes the point (and the 3D marker)
    assert points[-1] is None and panel.crosshair_lps is None


def test_the_dicom_window_is_the_first_preset_and_the_default(qtbot, ct) -> None:
    from pydicom.dataset import Dataset

    header = Dataset()
    header.WindowCenter, header.WindowWidth = "40", "400"
    dicom_ct = Volume(array=ct.array, spacing_mm=SPACING, origin_lps_mm=ORIGIN,
                      metadata=CTMetadata(source_format="dicom", source_headers=(header,) * 3))
    widget = SliceViewsPanel()
    qtbot.addWidget(widget)
    widget.set_volume(dicom_ct)
    assert widget.preset.itemData(0) == "dicom" and widget.preset.currentIndex() == 0
    assert (widget.window.width, widget.window.level) == (400.0, 40.0)
    assert widget.preset.itemText(0).startswith("DICOM window")
    widget.set_preset("bone")
    assert (widget.window.width, widget.window.level) == (1000.0, 400.0)
    # A CT without the tags (NIfTI) offers the Slicer presets and opens in CT-bone.
    widget.set_volume(ct)
    assert [widget.preset.itemData(i) for i in range(widget.preset.count())] == \
        [*PRESETS, CUSTOM_PRESET]
    assert widget.window == PRESETS["bone"]


def test_help_lists_every_shortcut_and_new_controls_have_tooltips(qtbot, panel) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    file_menu = window.menuBar().addMenu("&File")
    file_menu.addAction("&Open file…").setShortcut("Ctrl+O")
    window.menuBar().addMenu("&Help").addAction("&About")
    action = install_help_menu(window)
    assert install_help_menu(window) is action  # idempotent
    help_menu = window.menuBar().actions()[-1].menu()
    assert help_menu.actions()[0] is action and action.shortcut().toString() == "F1"
    action.trigger()
    dialog = window.shortcuts_dialog
    rows = {(dialog.table.item(r, 1).text(), dialog.table.item(r, 2).text())
            for r in range(dialog.table.rowCount())}
    assert ("Ctrl+O", "Open file") in rows and ("F1", "Keyboard shortcuts") in rows
    assert all((s.keys, s.does) in rows for s in SHORTCUTS)
    assert len(shortcut_rows()) == len(SHORTCUTS)
    dialog.close()
    # Every key of the table reaches a command the views handle.
    handled = {"step", "end", "zoom", "reset_view", "ruler", "clear_ruler", "preset"}
    for shortcut in SHORTCUTS:
        for key, arg in shortcut.bindings:
            assert command_for_key(key) == (shortcut.command, arg)
            assert shortcut.command in handled
    assert command_for_key(Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier) is None
    controls = [w for kind in (QToolButton, QComboBox, QSlider) for w in panel.findChildren(kind)]
    controls += [panel.wl_label, panel.readout, panel.ruler_label, panel.note]
    assert len(controls) >= 10
    assert all(w.toolTip() for w in controls), [w for w in controls if not w.toolTip()]


def test_install_links_the_crosshair_to_a_3d_marker(qtbot, panel, ct) -> None:
    class FakeView3D:
        def __init__(self):
            self.points = []

        def set_marker(self, point):
            self.points.append(point)

    window = QMainWindow()
    qtbot.addWidget(window)
    window.slice_views, window.view3d = panel, FakeView3D()
    install_slice_viewer(window)
    install_slice_viewer(window)  # once only
    nz, ny, nx = ct.array.shape
    axial = panel.views[0]
    _click(axial.canvas, _pixel_pos(axial.canvas, 3, 4, (ny, nx)))
    assert len(window.view3d.points) == 1
    np.testing.assert_allclose(window.view3d.points[0],
                               ct.index_to_lps(np.array([4, 3, axial.slider.value()])))


def test_the_3d_view_marks_the_crosshair_point(qtbot) -> None:
    from app.widgets.view3d import View3D

    view = View3D()
    qtbot.addWidget(view)
    try:
        view.set_marker(np.array([1.0, 2.0, 3.0]))
        actor = view._marker_actor
        assert view._overlay.HasViewProp(actor)
        # Three 12 mm axes centred on the point.
        np.testing.assert_allclose(actor.GetBounds(), (-5, 7, -4, 8, -3, 9))
        view.set_marker(None)
        assert not view._overlay.HasViewProp(actor) and view.marker_lps is None
    finally:
        view.close_plotter()
