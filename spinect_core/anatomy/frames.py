"""Local L5/S1 frames per side (``docs/ARCHITECTURE.md`` section 4.1).

The planning code measures view angles in a frame attached to the patient's anatomy rather than
to the scanner, so that a tilted or rotated patient gives the same angles:

* origin at the foramen centre of that side,
* ``z`` = the S1 superior endplate normal (cranial),
* ``y`` = posterior (the patient's posterior direction made orthogonal to ``z``),
* ``x`` = lateral towards the side (patient left = +x LPS for the left side, patient right =
  -x LPS for the right side).

Mirroring ``x`` makes left and right directly comparable (the same oblique angle means "the same
amount towards the operated side"), at the price of handedness: the left frame is right-handed
(``x cross y = z``), the right frame left-handed (``x cross y = -z``). Code that needs a rotation
matrix must use :attr:`LocalFrame.handedness` or work with :meth:`LocalFrame.point_to_local` /
:meth:`LocalFrame.point_to_lps` (points) and ``to_local`` / :meth:`LocalFrame.vector_to_lps`
(directions), which are exact for either handedness (the axes are orthonormal, so the inverse of
the matrix is its transpose). The frame class is :class:`spinect_core.vectors.LocalFrame`.
"""

from __future__ import annotations

import numpy as np

# The frame itself is bottom-layer geometry (planning measures angles in it too); re-exported
# here because the anatomy's callers know it as ``spinect_core.anatomy.LocalFrame``.
from spinect_core.vectors import LocalFrame
from spinect_core.vectors import unit as _unit
from spinect_core.vocabulary import SIDES

__all__ = ["LocalFrame", "side_frame"]


def side_frame(*, origin_lps: np.ndarray, cranial_lps: np.ndarray, left_lps: np.ndarray,
               side: str) -> LocalFrame:
    """The mirrored per-side frame of ``docs/ARCHITECTURE.md`` section 4.1.

    Parameters
    ----------
    origin_lps : np.ndarray, shape (3,)
        Frame origin, LPS mm (the foramen centre of that side).
    cranial_lps : np.ndarray, shape (3,)
        S1 superior endplate normal (pointing cranially); becomes ``z`` exactly.
    left_lps : np.ndarray, shape (3,)
        Direction towards patient left (the mid-sagittal plane normal, roughly +x LPS); it is
        made orthogonal to ``z``.
    side : {"left", "right"}
        The operated side: ``x`` points towards it.

    Returns
    -------
    LocalFrame
        ``z`` cranial, ``y = z cross left`` (posterior), ``x`` = +left for ``"left"`` (a
        right-handed frame) and -left for ``"right"`` (left-handed).
    """
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    z = _unit(cranial_lps)
    left = np.asarray(left_lps, float).reshape(3)
    left = _unit(left - np.dot(left, z) * z)
    y = _unit(np.cross(z, left))   # for z = +S and left = +L this is +P
    x = left if side == "left" else -left
    return LocalFrame(origin_lps=origin_lps, x_lps=x, y_lps=y, z_lps=z)
