"""The slice views' tool hook (for label editing) next to the root handles: with a tool the left
button gives LPS events only; without one the roots' control points and the crosshair keep it."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from spinect_core.labels import LabelTable
from spinect_core.volume import Volume

from app.widgets.root_overlay import RootHandle, RootOverlay
from app.widgets.slice_views import SliceViewsPanel


@pytest.fixture()
def panel(qtbot):
    ct = Volume(array=np.zeros((20, 30, 40), np.float32), spacing_mm=(1.0, 1.0, 2.0),
                origin_lps_mm=(0.0, 0.0, 0.0))
    p = SliceViewsPanel()
    qtbot.addWidget(p)
    p.resize(900, 400)
    p.show()
    p.set_volume(ct)
    return p


def _centre(canvas) -> QPoint:
    r = canvas.image_rect()
    return QPoint(round(r.center().x()), round(r.center().y()))


def test_a_tool_gets_lps_events_and_nothing_else(qtbot, panel) -> None:
    got = []
    for signal in (panel.slice_clicked, panel.slice_dragged, panel.slice_released):
        signal.connect(got.append)
    crosshair = []
    panel.crosshair_moved.connect(crosshair.append)
    axial = panel.views[0]
    # A control point right under the press: a tool does not grab it.
    centre = _centre(axial.canvas)
    r, c = axial.canvas.fractions_at(QPointF(centre))
    index = panel.index_at(axial, r, c)
    handle = RootHandle("left", "exiting_l5", 0, tuple(panel.ct.index_to_lps(index)), 2.5, 3)
    panel.set_root_overlay(RootOverlay(handles=(handle,), lines=()))
    assert axial.canvas.handle_at(QPointF(centre)) is not None
    moved = []
    panel.root_point_moved.connect(lambda *a: moved.append(a))

    panel.set_tool("brush", radius_mm=3.0)
    assert panel.tool == "brush"
    qtbot.mousePress(axial.canvas, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(axial.canvas, centre + QPoint(20, 0))
    qtbot.mouseRelease(axial.canvas, Qt.MouseButton.LeftButton, pos=centre + QPoint(20, 0))
    assert [e.kind for e in got][0] == "press" and got[-1].kind == "release"
    assert {e.view for e in got} == {"Axial"} and all(e.axis == 0 for e in got)
    first = got[0]
    np.testing.assert_allclose(first.lps_mm, panel.ct.index_to_lps(first.index_xyz))
    np.testing.assert_allclose(first.index_xyz, index)
    assert first.slice_index == axial.slider.value() and first.inside
    assert first.buttons & int(Qt.MouseButton.LeftButton.value)
    # 20 px to the right = towards the patient's left (radiological view): L grows, S stays.
    assert got[-1].lps_mm[0] > first.lps_mm[0] and got[-1].lps_mm[2] == first.lps_mm[2]
    assert not crosshair and not moved

    # Without the tool the same press grabs the control point (no tool event).
    panel.set_tool(None)
    got.clear()
    qtbot.mousePress(axial.canvas, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(axial.canvas, centre + QPoint(20, 0))
    qtbot.mouseRelease(axial.canvas, Qt.MouseButton.LeftButton, pos=centre + QPoint(20, 0))
    assert not got and len(moved) == 1
    # Off the control points: the crosshair and the tool events both.
    qtbot.mouseClick(axial.canvas, Qt.MouseButton.LeftButton, pos=centre + QPoint(0, 40))
    assert [e.kind for e in got] == ["press", "release"] and len(crosshair) == 1


def test_label_array_replaced_keeps_hidden_classes(panel) -> None:
    labels = np.zeros(panel.ct.array.shape, np.uint8)
    table = LabelTable({0: "background", 1: "L5", 2: "nerve"})
    panel.set_labels(Volume(array=labels, spacing_mm=(1.0, 1.0, 2.0),
                            origin_lps_mm=(0.0, 0.0, 0.0)), table)
    panel.set_structure_visible("nerve", False)
    edited = labels.copy()
    edited[10, :, :] = 2
    panel.set_label_array(edited)
    assert panel.labels is edited and not panel._visible_ids[2]
    panel.set_labels(Volume(array=edited, spacing_mm=(1.0, 1.0, 2.0),
                            origin_lps_mm=(0.0, 0.0, 0.0)), LabelTable({0: "background", 1: "L5", 2: "nerve"}))
    assert not panel._visible_ids[2]  # same classes: still hidden
    with pytest.raises(ValueError):
        panel.set_label_array(np.zeros((2, 2, 2), np.uint8))
