"""Unit vectors and orthonormal frames: the bottom layer's geometry, shared by every package.

Zero vectors
------------
Two helpers, because callers need two different answers and each used to write its own:

* :func:`unit` **raises** on a zero, non-finite or wrongly shaped vector. A direction the user
  or a file gave (a view direction, a DICOM orientation, a frame axis) has no meaningful
  normalisation when it is zero, and a NaN would travel silently into a plan. The exception
  class is the caller's (``error=``): ``ValueError`` for programming errors, ``InputError`` for a
  user's input, ``InconsistentSeriesError`` for a broken DICOM series.
* :func:`unit_or_zero` **returns the zero vector** for a (near) zero input: for directions
  computed inside an algorithm where "no direction" is a valid outcome that the following
  arithmetic absorbs (a degenerate polyline segment, a level centre on top of the next).

:class:`LocalFrame` is the anatomical frame the planning code measures view angles in
(``docs/ARCHITECTURE.md`` section 4.1); :mod:`spinect_core.anatomy.frames` builds the per-side
frames and :mod:`spinect_core.planning.optimise` measures angles in them. It lives here, below
both, so neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spinect_core.errors import InputError

__all__ = ["LocalFrame", "unit", "unit_or_zero"]


def unit(v: Any, what: str = "vector", *, error: type[Exception] = ValueError,
         min_norm: float = 1e-9) -> np.ndarray:
    """``v`` as a float64 (3,) unit vector; raise for a zero, non-finite or wrongly shaped input.

    Parameters
    ----------
    v : array-like, 3 numbers
        Any vector with 3 components (a list, a (3,) or (1, 3) array).
    what : str
        The vector's name in the error message ("view direction", ...).
    error : exception class
        Raised, with a message naming ``what``, when ``v`` does not hold 3 finite numbers or
        its length is below ``min_norm``.
    min_norm : float
        Shortest length accepted (in ``v``'s units).

    Returns
    -------
    np.ndarray, shape (3,), float64
        ``v / |v|``.
    """
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    n = float(np.linalg.norm(a)) if a.shape == (3,) else float("nan")
    if not np.isfinite(n) or n < min_norm:
        raise error(f"{what} must be a non-zero 3-vector, got {a.tolist()}")
    return a / n


def unit_or_zero(v: Any, *, min_norm: float = 1e-12) -> np.ndarray:
    """``v / |v|``, or zeros of ``v``'s shape when ``|v| <= min_norm`` (never raises, never NaN
    for a finite input).

    Parameters
    ----------
    v : array-like, shape (n,)
        Any 1-D vector (2D or 3D).
    min_norm : float
        Lengths up to this give the zero vector.

    Returns
    -------
    np.ndarray, shape (n,), float64
    """
    a = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(a))
    return a / n if n > min_norm else np.zeros_like(a)


@dataclass(frozen=True, kw_only=True)
class LocalFrame:
    """An orthonormal frame in LPS, right- or left-handed (mirrored between sides).

    :func:`spinect_core.anatomy.frames.side_frame` builds the per-side L5/S1 frames (origin the
    foramen centre, ``x`` lateral towards the operated side, ``y`` posterior, ``z`` cranial =
    the S1 endplate normal). Mirroring ``x`` makes the left frame right-handed and the right
    frame left-handed, so code that needs a rotation matrix uses :attr:`handedness`, or works
    with :meth:`point_to_local` / :meth:`point_to_lps` (points) and :meth:`to_local` /
    :meth:`vector_to_lps` (directions), which are exact for either handedness (the inverse of an
    orthonormal matrix is its transpose).

    Attributes
    ----------
    origin_lps : np.ndarray, shape (3,)
        LPS mm (e.g. the foramen or the S1 endplate centre).
    x_lps, y_lps, z_lps : np.ndarray, shape (3,)
        Unit vectors: lateral towards the operated side, posterior, cranial (endplate normal).

    Raises
    ------
    InputError
        The axes are not orthonormal (to 1e-6).
    """

    origin_lps: np.ndarray
    x_lps: np.ndarray
    y_lps: np.ndarray
    z_lps: np.ndarray

    def __post_init__(self) -> None:
        for name in ("origin_lps", "x_lps", "y_lps", "z_lps"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), float).reshape(3))
        m = self.matrix
        if not np.allclose(m.T @ m, np.eye(3), atol=1e-6):
            raise InputError("local frame axes must be orthonormal")

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) with columns x, y, z (LPS)."""
        return np.stack([self.x_lps, self.y_lps, self.z_lps], axis=1)

    @property
    def handedness(self) -> int:
        """+1 for a right-handed frame (``x cross y = z``), -1 for a left-handed (mirrored) one."""
        return 1 if float(np.dot(np.cross(self.x_lps, self.y_lps), self.z_lps)) > 0 else -1

    def to_local(self, vectors_lps: np.ndarray) -> np.ndarray:
        """Components (..., 3) of LPS **direction** vectors along x, y, z (no origin: the view
        optimiser's ``angles_of`` relies on that; points go through :meth:`point_to_local`)."""
        return np.asarray(vectors_lps, float) @ self.matrix

    def vector_to_lps(self, vectors_local: np.ndarray) -> np.ndarray:
        """LPS components of local direction vectors ``(..., 3)`` (inverse of :meth:`to_local`)."""
        return np.asarray(vectors_local, dtype=np.float64) @ self.matrix.T

    def point_to_local(self, points_lps: np.ndarray) -> np.ndarray:
        """Local coordinates (mm) of LPS points ``(..., 3)``."""
        p = np.asarray(points_lps, dtype=np.float64)
        return (p - self.origin_lps) @ self.matrix

    def point_to_lps(self, points_local: np.ndarray) -> np.ndarray:
        """LPS points (mm) of local coordinates ``(..., 3)``."""
        q = np.asarray(points_local, dtype=np.float64)
        return q @ self.matrix.T + self.origin_lps
