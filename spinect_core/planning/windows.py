"""The free-window primitive: which parallel rays along a view reach the target unobstructed.

For a view direction ``d`` (the direction in which rays travel, LPS; the needle's entry direction
is ``u = -d``) an orthographic ray grid over a square ROI starts beyond the whole scene. A pixel is
*free* when the first surface its ray meets is the target and, when a ``zone`` is given, the hit
lies inside the zone.

Every ray carries a signed margin in mm (:class:`raycast.RayHits`): where a window edge is formed
by a structure the ray misses, it is the in-plane distance from the pixel to that edge, because
the minimum distance between a ray and a structure is the distance between their projections.
On the other side of such an edge the ray's own number is a penetration depth, which is not an
in-plane distance (a ray clipping a 90-degree rim at 45 degrees penetrates only 0.71 of its
in-plane offset), so those pixels are *repaired* from the exact pixels across the edge:
``-min_p (|q - p| - m(p))`` over exact pixels ``p`` of the other sign within a few pixels, which
is the exact in-plane distance for a straight edge. The margin image is then linear across every
edge, and:

* ``area_mm2``: area of the region where the bilinearly interpolated margin is > 0 (marching
  squares + shoelace). Counting pixels would quantise a window edge to +-half a pixel;
* ``inscribed_diameter_mm``: twice the largest in-plane distance from a free pixel to the window
  edge (2D distance transform to the nearest non-free pixel, minus that pixel's own distance to
  the edge);
* ``usable_area_mm2``: area where that distance is >= ``needle_radius_mm + margin_mm``, i.e. where
  a needle's axis can pass with that clearance to every edge;
* ``area_low_mm2`` / ``area_high_mm2``: the uncertainty band (docs/ARCHITECTURE.md section 4.2), the areas
  with every boundary moved by ``+-band_mm`` (the 0.35 / 0.65 levels of an edge blurred by the
  scene's ``sigma_voxels``, see :mod:`scene`): ``{margin > band}`` and ``{margin > -band}``.

The ROI border counts as an edge: a window cut by the ROI is measured as cut.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable, Sequence, Union

import numpy as np

from spinect_core.planning.raycast import (HIT_NONE, HIT_TARGET, RayGrid, RayHits, make_ray_grid,
                                           trace_rays_many, unit_vector)
from spinect_core.planning.scene import SceneFields
from spinect_core.volume import Volume

#: A zone: a soft/boolean volume (inside where >= 0.5, trilinear), or a callable that maps LPS
#: points (N, 3) to a boolean or [0, 1] array (N,). Zones are binary per pixel: the zone edge is
#: placed half-way between pixels inside and outside it.
Zone = Union[Volume, Callable[[np.ndarray], np.ndarray]]


@dataclass(frozen=True, kw_only=True)
class WindowOptions:
    """Options of :func:`compute_window`.

    Attributes
    ----------
    roi_size_mm : float
        Side of the square ray grid (mm).
    pixel_mm : float
        Ray spacing (mm); 0.25 for reported numbers, 0.5 is fine for optimisation.
    threshold : float
        Nominal occupancy level of the surfaces (0.5: the signed distance fields' zero level);
        reported, not used.
    band_thresholds : (float, float)
        Nominal occupancy levels of the uncertainty band (reported as the band's keys).
    band_mm : float, optional
        Half-width of the band (mm); default the scene's ``band_mm``.
    needle_radius_mm : float
        Needle radius for the usable area (0.36 mm: 22 G spinal needle, 0.72 mm outer diameter).
    margin_mm : float
        Extra clearance added to the needle radius for the usable area.
    step_voxels : float
        Smallest sphere-tracing step, in units of the smallest voxel size.
    repair_radius_px : int
        Reach (pixels) of the repair of penetration margins from exact margins across an edge.
    up_lps : (3,)
        Screen "up" hint; image rows run towards ``-up`` (see :func:`raycast.view_axes`).
    polygons : bool
        Trace the window outline (costs ~1 ms); off for optimisation loops.
    """

    roi_size_mm: float = 40.0
    pixel_mm: float = 0.25
    threshold: float = 0.5
    band_thresholds: tuple[float, float] = (0.35, 0.65)
    band_mm: float | None = None
    needle_radius_mm: float = 0.36
    margin_mm: float = 1.0
    step_voxels: float = 0.25
    repair_radius_px: int = 3
    up_lps: tuple[float, float, float] = (0.0, 0.0, 1.0)
    polygons: bool = True


@dataclass(frozen=True, kw_only=True)
class MaskMetrics:
    """Area and cannula-fit numbers of one window mask (mm^2, mm)."""

    area_mm2: float
    inscribed_diameter_mm: float
    usable_area_mm2: float


@dataclass(kw_only=True)
class WindowResult:
    """One free window seen along one view direction.

    The LPS point of pixel (r, c) at depth t is
    ``plane_origin_lps + c*pixel_mm*axis_col_lps + r*pixel_mm*axis_row_lps + t*view_direction_lps``.

    Attributes
    ----------
    area_mm2 : float
        Free area (mm^2) projected on the view plane (sub-pixel, from ``margin``).
    inscribed_diameter_mm : float
        Largest inscribed circle diameter of the window (mm).
    usable_area_mm2 : float
        Area where the in-plane distance to the window edge is >= ``erosion_radius_mm``
        (needle radius + margin), mm^2.
    area_low_mm2, area_high_mm2 : float
        The uncertainty band: areas with every boundary moved by ``+band_mm`` (structures grown,
        the 0.35 level) and ``-band_mm`` (shrunk, the 0.65 level).
    mask : np.ndarray, shape (H, W), bool
        Free pixels (``margin > 0``).
    mask_low, mask_high : np.ndarray, shape (H, W), bool
        Free pixels at the band's ends.
    margin, margin_low, margin_high : np.ndarray, shape (H, W), float32
        Signed margins (mm, > 0 = free; ``margin -+ band_mm`` for the band), after the zone.
    hit_depth_mm : np.ndarray, shape (H, W), float32
        Distance along ``view_direction_lps`` from the start plane to the first surface hit
        (target or blocker), NaN where nothing is hit.
    hit_is_target : np.ndarray, shape (H, W), bool
        The first hit is the target (before the zone test).
    plane_origin_lps, axis_col_lps, axis_row_lps, view_direction_lps : np.ndarray, shape (3,)
        Ray-grid geometry (LPS mm / unit vectors).
    pixel_mm : float
    erosion_radius_mm : float
    threshold : float
    band_thresholds : (float, float)
    band_mm : float
    polygons_lps : list of np.ndarray, shape (K, 3)
        Window outlines (closed, K points each) in LPS mm, on the plane perpendicular to ``d``
        through the window's median hit depth; empty when there is no window or polygons were
        not requested.
    compute_time_s : float
        Wall time of :func:`compute_window` (with :func:`compute_windows`: this view's share).

    Notes
    -----
    ``area_mm2``, ``mask`` and ``margin`` are computed with the window; the other numbers and
    the band's masks and margins are derived from ``margin`` on first access (an optimiser that
    compares areas over hundreds of views never pays for the distance transforms behind them).
    """

    area_mm2: float
    mask: np.ndarray
    margin: np.ndarray
    hit_depth_mm: np.ndarray
    hit_is_target: np.ndarray
    plane_origin_lps: np.ndarray
    axis_col_lps: np.ndarray
    axis_row_lps: np.ndarray
    view_direction_lps: np.ndarray
    pixel_mm: float
    erosion_radius_mm: float
    threshold: float = 0.5
    band_thresholds: tuple[float, float] = (0.35, 0.65)
    band_mm: float = 0.0
    polygons_lps: list[np.ndarray] = field(default_factory=list)
    compute_time_s: float = 0.0

    @property
    def entry_direction_lps(self) -> np.ndarray:
        """Needle entry direction u = -d (from the target towards the skin), (3,)."""
        return -self.view_direction_lps

    # --- derived on first access -----------------------------------------------------------
    @cached_property
    def _metrics(self) -> MaskMetrics:
        return measure_mask(self.mask, self.pixel_mm, erosion_radius_mm=self.erosion_radius_mm,
                            margin=self.margin)

    @property
    def inscribed_diameter_mm(self) -> float:
        return self._metrics.inscribed_diameter_mm

    @property
    def usable_area_mm2(self) -> float:
        return self._metrics.usable_area_mm2

    @property
    def margin_low(self) -> np.ndarray:
        return self.margin - np.float32(self.band_mm)

    @property
    def margin_high(self) -> np.ndarray:
        return self.margin + np.float32(self.band_mm)

    @property
    def mask_low(self) -> np.ndarray:
        return self.margin_low > 0

    @property
    def mask_high(self) -> np.ndarray:
        return self.margin_high > 0

    @cached_property
    def area_low_mm2(self) -> float:
        return soft_area_mm2(self.margin_low, self.pixel_mm)

    @cached_property
    def area_high_mm2(self) -> float:
        return soft_area_mm2(self.margin_high, self.pixel_mm)

    @property
    def ray_grid(self) -> RayGrid:
        return RayGrid(plane_origin_lps=self.plane_origin_lps, axis_col_lps=self.axis_col_lps,
                       axis_row_lps=self.axis_row_lps, view_direction_lps=self.view_direction_lps,
                       pixel_mm=self.pixel_mm,
                       shape=(int(self.mask.shape[0]), int(self.mask.shape[1])))

    def points_lps(self, rows: np.ndarray, cols: np.ndarray, depth_mm: np.ndarray) -> np.ndarray:
        """LPS points (..., 3) of pixel coordinates at depths (mm from the start plane)."""
        return self.ray_grid.points_lps(rows, cols, depth_mm)

    def hit_points_lps(self) -> np.ndarray:
        """(H, W, 3) LPS first-hit points (NaN where nothing is hit)."""
        r, c = np.indices(self.mask.shape)
        return self.points_lps(r, c, self.hit_depth_mm)

    def restricted(self, keep: np.ndarray) -> "WindowResult":
        """The same view with the window limited to pixels ``keep`` (H, W) bool, re-measured.

        Used to split one free area into sub-windows (e.g. Kambin and safe triangle); the cut
        runs half-way between kept and dropped pixel centres.
        """
        return self._cut_by(_cut_distance(np.asarray(keep, bool), self.pixel_mm))

    def split(self, keep: np.ndarray) -> tuple["WindowResult", "WindowResult"]:
        """``(restricted(keep), restricted(~keep))``, with one distance transform for both.

        The cut distance of the complement is the negated cut distance of ``keep`` (each pixel's
        distance to the other side is the same number), so the two halves share it.
        """
        cut = _cut_distance(np.asarray(keep, bool), self.pixel_mm)
        return self._cut_by(cut), self._cut_by(-cut)

    def _cut_by(self, cut: np.ndarray) -> "WindowResult":
        """This window, its margin capped by a cut's signed distance (H, W) mm, re-measured."""
        f = np.minimum(self.margin, cut)
        polys = (window_polygons_lps(f, self.ray_grid, self.hit_depth_mm)
                 if self.polygons_lps else [])
        return replace(self, polygons_lps=polys, **_measure(f, self.pixel_mm))

    def to_dict(self, *, polygons: bool = True) -> dict:
        """JSON-ready summary (numbers, geometry, optional polygons; no masks)."""
        out = {
            "area_mm2": self.area_mm2,
            "inscribed_diameter_mm": self.inscribed_diameter_mm,
            "usable_area_mm2": self.usable_area_mm2,
            "erosion_radius_mm": self.erosion_radius_mm,
            "area_band_mm2": {f"{self.band_thresholds[0]:g}": self.area_low_mm2,
                              f"{self.band_thresholds[1]:g}": self.area_high_mm2},
            "band_mm": self.band_mm,
            "threshold": self.threshold,
            "free_pixels": int(self.mask.sum()),
            "pixel_mm": self.pixel_mm,
            "grid_shape": [int(n) for n in self.mask.shape],
            "view_direction_lps": [float(v) for v in self.view_direction_lps],
            "entry_direction_lps": [float(v) for v in self.entry_direction_lps],
            "plane_origin_lps": [float(v) for v in self.plane_origin_lps],
            "axis_col_lps": [float(v) for v in self.axis_col_lps],
            "axis_row_lps": [float(v) for v in self.axis_row_lps],
            "coordinate_system": "LPS",
        }
        if polygons:
            out["polygons_lps"] = [[[round(float(x), 4) for x in p] for p in poly]
                                   for poly in self.polygons_lps]
        return out


def compute_window(scene: SceneFields, view_direction_lps: Sequence[float], *,
                   roi_center_lps: Sequence[float] | None = None, zone: Zone | None = None,
                   options: WindowOptions = WindowOptions()) -> WindowResult:
    """The free window of ``scene`` seen along ``view_direction_lps``.

    Parameters
    ----------
    scene : SceneFields
        Target and blocker signed distance fields.
    view_direction_lps : (3,)
        Direction in which rays travel (LPS, any length > 0); the needle enters along its opposite.
    roi_center_lps : (3,), optional
        Centre of the square ROI (projected onto the view plane); default: the target centroid.
    zone : Volume or callable, optional
        A target hit counts only where the zone holds (>= 0.5 for volumes, trilinear in LPS;
        truthy / >= 0.5 for callables on LPS points (N, 3)).
    options : WindowOptions

    Returns
    -------
    WindowResult
    """
    return compute_windows(scene, [view_direction_lps], roi_center_lps=roi_center_lps,
                           zone=zone, options=options)[0]


def compute_windows(scene: SceneFields, view_directions_lps: Sequence[Sequence[float]], *,
                    roi_center_lps: Sequence[float] | None = None, zone: Zone | None = None,
                    options: WindowOptions = WindowOptions(),
                    crops: Sequence[tuple[int, int, int, int] | None] | None = None,
                    keep_shape: bool = False) -> list[WindowResult]:
    """:func:`compute_window` for several view directions, with one batched ray cast.

    Each window is the same as :func:`compute_window` gives for its direction; casting the rays
    of all views together (:func:`raycast.trace_rays_many`) shares the marching loop's
    per-iteration overhead, which dominates small grids (e.g. 1 mm rays on a view grid).

    Parameters
    ----------
    scene, roi_center_lps, zone, options
        As for :func:`compute_window`.
    view_directions_lps : sequence of (3,)
        Directions in which rays travel (LPS).
    crops : sequence of (r0, r1, c0, c1) or None, optional
        Per view, measure only rows ``r0:r1`` and columns ``c0:c1`` of the ROI's ray grid (the
        result is that sub-grid's window; its border counts as an edge, like the ROI's). It is
        the whole ROI's window whenever the crop keeps every free pixel farther than the reach
        of a margin (``repair_radius_px`` + the margins' 2 mm cap + 1 pixel) from the cut
        borders: that is the caller's business (None: the whole ROI).
    keep_shape : bool
        With ``crops``: each window is returned on the whole ROI's ray grid, the rays outside
        its crop (not traced) counted as hitting nothing (:func:`embed_hits`). Its free pixels,
        margins near them and areas are then those of the crop's window.

    Returns
    -------
    list of WindowResult
        One per direction, in order.
    """
    t_start = time.perf_counter()
    directions = [unit_vector(d) for d in view_directions_lps]
    if not directions:
        return []
    centre = (scene.target_centroid_lps() if roi_center_lps is None
              else np.asarray(roi_center_lps, float).reshape(3))
    grids = [make_ray_grid(scene.scene_corners_lps, d, roi_center_lps=centre,
                           roi_size_mm=options.roi_size_mm, pixel_mm=options.pixel_mm,
                           up_lps=options.up_lps) for d in directions]
    all_hits = trace_rays_many(scene, grids, crops=crops, min_step_voxels=options.step_voxels,
                               refine_within_px=float(options.repair_radius_px))
    if crops is not None and keep_shape:
        far = -scene.max_abs_distance_mm()
        all_hits = [hits if box is None else embed_hits(hits, box, g.shape, outside_margin_mm=far)
                    for g, hits, box in zip(grids, all_hits, crops)]
    elif crops is not None:
        grids = [g if box is None else g.crop(box) for g, box in zip(grids, crops)]
    inside = _zone_masks(zone, grids, all_hits) if zone is not None else None
    shared_s = (time.perf_counter() - t_start) / len(grids)
    out = []
    for k, (grid, hits) in enumerate(zip(grids, all_hits)):
        t_view = time.perf_counter()
        window = _window_from_hits(scene, grid, hits, None if inside is None else inside[k],
                                   options)
        window.compute_time_s = shared_s + time.perf_counter() - t_view
        out.append(window)
    return out


def embed_hits(hits: RayHits, box: tuple[int, int, int, int], shape: tuple[int, int], *,
               outside_margin_mm: float) -> RayHits:
    """The hits of a crop ``box`` (r0, r1, c0, c1) of a ray grid placed in the grid's ``shape``
    (H, W); the rays outside it count as hitting nothing, with an exact margin of
    ``outside_margin_mm`` (negative: a distance to the target farther than any that matters)."""
    r0, r1, c0, c1 = box
    depth = np.full(shape, np.nan, np.float32)
    kind = np.full(shape, HIT_NONE, np.uint8)
    margin = np.full(shape, outside_margin_mm, np.float32)
    exact = np.ones(shape, bool)
    for whole, part in ((depth, hits.depth_mm), (kind, hits.kind), (margin, hits.margin_mm),
                        (exact, hits.exact)):
        whole[r0:r1, c0:c1] = part
    return RayHits(depth_mm=depth, kind=kind, margin_mm=margin, exact=exact)


def _zone_masks(zone: Zone, grids: list[RayGrid], all_hits: list[RayHits]) -> list[np.ndarray]:
    """(H, W) bool per view: target hits inside ``zone`` (one zone call for all views)."""
    points, where = [], []
    for grid, hits in zip(grids, all_hits):
        rows, cols = np.nonzero(hits.kind == HIT_TARGET)
        points.append(grid.points_lps(rows, cols, hits.depth_mm[rows, cols]))
        where.append((rows, cols))
    pts = np.concatenate(points)
    values = zone_values(zone, pts) >= 0.5 if len(pts) else np.zeros(0, bool)
    out, offset = [], 0
    for hits, (rows, cols) in zip(all_hits, where):
        inside = np.zeros(hits.kind.shape, bool)
        inside[rows, cols] = values[offset:offset + len(rows)]
        offset += len(rows)
        out.append(inside)
    return out


def _window_from_hits(scene: SceneFields, grid: RayGrid, hits: RayHits,
                      inside: np.ndarray | None, options: WindowOptions) -> WindowResult:
    """The window of one traced view; ``inside`` (H, W) marks target hits inside the zone."""
    margin, exact = hits.margin_mm, hits.exact
    target = hits.kind == HIT_TARGET
    if inside is not None and target.any():
        cut = _cut_distance(inside, grid.pixel_mm, among=target)
        exact = np.where(target & (cut < margin), True, exact)
        margin = np.where(target, np.minimum(margin, cut), margin)
    margin = repair_margins(margin, exact, grid.pixel_mm, radius_px=options.repair_radius_px)
    erosion = float(options.needle_radius_mm) + float(options.margin_mm)
    band = float(scene.band_mm if options.band_mm is None else options.band_mm)
    polys = (window_polygons_lps(margin, grid, hits.depth_mm) if options.polygons else [])
    return WindowResult(
        **_measure(margin, grid.pixel_mm),
        hit_depth_mm=hits.depth_mm, hit_is_target=target,
        plane_origin_lps=grid.plane_origin_lps, axis_col_lps=grid.axis_col_lps,
        axis_row_lps=grid.axis_row_lps, view_direction_lps=grid.view_direction_lps,
        pixel_mm=grid.pixel_mm, erosion_radius_mm=erosion, threshold=float(options.threshold),
        band_thresholds=tuple(float(t) for t in options.band_thresholds), band_mm=band,
        polygons_lps=polys)


def repair_margins(margin: np.ndarray, exact: np.ndarray, pixel_mm: float, *,
                   radius_px: int = 3) -> np.ndarray:
    """Replace inexact margins next to an edge by in-plane distances from across the edge.

    For a pixel ``q`` whose margin is not an in-plane distance (``exact`` False), the distance
    from ``q`` to the region of the other sign is at most ``|q - p| - |m(p)|`` for every exact
    pixel ``p`` of the other sign (the disc of radius ``|m(p)|`` around ``p`` lies in that
    region), with equality for a straight edge when ``q - p`` is normal to it. The smallest such
    bound over exact pixels within ``radius_px`` replaces ``|m(q)|``; the sign is kept.

    Parameters
    ----------
    margin : np.ndarray, shape (H, W), float32
        Signed margins (mm).
    exact : np.ndarray, shape (H, W), bool
    pixel_mm : float
    radius_px : int

    Returns
    -------
    np.ndarray, shape (H, W), float32
    """
    m = np.asarray(margin, np.float32)
    exact = np.asarray(exact, bool)
    todo = ~exact
    if not todo.any() or not exact.any() or radius_px < 1:
        return m.copy()
    r = int(radius_px)
    H, W = m.shape
    pos = m > 0
    # Padded copies of -|m| at exact pixels of each sign, +inf elsewhere.
    reach_pos = np.pad(np.where(exact & pos, -m, np.inf), r, constant_values=np.inf)
    reach_neg = np.pad(np.where(exact & ~pos, m, np.inf), r, constant_values=np.inf)
    bound = np.full(m.shape, np.inf, np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            dist = float(np.hypot(dy, dx))
            if dist == 0 or dist > r + 1e-9:
                continue
            win = (slice(r + dy, r + dy + H), slice(r + dx, r + dx + W))
            other = np.where(pos, reach_neg[win], reach_pos[win])
            np.minimum(bound, np.float32(dist * pixel_mm) + other, out=bound)
    fix = todo & np.isfinite(bound)
    out = m.copy()
    tiny = np.float32(1e-4 * pixel_mm)
    out[fix] = np.where(pos[fix], 1.0, -1.0) * np.maximum(bound[fix], tiny)
    return out


def _cut_distance(keep: np.ndarray, pixel_mm: float, *, among: np.ndarray | None = None
                  ) -> np.ndarray:
    """(H, W) float32 signed in-plane distance (mm) to the edge half-way between ``keep`` and
    dropped pixels (``among`` limits which pixels count as dropped); the image diagonal where
    there is no edge."""
    from scipy import ndimage

    keep = np.asarray(keep, bool)
    drop = ~keep if among is None else (np.asarray(among, bool) & ~keep)
    far = np.float32(pixel_mm * (keep.shape[0] + keep.shape[1]))
    out = np.where(keep, far, -far).astype(np.float32)
    if drop.any():
        d = (ndimage.distance_transform_edt(~drop) - 0.5) * pixel_mm
        out = np.where(keep, d, out).astype(np.float32)
    if keep.any():
        d = (ndimage.distance_transform_edt(~keep) - 0.5) * pixel_mm
        out = np.where(keep, out, -d).astype(np.float32)
    return out


def _measure(margin: np.ndarray, pixel_mm: float) -> dict:
    """Area, mask and margin of :class:`WindowResult` from a signed margin image (mm); the
    other numbers are derived from the margin when first read."""
    f = np.asarray(margin, np.float32)
    return dict(area_mm2=soft_area_mm2(f, pixel_mm), mask=f > 0, margin=f)


def zone_values(zone: Zone, points_lps: np.ndarray) -> np.ndarray:
    """(N,) float32 zone membership in [0, 1] of LPS points (N, 3); inside where >= 0.5.

    A :class:`Volume` is interpolated trilinearly (0 outside its grid); a callable gets the
    points and returns booleans or values in [0, 1].
    """
    pts = np.asarray(points_lps, float).reshape(-1, 3)
    if isinstance(zone, Volume):
        from scipy import ndimage

        idx = zone.lps_to_index(pts)  # (N, 3) x, y, z
        values = ndimage.map_coordinates(np.asarray(zone.array, np.float32), idx[:, ::-1].T,
                                         order=1, mode="constant", cval=0.0)
        return np.clip(values, 0.0, 1.0).astype(np.float32)
    values = np.asarray(zone(pts))
    if values.shape != (len(pts),):
        raise ValueError(f"zone callable returned shape {values.shape}, expected ({len(pts)},)")
    return np.clip(values.astype(np.float32), 0.0, 1.0)


def soft_area_mm2(margin: np.ndarray, pixel_mm: float) -> float:
    """Area (mm^2) of the region where the bilinearly interpolated ``margin`` (H, W) is > 0.

    Marching squares at level 0 and the shoelace formula (outer outlines count positive, holes
    negative). The ROI border is an edge half a pixel beyond the border pixel centres: the image
    is padded with the negated border values.
    """
    f = np.asarray(margin, np.float32)
    if not (f > 0).any():
        return 0.0
    from skimage import measure

    total = 0.0
    for c in measure.find_contours(_pad_outside(f), 0.0):
        x, y = c[:, 1], c[:, 0]
        total += 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    return max(total, 0.0) * pixel_mm ** 2


def _pad_outside(f: np.ndarray) -> np.ndarray:
    """``f`` (H, W) padded by one pixel of ``-|border value|`` (level 0 half-way out)."""
    edge = np.pad(f, 1, mode="edge")
    out = -np.maximum(np.abs(edge), np.float32(1e-6))
    out[1:-1, 1:-1] = f
    return out


def measure_mask(mask: np.ndarray, pixel_mm: float, *, erosion_radius_mm: float,
                 margin: np.ndarray | None = None) -> MaskMetrics:
    """Area, inscribed-circle diameter and eroded area of a window.

    Parameters
    ----------
    mask : np.ndarray, shape (H, W), bool
        Free pixels (square pixels of side ``pixel_mm``).
    pixel_mm : float
    erosion_radius_mm : float
        Needle radius + margin.
    margin : np.ndarray, shape (H, W), optional
        Signed in-plane distance (mm) of each pixel to the window edge; default: the edge half-way
        between free and non-free pixels (+-pixel_mm / 2).

    Notes
    -----
    The in-plane distance of a free pixel to the edge is ``|p - q| - |m(q)|`` with ``q`` the
    nearest non-free pixel centre (2D Euclidean distance transform; the ROI border counts as
    non-free) and ``|m(q)|`` (<= one pixel) the distance from ``q`` to the edge. The inscribed
    diameter is twice its maximum; the usable area is the sub-pixel area where it is
    >= ``erosion_radius_mm`` (marching squares on the distance image).
    """
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    if not mask.any():
        return MaskMetrics(area_mm2=0.0, inscribed_diameter_mm=0.0, usable_area_mm2=0.0)
    if margin is None:
        margin = np.where(mask, 0.5, -0.5).astype(np.float32) * pixel_mm
    offset = np.pad(np.clip(-np.asarray(margin, np.float32), 0.0, pixel_mm), 1,
                    constant_values=0.5 * pixel_mm)
    edt, idx = ndimage.distance_transform_edt(np.pad(mask, 1), return_indices=True)
    radius = (edt * pixel_mm - offset[idx[0], idx[1]])[1:-1, 1:-1]
    radius = np.where(mask, radius, margin).astype(np.float32)
    diameter = 2.0 * float(radius[mask].max())
    usable = soft_area_mm2(radius - np.float32(erosion_radius_mm), pixel_mm)
    return MaskMetrics(area_mm2=float(mask.sum()) * pixel_mm ** 2,
                       inscribed_diameter_mm=max(diameter, 0.0), usable_area_mm2=usable)


def window_polygons_lps(margin: np.ndarray, grid: RayGrid, hit_depth_mm: np.ndarray
                        ) -> list[np.ndarray]:
    """Closed outlines (K, 3) LPS of the window (level 0 of ``margin`` (H, W)), placed on the
    plane perpendicular to ``d`` at the window's median hit depth."""
    mask = margin > 0
    if not mask.any():
        return []
    from skimage import measure

    depth = float(np.nanmedian(hit_depth_mm[mask]))
    contours = measure.find_contours(_pad_outside(np.asarray(margin, np.float32)), 0.0)
    return [grid.points_lps(c[:, 0] - 1.0, c[:, 1] - 1.0, np.full(len(c), depth))
            for c in contours]


def benchmark_window(scene: SceneFields, view_direction_lps: Sequence[float], *,
                     roi_center_lps: Sequence[float] | None = None,
                     options: WindowOptions = WindowOptions(), repeats: int = 5
                     ) -> dict[str, float]:
    """Median / min wall time (s) of :func:`compute_window` over ``repeats`` calls (after one
    warm-up), with the area, for benchmarks."""
    compute_window(scene, view_direction_lps, roi_center_lps=roi_center_lps, options=options)
    times = []
    res = None
    for _ in range(max(int(repeats), 1)):
        t0 = time.perf_counter()
        res = compute_window(scene, view_direction_lps, roi_center_lps=roi_center_lps,
                             options=options)
        times.append(time.perf_counter() - t0)
    assert res is not None
    return {"median_s": float(np.median(times)), "min_s": float(np.min(times)),
            "area_mm2": res.area_mm2, "rays": float(res.mask.size)}
