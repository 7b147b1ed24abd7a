"""The fluoroscopy (DRR) view follows the C-arm angle: a screenshot under Xvfb changes with the view
and the title names the view in the C-arm words; in the main window it follows the 3D view."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.planning.carm import carm_angles, carm_text, carm_view_direction
from spinect_core.volume import Volume


@pytest.fixture(scope="module")
def small_ct() -> Volume:
    """48^3 mm of water with an off-centre bone rod along the body axis and a bead (2 mm voxels)."""
    n, sp = 48, 2.0
    arr = np.full((n, n, n), -1000.0, np.float32)
    arr[8:40, 12:36, 12:36] = 0.0             # a water box (z, y, x)
    arr[10:38, 20:24, 28:32] = 1200.0         # a rod on the patient's left (+x), posterior-ish
    arr[30:33, 14:17, 14:17] = 3000.0         # a bead, right and cranial
    origin = -sp * (n - 1) / 2.0 * np.ones(3)
    return Volume(array=arr, spacing_mm=np.full(3, sp), origin_lps_mm=origin, direction=np.eye(3))


def _grab(view) -> np.ndarray:
    """The widget as it is on screen (Xvfb), RGB."""
    from PySide6.QtGui import QImage

    img = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    ptr = img.constBits()
    arr = np.frombuffer(ptr, np.uint8, count=img.bytesPerLine() * h).reshape(h, img.bytesPerLine())
    return arr[:, :3 * w].reshape(h, w, 3).copy()


def test_the_view_follows_the_angle_and_names_it(qtbot, small_ct, tmp_path) -> None:
    from spinect_core.reslice.drr import DRROptions

    from app.widgets.drr_view import DRRView

    view = DRRView(options=DRROptions(detector_pixels=(96, 96), detector_size_mm=(200.0, 200.0),
                                      step_mm=2.0, device="cpu"))
    qtbot.addWidget(view)
    view.resize(360, 420)
    view.show()
    qtbot.waitExposed(view)
    view.set_ct(small_ct)
    shots, results = [], []
    for oblique, tilt in ((0.0, 0.0), (35.0, 15.0)):
        d = carm_view_direction(oblique, tilt, "left")
        with qtbot.waitSignal(view.image_shown, timeout=60_000):
            view.set_view(d, (0.0, 0.0, 0.0), "left")
        words = carm_text(carm_angles(d, "left"))
        assert view.title.text() == f"Simulated fluoroscopy: {words}"
        assert np.allclose(view.result.geometry.view_direction_lps, d)
        qtbot.wait(50)  # let the layout settle after the new title and note
        shot = _grab(view.canvas)
        view.grab().save(str(tmp_path / f"drr_view_{oblique:g}_{tilt:g}.png"))
        shots.append(shot)
        results.append(view.result.line_integrals.copy())
    assert view.title.text().endswith("35.0° ipsilateral (left) oblique, 15.0° cranial tilt")
    # The picture changed with the angle, on screen and in the DRR itself.
    h, w = (min(a.shape[i] for a in shots) for i in (0, 1))  # the title may wrap differently
    assert np.abs(shots[0][:h, :w].astype(int) - shots[1][:h, :w].astype(int)).mean() > 1.0
    assert not np.allclose(results[0], results[1])
    # Straight PA, seen from the back: the rod on the patient's left is on the image's left.
    first = results[0]
    rod_col = int(np.argmax(first.mean(axis=0)))
    assert rod_col < (first.shape[1] - 1) / 2 - 3
    # The same view again is not recomputed; a needle is drawn without recomputing.
    started = view.worker.started_count
    view.set_view(carm_view_direction(35.0, 15.0, "left"), (0.0, 0.0, 0.0), "left")
    before = view.canvas.rgb.copy()
    needle = (np.array([20.0, 40.0, 10.0]), np.array([5.0, 0.0, 0.0]))
    view.set_needles({"left": needle})
    assert view.worker.started_count == started
    assert not np.array_equal(before, view.canvas.rgb)
    # Drawn by the core's one plan-on-DRR function (the report's), in the app's needle colour.
    from app.colors import NEEDLE_COLOR
    from spinect_core.reslice.drr import render_plan_drr

    assert np.array_equal(view.canvas.rgb, render_plan_drr(view.result, needles=[needle], scale=2))
    assert (view.canvas.rgb == NEEDLE_COLOR).all(axis=-1).any()
    # A hidden view computes nothing until it is shown.
    view.hide()
    view.set_view(carm_view_direction(10.0, 0.0, "left"), (0.0, 0.0, 0.0), "left")
    assert view.worker.started_count == started
    with qtbot.waitSignal(view.image_shown, timeout=60_000):
        view.show()
    assert view.worker.started_count == started + 1
    view.wait(10_000)


@pytest.mark.slow  # loads the phantom into the window and projects it: ~7 s on 2 cores
def test_the_main_window_tab_follows_the_3d_view(qtbot, window, phantom_case) -> None:
    from tests.app.test_segment_and_view import load

    load(qtbot, window, phantom_case["ct"])
    window.bottom_tabs.setCurrentWidget(window.drr_view)
    d = carm_view_direction(20.0, -10.0, "left")
    with qtbot.waitSignal(window.drr_view.image_shown, timeout=120_000):
        window.view3d.set_view_direction(d)
    # The same words in "This view" and over the fluoroscopy.
    words = window.planning_panel.view_label.text()
    assert words == carm_text(carm_angles(d, window.planning_panel.needle_side))
    assert window.drr_view.title.text() == f"Simulated fluoroscopy: {words}"
    assert np.allclose(window.drr_view.result.geometry.view_direction_lps, d, atol=1e-6)
    window.drr_view.wait(10_000)
