"""The planning session file: saved beside the exports, reopened to reproduce the corrected plan.

One small phantom (1.5 mm, a 90 mm crop) and one left-side engine with CT roots, shared by the
module. Reopening is tested on the same engine after undoing the edit (undo restores it exactly:
see test_root_edit.py), i.e. as on a freshly built one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.errors import InputError, SpinectError
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.phantom import generate_phantom
from spinect_core.phantom.params import PhantomOptions
from spinect_core.planning.plan import PlanEngine, PlanOptions
from spinect_core.planning.root_edit import RootEditor
from spinect_core.planning.session_file import (SESSION_FILE_NAME, SESSION_SCHEMA_VERSION,
                                                apply_session, load_session, parse_session,
                                                save_session)

VIEW = (50.0, 0.0)
QUICK = dict(coarse_step_deg=15.0, final_step_deg=2.0, literature_obliques_deg=(25.0,))


@pytest.fixture(scope="module")
def engine():
    ph = generate_phantom(seed=3, spacing_mm=(1.5, 1.5, 1.5), options=PhantomOptions(crop_mm=90.0))
    return PlanEngine(ph.ct, ph.labels, DEFAULT_LABELS, instances=ph.instances,
                      instance_table=ph.instance_table,
                      options=PlanOptions(roots="ct", sides=("left",), **QUICK))


def _drag(engine, editor):
    pts, _ = editor.state.get("left", "exiting_l5").controls()
    sa = engine.anatomy.sides["left"]
    k = int(np.argmin(np.linalg.norm(pts - sa.foramen_centre_lps, axis=1)))
    editor.drag("left", "exiting_l5", k, pts[k] - 2.5 * sa.frame.z_lps + 1.0 * sa.frame.x_lps)
    editor.set_radius("left", "exiting_l5", 3.5, index=k)


def test_session_round_trips_and_reproduces_the_corrected_plan(engine, tmp_path) -> None:
    view = engine.scenes["left"].view_direction(*VIEW)
    editor = RootEditor(engine, view_direction_lps=view)
    before = {k: editor.windows["left"].area(k) for k in ("kambin", "safe")}
    _drag(engine, editor)
    edited = engine.roots.roots["left"]["exiting_l5"]
    corrected = {k: editor.windows["left"].area(k) for k in ("kambin", "safe")}
    assert corrected != before
    path = tmp_path / SESSION_FILE_NAME
    save_session(path, editor, needle_targets={"left": {"target_lps_mm": [1.0, 2.0, 3.0]}})
    with pytest.raises(SpinectError, match="already exists"):
        save_session(path, editor)  # never silently overwritten
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == SESSION_SCHEMA_VERSION and doc["coordinate_system"] == "LPS"
    assert doc["notes"] == ["exiting L5 root on the left: corrected by the operator"]
    assert [(r["side"], r["name"], r["original_source"]) for r in doc["roots"]] == [
        ("left", "exiting_l5", "ct")]
    session = load_session(path)
    saved = editor.state.get("left", "exiting_l5")
    assert np.allclose(session.roots[0].control_points_lps_mm, saved.control_lps_mm, atol=1e-4)
    assert np.allclose(session.roots[0].radius_mm, saved.radius_mm, atol=1e-4)
    assert session.needle_targets == {"left": {"target_lps_mm": [1.0, 2.0, 3.0]}}
    # Back to the plan as computed, then reopened from the file: the corrected plan again.
    editor.undo()
    editor.undo()
    assert {k: editor.windows["left"].area(k) for k in before} == before
    reopened = apply_session(engine, session, view_direction_lps=view)
    again = engine.roots.roots["left"]["exiting_l5"]
    assert again.source == "operator"
    assert np.abs(again.centreline_lps_mm - edited.centreline_lps_mm).max() < 1e-3
    for k, area in corrected.items():
        assert reopened.windows["left"].area(k) == pytest.approx(area, abs=0.05)
    assert "exiting L5 root on the left: corrected by the operator" in engine.roots.warnings
    reopened.undo()


def test_a_session_for_another_ct_or_a_broken_file_is_refused(engine, tmp_path) -> None:
    editor = RootEditor(engine)
    _drag(engine, editor)
    path = save_session(tmp_path / "s.json", editor)
    editor.undo()
    editor.undo()
    doc = json.loads(path.read_text())
    moved = dict(doc, ct=dict(doc["ct"], origin_lps_mm=[v + 5.0 for v in doc["ct"]["origin_lps_mm"]]))
    with pytest.raises(InputError, match="another size or position"):
        apply_session(engine, parse_session(moved))
    with pytest.raises(InputError, match="not a SPINECT planning session"):
        parse_session({"format": "something else"})
    broken = dict(doc, roots=[dict(doc["roots"][0], radius_mm=[1.0])])
    with pytest.raises(InputError, match="one positive radius per point"):
        parse_session(broken)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not a readable planning session"):
        load_session(tmp_path / "bad.json")


@pytest.mark.slow
def test_the_plan_marks_what_the_operator_changed(engine) -> None:
    editor = RootEditor(engine)
    _drag(engine, editor)
    try:
        doc = engine.plan().to_dict()
        assert "exiting L5 root on the left: corrected by the operator" in doc["warnings"]
        assert doc["sides"]["left"]["roots"]["exiting_l5"]["source"] == "operator"
        assert doc["sides"]["left"]["roots"]["exiting_l4"]["source"] == "ct"
    finally:
        editor.undo()
        editor.undo()
    doc = engine.plan().to_dict()
    assert not any("corrected by the operator" in w for w in doc["warnings"])
