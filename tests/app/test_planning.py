"""Planning in the window: the plan step, live windows, best views, the needle (draw, choose the
window, nudge, pick), the oblique planes, the plan export and anatomy errors.

The plan of the 2 mm phantom (quick search) is computed once per session; most tests put a copy
into the window with the controller's state setter, one test runs the real plan step.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from spinect_core.labels import DEFAULT_LABELS

from app import planning
from app.export import ExportRequest
from app.state import SegmentationSource, SettingsValues
from tests.app.conftest import wait_idle
from tests.app.test_segment_and_view import load, show_true_labels


def _angle_deg(a, b) -> float:
    a = np.asarray(a, float) / np.linalg.norm(a)
    b = np.asarray(b, float) / np.linalg.norm(b)
    return math.degrees(math.acos(float(np.clip(a @ b, -1.0, 1.0))))


@pytest.fixture(scope="session")
def phantom_plan(phantom_case) -> planning.PlanningResult:
    """The phantom's plan with the app's quick options (the truth labels as segmentation)."""
    ph = phantom_case["phantom"]
    options = planning.plan_options(SettingsValues(plan_search="quick"))
    return planning.run_plan(ph.ct, ph.labels, DEFAULT_LABELS, options=options,
                             segmentation_source="truth")


def _copy(result: planning.PlanningResult) -> planning.PlanningResult:
    # Tests change needles in the plan; each gets its own copy (the engine is read only).
    return planning.PlanningResult(engine=result.engine, plan=copy.deepcopy(result.plan),
                                   body_mask=result.body_mask, planes=dict(result.planes))


@pytest.fixture()
def planned(qtbot, window, phantom_case, phantom_plan):
    """The window with the phantom, its surfaces and the plan shown (best view, live windows)."""
    load(qtbot, window, phantom_case["ct"])
    show_true_labels(qtbot, window, phantom_case["phantom"])
    with qtbot.waitSignal(window.live_windows_shown, timeout=60_000):
        window.controller.set_plan_result(_copy(phantom_plan))
    return window


def _live_settled(window) -> bool:
    return not window.controller.live.busy


# --- the plan step -------------------------------------------------------------------------------
def test_plan_step_runs_and_fills_the_panel(qtbot, window, phantom_case, dialogs) -> None:
    load(qtbot, window, phantom_case["ct"])
    show_true_labels(qtbot, window, phantom_case["phantom"])
    panel = window.planning_panel
    assert window.case_panel.plan_button.isEnabled() and panel.plan_button.isEnabled()
    with qtbot.waitSignal(window.live_windows_shown, timeout=180_000):
        with qtbot.waitSignal(window.controller.pipeline_finished, timeout=180_000) as done:
            qtbot.mouseClick(panel.plan_button, Qt.MouseButton.LeftButton)
            assert window.progress.stage.text() == "Planning L5/S1"
    assert done.args[0] is True, dialogs.errors
    assert dialogs.errors == []
    session = window.controller.session
    plan = session.plan
    assert window.case_panel.step_status("plan") == "done"
    for side, sp in plan.sides.items():
        for kind in planning.KINDS:
            wp = sp.window(kind)
            assert wp.found, (side, kind, wp.reason)
            assert panel.best_area_labels[(side, kind)].text() == \
                f"{wp.plateau_view.area_mm2:.1f} mm²"
            assert "ipsilateral" in panel.carm_labels[(side, kind)].text()
            assert panel.best_buttons[(side, kind)].isEnabled()
    # The needle of the shown side is summarised, drawn, and its planes are shown.
    side = panel.needle_side
    traj = plan.sides[side].trajectory
    assert panel.needle_values["length"].text() == f"{traj.length_mm:.1f} mm"
    assert "clear" in panel.needle_values["verdict"].text()
    assert panel.window_combo.currentData() == plan.sides[side].trajectory_window
    assert window.view3d.needle_actor(side) is not None
    assert window.bottom_tabs.currentWidget() is window.needle_planes
    assert window.needle_planes.planes is session.planes[side]
    # The view turned to the needle window's best view; its area is the plan's.
    kind = plan.sides[side].trajectory_window
    wp = plan.sides[side].window(kind)
    assert _angle_deg(window.view3d.view_direction(), wp.plateau_view.view_direction_lps) < 1.0
    qtbot.waitUntil(lambda: _live_settled(window), timeout=60_000)
    assert panel.displayed_area(side, kind) == pytest.approx(wp.plateau_view.area_mm2, abs=0.051)
    assert any(name.startswith(f"{side}:") for name in window.view3d.outline_names)
    assert "(coming" not in panel.status.text()


def test_cancel_stops_planning_and_keeps_the_surfaces(qtbot, window, phantom_case,
                                                      dialogs) -> None:
    load(qtbot, window, phantom_case["ct"])
    show_true_labels(qtbot, window, phantom_case["phantom"])
    progress = window.progress
    assert window.plan()
    qtbot.waitUntil(lambda: progress.bar.value() > 0, timeout=60_000)
    assert not window.planning_panel.plan_button.isEnabled()  # busy
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=60_000) as done:
        qtbot.mouseClick(progress.cancel_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert done.args[0] is False and dialogs.errors == []
    assert window.case_panel.step_status("plan") == "cancelled"
    session = window.controller.session
    assert session.plan is None and session.has_meshes
    assert window.planning_panel.plan_button.isEnabled()


def test_plan_options_follow_the_settings() -> None:
    s = SettingsValues(needle_gauge=20, safety_margin_mm=3.5, variant="bony",
                       trajectory_window="kambin", plan_search="quick")
    o = planning.plan_options(s)
    assert o.trajectory.needle_gauge == 20 and o.trajectory.safety_margin_mm == 3.5
    assert o.variant == "bony" and o.trajectory_window == "kambin"
    assert (o.coarse_step_deg, o.final_step_deg) == (15.0, 2.0)
    standard = planning.plan_options(SettingsValues())
    assert (standard.coarse_step_deg, standard.final_step_deg) == (5.0, 0.5)
    assert planning.supported_gauge(30) == 25 and planning.supported_gauge(14) == 18


def test_anatomy_error_shows_a_dialog_and_keeps_the_app_usable(qtbot, window, phantom_case,
                                                               dialogs) -> None:
    load(qtbot, window, phantom_case["ct"])
    labels = phantom_case["phantom"].labels
    box = np.zeros(labels.array.shape, np.uint8)
    nz, ny, nx = box.shape
    box[nz // 3: 2 * nz // 3, ny // 3: 2 * ny // 3, nx // 3: 2 * nx // 3] = 1  # a bone brick
    with qtbot.waitSignal(window.surfaces_shown, timeout=120_000):
        window.controller.set_segmentation(labels.with_array(box), DEFAULT_LABELS,
                                           source=SegmentationSource(kind="file",
                                                                     description="box"))
    wait_idle(qtbot, window)
    with qtbot.waitSignal(window.controller.pipeline_finished, timeout=120_000) as done:
        assert window.plan()
    wait_idle(qtbot, window)
    assert done.args[0] is False
    assert [e.title for e in dialogs.errors] == ["Anatomy not found"]
    assert "L5" in dialogs.errors[0].hint
    session = window.controller.session
    assert session.plan is None and session.has_meshes and session.has_labels
    assert window.case_panel.step_status("plan") == "failed"
    assert "failed" in window.planning_panel.status.text()
    assert window.view3d.structure_names == ["bone"]
    # Still usable: every action is available again.
    assert window.planning_panel.plan_button.isEnabled()
    assert window.case_panel.segment_button.isEnabled()
    assert window.act_export.isEnabled()


# --- live windows and best views -----------------------------------------------------------------
def test_best_view_button_turns_the_camera_and_shows_the_core_area(qtbot, planned) -> None:
    window = planned
    panel = window.planning_panel
    engine = window.controller.session.engine
    for side, kind in (("right", "kambin"), ("left", "safe")):
        wp = window.controller.session.plan.sides[side].window(kind)
        d = wp.plateau_view.view_direction_lps
        with qtbot.waitSignal(window.live_windows_shown, timeout=60_000) as shown:
            qtbot.mouseClick(panel.best_buttons[(side, kind)], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: _live_settled(window), timeout=60_000)
        assert _angle_deg(window.view3d.view_direction(), d) < 1.0
        up = np.array(window.view3d.plotter.camera.GetViewUp())
        assert up[2] > 0.5  # cranial up
        live = panel.live
        assert live.pixel_mm == planning.SNAPPED_PIXEL_MM
        np.testing.assert_allclose(live.direction_lps, d / np.linalg.norm(d), atol=1e-12)
        core = engine.windows_for_view(d, pixel_mm=planning.SNAPPED_PIXEL_MM)[side].area(kind)
        assert panel.displayed_area(side, kind) == pytest.approx(core, abs=0.051)
        assert core == pytest.approx(wp.plateau_view.area_mm2, rel=1e-6)
        assert f"{side}:{kind}" in window.view3d.outline_names
        assert shown.args[0] is live


def test_live_windows_follow_the_camera_latest_request_wins(qtbot, planned) -> None:
    window = planned
    controller = window.controller
    engine = controller.session.engine
    a, b = np.radians(35), np.radians(-10)
    d = np.array([-np.sin(a) * np.cos(b), -np.cos(a) * np.cos(b), np.sin(b)])
    started = controller.live.started_count
    with qtbot.waitSignal(window.view3d.view_direction_changed, timeout=5000):
        for k in range(5):  # a burst of camera changes: one throttled report
            window.view3d.set_view_direction(d + 0.01 * k * np.array([0, 0, 1]))
        window.view3d.set_view_direction(d)
    qtbot.waitUntil(lambda: _live_settled(window) and window.planning_panel.live is not None
                    and _angle_deg(window.planning_panel.live.direction_lps, d) < 1e-6,
                    timeout=60_000)
    assert controller.live.started_count - started <= 2
    live = window.planning_panel.live
    assert live.pixel_mm == planning.LIVE_PIXEL_MM
    expect = planning.live_windows(engine, d, pixel_mm=planning.LIVE_PIXEL_MM)
    for key, area in expect.areas_mm2.items():
        assert window.planning_panel.displayed_area(*key) == pytest.approx(area, abs=0.051)
    # Requests while one runs: the waiting one is replaced, only the latest result is shown.
    shown = []
    window.live_windows_shown.connect(shown.append)
    dirs = [d + np.array([0.0, 0.0, 0.02 * k]) for k in range(1, 5)]
    for v in dirs:
        controller.request_live_windows(v)
    qtbot.waitUntil(lambda: _live_settled(window), timeout=60_000)
    qtbot.wait(50)
    assert controller.live.dropped_count >= 2
    assert len(shown) == 1
    assert _angle_deg(shown[0].direction_lps, dirs[-1]) < 1e-6


# --- the needle ----------------------------------------------------------------------------------
def test_needle_actor_runs_from_entry_to_target(planned) -> None:
    window = planned
    plan = window.controller.session.plan
    for side, sp in plan.sides.items():
        traj = sp.trajectory
        entry, target = window.view3d.needle_endpoints[side]
        np.testing.assert_allclose(entry, traj.entry_lps_mm, atol=1e-9)
        np.testing.assert_allclose(target, traj.target_lps_mm, atol=1e-9)
        actor = window.view3d.needle_actor(side)
        assert actor is not None and actor.GetVisibility()
        b = np.array(actor.GetBounds()).reshape(3, 2)
        lo = np.minimum(traj.entry_lps_mm, traj.target_lps_mm) - 1.0
        hi = np.maximum(traj.entry_lps_mm, traj.target_lps_mm) + 1.0
        assert np.all(b[:, 0] >= lo) and np.all(b[:, 1] <= hi)
        assert np.linalg.norm(b[:, 1] - b[:, 0]) == pytest.approx(traj.length_mm, abs=2.5)


def test_nudge_buttons_move_the_target_and_replan(qtbot, planned) -> None:
    window = planned
    panel = window.planning_panel
    side = panel.needle_side
    plan = window.controller.session.plan
    before = plan.sides[side].trajectory
    right, up = planning.nudge_axes(before.entry_direction_lps)
    assert abs(right @ up) < 1e-12 and abs(up @ before.entry_direction_lps) < 1e-12
    assert up[2] > 0
    with qtbot.waitSignal(window.controller.trajectory_changed, timeout=30_000):
        qtbot.mouseClick(panel.nudge_buttons["up"], Qt.MouseButton.LeftButton)
        qtbot.mouseClick(panel.nudge_buttons["up"], Qt.MouseButton.LeftButton)
        qtbot.mouseClick(panel.nudge_buttons["right"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.controller.needle.busy
                    and side not in window.controller.pending_targets, timeout=30_000)
    after = window.controller.session.plan.sides[side].trajectory  # a new plan replaced it
    assert after is not before and after.target_source == "point"
    moved = after.target_lps_mm - before.target_lps_mm
    np.testing.assert_allclose(moved, 1.0 * up + 0.5 * right, atol=1e-9)
    np.testing.assert_allclose(after.direction_lps, before.direction_lps, atol=1e-9)
    assert after.length_mm == pytest.approx(before.length_mm, abs=3.0)
    assert panel.needle_values["length"].text() == f"{after.length_mm:.1f} mm"
    np.testing.assert_allclose(window.view3d.needle_endpoints[side][1], after.target_lps_mm)
    assert "by hand" in panel.target_note.text()
    assert window.needle_planes.planes is window.controller.session.planes[side]
    # Re-aim: back to the window's deepest point.
    with qtbot.waitSignal(window.controller.trajectory_changed, timeout=30_000):
        qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    again = window.controller.session.plan.sides[side].trajectory
    assert again.target_source == "window"
    np.testing.assert_allclose(again.target_lps_mm, before.target_lps_mm, atol=1e-6)


def test_choosing_the_other_window_replans_through_it(qtbot, planned) -> None:
    window = planned
    panel = window.planning_panel
    side = panel.needle_side
    sp = window.controller.session.plan.sides[side]
    other = "kambin" if sp.trajectory_window == "safe" else "safe"
    with qtbot.waitSignal(window.controller.trajectory_changed, timeout=30_000):
        panel.window_combo.setCurrentIndex(panel.window_combo.findData(other))
        panel.window_combo.activated.emit(panel.window_combo.currentIndex())
    sp = window.controller.session.plan.sides[side]  # a new plan replaced the one shown
    assert sp.trajectory_window == other
    d = sp.window(other).plateau_view.view_direction_lps
    assert _angle_deg(sp.trajectory.direction_lps, d) < 1e-6
    assert window.controller.replans[side].in_window
    assert panel.window_combo.currentData() == other


def test_clicking_in_3d_places_the_target(qtbot, planned) -> None:
    window = planned
    panel = window.planning_panel
    side = panel.needle_side
    plan = window.controller.session.plan
    before = plan.sides[side].trajectory
    window.view_along_needle(side)
    qtbot.wait(50)
    qtbot.mouseClick(panel.pick_button, Qt.MouseButton.LeftButton)
    assert panel.pick_button.isChecked() and window.view3d.picking
    right, up = planning.nudge_axes(before.entry_direction_lps)
    wanted = before.target_lps_mm + 1.5 * right - 1.0 * up
    x, y = window.view3d.world_to_widget(wanted)
    camera_before = np.array(window.view3d.plotter.camera.GetPosition())
    with qtbot.waitSignal(window.controller.trajectory_changed, timeout=30_000):
        qtbot.mouseClick(window.view3d.plotter.interactor, Qt.MouseButton.LeftButton,
                         pos=QPoint(round(x), round(y)))
    after = window.controller.session.plan.sides[side].trajectory
    # Within a screen pixel of the point clicked, on the plane across the needle.
    assert np.linalg.norm(after.target_lps_mm - wanted) < 0.5
    assert abs((after.target_lps_mm - before.target_lps_mm) @ before.entry_direction_lps) < 1e-6
    np.testing.assert_allclose(window.view3d.plotter.camera.GetPosition(), camera_before)
    panel.set_pick_checked(False)
    assert not window.view3d.picking


# --- planes and export ---------------------------------------------------------------------------
def test_needle_planes_are_shown_for_the_chosen_side(qtbot, planned) -> None:
    window = planned
    view = window.needle_planes
    for index, side in enumerate(("left", "right")):
        window.planning_panel.side_combo.setCurrentIndex(index)
        planes = window.controller.session.planes[side]
        assert view.planes is planes and planes.side == side
        assert planes.needle_rgb.ndim == 3 and planes.needle_rgb.shape[2] == 3
        # The needle is drawn in orange along the middle row of the needle plane.
        mid = planes.needle_rgb.shape[0] // 2
        rows = planes.needle_rgb[mid - 4: mid + 5].astype(int)
        orange = ((rows[..., 0] > 200) & (rows[..., 1] > 100) & (rows[..., 1] < 180)
                  & (rows[..., 2] < 60))
        assert orange.any(axis=0).sum() > 0.5 * planes.length_mm / planes.pixel_mm
        assert side.capitalize() in view.note.text()
    assert window.view3d.needle_endpoints.keys() == {"left", "right"}


def test_export_writes_the_plan_and_never_overwrites_silently(qtbot, planned, dialogs,
                                                              tmp_path) -> None:
    from spinect_core.report.exports import validate_plan_document

    window = planned
    side = window.planning_panel.needle_side
    with qtbot.waitSignal(window.controller.trajectory_changed, timeout=30_000):
        window.nudge_target(side, 0.5, 0.0)
    qtbot.waitUntil(lambda: not window.controller.needle.busy, timeout=30_000)
    traj = window.controller.session.plan.sides[side].trajectory
    out = tmp_path / "export"
    request = ExportRequest(folder=out, label_map=True, mesh_formats=[], screenshot=True,
                            plan=True, plan_dicom=True)
    dialogs.export_answer = request
    written = window.export()
    assert dialogs.export_offers[-1]["has_plan"] is True
    names = {p.relative_to(out).as_posix() for p in written}
    for name in ("plan.json", "report.html", "needle_left.mrk.json", "needle_right.mrk.json",
                 "view3d.png", "segmentation.nii.gz", f"planes_{side}/needle_plane.nii.gz",
                 f"planes_{side}/needle_plane.png", f"planes_{side}/companion_plane.nii.gz",
                 "report.pdf", f"dicom/planes_{side}_needle/IM00001.dcm", "dicom/seg.dcm",
                 "dicom/sr.dcm", "dicom/report_pdf.dcm"):
        assert name in names, sorted(names)  # the DICOM objects too: Send to PACS stores these
    doc = json.loads((out / "plan.json").read_text())
    validate_plan_document(doc)
    # The exported needle is the one on screen (nudged), in LPS.
    np.testing.assert_allclose(doc["sides"][side]["trajectory"]["target_lps_mm"],
                               traj.target_lps_mm, atol=1e-6)
    markup = json.loads((out / f"needle_{side}.mrk.json").read_text())
    assert markup["markups"][0]["coordinateSystem"] == "LPS"
    assert window.settings.last_export_dir == str(out)
    assert dialogs.errors == []
    # Again into the same folder: the user is asked; "no" replaces nothing.
    before = {p: p.stat().st_mtime_ns for p in written}
    dialogs.overwrite_answer = False
    assert window.export_to(request) == []
    assert any(p.name == "plan.json" for p in dialogs.overwrite_questions[-1])
    assert {p: p.stat().st_mtime_ns for p in written} == before
    dialogs.overwrite_answer = True
    again = window.export_to(request)
    assert {p.relative_to(out).as_posix() for p in again} == names
    assert dialogs.errors == []
