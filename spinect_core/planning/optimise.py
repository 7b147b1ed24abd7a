"""Generic view optimiser over (alpha, beta) and the local frame the angles are measured in.

Angles (docs/ARCHITECTURE.md sections 3 and 4.1): in a :class:`LocalFrame` with axes x (lateral, towards
the operated side), y (posterior) and z (cranial, S1 endplate normal), the needle's entry
direction (from the target towards the skin) is::

    u(alpha, beta) = cos(beta) (cos(alpha) y + sin(alpha) x) + sin(beta) z

and rays travel along the view direction ``d = -u``. ``alpha`` is the oblique angle from straight
posterior towards the operated side; ``beta`` > 0 tilts ``u`` cranially, so the needle, travelling
along ``d`` from the skin to the target, points caudally ("positive = needle pointing caudally").

:func:`optimise_view` knows nothing about anatomy or frames: it maximises any ``evaluate(a, b)``
over a box of two angles (the plan passes C-arm oblique and tilt, see
:mod:`spinect_core.planning.plan`; the names ``alpha`` / ``beta`` below are generic), e.g. a
window area, by a coarse grid, then a compass (pattern) search from the best grid points down to
``final_step_deg``, and reports the best view, the plateau centre and the grid map. The
grid and the early, large compass steps may use a cheaper estimate of the objective
(``grid_evaluate``); only the last step sizes run on ``evaluate``, from the best view found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.progress import ProgressCallback, report
# The frame is bottom-layer geometry (anatomy builds it, planning measures angles in it);
# re-exported so ``planning.optimise.LocalFrame`` keeps working.
from spinect_core.vectors import LocalFrame


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
        Number of distinct views evaluated (``evaluate`` and ``grid_evaluate`` together).
    fine_evaluations : int
        Of which by ``evaluate`` (all of them when there is no ``grid_evaluate``).
    history : list of ViewPoint
        Every evaluation of the refinement, in order (values of the evaluator used there).
    """

    best: ViewPoint
    plateau: ViewPoint
    alphas_deg: np.ndarray
    betas_deg: np.ndarray
    values: np.ndarray
    plateau_mask: np.ndarray
    evaluations: int
    fine_evaluations: int = 0
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


#: Coarse-grid views per call of a batch objective by default (whole rows: 4 rows of the plan's
#: 15 tilts). A batch ray caster's marching loop runs until its slowest ray finishes, whatever
#: the batch, so fewer, larger calls share that tail: the demo's 240 grid views at 1 mm rays
#: took 1.33 s of CPU one row per call, 1.01 s four rows per call, 0.96 s all at once (2-core
#: CPU); four rows keep a progress report (and a chance to cancel) every quarter second.
GRID_VIEWS_PER_CALL = 64

#: Compass moves: the axis moves are tried first, the diagonals only when no axis move improves.
AXIS_MOVES = ((1, 0), (-1, 0), (0, 1), (0, -1))
DIAGONAL_MOVES = ((1, 1), (1, -1), (-1, 1), (-1, -1))


def optimise_view(evaluate: Callable, *,
                  alpha_range_deg: tuple[float, float] = (0.0, 75.0),
                  beta_range_deg: tuple[float, float] = (-35.0, 35.0),
                  coarse_step_deg: float = 5.0, refine: bool = True,
                  final_step_deg: float = 0.25, starts: int = 2,
                  plateau_fraction: float = 0.9,
                  grid_evaluate: Callable | None = None, fine_levels: int = 1,
                  batched: bool = False, grid_views_per_call: int | None = None,
                  progress: ProgressCallback | None = None) -> ViewOptimum:
    """Maximise ``evaluate(alpha_deg, beta_deg)`` over a box of views.

    Grid, then compass search: the step starts at half the grid spacing and halves whenever no
    move improves, down to the last step >= ``final_step_deg``. Each poll tries the 4 axis
    moves and, only when none improves, the 4 diagonals, then moves to the best improvement.
    The compass runs from each of the ``starts`` best grid local maxima on the cheap objective
    (``grid_evaluate``, when given) until ``fine_levels`` step sizes remain; only the best of
    those views finishes, on ``evaluate``.

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
        most of the calls, and for all but the last ``fine_levels`` compass steps; the last
        steps, the best view and the plateau value use ``evaluate``.
    fine_levels : int
        Number of final compass step sizes run on ``evaluate`` (at least 1).
    batched : bool
        ``evaluate`` and ``grid_evaluate`` take a list of ``(alpha_deg, beta_deg)`` views and
        return their values (a sequence of floats), so that a caller can compute several views
        together (a whole grid row, the moves of one poll). Otherwise they take one view.
    grid_views_per_call : int, optional
        Views of the coarse grid per call of the batch objective, in whole rows (at least
        one), e.g. the whole grid at once for a GPU ray caster, which is the faster the more
        views it traces together. Default None: :data:`GRID_VIEWS_PER_CALL`. Progress is
        reported per call.
    progress : callable, optional
        ``progress(fraction, message) -> bool | None``; False cancels (raises Cancelled).

    Returns
    -------
    ViewOptimum
    """
    # One objective of optimise_views: the same grid, compass paths, calls and results.
    def rows(function: Callable) -> Callable[[Sequence[tuple[float, float]]], list[tuple[float]]]:
        many = function if batched else (lambda views: [function(a, b) for a, b in views])
        return lambda views: [(v,) for v in many(views)]

    return optimise_views(rows(evaluate), 1,
                          grid_evaluate=None if grid_evaluate is None else rows(grid_evaluate),
                          alpha_range_deg=alpha_range_deg, beta_range_deg=beta_range_deg,
                          coarse_step_deg=coarse_step_deg, refine=refine,
                          final_step_deg=final_step_deg, starts=starts,
                          plateau_fraction=plateau_fraction, fine_levels=fine_levels,
                          grid_views_per_call=grid_views_per_call, progress=progress)[0]


def optimise_views(evaluate: Callable[[Sequence[tuple[float, float]]], Sequence[Sequence[float]]],
                   objectives: int, *,
                   alpha_range_deg: tuple[float, float] = (0.0, 75.0),
                   beta_range_deg: tuple[float, float] = (-35.0, 35.0),
                   coarse_step_deg: float = 5.0, refine: bool = True,
                   final_step_deg: float = 0.25, starts: int = 2,
                   plateau_fraction: float = 0.9,
                   grid_evaluate: Callable | None = None, fine_levels: int = 1,
                   grid_views_per_call: int | None = None,
                   progress: ProgressCallback | None = None) -> list[ViewOptimum]:
    """:func:`optimise_view` of several objectives that one computation gives together (e.g.
    the Kambin and safe windows of one ray cast), their searches side by side.

    Each objective's result is the one :func:`optimise_view` gives it alone (best and plateau
    views and values, grid map, plateau mask, history), but every round of the compass
    searches of all objectives is one call of ``evaluate``: a batch ray caster's call costs
    a fixed ~25 ms on the CPU whatever its views, and two objectives searched one after the
    other make about twice the calls.

    Parameters
    ----------
    evaluate : callable
        Batch objective: a list of ``(alpha_deg, beta_deg)`` views -> per view a sequence of
        ``objectives`` finite floats.
    objectives : int
        Number of objectives (at least 1).
    grid_evaluate : callable, optional
        The cheaper estimate of ``evaluate``, in the same form.
    alpha_range_deg, beta_range_deg, coarse_step_deg, refine, final_step_deg, starts, \
plateau_fraction, fine_levels, grid_views_per_call, progress
        As for :func:`optimise_view` (batched).

    Returns
    -------
    list of ViewOptimum
        One per objective, in order; ``evaluations`` and ``fine_evaluations`` count the
        distinct views evaluated for all of them together.
    """
    k_obj = int(objectives)
    if k_obj < 1:
        raise InputError("at least one objective is needed")
    if coarse_step_deg <= 0 or final_step_deg <= 0:
        raise InputError("angle steps must be positive")
    a0, a1 = sorted(float(v) for v in alpha_range_deg)
    b0, b1 = sorted(float(v) for v in beta_range_deg)
    alphas = _axis(a0, a1, coarse_step_deg)
    betas = _axis(b0, b1, coarse_step_deg)
    values = np.zeros((k_obj, len(alphas), len(betas)))
    counts = {"fine": 0, "cheap": 0}

    def cached(function: Callable, store: dict, name: str
               ) -> Callable[[Sequence[tuple[float, float]]], list[tuple[float, ...]]]:
        """``function`` with a cache (views rounded to 1e-6 deg) of per-objective rows."""
        def g(views: Sequence[tuple[float, float]]) -> list[tuple[float, ...]]:
            keys = [(round(float(a), 6), round(float(b), 6)) for a, b in views]
            todo: dict[tuple[float, float], tuple[float, float]] = {}
            for k, (a, b) in zip(keys, views):
                if k not in store and k not in todo:
                    todo[k] = (float(a), float(b))
            if todo:
                got = [[float(v) for v in row] for row in function(list(todo.values()))]
                if len(got) != len(todo) or any(len(row) != k_obj for row in got):
                    raise InputError(f"the objective must return {k_obj} values for each of "
                                     f"{len(todo)} views")
                for k, row in zip(todo, got):
                    store[k] = tuple(v if math.isfinite(v) else -math.inf for v in row)
                counts[name] += len(todo)
            return [store[k] for k in keys]
        return g

    f = cached(evaluate, {}, "fine")
    coarse = f if grid_evaluate is None else cached(grid_evaluate, {}, "cheap")

    report(progress, 0.0, "view grid")
    per_call = GRID_VIEWS_PER_CALL if grid_views_per_call is None else int(grid_views_per_call)
    rows = max(per_call // len(betas), 1)
    for i in range(0, len(alphas), rows):
        chunk = alphas[i:i + rows]
        got = np.asarray(coarse([(float(a), float(b)) for a in chunk for b in betas]), float)
        values[:, i:i + len(chunk)] = got.T.reshape(k_obj, len(chunk), -1)
        done = i + len(chunk)
        report(progress, 0.8 * done / len(alphas) if refine else done / len(alphas),
               f"view grid {min(done * len(betas), values[0].size)}/{values[0].size}")
    masks, plateau_views = [], []
    for k in range(k_obj):
        bi, bj = np.unravel_index(int(np.argmax(values[k])), values[k].shape)
        mask = _plateau(values[k], (int(bi), int(bj)), plateau_fraction)
        ii, jj = np.nonzero(mask)
        masks.append(mask)
        plateau_views.append((float(alphas[ii].mean()), float(betas[jj].mean())))
    histories: list[list[ViewPoint]] = [[] for _ in range(k_obj)]
    box = (a0, a1, b0, b1)
    if refine:
        steps = _steps(coarse_step_deg / 2.0, final_step_deg)
        n_fine = min(max(int(fine_levels), 1), len(steps))
        points, columns = [], []
        for k in range(k_obj):
            for i, j in _seeds(values[k], starts):
                points.append(ViewPoint(float(alphas[i]), float(betas[j]), float(values[k, i, j])))
                columns.append(k)
        ends = _compass_many(coarse, points, steps[:-n_fine], box=box, history=[],
                             columns=columns, histories=[histories[k] for k in columns])
        report(progress, 0.9, "refining the best views")
        starts_k = [max((p for p, c in zip(ends, columns) if c == k), key=lambda p: p.value)
                    for k in range(k_obj)]  # (first, i.e. best seed, on ties)
        # Each start's value on ``evaluate`` comes with its first poll and the plateau view,
        # all objectives in one call (cached).
        batch: list[tuple[float, float]] = []
        for k, start in enumerate(starts_k):
            view = (start.alpha_deg, start.beta_deg)
            batch += [view] + _poll(view, steps[-n_fine], AXIS_MOVES, box) + [plateau_views[k]]
        f(batch)
        starts_k = [s._replace(value=f([(s.alpha_deg, s.beta_deg)])[0][k])
                    for k, s in enumerate(starts_k)]
        bests = _compass_many(f, starts_k, steps[-n_fine:], box=box, history=[],
                              columns=list(range(k_obj)), histories=histories)
        report(progress, 0.95, "refining the best views")
    else:
        grid_best = [tuple(float(v) for v in np.unravel_index(int(np.argmax(values[k])),
                                                              values[k].shape))
                     for k in range(k_obj)]
        views = [(float(alphas[int(i)]), float(betas[int(j)])) for i, j in grid_best]
        first = f(views + plateau_views)
        bests = [ViewPoint(*views[k], first[k][k]) for k in range(k_obj)]
    plateau_values = f(plateau_views)
    report(progress, 1.0, "views optimised")
    fine = counts["fine"]
    return [ViewOptimum(best=bests[k], plateau=ViewPoint(*plateau_views[k],
                                                         plateau_values[k][k]),
                        alphas_deg=alphas, betas_deg=betas, values=values[k].copy(),
                        plateau_mask=masks[k], evaluations=fine + counts["cheap"],
                        fine_evaluations=fine, history=histories[k])
            for k in range(k_obj)]


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


def _steps(first: float, final: float) -> list[float]:
    """Compass step sizes: ``first`` halved while >= ``final`` (at least one step)."""
    out = [first]
    while out[-1] / 2.0 >= final - 1e-12:
        out.append(out[-1] / 2.0)
    return out


def _compass_many(f: Callable[[Sequence[tuple[float, float]]], list[Any]],
                  points: Sequence[ViewPoint], steps: Sequence[float], *,
                  box: tuple[float, float, float, float], history: list[ViewPoint],
                  columns: Sequence[int] | None = None,
                  histories: Sequence[list[ViewPoint]] | None = None) -> list[ViewPoint]:
    """Compass searches from each of ``points`` (values of ``f``) through ``steps``, side by side.

    Each search polls the axis moves (then the diagonals if none improves), moves to the best
    improvement, and goes to the next step when nothing improves. The searches are
    independent (each takes the path it would take alone); a round evaluates the current poll
    of every search still running in one call of the batch objective ``f``. With ``columns``
    (one per point) ``f`` returns a sequence of values per view and search ``i`` reads its
    ``columns[i]``-th (several objectives computed together); ``histories`` (one list per
    point) then receive each search's evaluations instead of ``history``.
    """
    steps = list(steps)
    # Per search: view, value, step index, moves tried (0: axis, 1: diagonals).
    state = [[p.alpha_deg, p.beta_deg, p.value, 0, 0] for p in points]
    while True:
        polls: list[list[tuple[float, float]]] = []
        for st in state:
            views: list[tuple[float, float]] = []
            while st[3] < len(steps):
                views = _poll((st[0], st[1]), steps[st[3]],
                              DIAGONAL_MOVES if st[4] else AXIS_MOVES, box)
                if views:
                    break
                # No distinct view to try (the box's corner): as if none improved.
                st[3], st[4] = (st[3] + 1, 0) if st[4] else (st[3], 1)
            polls.append(views)
        if not any(polls):
            break
        values = f([v for views in polls for v in views])
        offset = 0
        for i, (st, views) in enumerate(zip(state, polls)):
            got, offset = values[offset:offset + len(views)], offset + len(views)
            if not views:
                continue
            if columns is not None:
                got = [row[columns[i]] for row in got]
            log = history if histories is None else histories[i]
            best_move = None
            for (na, nb), v in zip(views, got):
                log.append(ViewPoint(na, nb, v))
                if v > st[2] + 1e-12 and (best_move is None or v > best_move[2]):
                    best_move = (na, nb, v)
            if best_move is not None:
                st[0], st[1], st[2], st[4] = best_move[0], best_move[1], best_move[2], 0
            elif st[4]:
                st[3], st[4] = st[3] + 1, 0  # nothing improves at this step: the next one
            else:
                st[4] = 1  # the diagonals next
    return [ViewPoint(st[0], st[1], st[2]) for st in state]


def _poll(view: tuple[float, float], step: float, moves: Sequence[tuple[int, int]],
          box: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    """The distinct views ``step`` away from ``view`` along ``moves``, clamped to the box."""
    a, b = view
    a0, a1, b0, b1 = box
    out: list[tuple[float, float]] = []
    for da, db in moves:
        v = (min(max(a + da * step, a0), a1), min(max(b + db * step, b0), b1))
        if v != (a, b) and v not in out:
            out.append(v)
    return out


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
