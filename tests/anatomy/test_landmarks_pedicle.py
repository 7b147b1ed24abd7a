"""The L5 pedicle on short (real) pedicles: where it ends, and its lower margin (issue 12).

The default tests run the pedicle-length rule on synthetic point clouds (milliseconds); the
real-bone phantom (its bones' distance grids take 10-30 s) is ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.anatomy import landmarks as LM


def _box(lat, post, h, step=1.0):
    """Points (N, 3: lat, post, h; mm) filling a box on a ``step`` grid (ranges inclusive)."""
    g = [np.arange(a, b + 1e-9, step) for a, b in (lat, post, h)]
    return np.stack(np.meshgrid(*g, indexing="ij"), -1).reshape(-1, 3)


WALL = 20.0
#: A pedicle 12-22 mm lateral, 10-25 mm above the S1 endplate, from the wall backwards.
PEDICLE = dict(lat=(12.0, 22.0), h=(10.0, 25.0))


def _length(points, sgn=1.0):
    return LM._pedicle_length(points, sgn=sgn, wall=WALL, lat_range=(4.0, 40.0) if sgn > 0
                              else (-40.0, -4.0), below_h=-LM.IAP_BELOW_S1_ENDPLATE_MM)


def test_a_short_pedicle_ends_where_the_articular_process_hangs_down():
    pedicle = _box(PEDICLE["lat"], (WALL, WALL + 12.0), PEDICLE["h"])
    # The inferior articular process from 4 mm behind the wall, down to 8 mm below the S1
    # endplate (the real bones': 6-9 mm).
    iap = _box((12.0, 20.0), (WALL + 4.0, WALL + 12.0), (-8.0, 10.0))
    assert _length(np.vstack([pedicle, iap])) == pytest.approx(4.0)
    # The right side (lat negative) alike.
    mirrored = np.vstack([pedicle, iap]) * np.array([-1.0, 1.0, 1.0])
    assert _length(mirrored, sgn=-1.0) == pytest.approx(4.0)


def test_a_long_pedicle_keeps_the_full_reach():
    pedicle = _box(PEDICLE["lat"], (WALL, WALL + 16.0), PEDICLE["h"])
    assert _length(pedicle) == LM.PEDICLE_REACH_MM
    # Bone that hangs down behind a long pedicle but stays above the S1 endplate's plane
    # (a tip of the S1 superior articular process a segmentation gave to L5) is no
    # articular process of L5's.
    sap_tip = _box((14.0, 18.0), (WALL + 7.0, WALL + 10.0), (-1.0, 10.0))
    assert _length(np.vstack([pedicle, sap_tip])) == LM.PEDICLE_REACH_MM
    # Nor are two stray voxels below it.
    stray = np.array([[15.0, WALL + 6.5, -6.0], [16.0, WALL + 6.5, -6.0]])
    assert _length(np.vstack([pedicle, stray])) == LM.PEDICLE_REACH_MM


def test_bone_of_the_other_side_or_the_midline_is_not_this_pedicles():
    pedicle = _box(PEDICLE["lat"], (WALL, WALL + 16.0), PEDICLE["h"])
    # The other side's articular process (lat negative) and the spinous process's base on the
    # midline (|lat| < 4 mm) hang down too, but not in this pedicle's columns.
    other = _box((-20.0, -12.0), (WALL + 3.0, WALL + 12.0), (-8.0, 10.0))
    midline = _box((-2.0, 2.0), (WALL + 3.0, WALL + 12.0), (-8.0, 10.0))
    assert _length(np.vstack([pedicle, other, midline])) == LM.PEDICLE_REACH_MM


# --- a real-bone phantom (rendered: slow) ----------------------------------------------------------
@pytest.fixture(scope="module")
def real_phantom():
    from spinect_core.phantom import PhantomOptions, generate_phantom

    return generate_phantom(seed=100, spacing_mm=(1.0, 1.0, 1.0),
                            options=PhantomOptions(anatomy="real"))


@pytest.mark.slow
@pytest.mark.parametrize("side", ["left", "right"])
def test_real_l5_pedicle_lower_margin_and_centre_near_the_truth(real_phantom, side):
    """On real bone the lower margin was 4-9 mm too low (the "pedicle" was followed 14 mm back
    into the inferior articular process); measured after the fix on seeds 100-109 at 1 mm with
    the CT (``benchmarks/real_bone_windows.py``): -4.5..+0.9 mm along the S1 endplate normal
    (median -1.3; seed 100: -1.6 left, -2.8 right), the centre 1.3-11.1 mm from the truth
    (median 2.2; 11.1 on seed 106 right; seed 100: 2.6 and 3.2)."""
    from spinect_core.anatomy import identify_lumbosacral
    from spinect_core.labels import DEFAULT_LABELS

    ph = real_phantom
    res = identify_lumbosacral(ph.labels, DEFAULT_LABELS, instances=ph.instances,
                               instance_table=ph.instance_table, ct=ph.ct)
    lm = ph.meta["landmarks"]
    sa = res.sides[side]
    frame = sa.frame
    true_low = np.asarray(lm[f"l5_pedicle_lower_margin_{side}"], float)
    dz = float(frame.point_to_local(sa.pedicle_lower_margin_lps)[2]
               - frame.point_to_local(true_low)[2])
    assert -3.0 <= dz <= 1.5, dz
    centre = np.asarray(lm[f"l5_pedicle_centre_{side}"], float)
    assert np.linalg.norm(sa.pedicle_centre_lps - centre) <= 6.0


def test_an_l5_body_opened_into_two_halves_keeps_both():
    """An osteoporotic L5 whose marrow the bone labels left hollow in the middle opens into a
    left and a right half (a real 3 mm CT): both are the body, else one side of L5 has none. A
    smaller piece elsewhere (a pedicle the ball fits into, higher up) is not."""
    from spinect_core.volume import Volume

    grid = Volume(array=np.zeros((20, 20, 40), np.uint8), spacing_mm=(2.0, 2.0, 2.0),
                  origin_lps_mm=(0.0, 0.0, 0.0))
    body = np.zeros((20, 20, 40), bool)
    body[5:12, 5:15, 3:15] = True                       # right half
    body[5:12, 5:15, 25:37] = True                      # left half, 20 mm to the side
    assert LM._body_halves(body, grid).sum() == body.sum()
    other = body.copy()
    other[5:12, 5:15, 25:37] = False
    other[15:19, 5:15, 25:37] = True                    # 20 mm higher up: not a half
    kept = LM._body_halves(other, grid)
    assert kept.sum() == 7 * 10 * 12 and kept[8, 10, 8]


@pytest.mark.slow
def test_a_pedicle_whose_articular_process_begins_6mm_behind_the_wall_is_short():
    """Real-bone seed 106's right L5: its inferior articular process begins 6 mm behind the
    body's wall, one more than the short-pedicle slab's 5 mm, and the pedicle was followed the
    long pedicle's 14 mm back: the lower margin 11.7 mm from the truth (4.6 mm as a short
    pedicle; TotalSegmentator's real 3 mm CT's right pedicle centre 8.4 -> 2.1 mm)."""
    from spinect_core.anatomy import identify_lumbosacral
    from spinect_core.labels import DEFAULT_LABELS
    from spinect_core.phantom import PhantomOptions, generate_phantom

    ph = generate_phantom(seed=106, spacing_mm=(1.0, 1.0, 1.0),
                          options=PhantomOptions(anatomy="real"))
    res = identify_lumbosacral(ph.labels, DEFAULT_LABELS, instances=ph.instances,
                               instance_table=ph.instance_table, ct=ph.ct)
    true_low = np.asarray(ph.meta["landmarks"]["l5_pedicle_lower_margin_right"], float)
    assert np.linalg.norm(res.sides["right"].pedicle_lower_margin_lps - true_low) <= 6.0


def test_the_wall_line_down_to_the_foramen_stays_within_the_lean_of_the_pedicles_wall():
    # A body's side from its inferior endplate (h 0) to the pedicle (h 25), its posterior wall
    # at WALL, leaning 2 mm back over the 25 mm (the L5/S1 segmental angle).
    body = np.vstack([_box((0.0, 25.0), (0.0, WALL + 2.0 * (1.0 - h / 25.0)), (h, h))
                      for h in np.arange(0.0, 26.0)])
    line = LM._wall_line(body, default=WALL, cap=WALL + LM.WALL_LEAN_MM)
    assert line(25.0) == pytest.approx(WALL, abs=0.6)
    assert line(5.0) == pytest.approx(WALL + 1.6, abs=0.6)      # the lean is followed
    # Bone 8 mm behind the wall at 0-8 mm only (the opened body kept a pedicle's base on one
    # side's lower corner): the line through the per-height percentiles tilts, and extrapolated
    # down to the foramen's height it lies far behind the wall (real-bone phantoms with the CT
    # bone model's bone had their foramen centres 13-20 mm behind their pedicles'); capped, it
    # stops at the lean.
    kept = _box((12.0, 22.0), (WALL, WALL + 8.0), (0.0, 8.0))
    tilted = np.vstack([body, kept])
    assert LM._wall_line(tilted, default=WALL)(-3.0) > WALL + 2.0 * LM.WALL_LEAN_MM
    capped = LM._wall_line(tilted, default=WALL, cap=WALL + LM.WALL_LEAN_MM)
    assert max(capped(h) for h in np.arange(-10.0, 30.0)) == pytest.approx(
        WALL + LM.WALL_LEAN_MM)
