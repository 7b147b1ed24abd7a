"""The free-window primitive: which parallel rays along a view reach the target unobstructed.

For a view direction ``d`` (the direction in which rays travel, LPS; the needle's entry direction
is ``u = -d``) an orthographic ray grid over a square ROI starts beyond the whole scene. A pixel is
*free* when the first surface its ray meets is the target (occupancy iso-level 0.5), and, when a
``zone`` is given, the hit lies inside the zone. Per window:

* ``area_mm2``: area of the free region, measured to a fraction of a pixel: each ray carries a
  signed soft margin (positive = free, see :class:`raycast.FirstHits`) and the area is that of the
  region where the bilinearly interpolated margin is > 0 (marching squares + shoelace). Counting
  pixels would quantise a window edge to +-half a pixel, i.e. a few per cent of a 6 mm window;
* ``inscribed_diameter_mm``: diameter of the largest disc inside the window (2D Euclidean
  distance transform, half a pixel subtracted because the boundary lies between pixel centres);
* ``usable_area_mm2``: area of the window eroded by ``needle_radius_mm + margin_mm``, i.e. where
  a needle's axis can pass with that clearance to every edge;
* ``area_low_mm2`` / ``area_high_mm2``: the uncertainty band, areas with the iso-level moved to
  0.35 and 0.65 (``DESIGN.md`` section 4).

The ROI border counts as an edge: a window cut by the ROI is measured as cut.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence, Union

import numpy as np

from spinect_core.planning.raycast import (HIT_TARGET, FirstHits, RayGrid, cast_first_hits,
                                           make_ray_grid, unit_vector)
from spinect_core.planning.scene import SceneFields
from spinect_core.volume import Volume

#: A zone: a soft/boolean volume (inside where >= 0.5, trilinear), or a callable that maps LPS
#: points (N, 3) to a boolean or [0, 1] array (N,).
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
        Iso-level of the surfaces.
    band_thresholds : (float, float)
        Iso-levels of the uncertainty band (low, high).
    needle_radius_mm : float
        Needle radius for the usable area (0.36 mm: 22 G spinal needle, 0.72 mm outer diameter).
    margin_mm : float
        Extra clearance added to the needle radius for the usable area.
    step_voxels : float
        Ray sampling step in units of the smallest voxel size.
    up_lps : (3,)
        Screen "up" hint; image rows run towards ``-up`` (see :func:`raycast.view_axes`).
    polygons : bool
        Trace the window outline (costs ~1 ms); off for optimisation loops.
    """

    roi_size_mm: float = 40.0
    pixel_mm: float = 0.25
    threshold: float = 0.5
    band_thresholds: tuple[float, float] = (0.35, 0.65)
    needle_radius_mm: float = 0.36
    margin_mm: float = 1.0
    step_voxels: float = 0.5
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
        Free area (mm^2) at the iso-level ``threshold``, projected on the view plane (sub-pixel,
        from ``margin``).
    inscribed_diameter_mm : float
        Largest inscribed circle diameter of the window (mm).
    usable_area_mm2 : float
        Area after eroding by ``erosion_radius_mm`` = needle radius + margin (mm^2).
    area_low_mm2, area_high_mm2 : float
        Areas at the band thresholds (0.35 and 0.65 by default).
    mask : np.ndarray, shape (H, W), bool
        Free pixels at ``threshold`` (``margin > 0``).
    mask_low, mask_high : np.ndarray, shape (H, W), bool
        Free pixels at the band thresholds.
    margin, margin_low, margin_high : np.ndarray, shape (H, W), float32
        Signed soft margins (occupancy units, > 0 = free) at the three levels, after the zone.
    hit_depth_mm : np.ndarray, shape (H, W), float32
        Distance along ``view_direction_lps`` from the start plane to the first surface hit at
        ``threshold`` (target or blocker), NaN where nothing is hit.
    hit_is_target : np.ndarray, shape (H, W), bool
        The first hit is the target (before the zone test).
    plane_origin_lps, axis_col_lps, axis_row_lps, view_direction_lps : np.ndarray, shape (3,)
        Ray-grid geometry (LPS mm / unit vectors).
    pixel_mm : float
    erosion_radius_mm : float
    threshold : float
    band_thresholds : (float, float)
    polygons_lps : list of np.ndarray, shape (K, 3)
        Window outlines (closed, K points each) in LPS mm, on the plane perpendicular to ``d``
        through the window's median hit depth; empty when there is no window or polygons were
        not requested.
    compute_time_s : float
        Wall time of :func:`compute_window`.
    """

    area_mm2: float
    inscribed_diameter_mm: float
    usable_area_mm2: float
    area_low_mm2: float
    area_high_mm2: float
    mask: np.ndarray
    mask_low: np.ndarray
    mask_high: np.ndarray
    margin: np.ndarray
    margin_low: np.ndarray
    margin_high: np.ndarray
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
    polygons_lps: list[np.ndarray] = field(default_factory=list)
    compute_time_s: float = 0.0

    @property
    def entry_direction_lps(self) -> np.ndarray:
        """Needle entry direction u = -d (from the target towards the skin), (3,)."""
        return -self.view_direction_lps

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

        Used to split one free area into sub-windows (e.g. Kambin and safe triangle).
        """
        keep = np.asarray(keep, bool)
        # Outside ``keep`` the margin becomes clearly negative, so the cut runs half-way between
        # kept and dropped pixel centres.
        f, f_lo, f_hi = (np.where(keep, np.minimum(a, 0.5), np.float32(-0.5)).astype(np.float32)
                         for a in (self.margin, self.margin_low, self.margin_high))
        m = f > 0
        metrics = measure_mask(m, self.pixel_mm, erosion_radius_mm=self.erosion_radius_mm)
        polys = (window_polygons_lps(f, self.ray_grid, self.hit_depth_mm)
                 if self.polygons_lps else [])
        return replace(self, mask=m, mask_low=f_lo > 0, mask_high=f_hi > 0, margin=f,
                       margin_low=f_lo, margin_high=f_hi,
                       area_mm2=soft_area_mm2(f, self.pixel_mm),
                       inscribed_diameter_mm=metrics.inscribed_diameter_mm,
                       usable_area_mm2=metrics.usable_area_mm2,
                       area_low_mm2=soft_area_mm2(f_lo, self.pixel_mm),
                       area_high_mm2=soft_area_mm2(f_hi, self.pixel_mm), polygons_lps=polys)

    def to_dict(self, *, polygons: bool = True) -> dict:
        """JSON-ready summary (numbers, geometry, optional polygons; no masks)."""
        out = {
            "area_mm2": self.area_mm2,
            "inscribed_diameter_mm": self.inscribed_diameter_mm,
            "usable_area_mm2": self.usable_area_mm2,
            "erosion_radius_mm": self.erosion_radius_mm,
            "area_band_mm2": {f"{self.band_thresholds[0]:g}": self.area_low_mm2,
                              f"{self.band_thresholds[1]:g}": self.area_high_mm2},
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
        Target and blocker occupancy.
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
    t_start = time.perf_counter()
    d = unit_vector(view_direction_lps)
    centre = (scene.target_centroid_lps() if roi_center_lps is None
              else np.asarray(roi_center_lps, float).reshape(3))
    grid = make_ray_grid(scene.scene_corners_lps, d, roi_center_lps=centre,
                         roi_size_mm=options.roi_size_mm, pixel_mm=options.pixel_mm,
                         up_lps=options.up_lps)
    lo_t, hi_t = (float(t) for t in options.band_thresholds)
    hits = cast_first_hits(scene, grid, thresholds=(lo_t, float(options.threshold), hi_t),
                           step_voxels=options.step_voxels)
    margins = free_margins(hits, grid, zone)
    level = hits.level(options.threshold)
    f, f_lo, f_hi = margins[level], margins[hits.level(lo_t)], margins[hits.level(hi_t)]
    mask = f > 0
    erosion = float(options.needle_radius_mm) + float(options.margin_mm)
    metrics = measure_mask(mask, grid.pixel_mm, erosion_radius_mm=erosion)
    depth = hits.depth_mm[level]
    polys = window_polygons_lps(f, grid, depth) if options.polygons else []
    return WindowResult(
        area_mm2=soft_area_mm2(f, grid.pixel_mm),
        inscribed_diameter_mm=metrics.inscribed_diameter_mm,
        usable_area_mm2=metrics.usable_area_mm2,
        area_low_mm2=soft_area_mm2(f_lo, grid.pixel_mm),
        area_high_mm2=soft_area_mm2(f_hi, grid.pixel_mm),
        mask=mask, mask_low=f_lo > 0, mask_high=f_hi > 0, margin=f, margin_low=f_lo,
        margin_high=f_hi, hit_depth_mm=depth,
        hit_is_target=hits.kind[level] == HIT_TARGET,
        plane_origin_lps=grid.plane_origin_lps, axis_col_lps=grid.axis_col_lps,
        axis_row_lps=grid.axis_row_lps, view_direction_lps=grid.view_direction_lps,
        pixel_mm=grid.pixel_mm, erosion_radius_mm=erosion, threshold=float(options.threshold),
        band_thresholds=(lo_t, hi_t), polygons_lps=polys,
        compute_time_s=time.perf_counter() - t_start)


def free_margins(hits: FirstHits, grid: RayGrid, zone: Zone | None) -> np.ndarray:
    """(T, H, W) float32 signed margins (> 0 = free), with the zone applied to target hits.

    With a zone of value ``z`` in [0, 1] at the hit, a target-first margin ``f`` becomes
    ``min(f, z - 0.5)``: outside the zone it is negative, near a soft zone edge it fades.
    """
    f = hits.margin.astype(np.float32, copy=True)
    target = hits.kind == HIT_TARGET
    if zone is None or not target.any():
        return f
    lvl, rows, cols = np.nonzero(target)
    pts = grid.points_lps(rows, cols, hits.depth_mm[lvl, rows, cols])
    z = zone_values(zone, pts)
    f[lvl, rows, cols] = np.minimum(f[lvl, rows, cols], z - 0.5)
    return f


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

    Marching squares at level 0 (the ROI border counts as outside) and the shoelace formula:
    outer outlines count positive, holes negative.
    """
    f = np.asarray(margin, np.float32)
    if not (f > 0).any():
        return 0.0
    from skimage import measure

    total = 0.0
    for c in measure.find_contours(np.pad(f, 1, constant_values=-1.0), 0.0):
        x, y = c[:, 1], c[:, 0]
        total += 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    return max(total, 0.0) * pixel_mm ** 2


def measure_mask(mask: np.ndarray, pixel_mm: float, *, erosion_radius_mm: float) -> MaskMetrics:
    """Area, inscribed-circle diameter and eroded area of a window mask.

    Parameters
    ----------
    mask : np.ndarray, shape (H, W), bool
        Free pixels (square pixels of side ``pixel_mm``).
    pixel_mm : float
    erosion_radius_mm : float
        Needle radius + margin.

    Notes
    -----
    The distance transform gives, per free pixel centre, the distance to the nearest non-free
    pixel centre (the ROI border counts as non-free). The true edge lies about half a pixel
    nearer, so ``r = (edt - 0.5) * pixel_mm``; the inscribed diameter is ``2 max r`` and the
    usable area counts the pixels with ``r >= erosion_radius_mm``.
    """
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    area = float(mask.sum()) * pixel_mm ** 2
    if not mask.any():
        return MaskMetrics(area_mm2=0.0, inscribed_diameter_mm=0.0, usable_area_mm2=0.0)
    padded = np.pad(mask, 1)
    edt = ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    radius = (edt - 0.5) * pixel_mm
    diameter = 2.0 * float(radius[mask].max())
    usable = float(np.count_nonzero(mask & (radius >= erosion_radius_mm))) * pixel_mm ** 2
    return MaskMetrics(area_mm2=area, inscribed_diameter_mm=max(diameter, 0.0),
                       usable_area_mm2=usable)


def window_polygons_lps(margin: np.ndarray, grid: RayGrid, hit_depth_mm: np.ndarray
                        ) -> list[np.ndarray]:
    """Closed outlines (K, 3) LPS of the window (level 0 of ``margin`` (H, W)), placed on the
    plane perpendicular to ``d`` at the window's median hit depth."""
    mask = margin > 0
    if not mask.any():
        return []
    from skimage import measure

    depth = float(np.nanmedian(hit_depth_mm[mask]))
    contours = measure.find_contours(np.pad(margin.astype(np.float32), 1, constant_values=-1.0),
                                     0.0)
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
