"""Label brush and eraser in the app: a dab through the slice views' tool hook changes the label
map the views show (not the session's), the plan is marked outdated, undo restores, "Re-plan
with the edited labels" hands the edited map to the controller and the new plan says what the
operator changed (in words and as plan.json's ``segmentation.operator_edits``); the main window
exports the edits beside an export, reopens them, and writes a training case into a site folder;
Ctrl+Z with the brush on undoes the stroke, not a root correction.

A small synthetic CT and label map (48 x 56 x 64 voxels, anisotropic) put straight into the
session: no phantom, no segmentation, no plan step.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from spinect_core.labels import DEFAULT_LABELS
from spinect_core.volume import Volume

from app.label_editing import LabelEditing, operator_edit_records
from app.state import SegmentationSource
from app.widgets.label_tools import LabelToolsBar
from app.widgets.slice_views import SliceViewsPanel
from tests.app.test_planning import phantom_plan, planned  # noqa: F401 - fixtures

BONE, NERVE = DEFAULT_LABELS.id_of("bone"), DEFAULT_LABELS.id_of("nerve")


@pytest.fixture(scope="module")
def case():
    a = np.zeros((48, 56, 64), np.uint8)
    a[10:38, 14:40, 16:44] = BONE
    a[20:30, 26:28, 46:52] = NERVE
    labels = Volume(array=a, spacing_mm=(0.8, 0.8, 1.5), origin_lps_mm=(-25.0, -20.0, 80.0))
    ct = labels.with_array(np.where(a == BONE, 800, np.where(a == NERVE, 40, -80))
                           .astype(np.int16))
    return ct, labels


def _session(controller, ct, labels) -> None:
    controller.store.replace_session(
        ct=ct, labels=labels, table=DEFAULT_LABELS,
        segmentation_source=SegmentationSource(kind="file", description="label map file (nii.gz)"))


def _axial(panel):
    return next(i for i, v in enumerate(panel.views) if v.spec.axis == 0)


def test_a_dab_in_a_slice_view_edits_the_shown_map_and_outdates_the_plan(
        qtbot, settings, dialogs, case, monkeypatch) -> None:
    from spinect_core.planning.plan import Plan

    from app.controller import SessionController

    ct, labels = case
    controller = SessionController(settings, dialogs)
    panel = SliceViewsPanel()
    bar = LabelToolsBar()
    qtbot.addWidget(panel)
    qtbot.addWidget(bar)
    panel.resize(1200, 420)
    panel.show()
    _session(controller, ct, labels)
    panel.set_volume(ct)
    panel.set_labels(labels, DEFAULT_LABELS)
    editing = LabelEditing(controller, panel, bar)
    controller.labels_changed.emit()
    assert editing.tool is None and panel.tool is None  # off by default
    bar.buttons["brush"].click()
    assert editing.tool == "brush" and panel.tool == "brush"
    bar.set_label("nerve")
    bar.radius.setValue(2.0)
    assert editing.label == "nerve" and editing.radius_mm == 2.0

    # One click in the middle of the axial view: a nerve disc on that slice only.
    i = _axial(panel)
    view = panel.views[i]
    view.slider.setValue(24)
    rect = view.canvas.image_rect()
    pos = QPoint(round(rect.center().x()), round(rect.center().y()))
    qtbot.mouseClick(view.canvas, Qt.MouseButton.LeftButton, pos=pos)
    edited = editing.editor.volume.array
    changed = np.argwhere(edited != labels.array)
    assert len(changed) > 0 and set(changed[:, 0]) == {24}
    assert np.all(edited[tuple(changed.T)] == NERVE)
    # A disc of 2 mm on 0.8 mm pixels: at most the voxels within 2 mm (+ rounding) of the dab.
    assert len(changed) <= 25 and editing.editor.counts()["nerve"]["added"] == len(changed)
    assert panel.labels is edited  # the views show the edited map at once
    assert np.array_equal(controller.session.labels.array, labels.array)  # the state is not
    assert editing.pending and "edited" in bar.outdated.text()
    assert not editing.plan_outdated  # no plan yet

    # A plan made before the edit is outdated; the bar offers the re-plan.
    plan = Plan(sides={}, ct_geometry=ct.geometry_dict(), segmentation_source="file",
                anatomy={})
    controller.store.replace_session(plan=plan, engine=object())
    controller.plan_changed.emit()
    assert editing.plan_outdated and "Plan outdated" in bar.outdated.text()
    assert not bar.replan_button.isHidden()

    # A stroke (press, drags, release) is one undo step; erasing bone leaves the nerve.
    ev = [panel.slice_event(i, k, 0.5, c) for k, c in (("press", 0.30), ("drag", 0.36),
                                                       ("drag", 0.42), ("release", 0.42))]
    before = edited.copy()
    editing.set_tool("erase")
    editing.set_label("bone")
    for e in ev:
        {"press": panel.slice_clicked, "drag": panel.slice_dragged,
         "release": panel.slice_released}[e.kind].emit(e)
    assert np.count_nonzero(edited == NERVE) == np.count_nonzero(before == NERVE)
    assert np.count_nonzero(edited == BONE) < np.count_nonzero(before == BONE)
    assert editing.undo()
    assert np.array_equal(edited, before)
    assert editing.undo()
    assert np.array_equal(edited, labels.array) and not editing.pending
    assert bar.outdated.text() == ""
    assert editing.redo() and editing.pending

    # Re-plan with the edited labels: the controller gets them (surfaces, then the plan step).
    controller.store.replace_session(plan=None, engine=None)
    plan_calls = []
    monkeypatch.setattr(controller, "plan", lambda: plan_calls.append(1) or True)
    settings.auto_plan = False
    assert editing.replan()
    session = controller.session
    assert np.array_equal(session.labels.array, edited) and session.labels.array is not edited
    n = editing.editor.counts()["nerve"]["changed"]
    assert f"; edited by the operator (bone {n} voxels, nerve {n} voxels)" in \
        session.segmentation_source.description  # the dab painted nerve over bone
    assert not editing.pending and editing.has_edits  # the edits still count against the start
    qtbot.waitUntil(lambda: bool(plan_calls), timeout=30_000)
    # The plan made on the edited map says what the operator changed (plan.json, report).
    controller.store.replace_session(plan=plan, engine=object())
    controller.plan_changed.emit()
    warnings = controller.session.plan.warnings
    assert any(w.startswith("nerve edited by the operator: ") and " ml; " in w and "LPS" in w
               for w in warnings)
    # ... and as data: plan.json's segmentation.operator_edits, one record per class changed.
    records = controller.session.plan.operator_edits
    assert records == operator_edit_records(editing.editor.summary())
    nerve = next(r for r in records if r["name"] == "nerve")
    assert nerve["added_voxels"] == n and nerve["removed_voxels"] == 0
    assert nerve["added_ml"] == pytest.approx(n * editing.editor.voxel_ml, abs=1e-6)
    saved = json.loads(json.dumps(controller.session.plan.to_dict()))
    assert saved["segmentation"]["operator_edits"] == records
    assert not editing.plan_outdated
    # More edits, a second re-plan: its words replace the first's (description, notes).
    first_lines = [n for n in controller.session.notes if "edited by the operator" in n]
    editing.set_tool("brush")
    editing.set_label("bone")
    assert editing.paint(ct.index_to_lps(np.array([5.0, 5.0, 5.0])), 0) > 0
    editing._update()
    assert editing.plan_outdated and editing.replan()
    description = controller.session.segmentation_source.description
    assert description.count("edited by the operator") == 1
    lines = [n for n in controller.session.notes if "edited by the operator" in n]
    assert lines == editing.editor.summary().lines() and lines != first_lines
    qtbot.waitUntil(lambda: len(plan_calls) == 2, timeout=30_000)
    controller.shutdown()


def test_window_saves_reopens_and_exports_a_training_case(window, dialogs, case,
                                                          tmp_path) -> None:
    from spinect_core.io import load_label_map
    from spinect_core.training.case_export import CASE_NAME_PATTERN

    from app.export import ExportRequest

    ct, labels = case
    c = window.controller
    _session(c, ct, labels)
    c.ct_changed.emit()
    c.labels_changed.emit()
    editing = window.label_editing
    # Tools > Label editing: B, E, [ and ] (listed in Help > Keyboard shortcuts from the menu).
    from app.widgets.shortcuts import shortcut_rows

    rows = {(keys, does) for where, keys, does in shortcut_rows(window)
            if where == "Menu Tools > Label editing"}
    assert {("B", "Label brush"), ("E", "Label eraser"), ("[", "Smaller brush"),
            ("]", "Larger brush")} <= rows
    window.act_brush.trigger()
    assert editing.tool == "brush" and window.slice_views.tool == "brush"
    assert window.label_tools.buttons["brush"].isChecked()
    editing.set_radius(2.5)
    window.act_larger.trigger()
    assert editing.radius_mm == 3.0 and window.label_tools.radius.value() == 3.0
    editing.set_label("nerve")
    centre = ct.index_to_lps(np.array([30.0, 20.0, 24.0]))
    axis = 0  # axial: numpy axis z
    assert editing.paint(centre, axis) > 0
    editing.set_tool("erase")
    editing.set_label("bone")
    editing.set_radius(2.0)
    assert editing.paint(ct.index_to_lps(np.array([20.0, 20.0, 12.0])), axis) > 0
    editing._update()
    edited = editing.editor.volume.array.copy()
    counts = editing.editor.counts()

    # An export writes the edited map beside it and the session file naming it.
    out = tmp_path / "export"
    written = window.export_to(ExportRequest(folder=out, mesh_formats=[], screenshot=False))
    names = sorted(p.name for p in written)
    assert names == sorted(["segmentation.nii.gz", "segmentation.labels.json",
                            "labels_edited.nii.gz", "labels_edited.labels.json",
                            "planning_session.json"])
    doc = json.loads((out / "planning_session.json").read_text())
    assert doc["label_edits"]["file"] == "labels_edited.nii.gz"
    assert sorted(c["name"] for c in doc["label_edits"]["summary"]["classes"]) == ["bone",
                                                                                 "nerve"]
    saved, _ = load_label_map(out / "labels_edited.nii.gz")
    assert np.array_equal(saved.array, edited) and saved.same_grid(ct)

    # Reopened on the unedited session: the same edits, one undo step.
    while editing.undo():
        pass
    assert not editing.pending
    assert window.open_planning_session_file(out / "planning_session.json")
    assert np.array_equal(editing.editor.volume.array, edited)
    assert editing.editor.counts() == counts and editing.pending

    # File > Export as training case: a generated case name in the site folder, the edited map.
    site = tmp_path / "site"
    dialogs.folder_answer = str(site)
    folder = window.export_training_case()
    assert folder is not None and folder.parent == site
    assert CASE_NAME_PATTERN.match(folder.name)
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        "ct.nii.gz", "labels.nii.gz", "labels.labels.json", "segmentation.seg.nrrd",
        "case.json"])
    exported, table = load_label_map(folder / "labels.nii.gz")
    assert table == DEFAULT_LABELS and np.array_equal(exported.array, edited)
    info = json.loads((folder / "case.json").read_text())
    assert info["source"] == "operator-reviewed" and sorted(info["edited"]) == ["bone", "nerve"]
    assert dialogs.errors == []


@pytest.mark.slow
def test_replan_with_edited_labels_keeps_root_corrections_and_marks_the_report(
        qtbot, planned, dialogs, tmp_path) -> None:  # noqa: F811 - the imported fixture
    """The phantom's plan (2 mm, quick search): a root corrected and the nerve touched up, then
    "Re-plan with the edited labels": the new plan uses the edited map, the root correction is
    applied to it again, and plan.json, the report, the session file and a training case all
    say what the operator changed."""
    from spinect_core.io import load_label_map

    from app.export import ExportRequest

    window = planned
    c = window.controller
    editing = window.label_editing
    # A root correction (as a drag in a slice view would ask for).
    state = c.root_state()
    root = state.get("left", "exiting_l5")
    pts, _ = root.controls()
    sa = c.session.engine.anatomy.sides["left"]
    k = int(np.argmin(np.linalg.norm(pts - sa.foramen_centre_lps, axis=1)))
    with qtbot.waitSignal(c.roots_changed, timeout=60_000):
        assert c.move_root_point("left", "exiting_l5", k, pts[k] - 2.0 * sa.frame.z_lps)
    qtbot.waitUntil(lambda: not c.root_edits.busy, timeout=60_000)
    assert c.has_root_corrections
    # A nerve dab beside the foramen, in its axial slice.
    window._toggle_tool("brush")
    editing.set_label("nerve")
    editing.set_radius(3.0)
    centre = np.asarray(sa.foramen_centre_lps, float) + 6.0 * np.asarray(sa.frame.x_lps)
    assert editing.paint(centre, 0) > 0
    editing._update()
    assert editing.plan_outdated
    # Exporting the outdated plan is refused with a clear message (nothing written).
    out = tmp_path / "export"
    request = ExportRequest(folder=out, label_map=True, mesh_formats=[], screenshot=False,
                            plan=True, plan_dicom=False)
    assert window.export_to(request) == [] and dialogs.errors[-1].title == "Plan outdated"
    dialogs.errors.clear()

    with qtbot.waitSignal(c.roots_changed, timeout=240_000):  # the correction applied again
        with qtbot.waitSignal(window.plan_shown, timeout=240_000):
            assert window.replan_with_edited_labels()
    qtbot.waitUntil(lambda: not c.root_edits.busy and not c.busy, timeout=60_000)
    session = c.session
    assert np.array_equal(session.labels.array, editing.editor.volume.array)
    assert c.has_root_corrections and not editing.plan_outdated
    nerve_line = next(w for w in session.plan.warnings
                      if w.startswith("nerve edited by the operator: "))

    written = window.export_to(request)
    assert dialogs.errors == []
    doc = json.loads((out / "plan.json").read_text())
    assert nerve_line in doc["warnings"]
    assert "exiting L5 root on the left: corrected by the operator" in doc["warnings"]
    assert "edited by the operator" in doc["segmentation_source"]
    assert "nerve edited by the operator" in (out / "report.html").read_text()
    # The edits as data (plan.json) and the report's roots table with the corrected root marked.
    edits = doc["segmentation"]["operator_edits"]
    assert [e["name"] for e in edits] == ["nerve"] and edits[0]["added_voxels"] > 0
    assert doc["sides"]["left"]["roots"]["exiting_l5"]["source"] == "operator"
    page = (out / "report.html").read_text()
    assert "Labels edited by the operator" in page
    marked = re.findall(r"<tr class='operator'><th>(\w+)</th><th>([^<]+)</th>", page)
    assert marked == [("left", "exiting L5 root")]
    saved = json.loads((out / "planning_session.json").read_text())
    assert [r["name"] for r in saved["roots"]] == ["exiting_l5"]
    assert saved["label_edits"]["file"] == "labels_edited.nii.gz"
    assert nerve_line in saved["notes"]
    assert {p.name for p in written} >= {"labels_edited.nii.gz", "planning_session.json"}

    # The training case: the plan's labels with the corrected root drawn in.
    site = tmp_path / "site"
    folder = window.export_training_case_to(site)
    info = json.loads((folder / "case.json").read_text())
    assert sorted(info["edited"]) == ["nerve", "roots"]
    exported, _ = load_label_map(folder / "labels.nii.gz")
    with c.engine_lock:
        assert np.array_equal(exported.array, c.session.engine.labels.array)


def test_ctrl_z_undoes_the_label_stroke_while_a_label_tool_is_on_else_the_roots(
        qtbot, window, case, monkeypatch) -> None:
    """Edit > Undo / Redo (Ctrl+Z, Ctrl+Shift+Z in a slice view): with the brush on and a stroke
    to undo, the stroke; the roots' undo is not asked. Otherwise the roots', as before."""
    from types import SimpleNamespace

    from PySide6.QtWidgets import QApplication

    ct, labels = case
    c = window.controller
    _session(c, ct, labels)
    c.ct_changed.emit()
    c.labels_changed.emit()
    # The roots' undo and redo, recorded (the window's Edit menu and a slice view's keys alike).
    calls: list[str] = []

    def recorder(name: str):
        def record() -> bool:
            calls.append(name)
            return True
        return record

    monkeypatch.setattr(c, "undo_root_edit", recorder("undo"))
    monkeypatch.setattr(c, "redo_root_edit", recorder("redo"))
    window.slice_views.root_undo_requested.connect(recorder("view undo"))
    window.slice_views.root_redo_requested.connect(recorder("view redo"))
    # A plan's engine (a stand-in: the window reads its anatomy): root edits can be undone.
    c.store.replace_session(engine=SimpleNamespace(anatomy=SimpleNamespace(sides={})))
    window._update_actions()
    assert window.act_undo.text() == "&Undo root correction" and window.act_undo.isEnabled()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5_000)
    editing = window.label_editing
    panel = window.slice_views
    view = panel.views[_axial(panel)]
    view.slider.setValue(24)
    view.canvas.setFocus()
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier

    def keys(*mods) -> None:
        modifiers = Qt.KeyboardModifier.NoModifier
        for m in mods:
            modifiers |= m
        qtbot.keyClick(view.canvas, Qt.Key.Key_Z, modifiers)

    # No label tool: Ctrl+Z undoes the last root correction.
    keys(ctrl)
    assert calls == ["undo"]

    # The brush on, one stroke in the axial view: Ctrl+Z undoes the stroke, not a root.
    window.act_brush.trigger()
    editing.set_label("nerve")
    editing.set_radius(2.0)
    rect = view.canvas.image_rect()
    pos = QPoint(round(rect.center().x()), round(rect.center().y()))
    qtbot.mouseClick(view.canvas, Qt.MouseButton.LeftButton, pos=pos)
    stroke = editing.editor.volume.array.copy()
    assert not np.array_equal(stroke, labels.array) and editing.owns_undo
    assert window.act_undo.text() == "&Undo label stroke"
    keys(ctrl)
    assert np.array_equal(editing.editor.volume.array, labels.array)
    assert calls == ["undo"]  # the roots' undo was not asked
    assert window.act_redo.text() == "&Redo label stroke"
    keys(ctrl, shift)
    assert np.array_equal(editing.editor.volume.array, stroke) and calls == ["undo"]
    # The Edit menu's items do the same.
    window.act_undo.trigger()
    assert np.array_equal(editing.editor.volume.array, labels.array) and calls == ["undo"]

    # Nothing left to undo with the brush on: Ctrl+Z is the roots' again.
    assert not editing.owns_undo and window.act_undo.text() == "&Undo root correction"
    keys(ctrl)
    assert calls == ["undo", "undo"]
    # The brush off: the stroke's redo waits; Ctrl+Shift+Z redoes a root correction.
    window.act_brush.trigger()
    assert editing.tool is None and editing.editor.can_redo and not editing.owns_redo
    keys(ctrl, shift)
    assert calls == ["undo", "undo", "redo"]
    assert np.array_equal(editing.editor.volume.array, labels.array)
