"""Needle trajectory: target from a window, skin entry, clearance, crossings, angles, C-arm terms.

Synthetic scenes with analytic answers on small 0.5 mm grids (tens of thousands of voxels).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from spinect_core.errors import Cancelled, InputError
from spinect_core.labels import DEFAULT_LABELS, LabelTable
from spinect_core.planning.trajectory import (
    NEEDLE_OUTER_DIAMETER_MM, TrajectoryError, TrajectoryOptions, carm_angles, check_clearance,
    deepest_window_point, find_skin_entry, plan_trajectory, trajectory_angles)
from spinect_core.volume import Volume

H = 0.5  # grid spacing, mm
SHAPE = (60, 80, 60)  # (z, y, x): x, z in [-15, 15) mm, y in [-20, 20) mm
FACE = 12.5  # skin plane of the body box: halfway between voxel centres 12.25 and 12.75
ORIGIN = np.array([-14.75, -19.75, -14.75])  # centre of voxel (0, 0, 0), LPS (x, y, z)


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LPS coordinates (x, y, z) of every voxel centre, each (z, y, x)."""
    z, y, x = np.meshgrid(*(ORIGIN[::-1][a] + H * np.arange(SHAPE[a]) for a in range(3)),
                          indexing="ij")
    return x, y, z


def _volume(array: np.ndarray) -> Volume:
    return Volume(array=array, spacing_mm=(H, H, H), origin_lps_mm=ORIGIN)


def _body_ct(y_face: float = FACE) -> Volume:
    """Soft tissue (0 HU) for y < y_face, air elsewhere; the skin is the plane y = y_face."""
    x, y, z = _grid()
    return _volume(np.where(y < y_face, 0.0, -1000.0).astype(np.float32))


def _empty_labels() -> np.ndarray:
    return np.zeros(SHAPE, dtype=np.uint8)


@dataclass
class FakeWindow:
    """The fields of the shared ``WindowResult`` contract that the trajectory reads."""

    mask: np.ndarray
    hit_depth_mm: np.ndarray
    plane_origin_lps: np.ndarray
    axis_col_lps: np.ndarray
    axis_row_lps: np.ndarray
    view_direction_lps: np.ndarray
    pixel_mm: float
    area_mm2: float = 0.0
    inscribed_diameter_mm: float = 0.0
    usable_area_mm2: float = 0.0


def _window(mask: np.ndarray, depth: np.ndarray, pixel_mm: float = 0.25) -> FakeWindow:
    # Rays travel anteriorly (-y); the ray-start plane lies posterior at y = 30 mm.
    return FakeWindow(mask=mask, hit_depth_mm=depth.astype(np.float32),
                      plane_origin_lps=np.array([-5.0, 30.0, -4.0]),
                      axis_col_lps=np.array([1.0, 0.0, 0.0]),
                      axis_row_lps=np.array([0.0, 0.0, -1.0]),
                      view_direction_lps=np.array([0.0, -1.0, 0.0]), pixel_mm=pixel_mm)


# --- options ----------------------------------------------------------------------------------------
def test_gauge_table_and_options():
    assert TrajectoryOptions().needle_diameter_mm == pytest.approx(0.72, abs=0.005)
    assert TrajectoryOptions(needle_gauge=18).needle_radius_mm == pytest.approx(0.635)
    diameters = [NEEDLE_OUTER_DIAMETER_MM[g] for g in range(18, 26)]
    assert diameters == sorted(diameters, reverse=True)  # higher gauge, thinner needle
    with pytest.raises(ValueError):
        TrajectoryOptions(needle_gauge=30)
    with pytest.raises(ValueError):
        TrajectoryOptions(sample_step_mm=0.5)
    with pytest.raises(TypeError):
        TrajectoryOptions(22)  # keyword-only


# --- target -----------------------------------------------------------------------------------------
def test_deepest_window_point_of_a_disc_is_its_centre_at_the_hit_depth():
    rows, cols = np.mgrid[0:48, 0:64]
    r0, c0 = 21, 37
    mask = (rows - r0) ** 2 + (cols - c0) ** 2 <= 9.0 ** 2
    depth = np.where(mask, 20.0 + 0.1 * cols + 0.05 * rows, np.nan)
    w = _window(mask, depth)
    expected = (w.plane_origin_lps + c0 * 0.25 * w.axis_col_lps + r0 * 0.25 * w.axis_row_lps
                + (20.0 + 0.1 * c0 + 0.05 * r0) * w.view_direction_lps)
    np.testing.assert_allclose(deepest_window_point(w), expected, atol=1e-6)
    # a missing hit depth at that pixel falls back to its free neighbours' mean
    depth[r0, c0] = np.nan
    np.testing.assert_allclose(deepest_window_point(_window(mask, depth)), expected, atol=1e-5)


def test_deepest_window_point_tie_breaks_towards_the_centroid_and_rejects_empty():
    mask = np.zeros((30, 60), bool)
    mask[10:15, 5:56] = True  # 5 x 51 strip: the distance ridge is flat along the whole row 12
    depth = np.where(mask, 10.0, np.nan)
    w = _window(mask, depth, pixel_mm=1.0)
    point = deepest_window_point(w)
    expected = w.plane_origin_lps + 30 * w.axis_col_lps + 12 * w.axis_row_lps + 10 * w.view_direction_lps
    np.testing.assert_allclose(point, expected, atol=1e-6)
    with pytest.raises(TrajectoryError, match="empty"):
        deepest_window_point(_window(np.zeros((8, 8), bool), np.full((8, 8), np.nan)))


def test_the_real_window_result_is_accepted():
    """The shared contract: the windows engineer's WindowResult works like the stand-in."""
    import dataclasses

    windows = pytest.importorskip("spinect_core.planning.windows")
    rows, cols = np.mgrid[0:24, 0:24]
    mask = (rows - 10) ** 2 + (cols - 13) ** 2 <= 25
    fake = _window(mask, np.where(mask, 31.0, np.nan))
    known = {f.name: getattr(fake, f.name) for f in dataclasses.fields(fake)}
    kwargs = {}
    for f in dataclasses.fields(windows.WindowResult):
        if f.name in known:
            kwargs[f.name] = known[f.name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = np.zeros(mask.shape) if "ndarray" in str(f.type) else 0.0
    real = windows.WindowResult(**kwargs)
    np.testing.assert_allclose(deepest_window_point(real), deepest_window_point(fake), atol=1e-9)
    traj = plan_trajectory(real, ct=_body_ct(), labels=_volume(_empty_labels()), table=DEFAULT_LABELS)
    np.testing.assert_allclose(traj.direction_lps, real.view_direction_lps, atol=1e-12)
    assert traj.target_source == "window"


def test_window_target_is_backed_off_along_u_and_entry_is_on_the_skin():
    rows, cols = np.mgrid[0:40, 0:40]
    mask = (rows - 16) ** 2 + (cols - 20) ** 2 <= 36
    depth = np.where(mask, 35.0, np.nan)  # hit plane y = 30 - 35 = -5 mm
    w = _window(mask, depth)
    traj = plan_trajectory(w, ct=_body_ct(), labels=_volume(_empty_labels()), table=DEFAULT_LABELS,
                           midline_point_lps=(0.0, 0.0, 0.0), midline_normal_lps=(1.0, 0.0, 0.0))
    hit = w.plane_origin_lps + 20 * 0.25 * w.axis_col_lps + 16 * 0.25 * w.axis_row_lps + 35.0 * w.view_direction_lps
    np.testing.assert_allclose(traj.window_hit_lps_mm, hit, atol=1e-6)
    np.testing.assert_allclose(traj.target_lps_mm, hit + np.array([0.0, 1.0, 0.0]), atol=1e-6)
    np.testing.assert_allclose(traj.entry_lps_mm, [hit[0], FACE, hit[2]], atol=0.02)
    np.testing.assert_allclose(traj.direction_lps, w.view_direction_lps, atol=1e-9)
    assert traj.length_mm == pytest.approx(FACE - (-4.0), abs=0.02)
    assert traj.target_source == "window"
    # nearest non-free pixel of the r^2 <= 36 disc: (6, 1) at sqrt(37) px; the edge half a pixel nearer
    assert traj.target_window_radius_mm == pytest.approx((math.sqrt(37.0) - 0.5) * 0.25)
    assert traj.skin_entry_from_midline_mm == pytest.approx(abs(hit[0]), abs=1e-6)
    assert traj.safe and traj.crosses == [] and traj.reason == ""
    with pytest.raises(ValueError, match="disagrees"):
        plan_trajectory(w, ct=_body_ct(), labels=_volume(_empty_labels()), table=DEFAULT_LABELS,
                        entry_direction_lps=(1.0, 0.0, 0.0))


# --- entry ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("u", [(0.0, 1.0, 0.0), (0.3, 1.0, -0.45)])
def test_entry_is_the_last_exit_from_the_largest_body_component(u):
    x, y, z = _grid()
    ct = np.where(y < FACE, 20.0, -1000.0).astype(np.float32)
    # Air pockets inside the body (it stays one connected component): not the skin.
    ct[(y > 7.0) & (y < 8.0) & (x < 5.0)] = -1000.0
    ct[(y > 4.0) & (y < 5.0) & (x > 0.0)] = -1000.0
    ct[(y > 15.0) & (y < 17.0)] = 50.0              # a separate blanket/table: not the body
    target = np.array([1.0, -3.0, 2.0])
    uu = np.asarray(u) / np.linalg.norm(u)
    entry, warnings = find_skin_entry(target, uu, _volume(ct))
    t = (FACE - target[1]) / uu[1]
    np.testing.assert_allclose(entry, target + t * uu, atol=0.02)
    assert warnings == []


def test_a_cached_body_mask_is_used():
    x, y, z = _grid()
    ct = _body_ct()
    mask = (y < 5.0).astype(np.uint8)  # e.g. an app-side mask that excludes a part of the body
    entry, _ = find_skin_entry((0.0, -4.0, 0.0), (0.0, 1.0, 0.0), ct, body_mask=mask)
    assert 5.0 <= entry[1] <= 5.75  # the last sample whose trilinear support touches the mask
    with pytest.raises(ValueError, match="shape"):
        find_skin_entry((0.0, -4.0, 0.0), (0.0, 1.0, 0.0), ct, body_mask=mask[1:])


def test_entry_at_the_field_of_view_edge_is_flagged_and_air_target_refused():
    ct = _volume(np.zeros(SHAPE, np.float32))  # the body fills the whole field of view
    entry, warnings = find_skin_entry((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), ct)
    assert entry[1] == pytest.approx(19.75 + 0.5 * H, abs=0.01)
    assert warnings and "field of view" in warnings[0]
    with pytest.raises(TrajectoryError, match="outside the body"):
        find_skin_entry((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), _volume(np.full(SHAPE, -1000.0, np.float32)))


# --- clearance --------------------------------------------------------------------------------------
def _nerve_cylinder(x0: float, y0: float, radius: float, label: int = 2) -> np.ndarray:
    """A cylinder along z through (x0, y0); voxel-centre labels."""
    x, y, z = _grid()
    out = _empty_labels()
    out[(x - x0) ** 2 + (y - y0) ** 2 <= radius ** 2] = label
    return out


@pytest.mark.parametrize("distance,radius", [(5.3, 2.1), (7.15, 2.6), (4.0, 1.5)])
def test_nerve_clearance_equals_axis_distance_minus_radius(distance, radius):
    labels = _volume(_nerve_cylinder(distance, 1.7, radius))
    # The path runs along y at x = z = 0.1 (off the grid's symmetry), passing the cylinder axis.
    rep = check_clearance((0.1, 15.0, 0.1), (0.1, -12.0, 0.1), labels, DEFAULT_LABELS)
    expected = distance - 0.1 - radius
    assert rep.min_nerve_clearance_mm == pytest.approx(expected, abs=0.3)
    assert rep.clearance_by_structure_mm["nerve"] == pytest.approx(expected, abs=0.3)
    assert rep.closest_at_mm["nerve"] == pytest.approx(15.0 - 1.7, abs=1.0)
    assert rep.crosses == []
    assert rep.safe == (expected >= TrajectoryOptions().needle_radius_mm + 2.0)
    if not rep.safe:
        assert "nerve" in rep.reason


def test_clearance_is_capped_at_the_horizon_and_needs_the_named_classes():
    rep = check_clearance((0.0, 15.0, 0.0), (0.0, -12.0, 0.0), _volume(_empty_labels()), DEFAULT_LABELS)
    assert rep.min_nerve_clearance_mm == pytest.approx(15.0)
    assert rep.min_bone_clearance_mm == pytest.approx(15.0)
    assert rep.safe
    with pytest.raises(InputError, match="nerve"):
        check_clearance((0.0, 15.0, 0.0), (0.0, -12.0, 0.0), _volume(_empty_labels()),
                        LabelTable({0: "background", 1: "bone"}))


def test_a_path_through_bone_is_unsafe_and_refused():
    x, y, z = _grid()
    labels = _empty_labels()
    labels[(y > 2.0) & (y < 5.0)] = DEFAULT_LABELS.id_of("bone")  # a 3 mm plate across the path
    ct = _body_ct()
    traj = plan_trajectory((0.0, -6.0, 0.0), entry_direction_lps=(0.0, 1.0, 0.0), ct=ct,
                           labels=_volume(labels), table=DEFAULT_LABELS)
    assert not traj.safe
    assert traj.crosses == ["bone"]
    assert "bone" in traj.reason
    (a, b), = traj.clearance.crossing_spans_mm["bone"]
    assert a == pytest.approx(FACE - 5.0, abs=0.3) and b == pytest.approx(FACE - 2.0, abs=0.3)
    assert traj.min_bone_clearance_mm < 0
    with pytest.raises(TrajectoryError, match="bone"):
        plan_trajectory((0.0, -6.0, 0.0), entry_direction_lps=(0.0, 1.0, 0.0), ct=ct,
                        labels=_volume(labels), table=DEFAULT_LABELS, refuse_unsafe=True)


def test_nerve_and_dura_crossings_are_named_in_path_order():
    x, y, z = _grid()
    labels = _empty_labels()
    labels[(y > -2.0) & (y < 0.0)] = DEFAULT_LABELS.id_of("dura")
    labels[(y > 6.0) & (y < 8.0)] = DEFAULT_LABELS.id_of("nerve")
    rep = check_clearance((0.0, 12.0, 0.0), (0.0, -8.0, 0.0), _volume(labels), DEFAULT_LABELS)
    assert rep.crosses == ["nerve", "dura"]  # the nerve comes first from the entry
    assert not rep.safe and "nerve" in rep.reason and "dura" in rep.reason


def test_bone_next_to_the_target_is_exempt_but_not_further_up():
    x, y, z = _grid()
    labels = _empty_labels()
    labels[y < -5.0] = DEFAULT_LABELS.id_of("bone")  # the surface the window hit (at y = -5)
    rep = check_clearance((0.0, 12.0, 0.0), (0.0, -4.0, 0.0), _volume(labels), DEFAULT_LABELS)
    assert rep.safe and rep.crosses == []
    assert rep.min_bone_clearance_mm >= 0.9  # the last 1 mm is exempt
    # The tip 0.5 mm inside the bone: still only the exempt zone touches it.
    rep_in = check_clearance((0.0, 12.0, 0.0), (0.0, -5.5, 0.0), _volume(labels), DEFAULT_LABELS)
    assert rep_in.crosses == []
    # 3 mm inside: the path crosses bone before the exempt zone.
    rep_deep = check_clearance((0.0, 12.0, 0.0), (0.0, -8.0, 0.0), _volume(labels), DEFAULT_LABELS)
    assert rep_deep.crosses == ["bone"] and not rep_deep.safe


def test_oblique_path_on_an_anisotropic_grid():
    # Needle at 45 deg in the y-z plane past a nerve cylinder along x; grid 0.5 x 0.5 x 1.0 mm.
    nz, ny, nx = 30, 80, 60
    z, y, x = np.meshgrid(-14.5 + 1.0 * np.arange(nz), -19.75 + 0.5 * np.arange(ny),
                          -14.75 + 0.5 * np.arange(nx), indexing="ij")
    labels = np.zeros((nz, ny, nx), np.uint8)
    # cylinder axis along x through (y, z) = (3, -3); radius 2.2
    labels[(y - 3.0) ** 2 + (z + 3.0) ** 2 <= 2.2 ** 2] = 2
    vol = Volume(array=labels, spacing_mm=(0.5, 0.5, 1.0), origin_lps_mm=(-14.75, -19.75, -14.5))
    entry, target = np.array([0.0, 12.0, 12.0]), np.array([0.0, -8.0, -8.0])  # the line y = z
    # distance of (3, -3) from the line y = z in the y-z plane: |3 - (-3)| / sqrt(2)
    expected = 6.0 / math.sqrt(2.0) - 2.2
    rep = check_clearance(entry, target, vol, DEFAULT_LABELS)
    assert rep.min_nerve_clearance_mm == pytest.approx(expected, abs=0.35)


# --- angles -----------------------------------------------------------------------------------------
def test_angles_for_known_directions():
    assert trajectory_angles((0.0, -1.0, 0.0)) == pytest.approx((0.0, 0.0))
    assert trajectory_angles((0.0, -1.0, -1.0))[0] == pytest.approx(45.0)
    assert trajectory_angles((-1.0, -1.0, 0.0)) == pytest.approx((0.0, 45.0))
    tilt = math.radians(12.0)
    assert trajectory_angles((0.0, -math.cos(tilt), math.sin(tilt)))[0] == pytest.approx(12.0)
    # A rotated mid-sagittal plane (normal 10 deg off x) measures the angle to it, not to LPS x.
    n = (math.cos(math.radians(10.0)), math.sin(math.radians(10.0)), 0.0)
    d = (-math.sin(math.radians(10.0)), math.cos(math.radians(10.0)), 0.0)
    assert trajectory_angles(d, n)[1] == pytest.approx(0.0, abs=1e-9)


def test_plan_reports_angles_and_midline_distance():
    u = np.array([math.sin(math.radians(30.0)), math.cos(math.radians(30.0)), 0.0])
    traj = plan_trajectory((0.0, -4.0, 0.0), entry_direction_lps=u, ct=_body_ct(),
                           labels=_volume(_empty_labels()), table=DEFAULT_LABELS,
                           midline_point_lps=(-1.0, 0.0, 0.0), midline_normal_lps=(1.0, 0.0, 0.0))
    assert traj.angle_to_axial_deg == pytest.approx(0.0, abs=1e-6)
    assert traj.angle_to_sagittal_deg == pytest.approx(30.0, abs=1e-6)
    t = (FACE + 4.0) / u[1]
    assert traj.length_mm == pytest.approx(t, abs=0.03)
    assert traj.skin_entry_from_midline_mm == pytest.approx(t * u[0] + 1.0, abs=0.03)
    doc = json.loads(json.dumps(traj.to_dict(), allow_nan=False))
    assert doc["coordinate_system"] == "LPS" and doc["safe"] is True
    assert doc["entry_lps_mm"] == pytest.approx(traj.entry_lps_mm.tolist())


def test_carm_angles_for_a_prone_patient():
    def u_of(obl: float, tilt: float, side: str) -> np.ndarray:
        s = 1.0 if side == "left" else -1.0
        o, t = math.radians(obl), math.radians(tilt)
        return np.array([s * math.cos(t) * math.sin(o), math.cos(t) * math.cos(o), math.sin(t)])

    for side in ("left", "right"):
        a = carm_angles(-u_of(25.0, 12.0, side), side)
        assert a["oblique_deg"] == pytest.approx(25.0) and a["oblique_word"] == "ipsilateral"
        assert a["tilt_deg"] == pytest.approx(12.0) and a["tilt_word"] == "cranial"
        assert side in a["description"] and "cranial" in a["description"]
        b = carm_angles(-u_of(-10.0, -8.0, side), side)
        assert b["oblique_word"] == "contralateral" and b["tilt_word"] == "caudal"
        assert b["tilt_deg"] == pytest.approx(-8.0)
    assert carm_angles((0.0, -1.0, 0.0), "left")["description"] == "straight PA, no tilt"
    with pytest.raises(ValueError):
        carm_angles((0.0, -1.0, 0.0), "both")


def test_progress_can_cancel():
    with pytest.raises(Cancelled):
        plan_trajectory((0.0, -4.0, 0.0), entry_direction_lps=(0.0, 1.0, 0.0), ct=_body_ct(),
                        labels=_volume(_empty_labels()), table=DEFAULT_LABELS,
                        progress=lambda f, m: f < 0.3)


# --- phantom smoke test -----------------------------------------------------------------------------
def test_phantom_posterolateral_path_to_the_l5s1_foramen():
    """A 2 mm phantom (whole body outline): the entry lands on the skin, the report is consistent."""
    from spinect_core.phantom import PhantomOptions, generate_phantom
    from spinect_core.reslice import oblique_planes

    ph = generate_phantom(seed=3, spacing_mm=(2.0, 2.0, 2.0),
                          options=PhantomOptions(noise=False, texture=False, streaks=False))
    lm = {k: np.asarray(v, float) for k, v in ph.meta["landmarks"].items()}
    rot = np.asarray(ph.meta["pose"]["rotation_patient_to_lps"], float)  # columns: L, P, S of the patient
    disc, foramen = lm["l5s1_disc_centre"], lm["l5s1_foramen_centre_left"]
    target = disc + 0.5 * (foramen - disc)
    obl, tilt = math.radians(25.0), math.radians(10.0)
    u = math.cos(tilt) * (math.cos(obl) * rot[:, 1] + math.sin(obl) * rot[:, 0]) + math.sin(tilt) * rot[:, 2]
    traj = plan_trajectory(target, entry_direction_lps=u, ct=ph.ct, labels=ph.labels,
                           table=ph.label_table, midline_point_lps=disc, midline_normal_lps=rot[:, 0])
    assert traj.warnings == []  # the skin is inside the field of view
    # on the skin: tissue 2 mm inside, air from 2 mm outside to the edge of the field of view
    from scipy import ndimage

    def hu(points):
        idx = ph.ct.lps_to_index(np.atleast_2d(points))[:, ::-1].T
        return ndimage.map_coordinates(ph.ct.array.astype(np.float32), idx, order=1, mode="nearest")

    assert hu(traj.entry_lps_mm - 2.0 * u)[0] > -500
    outside = traj.entry_lps_mm + np.arange(2.0, 30.0, 1.0)[:, None] * u
    inside_fov = np.all((ph.ct.lps_to_index(outside) > 0) & (ph.ct.lps_to_index(outside)
                                                             < np.array(ph.ct.size_xyz) - 1), axis=1)
    assert np.all(hu(outside[inside_fov]) < -500)
    assert 60.0 < traj.length_mm < 160.0  # a 3.5-6 inch spinal needle
    assert (traj.entry_lps_mm - target) @ rot[:, 1] > 40.0  # posterior, left of the target
    assert (traj.entry_lps_mm - target) @ rot[:, 0] > 0.0
    assert traj.skin_entry_from_midline_mm > 30.0
    # every named crossing is really in the label map along the path
    for name, spans in traj.clearance.crossing_spans_mm.items():
        a, b = spans[0]
        mid = traj.entry_lps_mm + 0.5 * (a + b) * traj.direction_lps
        near = np.rint(ph.labels.lps_to_index(mid)).astype(int)
        assert ph.label_table.name_of(ph.labels.array[near[2], near[1], near[0]]) == name
    assert traj.safe == (not traj.crosses and traj.reason == "")
    main, companion = oblique_planes(ph.ct, ph.labels, traj,
                                     endplate_normal_lps=lm["s1_superior_endplate_normal"],
                                     pixel_mm=0.5, size_mm=(80.0, 60.0))
    for plane in (main, companion):
        assert abs(plane.lps_to_pixel(traj.entry_lps_mm)[2]) < 1e-6
        assert (plane.labels == ph.label_table.id_of("bone")).any()
        assert plane.image.max() > 300  # bone is visible
