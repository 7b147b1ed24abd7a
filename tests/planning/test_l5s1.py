"""Kambin and safe windows at L5/S1 on a phantom, and the plan built from them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.anatomy import identify_lumbosacral
from spinect_core.labels import DEFAULT_LABELS
from spinect_core.phantom import generate_phantom
from spinect_core.planning.l5s1 import SideScene
from spinect_core.planning.plan import PLAN_SCHEMA_VERSION, PlanEngine, PlanOptions
from spinect_core.report.exports import validate_plan_document

VIEW = (40.0, 5.0)  # a posterolateral oblique view where both windows are open on the phantom
QUICK = PlanOptions(coarse_step_deg=15.0, final_step_deg=2.0)


@pytest.fixture(scope="module")
def phantom():
    return generate_phantom(seed=1, spacing_mm=(1.5, 1.5, 1.5))


@pytest.fixture(scope="module")
def anatomy(phantom):
    return identify_lumbosacral(phantom.labels, DEFAULT_LABELS, instances=phantom.instances,
                                instance_table=phantom.instance_table)


@pytest.fixture(scope="module")
def scenes(anatomy):
    return {side: SideScene(anatomy, side) for side in ("left", "right")}


def test_both_windows_open_on_both_sides(scenes) -> None:
    for side, scene in scenes.items():
        w = scene.windows_at(*VIEW, pixel_mm=0.5)
        assert w.area("kambin") > 1.0, side
        assert w.area("safe") > 1.0, side
        # The two windows partition the free area.
        assert not np.any(w.kambin.mask & w.safe.mask)
        assert w.area("kambin") + w.area("safe") == pytest.approx(w.free.area_mm2, rel=0.05)


def test_safe_window_lies_cranial_to_the_kambin_window(scenes) -> None:
    for side, scene in scenes.items():
        w = scene.windows_at(*VIEW, pixel_mm=0.5)
        z = {}
        for kind in ("kambin", "safe"):
            window = w.window(kind)
            hits = window.hit_points_lps()[window.mask]
            z[kind] = float(np.mean(scene.frame.point_to_local(hits)[:, 2]))
        assert z["safe"] > z["kambin"], side


def test_straight_posterior_view_hides_the_foramen(scenes) -> None:
    # From straight behind, the lamina and facet cover the foramen (that is why it is oblique).
    for scene in scenes.values():
        assert scene.windows_at(0.0, 0.0, pixel_mm=0.5).free.area_mm2 < 5.0


@pytest.mark.parametrize("variant", ["bony", "neural"])
def test_transparent_structures_never_shrink_the_free_window(anatomy, scenes, variant) -> None:
    relaxed = SideScene(anatomy, "left", variant=variant)
    for view in [(30.0, 0.0), VIEW, (55.0, 15.0)]:
        base = scenes["left"].windows_at(*view, pixel_mm=0.5).free.area_mm2
        assert relaxed.windows_at(*view, pixel_mm=0.5).free.area_mm2 >= base - 0.5


def test_local_angles_round_trip(scenes) -> None:
    scene = scenes["right"]
    d = scene.view_direction(33.0, -12.0)
    assert scene.angles(d) == pytest.approx((33.0, -12.0), abs=1e-6)


def test_sides_are_mirrored(scenes) -> None:
    # Same local angles look at mirror-image views: the LPS x component flips, y and z do not.
    dl = scenes["left"].view_direction(*VIEW)
    dr = scenes["right"].view_direction(*VIEW)
    assert np.sign(dl[0]) == -np.sign(dr[0])
    assert dl[1] == pytest.approx(dr[1], abs=0.1)


def test_invalid_side_or_variant(anatomy) -> None:
    with pytest.raises(ValueError):
        SideScene(anatomy, "middle")
    with pytest.raises(ValueError):
        SideScene(anatomy, "left", variant="soft")


@pytest.fixture(scope="module")
def plan_and_engine(phantom):
    engine = PlanEngine(phantom.ct, phantom.labels, DEFAULT_LABELS, instances=phantom.instances,
                        instance_table=phantom.instance_table, options=QUICK,
                        segmentation_source="phantom truth")
    return engine.plan(), engine


def test_plan_finds_both_windows_and_a_safe_needle(plan_and_engine) -> None:
    plan, engine = plan_and_engine
    for side in ("left", "right"):
        sp = plan.sides[side]
        for kind in ("kambin", "safe"):
            w = sp.window(kind)
            assert w.found, (side, kind, w.reason)
            assert w.best_view.area_mm2 > 0
            # The best and plateau views are C-arm views of the search range, entry on the back.
            for v in (w.best_view, w.plateau_view):
                assert 0 <= v.oblique_deg <= 60 and -40 <= v.tilt_deg <= 40, (side, kind)
                assert v.entry_direction_lps[1] > 0.3
                assert engine.scenes[side].angles(v.view_direction_lps) == pytest.approx(
                    (v.alpha_deg, v.beta_deg), abs=1e-6)  # the local angles, secondary
            assert w.plateau_view.area_mm2 >= 0.5 * w.best_view.area_mm2
            tol = max(engine.options.edge_tolerance_deg, engine.options.final_step_deg)
            edge = (w.best_view.oblique_deg >= 60.0 - tol or w.best_view.oblique_deg <= tol
                    or abs(w.best_view.tilt_deg) >= 40.0 - tol)
            assert w.at_search_edge == edge
            # The literature views: straight PA and 15-35 deg oblique, the S1 endplate squared.
            lit = w.literature_views
            assert [round(v.oblique_deg, 6) for v in lit] == [0, 15, 20, 25, 30, 35]
            for v in lit:
                assert v.view_direction_lps @ engine.anatomy.sides[side].frame.z_lps == (
                    pytest.approx(0.0, abs=1e-9))
                assert v.area_mm2 >= 0.0 and v.label
            assert w.inscribed_diameter_mm > 0
        t = sp.trajectory
        assert t is not None, sp.trajectory_reason
        assert t.safe, t.reason
        assert 50 < t.length_mm < 200
        assert t.min_nerve_clearance_mm >= t.needle_diameter_mm / 2 + 2.0 - 0.3


def test_plan_json_has_the_documented_keys(plan_and_engine) -> None:
    plan, _ = plan_and_engine
    doc = json.loads(json.dumps(plan.to_dict(), allow_nan=False))
    assert doc["schema_version"] == PLAN_SCHEMA_VERSION
    assert doc["coordinate_system"] == "LPS"
    for side in ("left", "right"):
        s = doc["sides"][side]
        for kind in ("kambin", "safe"):
            w = s[kind]
            for key in ("found", "reason", "best_view", "plateau_view", "inscribed_diameter_mm",
                        "triangle_area_mm2"):
                assert key in w
            assert set(w["best_view"]) >= {"oblique_deg", "tilt_deg", "alpha_deg", "beta_deg",
                                           "area_mm2"}
            assert isinstance(w["at_search_edge"], bool)
            assert len(w["literature_views"]) == 6
            assert w["area_map"]["frame"] == "carm"
        t = s["trajectory"]
        for key in ("entry_lps_mm", "target_lps_mm", "length_mm", "angle_to_axial_deg",
                    "angle_to_sagittal_deg", "min_nerve_clearance_mm", "carm"):
            assert key in t
    assert doc["view_search"] == {"frame": "carm", "oblique_range_deg": [0.0, 60.0],
                                  "tilt_range_deg": [-40.0, 40.0],
                                  "bone_surface": "ct_half_maximum"}
    validate_plan_document(doc)  # the new keys are in the schema


def test_live_windows_match_the_plan_at_the_plateau_view(plan_and_engine) -> None:
    plan, engine = plan_and_engine
    w = plan.sides["left"].safe
    live = engine.windows_for_view(w.plateau_view.view_direction_lps, pixel_mm=0.25)
    assert live["left"].area("safe") == pytest.approx(w.plateau_view.area_mm2, rel=1e-6)


def test_plan_from_derived_anatomy_agrees_with_instances(phantom, plan_and_engine) -> None:
    """Per-level labels vs anatomy derived from the 5-class map alone: the same windows.

    Compared over the whole area-vs-angle map (every grid view), which is stricter than comparing
    plateau centroids: on this test's 15 deg grid a plateau centroid moves in steps of a grid cell.
    """
    plan, _ = plan_and_engine
    derived = PlanEngine(phantom.ct, phantom.labels, DEFAULT_LABELS, options=QUICK).plan()
    for side in ("left", "right"):
        for kind in ("kambin", "safe"):
            a, b = plan.sides[side].window(kind), derived.sides[side].window(kind)
            assert b.found
            assert b.best_view.area_mm2 == pytest.approx(a.best_view.area_mm2, rel=0.15)
            map_a, map_b = a.optimum.values, b.optimum.values
            assert np.abs(map_a - map_b).mean() <= 0.1 * map_a.max(), (side, kind)


def _triangle_area_px(t: np.ndarray) -> float:
    v1, v2 = t[1] - t[0], t[2] - t[0]
    return 0.5 * abs(v1[0] * v2[1] - v1[1] * v2[0])


def test_enclosing_triangle_of_known_shapes() -> None:
    from spinect_core.planning.l5s1 import _enclosing_triangle

    rows, cols = np.indices((60, 60))
    # A right triangle (legs 40 px along columns, 32 px along rows) is its own triangle.
    tri = (rows >= 10) & (cols >= 10) & (rows - 10 <= 0.8 * (cols - 10)) & (cols < 50)
    assert _triangle_area_px(_enclosing_triangle(tri)) == pytest.approx(tri.sum(), rel=0.05)
    # The smallest triangle around a rectangle has twice its area (a classical result).
    rect = np.zeros((60, 60), bool)
    rect[20:30, 5:55] = True
    assert _triangle_area_px(_enclosing_triangle(rect)) == pytest.approx(2 * rect.sum(), rel=0.03)
    # One pixel is a unit square: its triangle has twice its area too.
    dot = np.zeros((10, 10), bool)
    dot[5, 2] = True
    assert _triangle_area_px(_enclosing_triangle(dot)) == pytest.approx(2.0, rel=0.05)


def test_plateau_windows_have_named_triangles(plan_and_engine) -> None:
    plan, _ = plan_and_engine
    for side in ("left", "right"):
        for kind in ("kambin", "safe"):
            w = plan.sides[side].window(kind)
            assert w.triangle is not None, (side, kind)
            # It encloses the window (up to the hull simplification) and is not absurdly larger.
            assert 0.95 * w.window.area_mm2 <= w.triangle.area_mm2 <= 4.0 * w.window.area_mm2
            assert set(w.triangle.sides) == {"base", "height", "hypotenuse"}
            assert w.triangle.sides["hypotenuse"] > 0  # the exiting root bounds both windows


def test_zone_ends_in_front_of_the_foramen(anatomy, scenes) -> None:
    """A hit on the body's side more than zone_depth_mm (+ slack) in front of the posterior wall
    passes beside the foramen: outside the zone, named "anterior"; without the limit the free
    window can only grow."""
    from spinect_core.planning.l5s1 import L5S1Options

    for side, scene in scenes.items():
        frame, zone = scene.frame, scene._zone
        wall_y = float(frame.point_to_local(anatomy.sides[side].posterior_wall_lps)[1])
        inside = frame.point_to_lps(np.array([0.5 * (zone.x0 + zone.x1), wall_y,
                                                0.5 * (zone.z0 + zone.z1)]))
        in_front = inside - (scene.options.zone_depth_mm + zone.slack_mm + 0.5) * frame.y_lps
        assert list(zone.edge(np.stack([inside, in_front]))) == ["", "anterior"]
        unlimited = SideScene(anatomy, side, options=L5S1Options(zone_depth_mm=None))
        for view in (VIEW, (70.0, 30.0)):
            limited = scene.windows_at(*view, pixel_mm=0.5).free
            free = unlimited.windows_at(*view, pixel_mm=0.5).free
            assert not np.any(limited.mask & ~free.mask)


def test_zone_keeps_out_of_the_dural_sac(anatomy) -> None:
    """The zone begins at least sac_half_width_mm (+ slack) from the midline, wherever the
    pedicle's medial wall was found (4-7 mm from it on most real-bone phantoms): a target there
    lies in the sac, which a label map without dura leaves open (real-bone phantoms planned
    without it: Kambin windows at straight PA through the canal)."""
    import dataclasses

    from spinect_core.planning.l5s1 import L5S1Options, _foraminal_zone

    for side in ("left", "right"):
        sa = anatomy.sides[side]
        frame = sa.frame
        mid = frame.point_to_local(anatomy.midline_point_lps)
        # The medial wall found 4 mm from the midline, at the foramen's height and depth.
        wall = frame.point_to_lps(np.array([mid[0] + 4.0, 0.0, 0.0]))
        near = dataclasses.replace(anatomy, sides={**anatomy.sides,
                                                   side: dataclasses.replace(
                                                       sa, pedicle_medial_wall_lps=wall)})
        zone = _foraminal_zone(near, side, 1.5, sac_half_width_mm=9.0)
        assert zone.x0 == pytest.approx(mid[0] + 9.0)
        at = [frame.point_to_lps(np.array([mid[0] + d, 0.0, 0.0])) for d in (6.0, 11.0)]
        assert list(zone.edge(np.stack(at))) == ["medial", ""]
        # Without the bound the zone reached the wall found; the default has it.
        assert _foraminal_zone(near, side, 1.5).x0 == pytest.approx(mid[0] + 4.0)
        assert L5S1Options().sac_half_width_mm == 9.0


def test_side_of_polyline_takes_the_nearest_segment() -> None:
    """A V-shaped dividing line: each point's side is decided against its nearest segment,
    whose normal points towards ``towards``."""
    from spinect_core.planning.l5s1 import _side_of_polyline

    # (row, col) points; the V opens upwards (towards smaller rows): (0, 0) -> (10, 10) -> (0, 20)
    line = np.array([[0.0, 0.0], [10.0, 10.0], [0.0, 20.0]])
    towards = np.array([-1.0, 0.0])  # "up" (smaller rows) is the positive side
    points = np.array([[5.0, 10.0],    # inside the V, above its tip
                       [12.0, 10.0],   # below the tip
                       [2.0, 4.0],     # above the left arm
                       [6.0, 2.0],     # below the left arm
                       [2.0, 16.0],    # above the right arm
                       [6.0, 18.0]])   # below the right arm
    np.testing.assert_array_equal(_side_of_polyline(points, line, towards),
                                  [1, -1, 1, -1, 1, -1])
    # a repeated vertex (a zero-length segment) changes nothing
    doubled = np.array([[0.0, 0.0], [10.0, 10.0], [10.0, 10.0], [0.0, 20.0]])
    np.testing.assert_array_equal(_side_of_polyline(points, doubled, towards),
                                  [1, -1, 1, -1, 1, -1])


def test_a_coarse_ct_is_warned_of() -> None:
    """3 mm slices: the windows are approximate, and the plan says so; 1.5 mm voxels are not
    warned of by default (the limit is ``PlanOptions.coarse_voxel_mm``)."""
    from spinect_core.planning.plan import coarse_ct_warning

    words = coarse_ct_warning((0.7, 0.7, 3.0), 1.5)
    assert words.startswith("the CT's voxels are 0.7 x 0.7 x 3 mm (over 1.5 mm along an axis)")
    assert "approximate" in words
    assert coarse_ct_warning((1.5, 1.5, 1.5), 1.5) == ""
    assert coarse_ct_warning((0.7, 0.7, 3.0), 0.0) == ""


def test_the_plan_carries_the_coarse_ct_warning(plan_and_engine) -> None:
    plan, engine = plan_and_engine
    assert not any("the CT's voxels are" in w for w in plan.warnings)   # 1.5 mm voxels
    kept = engine.options
    engine.options = PlanOptions(coarse_voxel_mm=1.0)
    try:
        assert any(w.startswith("the CT's voxels are 1.5 x 1.5 x 1.5 mm")
                   for w in engine.plan_warnings())
    finally:
        engine.options = kept
