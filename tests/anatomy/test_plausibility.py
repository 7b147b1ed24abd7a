"""The landmark plausibility checks on hand-built L5 landmarks with known answers: a mirrored pair
passes, one side moved or a pedicle put where no L5 pedicle lies is said."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.anatomy.frames import side_frame
from spinect_core.anatomy.landmarks import CoreLandmarks, SideAnatomy
from spinect_core.anatomy.plausibility import (MIRROR_TOLERANCE_MM, landmark_coordinates,
                                               landmark_warnings)

# A patient tilted in the scanner: the S1 endplate's normal leans 30 deg forward, the midline's
# normal is +x LPS (left); the S1 endplate centre is the origin of the anatomical coordinates.
TILT = np.radians(30.0)
NORMAL = np.array([0.0, -np.sin(TILT), np.cos(TILT)])          # cranial, leaning anteriorly
LEFT = np.array([1.0, 0.0, 0.0])
POSTERIOR = np.cross(NORMAL, LEFT)
CENTRE = np.array([2.0, -120.0, 230.0])


def _core() -> CoreLandmarks:
    return CoreLandmarks(s1_endplate_centre_lps=CENTRE, s1_endplate_normal_lps=NORMAL,
                         l5_endplate_centre_lps=CENTRE + 10.0 * NORMAL,
                         disc_centre_lps=CENTRE + 5.0 * NORMAL, midline_point_lps=CENTRE,
                         midline_normal_lps=LEFT)


def _at(lateral: float, posterior: float, height: float) -> np.ndarray:
    """LPS point ``lateral`` mm to the patient's left (negative: right), ``posterior`` mm behind
    and ``height`` mm above the S1 endplate's centre."""
    return CENTRE + lateral * LEFT + posterior * POSTERIOR + height * NORMAL


def _side(side: str, *, pedicle_from_midline: float = 17.0, lower_margin_height: float = 9.0
          ) -> SideAnatomy:
    s = 1.0 if side == "left" else -1.0
    foramen = _at(s * pedicle_from_midline, 25.0, 4.5)
    return SideAnatomy(
        pedicle_centre_lps=_at(s * pedicle_from_midline, 24.0, 17.0),
        pedicle_lower_margin_lps=_at(s * pedicle_from_midline, 24.0, lower_margin_height),
        pedicle_medial_wall_lps=_at(s * 10.0, 24.0, 20.0),
        vertebral_body_lateral_border_lps=_at(s * 27.0, 10.0, 9.0),
        foramen_centre_lps=foramen, posterior_wall_lps=_at(s * pedicle_from_midline, 19.0, 6.0),
        root_centreline_lps=None,
        frame=side_frame(origin_lps=foramen, cranial_lps=NORMAL, left_lps=LEFT, side=side))


def test_coordinates_are_distance_from_the_midline_depth_and_height():
    np.testing.assert_allclose(landmark_coordinates(_core(), _at(-17.0, 24.0, 9.0)),
                               [17.0, 24.0, 9.0], atol=1e-9)


def test_mirrored_landmarks_within_the_tolerance_are_not_warned_of():
    sides = {"left": _side("left"),
             "right": _side("right", pedicle_from_midline=19.0,
                            lower_margin_height=9.0 + MIRROR_TOLERANCE_MM - 0.5)}
    assert landmark_warnings(_core(), sides) == []


def test_a_lower_margin_found_far_higher_on_one_side_is_said_with_both_heights():
    sides = {"left": _side("left", lower_margin_height=2.0),
             "right": _side("right", lower_margin_height=16.0)}
    warnings = landmark_warnings(_core(), sides)
    assert len(warnings) == 1
    w = warnings[0]
    assert "do not mirror each other" in w and "pedicle's lower margin" in w
    assert "2 mm above the S1 endplate on the left and 16 mm on the right, 14 mm apart" in w


@pytest.mark.parametrize("distance, words", [(41.0, "transverse process"), (5.0, "canal")])
def test_a_pedicle_where_no_l5_pedicle_lies_is_said_for_its_side(distance, words):
    sides = {"left": _side("left", pedicle_from_midline=distance), "right": _side("right")}
    warnings = landmark_warnings(_core(), sides)
    on_left = [w for w in warnings if w.startswith("the left L5 pedicle centre")]
    assert len(on_left) == 1 and f"{distance:.0f} mm from the midline" in on_left[0]
    assert words in on_left[0]
    assert not any(w.startswith("the right L5 pedicle centre") for w in warnings)
    # The pedicle centre, the lower margin, the foramen and the wall all moved with it.
    assert any("do not mirror each other" in w for w in warnings)


def test_l5_tilted_to_one_side_on_the_sacrum_is_no_asymmetry():
    """L5 bent 12 degrees on the sacrum: its left pedicle lies 2 * 17 mm * tan(12 deg) = 7 mm
    higher above the S1 endplate than its right, beyond the tolerance, but L5's own endplate is
    tilted as much, so on L5 they are level: no warning. Without the L5 endplate's normal the
    same landmarks are warned of."""
    from dataclasses import replace

    tilt = np.radians(12.0)
    rise = 17.0 * np.tan(tilt)                 # per side, at the pedicles' 17 mm from the midline
    sides = {"left": _side("left", lower_margin_height=9.0 + rise),
             "right": _side("right", lower_margin_height=9.0 - rise)}
    for s in sides.values():                   # the pedicle centres rise alike
        s.pedicle_centre_lps = s.pedicle_lower_margin_lps + 8.0 * NORMAL
        s.foramen_centre_lps = s.foramen_centre_lps + (
            rise if s is sides["left"] else -rise) * NORMAL
        s.posterior_wall_lps = s.posterior_wall_lps + (
            rise if s is sides["left"] else -rise) * NORMAL
    tilted_normal = np.cos(tilt) * NORMAL - np.sin(tilt) * LEFT     # the plane rises to the left
    level_on_l5 = replace(_core(), l5_endplate_normal_lps=tilted_normal)
    assert landmark_warnings(level_on_l5, sides) == []
    warned = landmark_warnings(_core(), sides)
    assert len(warned) == 1 and "do not mirror each other" in warned[0]


def test_the_mirror_difference_sums_the_landmarks_left_right_distances():
    from spinect_core.anatomy.plausibility import mirror_difference_mm

    assert mirror_difference_mm(_core(), {"left": _side("left"), "right": _side("right")}) \
        == pytest.approx(0.0, abs=1e-9)
    sides = {"left": _side("left", lower_margin_height=2.0),
             "right": _side("right", lower_margin_height=16.0)}
    assert mirror_difference_mm(_core(), sides) == pytest.approx(14.0)      # one landmark
    # A pedicle found 3 mm further out moves the four landmarks placed at its distance.
    sides = {"left": _side("left"), "right": _side("right", pedicle_from_midline=20.0)}
    assert mirror_difference_mm(_core(), sides) == pytest.approx(4 * 3.0)
    assert mirror_difference_mm(_core(), {"left": _side("left")}) == 0.0
