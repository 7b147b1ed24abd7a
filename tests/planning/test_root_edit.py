"""The operator's root edits: control points, the refitted tube, the fast re-plan, undo / redo.

One small phantom (1.5 mm, a 90 mm crop around L5/S1) and one engine with CT roots on both
sides, shared by the module; the editor's edits are undone at the end of each test that makes
them, and the module's last test checks that the engine is back to its first bytes.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from spinect_core.anatomy.roots import apply_roots
from spinect_core.errors import InputError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.phantom import generate_phantom
from spinect_core.phantom.params import PhantomOptions
from spinect_core.planning.l5s1 import SideScene
from spinect_core.planning.plan import PlanEngine, PlanOptions
from spinect_core.planning.root_edit import (RootEditOptions, RootEditor, control_points,
                                             fit_tube)

VIEW = (50.0, 0.0)  # local (alpha, beta) on the left where both windows are open


@pytest.fixture(scope="module")
def engine():
    ph = generate_phantom(seed=3, spacing_mm=(1.5, 1.5, 1.5), options=PhantomOptions(crop_mm=90.0))
    return PlanEngine(ph.ct, ph.labels, DEFAULT_LABELS, instances=ph.instances,
                      instance_table=ph.instance_table, options=PlanOptions(roots="ct"))


@pytest.fixture(scope="module")
def first(engine):
    """The engine's arrays and records before any edit (copies)."""
    return {"parts": engine.anatomy.parts.array.copy(), "labels": engine.labels.array.copy(),
            "labels_obj": engine.labels,
            "scenes": {s: (sc.scene.sdf.copy(), sc.scene.features.copy(),
                           sc.scene.rim_weight.copy(), sc.root_lps.copy())
                       for s, sc in engine.scenes.items()},
            "roots": {s: dict(by) for s, by in engine.roots.roots.items()},
            "warnings": list(engine.roots.warnings)}


@pytest.fixture(scope="module")
def editor(engine, first):
    return RootEditor(engine, view_direction_lps=engine.scenes["left"].view_direction(*VIEW))


def _caudal_drag(engine, editor, mm: float):
    """The control point of the left exiting L5 root nearest the foramen centre, and where a
    drag ``mm`` caudally (local -z) takes it."""
    pts, _ = editor.state.get("left", "exiting_l5").controls()
    sa = engine.anatomy.sides["left"]
    k = int(np.argmin(np.linalg.norm(pts - sa.foramen_centre_lps, axis=1)))
    return k, pts[k] - mm * sa.frame.z_lps


def test_fit_tube_passes_through_the_control_points_at_1_mm() -> None:
    t = np.linspace(0.0, np.pi / 2, 60)
    line = np.stack([20.0 * np.cos(t), 20.0 * np.sin(t), 5.0 * t], 1)
    pts, rad = control_points(line, np.linspace(2.0, 3.0, 60), spacing_mm=5.0)
    assert np.allclose(pts[0], line[0]) and np.allclose(pts[-1], line[-1])
    steps = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    assert np.all(np.abs(steps - steps.mean()) < 0.3) and 4.0 < steps.mean() < 6.0
    fitted, fr = fit_tube(pts, rad, sample_mm=1.0)
    gaps = np.linalg.norm(np.diff(fitted, axis=0), axis=1)
    assert np.all(gaps[:-1] == pytest.approx(1.0, abs=0.02)) and gaps[-1] <= 1.0 + 1e-9
    # Through every control point (within the 1 mm resampling's chord error) and on the arc.
    for p in pts:
        assert np.min(np.linalg.norm(fitted - p, axis=1)) < 0.51
    assert np.abs(np.linalg.norm(fitted[:, :2], axis=1) - 20.0).max() < 0.2
    assert fr[0] == pytest.approx(2.0) and fr[-1] == pytest.approx(3.0)
    assert np.all(np.diff(fr) >= -1e-9)


def test_drag_changes_the_windows_as_the_core_computes_them(engine, editor) -> None:
    before = editor.windows["left"]
    original = engine.roots.roots["left"]["exiting_l5"]
    anatomy0 = copy.deepcopy(engine.anatomy)
    labels0 = engine.labels
    k, target = _caudal_drag(engine, editor, 3.0)
    res = editor.drag("left", "exiting_l5", k, target)
    try:
        edited = engine.roots.roots["left"]["exiting_l5"]
        assert edited.source == "operator"
        assert np.min(np.linalg.norm(edited.centreline_lps_mm - target, axis=1)) < 0.51
        assert res.scenes_updated["left"] == "window" and res.changed_voxels > 0
        after = res.windows["left"]
        # The root moved caudally: the safe (cranial) window grows, the Kambin window shrinks.
        assert after.area("safe") > before.area("safe") + 1.0
        assert after.area("kambin") < before.area("kambin") - 1.0
        # The same numbers as the core's own path: the roots drawn by apply_roots on the
        # anatomy as it was, and a scene built from scratch.
        chosen = {s: dict(by) for s, by in engine.roots.roots.items()}
        apply_roots(anatomy0, labels0, DEFAULT_LABELS, chosen,
                    replaced={"left": {"exiting_l5": original}})
        assert np.array_equal(anatomy0.parts.array, engine.anatomy.parts.array)
        fresh = SideScene(anatomy0, "left")
        assert np.array_equal(fresh.scene.sdf, engine.scenes["left"].scene.sdf)
        again = fresh.windows(editor._view, pixel_mm=editor.pixel_mm)
        for kind in ("kambin", "safe"):
            assert after.area(kind) == pytest.approx(again.area(kind), abs=1e-9)
        assert "exiting L5 root on the left: corrected by the operator" in engine.roots.warnings
    finally:
        editor.undo()


def test_insert_delete_radius_then_undo_redo(engine, editor, first) -> None:
    n0 = len(editor.state.get("left", "exiting_l5").control_lps_mm)
    line = engine.roots.roots["left"]["exiting_l5"].centreline_lps_mm
    res, i = editor.insert("left", "exiting_l5", line[len(line) // 2] + 1.0)
    assert len(editor.state.get("left", "exiting_l5").control_lps_mm) == n0 + 1
    editor.delete("left", "exiting_l5", 0)
    widened = editor.set_radius("left", "exiting_l5", 4.5)
    assert np.all(engine.roots.roots["left"]["exiting_l5"].radius_mm == pytest.approx(4.5))
    areas = {k: widened.windows["left"].area(k) for k in ("kambin", "safe")}
    with pytest.raises(InputError, match="mm from the exiting L5 root"):
        editor.insert("left", "exiting_l5", line[0] + 40.0)
    with pytest.raises(InputError, match="radius"):
        editor.set_radius("left", "exiting_l5", 50.0)
    for _ in range(3):
        editor.undo()
    assert not editor.can_undo and editor.can_redo
    _assert_first(engine, first)
    for _ in range(3):
        redone = editor.redo()
    assert {k: redone.windows["left"].area(k) for k in areas} == areas
    for _ in range(3):
        editor.undo()
    _assert_first(engine, first)


def test_a_new_edit_clears_redo(engine, editor) -> None:
    k, target = _caudal_drag(engine, editor, 1.5)
    editor.drag("left", "exiting_l5", k, target)
    editor.undo()
    assert editor.can_redo
    editor.drag("left", "exiting_l5", k, target)
    assert not editor.can_redo
    editor.undo()


def _assert_first(engine, first) -> None:
    assert np.array_equal(engine.anatomy.parts.array, first["parts"])
    assert np.array_equal(engine.labels.array, first["labels"])
    assert engine.labels is first["labels_obj"]
    for s, sc in engine.scenes.items():
        sdf, feat, rim, root = first["scenes"][s]
        assert np.array_equal(sc.scene.sdf, sdf) and np.array_equal(sc.scene.features, feat)
        assert np.array_equal(sc.scene.rim_weight, rim) and np.array_equal(sc.root_lps, root)
    assert {s: dict(by) for s, by in engine.roots.roots.items()} == first["roots"]
    assert engine.roots.warnings == first["warnings"]


def test_undo_restores_the_engine_exactly(engine, editor, first) -> None:
    # Runs last: every test above undid its edits.
    _assert_first(engine, first)
    with pytest.raises(InputError, match="nothing to undo"):
        editor.undo()


def test_bad_edits_are_refused(editor) -> None:
    o = RootEditOptions()
    with pytest.raises(InputError, match="does not exist"):
        editor.drag("left", "exiting_l5", 99, (0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="no exiting L5 root on the middle"):
        editor.state.get("middle", "exiting_l5")
    assert o.control_spacing_mm == 5.0
