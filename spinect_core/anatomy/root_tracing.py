"""Nerve roots traced on the CT itself: a soft-tissue tube in the foraminal fat.

On CT an exiting lumbar root is a soft-tissue tube (about 20-60 HU, 4-7 mm across, wider at the
dorsal root ganglion) surrounded by foraminal fat (about -100 HU); it leaves the dural sac under
its pedicle and runs caudally, laterally and anteriorly. This module finds it without any label
of the nerve:

1. The CT is resampled (trilinear) onto an isotropic grid aligned with a local frame (for a
   root of the L5/S1 anatomy: the side's :class:`~spinect_core.anatomy.frames.LocalFrame`, x
   lateral, y posterior, z cranial), over a box around where the root must run.
2. Every voxel gets a *nerve likeness* ``w`` in [0, 1] (1 in the soft-tissue band, 0 in fat and
   bone, linear between: :func:`nerve_likeness`) and a *tubeness* ``T`` (Sato's multi-scale
   ridge filter of ``w``, scikit-image, 1.5-2.5 mm), giving the path cost
   ``0.05 + (1 - w) + (1 - T)``: cheap along a tube of soft tissue, dearer in plain soft tissue
   (muscle, the sac, a disc), dearest in fat and bone.
3. Waypoints placed from the anatomy (a start, a seed under the pedicle) are snapped to the most
   tube-like voxel near them, and minimal paths (``skimage.graph.MCP_Geometric``) join them and
   then reach the first voxel of an end region (a slab beyond the foramen).
4. The path is resampled every ``step_mm``, re-centred on the CT itself (mean shift of the nerve
   likeness in the plane across the root, sampled at 0.25 mm), smoothed, and measured point by
   point: the radius (the half-contrast edge towards the fat or bone around it, median over 16
   directions) and the *evidence* (the fraction of directions in which fat or bone bounds the tube within 7 mm;
   a root whose fat is missing is not bounded).
5. A run of points without evidence is a *gap*: up to ``max_bridge_mm`` long it is bridged by a
   straight line between the points around it (never rerouted through whatever the minimal path
   found there) and the root's confidence is lowered; a longer gap is kept as traced and the root
   is reported as uncertain (``notes``).

Everything is LPS millimetres; the grids are (x, y, z) of the local frame.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage as ndi

from spinect_core.anatomy.frames import LocalFrame
from spinect_core.anatomy.geometry import cross_axes, disc_offsets, voxel_points
from spinect_core.progress import ProgressCallback, report
from spinect_core.volume import Volume

#: The three roots traced per side, as named in ``plan.json`` (``roots.<name>``).
ROOT_NAMES = ("exiting_l5", "exiting_l4", "traversing_s1")
#: Words of each root name, for notes and warnings.
ROOT_WORDS = {"exiting_l5": "exiting L5 root", "exiting_l4": "exiting L4 root",
              "traversing_s1": "traversing S1 root"}


@dataclass(frozen=True, kw_only=True)
class TracingOptions:
    """How roots are traced on the CT.

    Attributes
    ----------
    nerve_band_hu : (float, float)
        HU where the nerve likeness is 1 (root, ganglion; CSF and muscle too, which the tubeness
        and the anatomy's box tell apart).
    fat_hu : float
        At and below this HU the likeness is 0 (fat; linear up to the band).
    bone_hu : float
        At and above this HU the likeness is 0 (cortical and cancellous bone; linear down to the
        band).
    grid_mm : float
        Spacing of the working grid (isotropic, in the local frame).
    sigmas_mm : tuple of float
        Scales of the ridge filter (a root's radius is 2-3.5 mm).
    step_mm : float
        Spacing of the centreline points.
    snap_mm : float
        How far a waypoint may move to the most tube-like voxel.
    refine_radius_mm : float
        Radius of the cross-section used to re-centre a point.
    smooth_mm : float
        Gaussian smoothing of the centreline along its length (sigma, mm).
    fat_bound_hu, bone_bound_hu : float
        Along a direction across the root, a sample below ``fat_bound_hu`` (fat) or above
        ``bone_bound_hu`` (bone) within ``bound_reach_mm`` bounds the tube.
    bound_reach_mm : float
    min_evidence : float
        Points bounded in fewer than this fraction of directions belong to a gap.
    max_bridge_mm : float
        Longest gap bridged by a straight line; a longer one makes the root uncertain.
    uncertain_confidence : float
        Highest confidence of a root with an unbridged gap.
    """

    nerve_band_hu: tuple[float, float] = (-10.0, 90.0)
    fat_hu: float = -70.0
    bone_hu: float = 170.0
    grid_mm: float = 1.0
    sigmas_mm: tuple[float, ...] = (1.5, 2.5)
    step_mm: float = 1.0
    snap_mm: float = 4.0
    refine_radius_mm: float = 4.0
    smooth_mm: float = 1.5
    fat_bound_hu: float = -40.0
    bone_bound_hu: float = 250.0
    bound_reach_mm: float = 7.0
    min_evidence: float = 0.4
    max_bridge_mm: float = 6.0
    uncertain_confidence: float = 0.3

    def __post_init__(self) -> None:
        lo, hi = self.nerve_band_hu
        if not (self.fat_hu < lo <= hi < self.bone_hu):
            raise ValueError("need fat_hu < nerve band low <= high < bone_hu")
        if self.grid_mm <= 0 or self.step_mm <= 0 or not self.sigmas_mm:
            raise ValueError("grid_mm, step_mm must be positive and sigmas_mm non-empty")


@dataclass(frozen=True)
class Waypoint:
    """A point the root passes near (local frame, mm), snapped within ``snap_mm`` (None: the
    options' ``snap_mm``)."""

    point_local: tuple[float, float, float]
    snap_mm: float | None = None


@dataclass(frozen=True)
class EndRegion:
    """A box (local frame, mm) the root ends in: the path stops at the first tube-like voxel of
    the box it reaches."""

    lo_local: tuple[float, float, float]
    hi_local: tuple[float, float, float]


@dataclass(kw_only=True)
class TracedRoot:
    """A root traced on the CT.

    Attributes
    ----------
    centreline_lps_mm : np.ndarray, shape (N, 3)
        Centreline, LPS mm, from the start (medial / cranial) to the end.
    radius_mm : np.ndarray, shape (N,)
        Radius per point (mm).
    evidence : np.ndarray, shape (N,)
        Fraction of the directions across the root in which fat or bone bounds it (0..1).
    bridged : np.ndarray, shape (N,), bool
        Points placed on a straight bridge over a gap.
    confidence : float
        0..1 (see :func:`trace_root`).
    notes : list of str
    """

    centreline_lps_mm: np.ndarray
    radius_mm: np.ndarray
    evidence: np.ndarray
    bridged: np.ndarray
    confidence: float
    notes: list[str] = field(default_factory=list)


def nerve_likeness(hu: np.ndarray, options: TracingOptions | None = None) -> np.ndarray:
    """Nerve likeness in [0, 1] of HU values (float32, same shape).

    1 inside ``nerve_band_hu``, 0 at or below ``fat_hu`` and at or above ``bone_hu``, linear in
    between (so a voxel half fat, half nerve is about one half: partial volume stays symmetric).
    """
    o = options or TracingOptions()
    h = np.asarray(hu, np.float32)
    lo, hi = o.nerve_band_hu
    up = np.clip((h - o.fat_hu) / (lo - o.fat_hu), 0.0, 1.0)
    down = np.clip((o.bone_hu - h) / (o.bone_hu - hi), 0.0, 1.0)
    return np.minimum(up, down).astype(np.float32)


class _Grid:
    """An isotropic grid (x, y, z) in a local frame: ``lo`` (local mm), ``step`` and ``shape``."""

    def __init__(self, frame: LocalFrame, lo: np.ndarray, hi: np.ndarray, step: float) -> None:
        self.frame, self.step = frame, float(step)
        self.lo = np.asarray(lo, float)
        self.shape = tuple(int(v) for v in np.floor((np.asarray(hi, float) - self.lo) / step) + 1)

    def local(self, idx: np.ndarray) -> np.ndarray:
        return self.lo + np.asarray(idx, float) * self.step

    def index(self, local: np.ndarray) -> np.ndarray:
        return (np.asarray(local, float) - self.lo) / self.step

    def points_lps(self) -> np.ndarray:
        axes = [self.lo[i] + self.step * np.arange(n) for i, n in enumerate(self.shape)]
        q = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
        return self.frame.point_to_lps(q)

    def box(self, lo: Sequence[float], hi: Sequence[float]) -> tuple[slice, slice, slice]:
        a = np.clip(np.ceil(self.index(lo) - 1e-9).astype(int), 0, np.array(self.shape))
        b = np.clip(np.floor(self.index(hi) + 1e-9).astype(int) + 1, 0, np.array(self.shape))
        return tuple(slice(int(i), int(j)) for i, j in zip(a, b))


def sample_hu(ct: Volume, points_lps: np.ndarray, *, outside: float = -1000.0) -> np.ndarray:
    """Trilinear HU of ``ct`` at LPS points (..., 3); ``outside`` beyond the volume."""
    pts = np.asarray(points_lps, float)
    idx = ct.lps_to_index(pts.reshape(-1, 3))  # (N, 3) x, y, z
    vals = ndi.map_coordinates(ct.array, idx[:, ::-1].T, order=1, mode="constant", cval=outside,
                               output=np.float32)
    return vals.reshape(pts.shape[:-1])


def _tubeness(w: np.ndarray, sigmas_vox: Sequence[float]) -> np.ndarray:
    """Sato's ridge filter of ``w`` (bright tubes), scaled to [0, 1] by a high percentile."""
    from skimage.filters import sato

    t = sato(w, sigmas=list(sigmas_vox), black_ridges=False, mode="nearest").astype(np.float32)
    scale = float(np.percentile(t, 99.7)) if t.size else 0.0
    # A floor, so a box holding no tube at all is not stretched into one.
    scale = max(scale, 0.12)
    return np.clip(t / scale, 0.0, 1.0)


def trace_root(ct: Volume, frame: LocalFrame, waypoints: Sequence[Waypoint], end: EndRegion,
               *, box_lo_local: Sequence[float], box_hi_local: Sequence[float],
               options: TracingOptions | None = None, name: str = "root",
               tube_filter: bool = True,
               progress: ProgressCallback | None = None) -> TracedRoot | None:
    """Trace one root on the CT between anatomical waypoints and an end region.

    Parameters
    ----------
    ct : Volume
        HU, (z, y, x), any LPS geometry and spacing.
    frame : LocalFrame
        The frame the waypoints, the end region and the box are given in (mm).
    waypoints : sequence of Waypoint
        At least one: the start (first) and points the root passes near, in order.
    end : EndRegion
        Where the root ends.
    box_lo_local, box_hi_local : (3,)
        The working box (local mm); the path never leaves it.
    options : TracingOptions, optional
    name : str
        The root's name in notes (e.g. ``"exiting L5 root on the left"``).
    tube_filter : bool
        Run the ridge filter; off for a volume that holds the tube alone (a label mask drawn as
        a pseudo-CT), where the likeness itself is the tubeness.
    progress : callable, optional
        ``(fraction, message)``; returning False raises
        :class:`~spinect_core.errors.Cancelled`.

    Returns
    -------
    TracedRoot or None
        None when the box holds no soft-tissue tube at all (nothing to trace). Confidence: the
        mean evidence of the points, times ``1 - 0.5 * (bridged fraction)``; at most
        ``uncertain_confidence`` with a gap longer than ``max_bridge_mm``.
    """
    from skimage.graph import MCP_Geometric

    o = options or TracingOptions()
    if not waypoints:
        raise ValueError("trace_root needs at least one waypoint (the start)")
    report(progress, 0.0, f"tracing the {name}")
    grid = _Grid(frame, np.asarray(box_lo_local, float), np.asarray(box_hi_local, float),
                 o.grid_mm)
    if min(grid.shape) < 3:
        return None
    hu = sample_hu(ct, grid.points_lps())
    w = nerve_likeness(hu, o)
    report(progress, 0.2, f"tubeness around the {name}")
    t = _tubeness(w, [s / o.grid_mm for s in o.sigmas_mm]) if tube_filter else w
    score = w * t
    if float(score.max()) < 0.05:
        return None
    cost = (0.05 + (1.0 - w) + (1.0 - t)).astype(np.float64)
    report(progress, 0.5, f"minimal path of the {name}")

    snapped = [_snap(grid, score, wp, o) for wp in waypoints]
    ends = _end_voxels(grid, score, end)
    if not ends:
        return None
    path: list[np.ndarray] = [np.asarray(snapped[0])[None]]
    for a, b in zip(snapped[:-1], snapped[1:]):
        mcp = MCP_Geometric(cost, fully_connected=True)
        mcp.find_costs([a], [b])
        path.append(np.asarray(mcp.traceback(b))[1:])
    mcp = MCP_Geometric(cost, fully_connected=True)
    cum, _ = mcp.find_costs([snapped[-1]], ends, find_all_ends=False)
    reached = [e for e in ends if np.isfinite(cum[e])]
    if not reached:
        return None
    last = min(reached, key=lambda e: cum[e])
    path.append(np.asarray(mcp.traceback(last))[1:])
    idx = np.vstack([p for p in path if len(p)])
    points = frame.point_to_lps(grid.local(idx))
    report(progress, 0.7, f"centring the {name}")
    line = _resample(points, o.step_mm)
    if len(line) < 3:
        return None
    line = _refine(ct, line, o)
    line = _resample(_smooth(line, o.smooth_mm / o.step_mm), o.step_mm)
    radius, evidence = _measure(ct, line, o)
    line, radius, evidence, bridged, notes, uncertain = _bridge_gaps(line, radius, evidence, o,
                                                                      name)
    if bridged.any():
        radius, evidence2 = _measure(ct, line, o)
        evidence = np.where(bridged, evidence, evidence2)
    confidence = float(np.clip(np.mean(evidence), 0.0, 1.0)) * (1.0 - 0.5 * float(bridged.mean()))
    if uncertain:
        confidence = min(confidence, o.uncertain_confidence)
    report(progress, 1.0, f"{name} traced")
    return TracedRoot(centreline_lps_mm=line, radius_mm=radius, evidence=evidence,
                      bridged=bridged, confidence=round(float(confidence), 3), notes=notes)


def _snap(grid: _Grid, score: np.ndarray, wp: Waypoint, o: TracingOptions) -> tuple[int, ...]:
    """The grid voxel of the highest score within the waypoint's snap radius (the nearest
    voxel when the ball holds no score)."""
    r = o.snap_mm if wp.snap_mm is None else float(wp.snap_mm)
    p = np.asarray(wp.point_local, float)
    sl = grid.box(p - r, p + r)
    sub = score[sl]
    centre = np.clip(np.rint(grid.index(p)).astype(int), 0, np.array(grid.shape) - 1)
    if sub.size == 0:
        return tuple(int(v) for v in centre)
    ii = np.stack(np.meshgrid(*[np.arange(s.start, s.stop) for s in sl], indexing="ij"), -1)
    d = np.linalg.norm(grid.local(ii) - p, axis=-1)
    # Prefer the nearer of two equally tube-like voxels.
    val = np.where(d <= r, sub - 0.01 * d / max(r, 1e-6), -np.inf)
    if not np.isfinite(val).any() or float(val.max()) <= 0.0:
        return tuple(int(v) for v in centre)
    k = np.unravel_index(int(np.argmax(val)), val.shape)
    return tuple(int(ii[k][i]) for i in range(3))


def _end_voxels(grid: _Grid, score: np.ndarray, end: EndRegion) -> list[tuple[int, int, int]]:
    """Tube-like voxels of the end region (score above a quarter of its maximum there)."""
    sl = grid.box(end.lo_local, end.hi_local)
    sub = score[sl]
    if sub.size == 0:
        return []
    keep = sub >= max(0.25 * float(sub.max()), 1e-3)
    off = np.array([s.start for s in sl])
    return [tuple(int(v) for v in k + off) for k in np.argwhere(keep)]


def _resample(points: np.ndarray, step: float) -> np.ndarray:
    """A polyline resampled every ``step`` mm along its length (ends kept)."""
    p = np.asarray(points, float)
    if len(p) < 2:
        return p
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return p[:1]
    n = max(int(round(s[-1] / step)), 1)
    u = np.linspace(0.0, s[-1], n + 1)
    return np.stack([np.interp(u, s, p[:, i]) for i in range(3)], 1)


def _smooth(points: np.ndarray, sigma_points: float) -> np.ndarray:
    """Gaussian smoothing along a polyline with its ends held (mirror padding)."""
    if sigma_points <= 0 or len(points) < 4:
        return points
    out = ndi.gaussian_filter1d(points, sigma_points, axis=0, mode="nearest")
    out[0], out[-1] = points[0], points[-1]
    return out


def _tangents(line: np.ndarray) -> np.ndarray:
    t = np.gradient(line, axis=0)
    n = np.linalg.norm(t, axis=1, keepdims=True)
    return t / np.maximum(n, 1e-9)


def _refine(ct: Volume, line: np.ndarray, o: TracingOptions, iterations: int = 3) -> np.ndarray:
    """Re-centre each point on the nerve likeness across the root (Gaussian mean shift)."""
    uv = disc_offsets(o.refine_radius_mm, 0.25)
    sigma = 0.5 * o.refine_radius_mm
    out = line.copy()
    for _ in range(iterations):
        a, b = cross_axes(_tangents(out))
        pts = out[:, None, :] + uv[None, :, :1] * a[:, None] + uv[None, :, 1:] * b[:, None]
        w = nerve_likeness(sample_hu(ct, pts), o)
        # Weights relative to the current centre (mean shift).
        g = np.exp(-0.5 * (uv ** 2).sum(1) / sigma ** 2)[None]
        ww = w * g
        tot = ww.sum(1)
        shift = (ww[..., None] * (pts - out[:, None])).sum(1) / np.maximum(tot, 1e-9)[:, None]
        ok = tot > 0.05 * g.sum()
        shift[~ok] = 0.0
        # A step never longer than a voxel's worth: the point stays on its root.
        n = np.linalg.norm(shift, axis=1, keepdims=True)
        shift *= np.minimum(1.0, 1.5 / np.maximum(n, 1e-9))
        out = out + shift
    return out


def _measure(ct: Volume, line: np.ndarray, o: TracingOptions, n_dir: int = 16
             ) -> tuple[np.ndarray, np.ndarray]:
    """Radius (mm) and evidence (0..1) at every centreline point.

    Along ``n_dir`` directions across the root the likeness is sampled every 0.25 mm: the radius
    is the median distance where it first falls below one half (1-5 mm); a direction is bounded
    when a sample within ``bound_reach_mm`` is fat (below ``fat_bound_hu``) or bone (above
    ``bone_bound_hu``).
    """
    a, b = cross_axes(_tangents(line))
    ang = np.linspace(0.0, 2 * np.pi, n_dir, endpoint=False)
    r = np.arange(0.25, o.bound_reach_mm + 1e-9, 0.25)
    dirs = np.cos(ang)[None, :, None] * a[:, None] + np.sin(ang)[None, :, None] * b[:, None]
    pts = line[:, None, None, :] + r[None, None, :, None] * dirs[:, :, None, :]
    hu = sample_hu(ct, pts)  # (N, D, R)
    centre_hu = sample_hu(ct, line)  # (N,)
    radius = _half_contrast_radius(hu, centre_hu, r, o)
    bounded = ((hu < o.fat_bound_hu) | (hu > o.bone_bound_hu)).any(2)
    evidence = bounded.mean(1) * (nerve_likeness(centre_hu, o) >= 0.5)
    return radius.astype(float), evidence.astype(float)


def _half_contrast_radius(hu: np.ndarray, centre_hu: np.ndarray, r: np.ndarray,
                          o: TracingOptions) -> np.ndarray:
    """(N,) radius (mm): the median over directions of where the HU first crosses halfway from
    the root's HU to the fat or the bone that bounds it (the half-contrast edge, as a full width
    at half maximum; interpolated between samples). Directions without fat or bone give no
    edge; 1-5 mm, 2.5 mm without any edge.

    The levels are robust to noise: the root's HU is the mean within 0.75 mm of the centre, the
    fat's (bone's) the median of the ray's samples below ``fat_bound_hu`` (above
    ``bone_bound_hu``); a ray's extreme sample would sit ~2 noise SD beyond the tissue and move
    the edge outwards (0.2-0.4 mm on phantoms).

    A half-contrast edge of a blurred round tube lies inside its true edge by about
    ``sigma^2 / 2r`` (the blur spreads a convex section outwards more than inwards): measured
    on analytic tubes in fat at 1 mm voxels, -0.06 mm with partial volume alone and -0.13 to
    -0.17 mm with a 0.7 mm Gaussian blur. Each edge's own width gives its ``sigma`` (an erf
    edge of contrast C is steepest at its middle, C / (sigma sqrt(2 pi)) HU/mm; measured over
    1 mm across the crossing), and the radius is corrected by the median over directions
    (analytic tubes: within 0.04 mm; on unseen phantoms the exiting L5 root's radius error
    lateral of the pedicle went from -0.25..-0.08 mm to -0.15..+0.02 mm).

    hu : (N, D, R) samples along D rays at distances ``r`` (R,) from N centre points.
    """
    near = r <= 0.75
    c = ((np.asarray(centre_hu, float) + hu[:, :, near].mean((1, 2)) * near.sum())
         / (1 + near.sum()))[:, None, None]
    with warnings.catch_warnings():  # rays without fat or bone: all-NaN slices
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanmedian(np.where(hu < o.fat_bound_hu, hu, np.nan), axis=2)[..., None]
        hi = np.nanmedian(np.where(hu > o.bone_bound_hu, hu, np.nan), axis=2)[..., None]
    fat = np.isfinite(lo) & (lo < c - 40.0)
    bone = np.isfinite(hi) & (hi > c + 80.0)
    t_lo = np.where(fat, 0.5 * (c + lo), -np.inf)
    t_hi = np.where(bone, 0.5 * (c + hi), np.inf)
    # Signed excess over the nearer threshold: crosses zero at the edge.
    excess = np.maximum(t_lo - hu, hu - t_hi)
    out = excess >= 0
    has = out.any(2)
    k = np.where(has, out.argmax(2), 0)
    k0 = np.maximum(k - 1, 0)
    e1 = np.take_along_axis(excess, k[..., None], 2)[..., 0]
    e0 = np.take_along_axis(excess, k0[..., None], 2)[..., 0]
    with np.errstate(all="ignore"):  # infinite thresholds on rays without an edge
        frac = np.where((k > 0) & (e1 > e0), -e0 / np.maximum(e1 - e0, 1e-9), 0.0)
    edge = r[k0] + np.clip(frac, 0.0, 1.0) * (r[k] - r[k0])
    edge = np.where(has, edge, np.nan)
    sigma = _edge_sigma(hu, excess, k, r, contrast_fat=c[..., 0] - lo[..., 0],
                        contrast_bone=hi[..., 0] - c[..., 0], t_hi=t_hi[..., 0])
    sigma = np.where(has, sigma, np.nan)
    rad = np.full(len(edge), 2.5)
    some = has.any(1)
    rad[some] = np.nanmedian(edge[some], axis=1)
    with warnings.catch_warnings():  # points whose edges all lack a width
        warnings.simplefilter("ignore", RuntimeWarning)
        s = np.nanmedian(sigma, axis=1)
    s = np.where(np.isfinite(s), s, 0.0)
    rad = rad + s ** 2 / (2.0 * rad)
    return np.clip(rad, 1.0, 5.0)


def _edge_sigma(hu: np.ndarray, excess: np.ndarray, k: np.ndarray, r: np.ndarray, *,
                contrast_fat: np.ndarray, contrast_bone: np.ndarray, t_hi: np.ndarray
                ) -> np.ndarray:
    """(N, D) blur width (Gaussian sigma, mm, 0-1.5; NaN where unmeasurable) of each ray's
    half-contrast edge: its contrast over sqrt(2 pi) times its slope, the slope of ``excess``
    measured over 1 mm across the first crossing ``k`` (N, D) of the samples at ``r`` (R,).
    ``contrast_fat`` / ``contrast_bone`` (N, D) are the HU steps to the fat / bone level
    (NaN when the ray has none); ``t_hi`` (N, D) the bone threshold (the crossing is bone's
    when the sample there reaches it)."""
    step = float(r[1] - r[0])
    w = max(1, int(round(0.5 / step)))
    last = hu.shape[2] - 1
    ka, kb = np.clip(k - w, 0, last), np.clip(k + w - 1, 0, last)
    ea = np.take_along_axis(excess, ka[..., None], 2)[..., 0]
    eb = np.take_along_axis(excess, kb[..., None], 2)[..., 0]
    at_edge = np.take_along_axis(hu, k[..., None], 2)[..., 0]
    contrast = np.where(at_edge >= t_hi, contrast_bone, contrast_fat)
    with np.errstate(all="ignore"):
        slope = (eb - ea) / np.maximum((kb - ka) * step, 1e-9)          # HU per mm
        sigma = contrast / (slope * np.sqrt(2.0 * np.pi))
    ok = (kb > ka) & (slope > 0) & np.isfinite(sigma)
    return np.where(ok, np.clip(sigma, 0.0, 1.5), np.nan)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of the runs of True in a 1D bool array."""
    d = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _bridge_gaps(line: np.ndarray, radius: np.ndarray, evidence: np.ndarray, o: TracingOptions,
                 name: str
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], bool]:
    """Bridge the inner gaps (runs without evidence) of at most ``max_bridge_mm`` by straight
    lines; report the longer ones. Gaps at the ends are trimmed away when short, reported when
    long (the root is not followed there). Returns the line, radius, evidence and bridged flags
    (trimmed alike), the notes and whether a gap was too long to bridge."""
    gap = evidence < o.min_evidence
    out, rad = line.copy(), radius.copy()
    bridged = np.zeros(len(line), bool)
    notes: list[str] = []
    uncertain = False
    n = len(line)
    keep = np.ones(n, bool)
    for s, e in _runs(gap):
        length = o.step_mm * (e - s + 1)
        if s == 0 or e == n:
            # An end without evidence: where the root leaves the sac or the box, not a gap in
            # the fat. Trimmed, never extrapolated.
            if e - s < n // 2:
                keep[s:e] = False
            continue
        if length <= o.max_bridge_mm:
            p0, p1 = out[s - 1], out[e]
            u = np.linspace(0.0, 1.0, e - s + 2)[1:-1, None]
            out[s:e] = p0 + u * (p1 - p0)
            rad[s:e] = rad[s - 1] + u[:, 0] * (rad[e] - rad[s - 1])
            bridged[s:e] = True
            notes.append(f"the {name}: a {length:.0f} mm stretch without fat around it was "
                         "bridged by a straight line (confidence lowered)")
        else:
            uncertain = True
            notes.append(f"the {name}: a {length:.0f} mm stretch without fat around it is too "
                         f"long to bridge (over {o.max_bridge_mm:g} mm): the root there is "
                         "uncertain, review it")
    ev = evidence.copy()
    if keep.sum() >= 3:
        out, rad, ev, bridged = out[keep], rad[keep], ev[keep], bridged[keep]
    return out, rad, ev, bridged, notes, uncertain


# --- the roots of the L5/S1 anatomy ---------------------------------------------------------------

def root_geometry(anatomy, side: str, root: str) -> dict | None:
    """Waypoints, end region and working box (the side frame, mm) of one root, from the anatomy.

    Positions relative to the landmarks (local frame of ``side``: x lateral, y posterior, z
    cranial; docs/ARCHITECTURE.md 4.1): the exiting L5 root starts 9 mm medial of the L5 pedicle's centre
    and 4 mm above its lower margin (where it leaves the lateral recess), passes 3.5 mm under
    the pedicle just behind the posterior wall, and ends in a slab 10-13 mm lateral of the
    body's lateral border; the exiting L4 root the same under the L4 pedicle (found as the bone
    above the L4/L5 foramen in the pedicle's column); the traversing S1 root starts beside the
    sac at the disc (a third of the way from the midline to the pedicle) and ends in a slab
    11-14 mm below the S1 endplate. ``None`` when a landmark is missing.
    """
    sa = anatomy.sides[side]
    f = sa.frame
    loc = lambda p: f.point_to_local(np.asarray(p, float))  # noqa: E731
    ped, low = loc(sa.pedicle_centre_lps), loc(sa.pedicle_lower_margin_lps)
    lat, wall = loc(sa.vertebral_body_lateral_border_lps), loc(sa.posterior_wall_lps)
    mid = loc(anatomy.midline_point_lps)
    s1 = loc(anatomy.s1_endplate_centre_lps)
    xp, zl, xl, yw, xm, zs = ped[0], low[2], lat[0], wall[1], mid[0], s1[2]
    if root == "exiting_l5":
        return _exiting(xp, zl, xl, yw, ped[1])
    if root == "exiting_l4":
        found = _l4_pedicle_bottom(anatomy, side, ped, yw, zl)
        if found is None:
            return None
        z4, y4 = found
        # L4 sits further back in this frame (lordosis): its waypoints keep L5's offsets from
        # the pedicle's lower margin, with the wall moved by as much as the pedicle.
        return _exiting(xp, z4, xl, yw + (y4 - low[1]), y4, extra_depth=4.0)
    if root == "traversing_s1":
        d = xp - xm
        xs = xm + 0.33 * d
        return {"waypoints": [Waypoint((xs, yw + 4.0, zs + 6.0))],
                "end": EndRegion((xm + 0.1 * d, yw - 10.0, zs - 14.0),
                                 (xm + 0.75 * d, yw + 8.0, zs - 11.0)),
                "box": ((xm + 0.05 * d, yw - 14.0, zs - 18.0), (xp + 2.0, yw + 12.0, zs + 12.0)),
                "segment": ("z", zs - 12.0, zs + 8.0)}
    raise ValueError(f"unknown root {root!r}; one of {ROOT_NAMES}")


def _exiting(xp: float, zl: float, xl: float, yw: float, yp: float, *,
             extra_depth: float = 0.0) -> dict:
    """Geometry of an exiting root under a pedicle (lower margin at local z ``zl``)."""
    x_end = max(xl, xp) + 10.0
    return {"waypoints": [Waypoint((xp - 9.0, yw + 6.0, zl + 4.0)),
                          Waypoint((xp - 1.0, yw + 3.0, zl - 3.5), snap_mm=4.0 + extra_depth / 2)],
            "end": EndRegion((x_end, yw - 28.0 - extra_depth, zl - 22.0),
                             (x_end + 3.0, yw + 6.0 + extra_depth, zl)),
            "box": ((xp - 14.0, yw - 32.0 - extra_depth, zl - 26.0),
                    (x_end + 6.0, max(yw, yp) + 14.0 + extra_depth, zl + 10.0)),
            "segment": ("x", xp - 8.0, max(xl, xp) + 8.0)}


def _l4_pedicle_bottom(anatomy, side: str, ped: np.ndarray, yw: float, zl: float
                       ) -> tuple[float, float] | None:
    """Local (z, y) of the L4 pedicle's lower margin: the lowest bone (not L5, not S1) above the
    L5 pedicle in the pedicle's column (local x within 4 mm, y 8-20 mm behind the L5 wall:
    in front lies the L4 body, behind the L4 inferior articular process), 20-50 mm above the L5
    pedicle's lower margin; y the median of the bone within 2 mm of that height."""
    from spinect_core.anatomy.parts import PART_ID

    parts = anatomy.parts
    f = anatomy.sides[side].frame
    q = f.point_to_local(voxel_points(parts, parts.array == PART_ID["other_bone"]))
    if len(q) == 0:
        return None
    sel = ((np.abs(q[:, 0] - ped[0]) <= 4.0) & (q[:, 1] >= yw + 8.0) & (q[:, 1] <= yw + 20.0)
           & (q[:, 2] >= zl + 20.0) & (q[:, 2] <= zl + 50.0))
    if sel.sum() < 5:
        return None
    z = float(np.percentile(q[sel, 2], 2))
    y = float(np.median(q[sel][q[sel][:, 2] <= z + 2.0, 1]))
    return z - 0.5 * float(np.mean(parts.spacing_mm)), y


def trace_anatomy_roots(ct: Volume, anatomy, *, sides: Sequence[str] = ("left", "right"),
                        options: TracingOptions | None = None,
                        geometries: Mapping[tuple[str, str], dict | None] | None = None,
                        progress: ProgressCallback | None = None
                        ) -> dict[str, dict[str, TracedRoot | None]]:
    """Trace the exiting L5 and L4 and the traversing S1 root of each side on the CT.

    Parameters
    ----------
    ct : Volume
        HU, on any grid (the anatomy's landmarks are LPS).
    anatomy : LumbosacralAnatomy
    sides : sequence of {"left", "right"}
    options : TracingOptions, optional
    geometries : mapping, optional
        ``(side, root name) -> root_geometry(anatomy, side, name)`` already computed (the
        exiting L4 root's searches the whole parts map); the missing ones are computed here.
    progress : callable, optional

    Returns
    -------
    dict
        ``side -> root name (ROOT_NAMES) -> TracedRoot or None`` (None: a landmark is missing
        or no tube was found).
    """
    out: dict[str, dict[str, TracedRoot | None]] = {}
    jobs = [(s, r) for s in sides for r in ROOT_NAMES]
    for i, (side, root) in enumerate(jobs):
        report(progress, i / len(jobs), f"tracing the {ROOT_WORDS[root]} on the {side}")
        geo = (geometries[(side, root)] if geometries is not None and (side, root) in geometries
               else root_geometry(anatomy, side, root))
        traced = None
        if geo is not None:
            traced = trace_root(ct, anatomy.sides[side].frame, geo["waypoints"], geo["end"],
                                box_lo_local=geo["box"][0], box_hi_local=geo["box"][1],
                                options=options, name=f"{ROOT_WORDS[root]} on the {side}")
        out.setdefault(side, {})[root] = traced
    report(progress, 1.0, "roots traced")
    return out


def segment_mask(points_lps: np.ndarray, frame: LocalFrame, segment: tuple[str, float, float]
                 ) -> np.ndarray:
    """(N,) bool: centreline points within a root's assessed segment (``root_geometry``'s
    ``segment``: local axis and range, mm)."""
    axis = {"x": 0, "y": 1, "z": 2}[segment[0]]
    q = frame.point_to_local(np.asarray(points_lps, float))[:, axis]
    return (q >= segment[1]) & (q <= segment[2])


def polyline_distance(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(N,) distance (mm) from each point to a polyline (M, 3)."""
    p = np.asarray(points, float)
    L = np.asarray(line, float)
    if len(L) == 1:
        return np.linalg.norm(p - L[0], axis=1)
    a, b = L[:-1], L[1:]
    ab = b - a
    ap = p[:, None, :] - a[None]
    t = np.clip((ap * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12)[None], 0.0, 1.0)
    d = np.linalg.norm(ap - t[..., None] * ab[None], axis=-1)
    return d.min(1)

