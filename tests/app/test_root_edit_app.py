"""Root edits in the app: a control point dragged in a slice view re-plans the windows in the
background as the core computes them for the edited root; Ctrl+Z restores them exactly.

One small phantom (1.5 mm, a 90 mm crop) and a left-side engine with CT roots, put straight into
a controller's session (no plan step) with a slice panel bound to it.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from spinect_core.anatomy.roots import apply_roots
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.phantom import generate_phantom
from spinect_core.phantom.params import PhantomOptions
from spinect_core.planning.l5s1 import SideScene
from spinect_core.planning.plan import PlanEngine, PlanOptions

from app import planning
from app.controller import SessionController
from app.widgets.root_overlay import handles_in_view, overlay_from_state
from app.widgets.slice_views import SliceViewsPanel

VIEW = (50.0, 0.0)  # local (alpha, beta) on the left where both windows are open


@pytest.fixture(scope="module")
def case():
    ph = generate_phantom(seed=3, spacing_mm=(1.5, 1.5, 1.5), options=PhantomOptions(crop_mm=90.0))
    engine = PlanEngine(ph.ct, ph.labels, DEFAULT_LABELS, instances=ph.instances,
                        instance_table=ph.instance_table,
                        options=PlanOptions(roots="ct", sides=("left",)))
    return ph, engine


def test_drag_in_a_slice_view_replans_and_ctrl_z_restores(qtbot, settings, dialogs, case,
                                                         tmp_path) -> None:
    from app.widgets.root_overlay import install_root_editing

    ph, engine = case
    controller = SessionController(settings, dialogs)
    panel = SliceViewsPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 450)
    panel.show()
    controller.store.replace_session(ct=ph.ct, engine=engine)
    panel.set_volume(ph.ct)
    install_root_editing(controller, panel)
    direction = engine.scenes["left"].view_direction(*VIEW)
    with qtbot.waitSignal(controller.live_windows_ready, timeout=60_000) as got:
        controller.request_live_windows(direction)
    before = dict(got.args[0].areas_mm2)
    original = engine.roots.roots["left"]["exiting_l5"]
    anatomy0, labels0 = copy.deepcopy(engine.anatomy), engine.labels

    # The control point nearest the foramen, shown in the coronal view on its own slice.
    state = controller.root_state()
    pts, _ = state.get("left", "exiting_l5").controls()
    sa = engine.anatomy.sides["left"]
    k = int(np.argmin(np.linalg.norm(pts - sa.foramen_centre_lps, axis=1)))
    view = next(v for v in panel.views if v.spec.name == "Coronal")
    depth = ph.ct.lps_to_index(pts[k][None])[0][::-1][view.spec.axis]
    view.slider.setValue(int(round(depth)))
    overlay = overlay_from_state(state)
    shown = [h for h, _r, _c in handles_in_view(overlay, view.spec, ph.ct, view.slider.value())]
    assert ("left", "exiting_l5", k) in [h.key for h in shown]
    canvas = view.canvas
    grab = next(i for i, h in enumerate(canvas._handles) if h[0].key == ("left", "exiting_l5", k))
    _key, r, c, _colour = canvas._handles[grab]
    start = canvas._point((r, c))
    # 3 mm caudally: down the coronal view (rows run S -> I).
    rect = canvas.image_rect()
    n_rows = ph.ct.array.shape[view.spec.row_axis]
    dy = 3.0 / view.spec.row_spacing_mm * rect.height() / n_rows
    a = QPoint(round(start.x()), round(start.y()))
    b = QPoint(round(start.x()), round(start.y() + dy))
    with qtbot.waitSignal(controller.live_windows_ready, timeout=60_000) as got:
        with qtbot.waitSignal(controller.roots_changed, timeout=60_000):
            qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=a)
            qtbot.mouseMove(canvas, b)
            qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=b)
    after = dict(got.args[0].areas_mm2)
    edited = engine.roots.roots["left"]["exiting_l5"]
    assert edited.source == "operator"
    moved = np.asarray(controller.root_state().get("left", "exiting_l5").control_lps_mm[k])
    assert (pts[k] - moved) @ sa.frame.z_lps > 1.5  # moved caudally (by ~3 mm)
    assert after[("left", "safe")] > before[("left", "safe")] + 1.0
    # The windows as the core computes them for the edited root.
    chosen = {s: dict(by) for s, by in engine.roots.roots.items()}
    apply_roots(anatomy0, labels0, DEFAULT_LABELS, chosen,
                replaced={"left": {"exiting_l5": original}})
    core = SideScene(anatomy0, "left").windows(got.args[0].direction_lps,
                                               pixel_mm=planning.LIVE_PIXEL_MM)
    for kind in ("kambin", "safe"):
        assert after[("left", kind)] == pytest.approx(core.area(kind), abs=1e-9)
    # The slice views show the moved point.
    assert any(h[0].key == ("left", "exiting_l5", k) for v in panel.views
               for h in v.canvas._handles)

    saved = controller.save_root_session(tmp_path / "planning_session.json")

    # A plan made before the correction is outdated by it (the export re-plans first); the plan
    # re-optimised on the edited engine (a stand-in here: the real one re-optimises all four
    # windows, MainWindow.export_to runs controller.replan_roots) is current again.
    assert controller.has_root_corrections and not controller.plan_outdated_by_root_edits
    controller.store.replace_session(plan=object())
    assert controller.plan_outdated_by_root_edits
    fresh = object()
    controller.set_replanned_roots((fresh, controller.root_state()))
    assert controller.session.plan is fresh and not controller.plan_outdated_by_root_edits
    controller.store.replace_session(plan=None)

    # Ctrl+Z in the slice views: the windows of the plan as it was, exactly.
    with qtbot.waitSignal(controller.live_windows_ready, timeout=60_000) as got:
        qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert dict(got.args[0].areas_mm2) == before
    assert engine.roots.roots["left"]["exiting_l5"] is original
    assert np.allclose(controller.root_state().get("left", "exiting_l5").control_lps_mm[k], pts[k])

    # The saved session reopened: the corrected windows again; then undone.
    with qtbot.waitSignal(controller.live_windows_ready, timeout=60_000) as got:
        assert controller.open_root_session(saved)
    for key, area in after.items():
        assert got.args[0].areas_mm2[key] == pytest.approx(area, abs=0.05)
    with qtbot.waitSignal(controller.live_windows_ready, timeout=60_000) as got:
        controller.undo_root_edit()
    assert dict(got.args[0].areas_mm2) == before
    controller.shutdown()
