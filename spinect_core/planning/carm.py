"""One C-arm language: view vectors <-> C-arm oblique and tilt for a prone patient, in words.

Every surface that names a view (the app's "This view" box and best-view list, the CLI, the
report HTML/PDF, plan.json, the area maps, the DRR's title) takes its words from this module, so
they cannot disagree (tests/app/test_carm_words.py checks the app, CLI and report).

Convention (:data:`CARM_CONVENTION`; also in the README)
--------------------------------------------------------
The patient lies prone. The C-arm's X-ray tube is under the table and its detector (image
intensifier / flat panel) above the patient's back. Start from the straight PA position (detector
straight above the back, central ray vertical). Then

* **oblique** (degrees): rotation of the C-arm about the patient's long axis. Positive =
  **ipsilateral**: the detector moves towards the operated side (the side of the needle) and the
  view looks into the back from that side; negative = **contralateral**.
* **tilt** (degrees): cranio-caudal angulation of the *detector*, applied after the oblique
  rotation. Positive = **cranial**: the detector leans towards the head, so the view (and a
  needle along it, "tunnel view") points caudally into the patient; negative = **caudal**.

Geometry. The *view direction* ``d`` (LPS unit vector) is the direction the operator looks:
from the detector through the back into the patient, the direction a needle advances in a tunnel
view, and :attr:`~spinect_core.planning.plan.ViewResult.view_direction_lps`. With ``u = -d`` (from
the patient towards the detector), ``P`` = posterior (LPS +y), ``S`` = superior (LPS +z) and
``S_side`` = the operated side (LPS +x for "left", -x for "right")::

    u = cos(tilt) (cos(oblique) P + sin(oblique) S_side) + sin(tilt) S

The X-rays themselves travel along ``u`` (anterior -> posterior: the tube is under the table);
the picture on the monitor (DRR, 3D view) is shown as the operator looks down at the patient's
back along ``d`` with the head at the top of the screen: the patient's left on the screen's left
in a straight PA view (see :mod:`spinect_core.reslice.drr`).

Words: ``"25.0 deg ipsilateral (left) oblique, 12.0 deg cranial tilt"``; ``"straight PA"`` when
|oblique| < 0.05 deg and ``"no tilt"`` when |tilt| < 0.05 deg; the contralateral side is written
``(contra-left)``. Displays may write the degree sign instead of " deg" (``degree_sign=True``).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from spinect_core.vectors import unit as _unit
from spinect_core.vocabulary import SIDES

__all__ = ["CARM_CONVENTION", "CARM_CONVENTION_SHORT", "LITERATURE_OBLIQUE_BAND_DEG",
           "carm_angles", "carm_view_direction", "carm_words", "carm_text", "view_side"]

#: The sign convention in one paragraph (app tooltip, report legend, README).
CARM_CONVENTION = (
    "C-arm angles for a prone patient, tube under the table, detector above the back, from the "
    "straight PA view. Oblique: rotation about the patient's long axis; + ipsilateral (detector "
    "towards the operated side), - contralateral. Tilt: cranio-caudal angulation of the "
    "detector after the oblique; + cranial (detector towards the head, the view and a tunnel-view "
    "needle point caudally), - caudal. Images are shown looking down at the back along the view, "
    "head at the top: the patient's left is on the screen's left in a straight PA view.")
#: One line of the same (area maps, figure captions).
CARM_CONVENTION_SHORT = ("prone; oblique + = ipsilateral (detector towards the operated side); "
                         "tilt + = cranial (detector towards the head)")
#: The ipsilateral oblique at which the published safe-triangle area at L5 peaks (the
#: clinical literature: Pain Practice 2015;15:393; docs/ARCHITECTURE.md section 1), degrees; marked on the area maps.
LITERATURE_OBLIQUE_BAND_DEG = (25.0, 30.0)

# Below this angle (degrees) a rotation is "none": the words then say "straight PA" / "no tilt".
_NONE_DEG = 0.05


def _check_side(side: str) -> str:
    s = str(side).lower()
    if s not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    return s


def carm_words(oblique_deg: float, tilt_deg: float, side: str, *, with_side: bool = True,
               degree_sign: bool = False) -> str:
    """The words for C-arm angles, e.g. ``"25.0 deg ipsilateral (left) oblique, 12.0 deg
    cranial tilt"``.

    Parameters
    ----------
    oblique_deg : float
        + ipsilateral, - contralateral, degrees from straight PA.
    tilt_deg : float
        + cranial, - caudal detector tilt, degrees.
    side : {"left", "right"}
        Operated side (what "ipsilateral" refers to).
    with_side : bool
        Write "(left)" / "(contra-left)" after the oblique word; False where the side is named
        nearby.
    degree_sign : bool
        ``"25.0°"`` instead of ``"25.0 deg"`` (displays); the words are otherwise identical.
    """
    side = _check_side(side)
    obl, tilt = float(oblique_deg), float(tilt_deg)
    deg = "°" if degree_sign else " deg"
    if abs(obl) < _NONE_DEG:
        obl_text = "straight PA"
    else:
        word = "ipsilateral" if obl > 0 else "contralateral"
        which = f" ({side if obl > 0 else 'contra-' + side})" if with_side else ""
        obl_text = f"{abs(obl):.1f}{deg} {word}{which} oblique"
    if abs(tilt) < _NONE_DEG:
        tilt_text = "no tilt"
    else:
        tilt_text = f"{abs(tilt):.1f}{deg} {'cranial' if tilt > 0 else 'caudal'} tilt"
    return f"{obl_text}, {tilt_text}"


def carm_angles(direction_lps: Sequence[float], side: str) -> dict[str, Any]:
    """C-arm angles and words of a view direction for a prone patient (tunnel view).

    Parameters
    ----------
    direction_lps : (3,)
        View direction ``d`` (LPS, normalised here): from the detector into the patient, the
        needle's direction from entry to target (``Trajectory.direction_lps``).
    side : {"left", "right"}
        Operated side.

    Returns
    -------
    dict
        ``side``, ``oblique_deg`` (signed, + ipsilateral; ``atan2(u . S_side, u . P)``),
        ``oblique_word`` ("ipsilateral" / "contralateral" / "none"), ``tilt_deg`` (signed,
        + cranial; ``asin(u . S)``), ``tilt_word`` ("cranial" / "caudal" / "none") and
        ``description`` (:func:`carm_words`), with ``u = -d`` (see the module docstring).
    """
    side = _check_side(side)
    u = -_unit(direction_lps, "direction_lps")
    lateral = 1.0 if side == "left" else -1.0
    obl = math.degrees(math.atan2(lateral * float(u[0]), float(u[1])))
    tilt = math.degrees(math.asin(max(-1.0, min(1.0, float(u[2])))))
    obl_word = "none" if abs(obl) < _NONE_DEG else ("ipsilateral" if obl > 0 else "contralateral")
    tilt_word = "none" if abs(tilt) < _NONE_DEG else ("cranial" if tilt > 0 else "caudal")
    return {"side": side, "oblique_deg": obl, "oblique_word": obl_word, "tilt_deg": tilt,
            "tilt_word": tilt_word, "description": carm_words(obl, tilt, side)}


def carm_view_direction(oblique_deg: float, tilt_deg: float, side: str) -> np.ndarray:
    """View direction ``d`` (skin -> target, LPS) of C-arm angles for a prone patient.

    The inverse of :func:`carm_angles`: ``u = cos(tilt) (cos(obl) P + sin(obl) S_side) +
    sin(tilt) S`` and ``d = -u``.

    Parameters
    ----------
    oblique_deg : float
        Ipsilateral oblique (+) or contralateral (-), degrees; |oblique| < 90 keeps the entry on
        the patient's back.
    tilt_deg : float
        Cranial (+) or caudal (-) detector tilt, degrees.
    side : {"left", "right"}
        Operated side.

    Returns
    -------
    np.ndarray, shape (3,)
        Unit LPS view direction ``d``.
    """
    side = _check_side(side)
    o, t = math.radians(float(oblique_deg)), math.radians(float(tilt_deg))
    lateral = 1.0 if side == "left" else -1.0
    u = np.array([math.cos(t) * math.sin(o) * lateral, math.cos(t) * math.cos(o), math.sin(t)])
    return -u / np.linalg.norm(u)


def view_side(direction_lps: Sequence[float]) -> str:
    """The side a view is rotated towards (its detector leans to): "left" or "right".

    For naming a view that belongs to no operated side (a free rotation of the 3D view): the
    words are then those of an ipsilateral view for that side. A straight PA view is "left".
    """
    u = -_unit(direction_lps, "direction_lps")
    return "right" if float(u[0]) < -1e-9 else "left"


def carm_text(carm: Mapping[str, Any] | None, *, with_side: bool = True,
              degree_sign: bool = True) -> str:
    """The words of a ``carm`` dict (:func:`carm_angles`, plan.json's ``carm``) for display.

    Re-derived from ``oblique_deg``, ``tilt_deg`` and ``side`` (not the stored description), so
    a plan.json written by an older version still reads in today's words. "—" without angles.
    """
    if not carm or "oblique_deg" not in carm or "tilt_deg" not in carm:
        return "—"
    return carm_words(float(carm["oblique_deg"]), float(carm["tilt_deg"]),
                      str(carm.get("side", "left")), with_side=with_side,
                      degree_sign=degree_sign)
