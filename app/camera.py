"""Camera geometry for the 3D view in LPS millimetres (pure numpy, no VTK).

A *view direction* ``d`` is the direction the operator looks (from the eye / C-arm detector into
the patient), as in the planning engine (docs/ARCHITECTURE.md section 4.1: view d = -u, u the needle's entry
direction); its C-arm words come from :mod:`spinect_core.planning.carm`. The camera sits at ``focal - distance * d`` and looks along ``d``; "up" on screen is
the patient's cranial axis (+S, LPS +z) made perpendicular to ``d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Raises ValueError for a zero or non-finite direction (the camera has no view without one).
from spinect_core.vectors import unit as _unit

__all__ = ["CameraPose", "pose_for_direction", "direction_of", "describe_direction",
           "POSTERIOR_VIEW"]

CRANIAL_LPS = np.array([0.0, 0.0, 1.0])
#: Looking from posterior to anterior: the interventionist's straight PA view of a prone patient.
POSTERIOR_VIEW = np.array([0.0, -1.0, 0.0])


@dataclass(frozen=True)
class CameraPose:
    """Position, focal point and view-up vector, LPS mm."""

    position: np.ndarray
    focal_point: np.ndarray
    view_up: np.ndarray


def pose_for_direction(direction_lps: np.ndarray, focal_lps_mm: np.ndarray, distance_mm: float,
                       *, cranial_lps: np.ndarray = CRANIAL_LPS) -> CameraPose:
    """Camera looking along ``direction_lps`` at ``focal_lps_mm`` with the cranial axis up.

    When the view is (nearly) along the cranial axis, "up" falls back to anterior (-P), the usual
    orientation of an axial image.
    """
    d = _unit(direction_lps)
    focal = np.asarray(focal_lps_mm, float).reshape(3)
    up = _unit(cranial_lps)
    up = up - np.dot(up, d) * d
    if np.linalg.norm(up) < 1e-3:
        anterior = np.array([0.0, -1.0, 0.0])
        up = anterior - np.dot(anterior, d) * d
    up = _unit(up)
    return CameraPose(position=focal - float(distance_mm) * d, focal_point=focal, view_up=up)


def direction_of(position: np.ndarray, focal_point: np.ndarray) -> np.ndarray:
    """Unit view direction (rays travel from the camera towards the focal point)."""
    return _unit(np.asarray(focal_point, float) - np.asarray(position, float))


def describe_direction(direction_lps: np.ndarray, side: str | None = None) -> str:
    """The view in the C-arm words of the core, e.g. ``"25.0° ipsilateral (left) oblique, 12.0°
    cranial tilt"`` (:func:`spinect_core.planning.carm.carm_words`; prone patient, from straight
    PA, oblique + towards ``side``, tilt of the detector + towards the head).

    Parameters
    ----------
    direction_lps : (3,)
        View direction (rays from the eye into the patient), LPS.
    side : {"left", "right"} or None
        Operated side that "ipsilateral" refers to; None: the side the view is rotated towards
        (:func:`spinect_core.planning.carm.view_side`).
    """
    from spinect_core.planning.carm import carm_angles, carm_text, view_side

    d = _unit(direction_lps)
    return carm_text(carm_angles(d, side or view_side(d)))
