"""Generic view optimiser over (alpha, beta) and the local frame the angles are measured in.

Angles (``DESIGN.md`` sections 3 and 4): in a :class:`LocalFrame` with axes x (lateral, towards
the operated side), y (posterior) and z (cranial, S1 endplate normal), the needle's entry
direction (from the target towards the skin) is::

    u(alpha, beta) = cos(beta) (cos(alpha) y + sin(alpha) x) + sin(beta) z

and rays travel along the view direction ``d = -u``. ``alpha`` is the oblique angle from straight
posterior towards the operated side; ``beta`` > 0 tilts ``u`` cranially, so the needle, travelling
along ``d`` from the skin to the target, points caudally ("positive = needle pointing caudally").

:func:`optimise_view` knows nothing about anatomy: it maximises any ``evaluate(alpha, beta)``
(e.g. a window area) by a coarse grid, then a compass (pattern) search from the best grid points
down to ``final_step_deg``, and reports the best view, the plateau centre and the grid map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.progress import ProgressCallback, report


@dataclass(frozen=True, kw_only=True)
class LocalFrame:
    """A right- or left-handed orthonormal frame in LPS (mirrored between sides).

    Attributes
    ----------
    origin_lps : np.ndarray, shape (3,)
        LPS mm (e.g. the foramen or the S1 endplate centre).
    x_lps, y_lps, z_lps : np.ndarray, shape (3,)
        Unit vectors: lateral towards the operated side, posterior, cranial (endplate normal).
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

    def to_local(self, vectors_lps: np.ndarray) -> np.ndarray:
        """Components (..., 3) of LPS direction vectors along x, y, z."""
        return np.asarray(vectors_lps, float) @ self.matrix


def entry_direction(frame: LocalFrame, alpha_deg: float, beta_deg: float) -> np.ndarray:
    """Unit entry direction ``u`` (3,) LPS: from the target towards the skin."""
    a, b = math.radians(alpha_deg), math.radians(beta_deg)
    u = (math.cos(b) * (math.cos(a) * frame.y_lps + math.sin(a) * frame.x_lps)
         + math.sin(b) * frame.z_lps)
    return u / np.linalg.norm(u)


def view_direction(frame: LocalFrame, alpha_deg: float, beta_deg: float) -> np.ndarray:
    """Unit view direction ``d = -u`` (3,) LPS in which rays travel (skin towards target).

    ``beta_deg`` > 0 means the needle points caudally (``d`` has a -z component).
    """
    return -entry_direction(frame, alpha_deg, beta_deg)


def angles_of(frame: LocalFrame, entry_direction_lps: Sequence[float]) -> tuple[float, float]:
    """(alpha_deg, beta_deg) of an entry direction ``u`` (inverse of :func:`entry_direction`)."""
    x, y, z = frame.to_local(np.asarray(entry_direction_lps, float))
    n = math.sqrt(x * x + y * y + z * z)
    beta = math.degrees(math.asin(max(-1.0, min(1.0, z / n))))
    alpha = math.degrees(math.atan2(x, y))
    return alpha, beta


class ViewPoint(NamedTuple):
    """One view and its objective value."""

    alpha_deg: float
    beta_deg: float
    value: float


@dataclass(kw_only=True)
class ViewOptimum:
    """Result of :func:`optimise_view`.

    Attributes
    ----------
    best : ViewPoint
        Highest value found (grid + refinement).
    plateau : ViewPoint
        Unweighted centroid of the grid views reaching >= ``plateau_fraction`` of the grid
        maximum, within the 8-connected region of such views that contains the best grid view
        (views in a separate region are ignored), evaluated there. ``value`` may be below the
        plateau level if the region is not convex.
    alphas_deg : np.ndarray, shape (A,)
    betas_deg : np.ndarray, shape (B,)
    values : np.ndarray, shape (A, B)
        The coarse map ``values[i, j] = evaluate(alphas_deg[i], betas_deg[j])``.
    plateau_mask : np.ndarray, shape (A, B), bool
        Grid views counted in the plateau.
    evaluations : int
        Number of calls of ``evaluate``.
    history : list of ViewPoint
        Every evaluation of the refinement, in order.
    """

    best: ViewPoint
    plateau: ViewPoint
    alphas_deg: np.ndarray
    betas_deg: np.ndarray
    values: np.ndarray
    plateau_mask: np.ndarray
    evaluations: int
    history: list[ViewPoint] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready summary with the map."""
        return {
            "best": self.best._asdict(), "plateau": self.plateau._asdict(),
            "alphas_deg": [float(a) for a in self.alphas_deg],
            "betas_deg": [float(b) for b in self.betas_deg],
            "values": [[float(v) for v in row] for row in self.values],
            "evaluations": self.evaluations,
        }


def optimise_view(evaluate: Callable[[float, float], float], *,
                  alpha_range_deg: tuple[float, float] = (0.0, 75.0),
                  beta_range_deg: tuple[float, float] = (-35.0, 35.0),
                  coarse_step_deg: float = 5.0, refine: bool = True,
                  final_step_deg: float = 0.25, starts: int = 2,
                  plateau_fraction: float = 0.9,
                  grid_evaluate: Callable[[float, float], float] | None = None,
                  progress: ProgressCallback | None = None) -> ViewOptimum:
    """Maximise ``evaluate(alpha_deg, beta_deg)`` over a box of views.

    Parameters
    ----------
    evaluate : callable
        Objective (e.g. window area in mm^2); must return a finite float (use 0 for "no window").
    alpha_range_deg, beta_range_deg : (float, float)
        Search box (inclusive), degrees.
    coarse_step_deg : float
        Grid spacing of the first pass.
    refine : bool
        Run the compass search after the grid.
    final_step_deg : float
        Step at which the compass search stops (the result is good to about this).
    starts : int
        Number of best grid views (local maxima first) the compass search starts from.
    plateau_fraction : float
        Level (fraction of the grid maximum) that defines the plateau.
    grid_evaluate : callable, optional
        A cheaper estimate of ``evaluate`` (e.g. coarser rays) for the coarse grid, which makes
        most of the calls; the refinement, the best view and the plateau value use ``evaluate``.
    progress : callable, optional
        ``progress(fraction, message) -> bool | None``; False cancels (raises Cancelled).

    Returns
    -------
    ViewOptimum
    """
    if coarse_step_deg <= 0 or final_step_deg <= 0:
        raise InputError("angle steps must be positive")
    a0, a1 = sorted(float(v) for v in alpha_range_deg)
    b0, b1 = sorted(float(v) for v in beta_range_deg)
    alphas = _axis(a0, a1, coarse_step_deg)
    betas = _axis(b0, b1, coarse_step_deg)
    values = np.zeros((len(alphas), len(betas)))
    count = 0
    total = values.size
    cache: dict[tuple[float, float], float] = {}

    def cached(function: Callable[[float, float], float], store: dict
               ) -> Callable[[float, float], float]:
        def g(a: float, b: float) -> float:
            nonlocal count
            key = (round(a, 6), round(b, 6))
            if key not in store:
                v = float(function(a, b))
                store[key] = v if math.isfinite(v) else -math.inf
                count += 1
            return store[key]
        return g

    f = cached(evaluate, cache)
    coarse = f if grid_evaluate is None else cached(grid_evaluate, {})

    report(progress, 0.0, "view grid")
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            values[i, j] = coarse(float(a), float(b))
        report(progress, 0.8 * (i + 1) / len(alphas) if refine else (i + 1) / len(alphas),
               f"view grid {min((i + 1) * len(betas), total)}/{total}")
    bi, bj = np.unravel_index(int(np.argmax(values)), values.shape)
    best = ViewPoint(float(alphas[bi]), float(betas[bj]),
                     f(float(alphas[bi]), float(betas[bj])))
    history: list[ViewPoint] = []
    if refine:
        seeds = _seeds(values, starts)
        for k, (i, j) in enumerate(seeds):
            p = _compass(f, float(alphas[i]), float(betas[j]), f(float(alphas[i]), float(betas[j])),
                         step=coarse_step_deg / 2.0, final=final_step_deg,
                         box=(a0, a1, b0, b1), history=history)
            if p.value > best.value:
                best = p
            report(progress, 0.8 + 0.15 * (k + 1) / len(seeds), "refining the best view")
    mask = _plateau(values, (bi, bj), plateau_fraction)
    ii, jj = np.nonzero(mask)
    pa, pb = float(alphas[ii].mean()), float(betas[jj].mean())
    plateau = ViewPoint(pa, pb, f(pa, pb))
    report(progress, 1.0, "view optimised")
    return ViewOptimum(best=best, plateau=plateau, alphas_deg=alphas, betas_deg=betas,
                       values=values, plateau_mask=mask, evaluations=count, history=history)


def _axis(lo: float, hi: float, step: float) -> np.ndarray:
    n = int(math.floor((hi - lo) / step + 1e-9))
    axis = lo + step * np.arange(n + 1)
    if hi - axis[-1] > 1e-9:  # keep the upper end in the grid
        axis = np.append(axis, hi)
    return axis


def _seeds(values: np.ndarray, starts: int) -> list[tuple[int, int]]:
    """Grid local maxima (8-neighbourhood, plateaus allowed), best first, at most ``starts``."""
    from scipy import ndimage

    finite = np.where(np.isfinite(values), values, -np.inf)
    peaks = finite >= ndimage.maximum_filter(finite, size=3, mode="nearest")
    ii, jj = np.nonzero(peaks & (finite > -np.inf))
    order = np.argsort(-finite[ii, jj], kind="stable")
    out = [(int(ii[k]), int(jj[k])) for k in order[:max(int(starts), 1)]]
    return out or [tuple(int(v) for v in np.unravel_index(int(np.argmax(finite)), values.shape))]


def _compass(f: Callable[[float, float], float], a: float, b: float, value: float, *,
             step: float, final: float, box: tuple[float, float, float, float],
             history: list[ViewPoint]) -> ViewPoint:
    """Compass search: try +-step on each axis (and diagonals), move to the best improvement,
    halve the step when nothing improves, stop below ``final``."""
    a0, a1, b0, b1 = box
    dirs = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)]
    while step >= final - 1e-12:
        best_move = None
        for da, db in dirs:
            na = min(max(a + da * step, a0), a1)
            nb = min(max(b + db * step, b0), b1)
            if (na, nb) == (a, b):
                continue
            v = f(na, nb)
            history.append(ViewPoint(na, nb, v))
            if v > value + 1e-12 and (best_move is None or v > best_move[2]):
                best_move = (na, nb, v)
        if best_move is None:
            step /= 2.0
        else:
            a, b, value = best_move
    return ViewPoint(a, b, value)


def _plateau(values: np.ndarray, seed: tuple[int, int], fraction: float) -> np.ndarray:
    """8-connected region of ``values >= fraction * max`` containing ``seed``."""
    from scipy import ndimage

    vmax = float(values[seed])
    if not math.isfinite(vmax) or vmax <= 0:
        out = np.zeros(values.shape, bool)
        out[seed] = True
        return out
    above = values >= fraction * vmax
    lab, _ = ndimage.label(above, structure=np.ones((3, 3)))
    return lab == lab[seed]
