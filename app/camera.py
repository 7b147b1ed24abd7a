"""Camera geometry for the 3D view in LPS millimetres (pure numpy, no VTK).

A *view direction* ``d`` is the direction in which rays travel (from the X-ray source / eye into
the patient), as in the planning engine (DESIGN.md section 4: view d = -u, u the needle's entry
direction). The camera sits at ``focal - distance * d`` and looks along ``d``; "up" on screen is
the patient's cranial axis (+S, LPS +z) made perpendicular to ``d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CameraPose", "pose_for_direction", "direction_of", "describe_direction",
           "POSTERIOR_VIEW"]

CRANIAL_LPS = np.array([0.0, 0.0, 1.0])
#: Rays travelling from posterior to anterior: the interventionist's view of a prone patient.
POSTERIOR_VIEW = np.array([0.0, -1.0, 0.0])


@dataclass(frozen=True)
class CameraPose:
    """Position, focal point and view-up vector, LPS mm."""

    position: np.ndarray
    focal_point: np.ndarray
    view_up: np.ndarray


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, float).reshape(3)
    n = np.linalg.norm(v)
    if n == 0 or not np.isfinite(n):
        raise ValueError(f"a direction must be a non-zero finite vector, got {v}")
    return v / n


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


def describe_direction(direction_lps: np.ndarray) -> str:
    """Scanner-frame description, e.g. ``"PA +20° L oblique, 10° caudal"``.

    Angles are about the scanner axes (not the patient-local L5/S1 frame, which the planning
    engine defines): oblique = rotation about S of the ray from straight posterior->anterior,
    towards the patient's left (L) or right (R); tilt = angle of the ray to the axial plane,
    "cranial" when rays travel towards the head.
    """
    d = _unit(direction_lps)
    # Rays from posterior: d_y < 0. Oblique measured from -P towards L/R seen from behind.
    oblique = float(np.degrees(np.arctan2(-d[0], -d[1])))
    tilt = float(np.degrees(np.arcsin(np.clip(d[2], -1, 1))))
    side = "L" if oblique > 0.5 else "R" if oblique < -0.5 else ""
    ob = f"{abs(oblique):.0f}° {side} oblique" if side else "straight PA"
    tt = (f", {abs(tilt):.0f}° {'cranial' if tilt > 0 else 'caudal'}" if abs(tilt) >= 0.5 else "")
    return ob + tt
