"""Do L5's landmarks sit where an L5 has them? Warnings when they do not.

The foraminal landmarks (pedicle centre and lower margin, foramen centre, the body's posterior
wall) are measured at the end of a chain of steps: the level count, the parts' partition of the
bone, the opened body, a slab behind its wall. A segmentation that misleads any of them moves a
landmark by 5-40 mm, and with it that side's foraminal zone, windows and needle, while every
number in the plan still looks precise. Two checks need no reference:

* **mirror symmetry**: the two halves of an L5 are near mirror images. Each landmark's distance
  from the mid-sagittal plane, its depth and its height above the S1 endplate (less what L5's
  tilt to one side on the sacrum adds) differ between the sides by at most 2.8 mm on the true
  labels of 10 real-bone phantoms at 1 mm and by at most 1.0 mm on TotalSegmentator's real 3 mm
  CT's reference (measured 2026-12-07). The procedural phantom draws each side's foramen height
  on its own (15-21 mm), so its pedicles' lower margins differ by up to 6 mm (5.2 mm on seed 5,
  4.2 mm on the demo case). Beyond :data:`MIRROR_TOLERANCE_MM` one side (or both) is off, or
  the patient's L5 is asymmetric (an asymmetric collapse of the disc tilts L5's endplate too,
  which the heights allow for);
* **the pedicle's distance from the midline**: an L5 pedicle's centre lies half the
  interpedicular distance plus half the pedicle's width (12-18 mm, ANATOMY.md) from the
  mid-sagittal plane: 15-21 mm on those phantoms, 15 mm on that CT. Outside
  :data:`PEDICLE_FROM_MIDLINE_MM` the "pedicle" found is something else (a transverse process's
  root far out, the canal's wall or a spinous process near the midline).

Measured on the landmarks found as `spinect plan` finds them (derived parts): that CT resampled to
1.5 mm had its left pedicle centre 41 mm from the midline and its right one 5 mm (28 and 16 mm
from the reference's), at 1 mm its right pedicle's lower margin 14 mm higher than its left (13 mm
off); both are now said. The checks warn; they do not move a landmark, since which side is right is
not known.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from spinect_core.anatomy.landmarks import AnatomicalFrame, CoreLandmarks, SideAnatomy

__all__ = ["MIRROR_TOLERANCE_MM", "PEDICLE_FROM_MIDLINE_MM", "MIRRORED_LANDMARKS",
           "landmark_coordinates", "landmark_warnings", "mirror_difference_mm"]

#: Largest left-right difference (mm) of a landmark's distance from the midline, depth or height
#: that is taken for anatomy (see the module docstring).
MIRROR_TOLERANCE_MM = 6.0
#: Plausible distance (mm) of an L5 pedicle's centre from the mid-sagittal plane.
PEDICLE_FROM_MIDLINE_MM = (10.0, 26.0)
#: Landmarks compared across the sides (attribute of :class:`SideAnatomy` -> words).
MIRRORED_LANDMARKS: dict[str, str] = {
    "pedicle_centre_lps": "pedicle centre",
    "pedicle_lower_margin_lps": "pedicle's lower margin",
    "foramen_centre_lps": "foramen centre",
    "posterior_wall_lps": "body's posterior wall below the pedicle",
}
_AXES = ("from the midline", "behind the S1 endplate's centre", "above the S1 endplate")


def landmark_coordinates(core: CoreLandmarks, point_lps: np.ndarray) -> np.ndarray:
    """A point's anatomical coordinates about the S1 superior endplate, L5's tilt taken out.

    Parameters
    ----------
    core : CoreLandmarks
    point_lps : np.ndarray, shape (3,)
        LPS mm.

    Returns
    -------
    np.ndarray, shape (3,)
        Millimetres: distance from the mid-sagittal plane (unsigned), depth behind the S1
        endplate's centre (along its plane, posterior positive) and height above its plane
        (along its normal) less what L5's tilt to the side on the sacrum adds at that distance
        from the midline (the L5 inferior endplate's normal against the S1 endplate's: an L5
        bent 10 degrees to one side has its pedicles 6 mm apart in height above S1 and level on
        L5).
    """
    frame = AnatomicalFrame.about_midline(core)
    lateral, posterior, height = frame.local(point_lps)           # patient's left > 0
    n5 = core.l5_endplate_normal_lps
    if n5 is not None and float(np.dot(n5, frame.h)) > 0.5:
        # L5's endplate plane rises by -(n . left) / (n . h) mm per mm to the left.
        height += float(np.dot(n5, frame.lat)) / float(np.dot(n5, frame.h)) * lateral
    return np.array([abs(lateral), posterior, height])


def landmark_warnings(core: CoreLandmarks, sides: Mapping[str, SideAnatomy]) -> list[str]:
    """Warnings where the landmarks of the two sides do not mirror each other or a pedicle lies
    where no L5 pedicle does (empty if none; see the module docstring).

    Parameters
    ----------
    core : CoreLandmarks
    sides : mapping ``"left"`` / ``"right"`` -> SideAnatomy

    Returns
    -------
    list of str
    """
    warnings: list[str] = []
    lo, hi = PEDICLE_FROM_MIDLINE_MM
    for side, sa in sides.items():
        d = landmark_coordinates(core, sa.pedicle_centre_lps)[0]
        if not lo <= d <= hi:
            what = ("a transverse process's root or another bone lateral of the pedicle"
                    if d > hi else "the canal's wall or the arch near the midline")
            warnings.append(
                f"the {side} L5 pedicle centre was found {d:.0f} mm from the midline, where an "
                f"L5 pedicle's centre lies {lo:.0f}-{hi:.0f} mm from it ({what}?): the {side} "
                "pedicle, foramen and windows may be off; check them on the CT")
    worst: tuple[float, str, int, np.ndarray, np.ndarray] | None = None
    for words, q_left, q_right in _mirrored_pairs(core, sides):
        diff = np.abs(q_left - q_right)
        axis = int(np.argmax(diff))
        # The first landmark named keeps a tie (a pedicle found off moves the landmarks placed
        # at its distance from the midline by the same amount).
        if diff[axis] > MIRROR_TOLERANCE_MM and (worst is None or diff[axis] > worst[0] + 0.5):
            worst = (float(diff[axis]), words, axis, q_left, q_right)
    if worst is not None:
        diff, words, axis, q_left, q_right = worst
        warnings.append(
            f"the L5 landmarks of the two sides do not mirror each other: the {words} lies "
            f"{q_left[axis]:.0f} mm {_AXES[axis]} on the left and {q_right[axis]:.0f} mm on the "
            f"right, {diff:.0f} mm apart (the two halves of an L5 differ by 1-3 mm): one side's "
            "pedicle, foramen and windows may be off, or L5 is tilted or rotated (scoliosis); "
            "check the landmarks of both sides on the CT")
    return warnings


def mirror_difference_mm(core: CoreLandmarks, sides: Mapping[str, SideAnatomy]) -> float:
    """How far the two sides are from mirror images: the sum over the
    :data:`MIRRORED_LANDMARKS` of the distance (mm) between a landmark's left and right
    anatomical coordinates (:func:`landmark_coordinates`); 0 without both sides.

    A sum, not the largest: one side's pedicle found off moves every landmark of that side,
    while a single stray landmark moves one (TotalSegmentator's real CT at 0.8 x 0.8 x 1 mm:
    the necks' parts 10.5 mm at worst and 49.6 mm in all, the steps' 8.6 and 19.9 mm, with
    their worst landmark 16 and 9 mm from the reference's). On its reference the sum is 5.6 mm.
    """
    return float(sum(np.linalg.norm(q_left - q_right)
                     for _, q_left, q_right in _mirrored_pairs(core, sides)))


def _mirrored_pairs(core: CoreLandmarks, sides: Mapping[str, SideAnatomy]
                    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per :data:`MIRRORED_LANDMARKS` landmark: its words and its left and right anatomical
    coordinates (:func:`landmark_coordinates`); empty without both sides."""
    if not {"left", "right"} <= set(sides):
        return []
    return [(words, landmark_coordinates(core, getattr(sides["left"], name)),
             landmark_coordinates(core, getattr(sides["right"], name)))
            for name, words in MIRRORED_LANDMARKS.items()]
