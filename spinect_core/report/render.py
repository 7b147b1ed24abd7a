"""A small software renderer for report screenshots of the 3D scene (no VTK rendering, no Qt).

:func:`render_view` ray-casts a label map orthographically along a view direction: an image
plane perpendicular to the view over a square field (~110 mm) around a centre point, one ray per
pixel (~0.45 mm). Rays are marched through the label volume in index space (nearest
neighbour, i.e. ``map_coordinates(order=0)`` without the copy), skipping empty space by a
clearance map (:func:`prepare_render`, made once per map and shared between views); the first
non-background sample is the hit, its class gives the colour. The hit depth is refined by bisection on the trilinear
occupancy of the foreground (a staircase of voxels would otherwise show as terraces), and the
picture is Lambert-shaded from the normals of the depth map with a little depth cueing.

:func:`draw_overlays` then projects LPS outlines (the Kambin / safe windows), the needle and a
text legend into the picture with Pillow. Nothing here prints patient identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from spinect_core.labels import LabelTable
from spinect_core.progress import ProgressCallback, report
from spinect_core.vocabulary import (LEVEL_HIGHLIGHT_COLOUR, NEEDLE_COLOUR, STRUCTURE_COLOURS,
                                     WINDOW_COLOURS, class_of_name)
from spinect_core.volume import Volume

__all__ = [
    "CLASS_COLOURS", "WINDOW_COLOURS", "NEEDLE_COLOUR", "SceneRenderOptions", "RenderedView",
    "class_of", "render_view", "PreparedLabels", "prepare_render", "Overlay", "draw_overlays",
]

#: Colour (RGB 0-255) of each structure class (:func:`class_of` maps label names to classes):
#: the app's colours, from :mod:`spinect_core.vocabulary`, plus L5 and S1 highlighted.
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    "bone": STRUCTURE_COLOURS["bone"],
    "bone_highlight": LEVEL_HIGHLIGHT_COLOUR,
    "nerve": STRUCTURE_COLOURS["nerve"],
    "disc": STRUCTURE_COLOURS["disc"],
    "dura": STRUCTURE_COLOURS["dura"],
}
# NEEDLE_COLOUR (exported here too) is the app's needle colour, from spinect_core.vocabulary.
BACKGROUND = (22, 24, 30)


def class_of(name: str) -> str:
    """Colour class (a key of :data:`CLASS_COLOURS`) of a label or anatomy-part name.

    Works for the default table (``bone``, ``nerve``, ``disc``, ``dura``), the phantom's
    instances (``L5``, ``root_L5_left``, ``disc_L5S1``, ...) and the anatomy parts map.
    """
    if name.lower() in ("l5", "s1"):
        return "bone_highlight"
    cls = class_of_name(name)
    # The ilium and names no class claims are drawn as bone: every hit here is anatomy.
    return cls if cls in ("nerve", "disc", "dura") else "bone"


@dataclass(frozen=True, kw_only=True)
class SceneRenderOptions:
    """How :func:`render_view` draws the scene.

    Attributes
    ----------
    field_mm : float
        Side of the square field of view on the image plane, mm.
    pixel_mm : float
        Ray spacing, mm (0.4-0.5 is enough for a screenshot).
    step_voxels : float
        March step in units of the smallest voxel size (nearest-neighbour sampling; 0.5 never
        steps over a voxel).
    refine_iterations : int
        Bisection steps of the hit depth on the smoothed trilinear occupancy.
    surface_sigma_voxels : float
        Gaussian sigma (voxels, per axis) applied to the foreground occupancy before the depth
        refinement: the 0.5 iso-surface of a smoothed binary mask shows no voxel staircase
        (a soft boundary: the window's edges are not drawn on a staircase); 0 keeps the plain trilinear surface.
    light_lps : (3,) or None
        Direction *towards* the light in LPS; ``None``: a headlight from the viewer, slightly
        from the upper left of the picture.
    ambient : float
        Share of the colour shown regardless of the light.
    depth_cue : float
        Darkening of the farthest hit relative to the nearest one (0: none).
    smooth_px : float
        Gaussian sigma (pixels) applied to the depth map before taking normals.
    """

    field_mm: float = 110.0
    pixel_mm: float = 0.45
    step_voxels: float = 0.5
    refine_iterations: int = 6
    surface_sigma_voxels: float = 1.0
    light_lps: tuple[float, float, float] | None = None
    ambient: float = 0.28
    depth_cue: float = 0.3
    smooth_px: float = 0.8

    def __post_init__(self) -> None:
        if not (self.field_mm > 0 and self.pixel_mm > 0):
            raise ValueError("field_mm and pixel_mm must be positive")
        if self.field_mm / self.pixel_mm > 4000:
            raise ValueError("more than 4000 x 4000 rays; raise pixel_mm")
        if not 0 < self.step_voxels <= 1:
            raise ValueError("step_voxels must be in (0, 1]")


@dataclass(kw_only=True)
class RenderedView:
    """A shaded picture of the scene and its geometry.

    The LPS point of pixel (r, c) at depth t is
    ``plane_origin_lps + c*pixel_mm*axis_col_lps + r*pixel_mm*axis_row_lps + t*view_direction_lps``.

    Attributes
    ----------
    rgb : np.ndarray, shape (H, W, 3), uint8
    depth_mm : np.ndarray, shape (H, W), float32
        Depth of the first hit from the image plane along the view (mm), NaN where no hit.
    label_ids : np.ndarray, shape (H, W), int32
        Label id of the first hit (0: nothing hit).
    plane_origin_lps, axis_col_lps, axis_row_lps, view_direction_lps : np.ndarray, shape (3,)
    pixel_mm : float
    """

    rgb: np.ndarray
    depth_mm: np.ndarray
    label_ids: np.ndarray
    plane_origin_lps: np.ndarray
    axis_col_lps: np.ndarray
    axis_row_lps: np.ndarray
    view_direction_lps: np.ndarray
    pixel_mm: float

    def project(self, points_lps: np.ndarray) -> np.ndarray:
        """Continuous (row, col, depth_mm) of LPS points, shape (N, 3) -> (N, 3)."""
        p = np.asarray(points_lps, dtype=np.float64).reshape(-1, 3) - self.plane_origin_lps
        return np.stack([p @ self.axis_row_lps / self.pixel_mm, p @ self.axis_col_lps / self.pixel_mm,
                         p @ self.view_direction_lps], axis=1)


@dataclass(frozen=True, kw_only=True, eq=False)
class PreparedLabels:
    """A label map made ready for :func:`render_view`, to share between views of one scene.

    Everything here depends on the label map (and the surface smoothing) only, not on the view:
    :func:`prepare_render` builds it once and each :func:`render_view` given it skips that work.

    Attributes
    ----------
    shape_zyx : (3,) tuple of int
        Shape of the label map it was made from (checked against the map rendered).
    spacing_mm, origin_lps_mm : np.ndarray, shape (3,)
        Voxel size (x, y, z order) and origin of that map, mm (checked as well).
    direction : np.ndarray, shape (3, 3)
        Direction cosines of that map (checked as well).
    offset_xyz : np.ndarray, shape (3,), float64
        Index (x, y, z) of the crop's first voxel in the label map.
    crop : np.ndarray, shape (cz, cy, cx), integer
        The label ids in the foreground's bounding box (one background voxel when there is no
        foreground).
    occupancy : np.ndarray, shape (cz, cy, cx), float32
        Foreground occupancy (0..1) of the crop, Gaussian-smoothed by ``surface_sigma_voxels``:
        the surface of the hit-depth refinement.
    clearance_mm : np.ndarray, shape (cz, cy, cx), float32
        For each voxel of the crop, a lower bound on the distance (mm) from any point that
        rounds to it to any point that rounds to a foreground voxel (0 on and next to the
        foreground): how far a ray may skip ahead without missing a voxel
        (:func:`_clearance_map`).
    surface_sigma_voxels : float
        The smoothing of ``occupancy`` (:attr:`SceneRenderOptions.surface_sigma_voxels`).
    """

    shape_zyx: tuple[int, int, int]
    spacing_mm: np.ndarray
    origin_lps_mm: np.ndarray
    direction: np.ndarray
    offset_xyz: np.ndarray
    crop: np.ndarray
    occupancy: np.ndarray
    clearance_mm: np.ndarray
    surface_sigma_voxels: float

    def check(self, labels: Volume, options: SceneRenderOptions) -> None:
        """Raise ValueError unless this was prepared for the grid of ``labels`` and ``options``.

        The voxel values are not compared (that would cost what preparing saves): the caller
        passes the preparation of the same map.
        """
        same_grid = (tuple(np.shape(labels.array)) == self.shape_zyx
                     and np.allclose(labels.spacing_mm, self.spacing_mm)
                     and np.allclose(labels.origin_lps_mm, self.origin_lps_mm)
                     and np.allclose(labels.direction, self.direction))
        if not same_grid:
            raise ValueError("prepared was made for another label map grid")
        if float(options.surface_sigma_voxels) != self.surface_sigma_voxels:
            raise ValueError(f"prepared was made with surface_sigma_voxels "
                             f"{self.surface_sigma_voxels}, not {options.surface_sigma_voxels}")


def prepare_render(labels: Volume, *, options: SceneRenderOptions | None = None
                   ) -> PreparedLabels:
    """The view-independent part of :func:`render_view`, to share between views of one map.

    Parameters
    ----------
    labels : Volume
        Integer ids, array (z, y, x), any LPS geometry.
    options : SceneRenderOptions, optional
        Only ``surface_sigma_voxels`` matters here; render with the same value.

    Returns
    -------
    PreparedLabels
        The foreground's bounding box (crop), its smoothed occupancy and its clearance map
        (float32, each the crop's size).
    """
    from scipy import ndimage

    opts = options or SceneRenderOptions()
    arr = np.asarray(labels.array)
    if arr.dtype.kind not in "iub":
        raise ValueError(f"labels must hold integer ids, got {arr.dtype}")
    spacing = np.asarray(labels.spacing_mm, dtype=np.float64)
    # Work on the foreground's bounding box only: rays spend no time in empty margins.
    fg = arr > 0
    if not fg.any():
        box = tuple(slice(0, 1) for _ in range(3))
    else:
        zz, yy, xx = (np.flatnonzero(fg.any(axis=a)) for a in ((1, 2), (0, 2), (0, 1)))
        box = (slice(zz[0], zz[-1] + 1), slice(yy[0], yy[-1] + 1), slice(xx[0], xx[-1] + 1))
    crop = np.ascontiguousarray(arr[box])
    fg_crop = fg[box]
    occ = fg_crop.astype(np.float32)
    if opts.surface_sigma_voxels > 0:
        occ = ndimage.gaussian_filter(occ, float(opts.surface_sigma_voxels), mode="constant")
    clearance = _clearance_map(fg_crop, spacing)
    return PreparedLabels(
        shape_zyx=tuple(int(s) for s in arr.shape),  # type: ignore[arg-type]
        spacing_mm=spacing.copy(), origin_lps_mm=np.asarray(labels.origin_lps_mm, float).copy(),
        direction=np.asarray(labels.direction, float).copy(),
        offset_xyz=np.array([box[2].start, box[1].start, box[0].start], dtype=np.float64),
        crop=crop, occupancy=occ, clearance_mm=clearance,
        surface_sigma_voxels=float(opts.surface_sigma_voxels))


#: Side (mm) of the cells of the clearance map: a coarser map is quicker to compute (its
#: distance transform dominates :func:`prepare_render`), a finer one lets rays skip further.
_CLEARANCE_CELL_MM = 1.5


def _clearance_map(fg: np.ndarray, spacing_xyz: np.ndarray) -> np.ndarray:
    """Lower bound (mm) on the distance from any point rounding to each voxel to the foreground.

    A point p "rounds to" voxel v when ``rint(p) = v``, i.e. p lies in v's closed unit box.
    Voxels are grouped into cells of about :data:`_CLEARANCE_CELL_MM` (b voxels per axis); the
    gap between the boxes of cells c and c' is ``|max(|c - c'| - 1, 0) * b * spacing|``, which is
    the centre-to-centre distance from c to the nearest cell of the foreground cells dilated by
    one cell (3 x 3 x 3): so the Euclidean distance transform of that dilation, on the cells,
    is the distance from each cell's box to the nearest box of a cell holding foreground, a
    lower bound for every voxel and point of the cell.

    Parameters
    ----------
    fg : np.ndarray, shape (z, y, x), bool
        Foreground of the crop.
    spacing_xyz : np.ndarray, shape (3,)
        Voxel size (x, y, z), mm.

    Returns
    -------
    np.ndarray, shape (z, y, x), float32
        The bound at each voxel (that of its cell).
    """
    from scipy import ndimage

    spacing_zyx = np.asarray(spacing_xyz, dtype=np.float64)[::-1]
    if not fg.any():
        # Nothing to hit: any clearance beyond the crop's size lets a ray cross it at once.
        return np.full(fg.shape, float(np.linalg.norm(spacing_zyx * fg.shape)) + 1.0,
                       np.float32)
    cell_mm = max(_CLEARANCE_CELL_MM, float(spacing_zyx.max()))
    b = np.maximum(1, np.rint(cell_mm / spacing_zyx)).astype(int)
    padded = np.pad(fg, [(0, (-s) % bb) for s, bb in zip(fg.shape, b)])
    cells = padded.reshape(padded.shape[0] // b[0], b[0], padded.shape[1] // b[1], b[1],
                           padded.shape[2] // b[2], b[2]).any(axis=(1, 3, 5))
    near = ndimage.maximum_filter(cells.view(np.uint8), size=3, mode="constant") > 0
    dist = ndimage.distance_transform_edt(~near, sampling=spacing_zyx * b).astype(np.float32)
    full = dist.repeat(b[0], 0).repeat(b[1], 1).repeat(b[2], 2)
    return np.ascontiguousarray(full[:fg.shape[0], :fg.shape[1], :fg.shape[2]])


@dataclass(kw_only=True)
class _Rays:
    """Rays of one view in the crop's index space (sample k of ray i: ``base[i] + k * di_t``).

    ``base`` is float32 (N, 3) (x, y, z), ``di_t`` float64 (3,): the marches evaluate samples
    in float32 as ``base + float32(k) * float32(di_t)`` so that they agree to the bit.
    """

    n: int
    pix: float
    col: np.ndarray
    row: np.ndarray
    d: np.ndarray
    plane_origin: np.ndarray
    base: np.ndarray
    di_t: np.ndarray
    step_mm: float
    n_steps: int


def _setup_rays(labels: Volume, prepared: PreparedLabels, view_direction_lps: Sequence[float],
                centre_lps: Sequence[float], up_lps: Sequence[float],
                opts: SceneRenderOptions) -> _Rays:
    """The image plane and the rays of one view (see :class:`_Rays`)."""
    from spinect_core.planning.raycast import view_axes

    col, row, d = view_axes(view_direction_lps, up_lps)
    n = max(1, int(round(opts.field_mm / opts.pixel_mm)))
    pix = float(opts.pixel_mm)
    centre = np.asarray(centre_lps, dtype=np.float64).reshape(3)
    offset_xyz = prepared.offset_xyz
    shape_xyz = np.array(prepared.crop.shape[::-1])

    # Depth range: the box's corners projected on d, relative to the centre's depth.
    corners_idx = np.array([[x, y, z] for x in (-0.5, shape_xyz[0] - 0.5)
                            for y in (-0.5, shape_xyz[1] - 0.5)
                            for z in (-0.5, shape_xyz[2] - 0.5)]) + offset_xyz
    corners = labels.index_to_lps(corners_idx)
    t_corners = (corners - centre) @ d
    t0, t1 = float(t_corners.min()) - 1.0, float(t_corners.max()) + 1.0
    plane_origin = centre + t0 * d - (n - 1) / 2.0 * pix * (col + row)

    # Index-space geometry: index(p) is affine in p, so each step is one vector addition.
    to_index = np.linalg.inv(labels.direction * np.asarray(labels.spacing_mm)[None, :])
    i0 = labels.lps_to_index(plane_origin[None])[0] - offset_xyz
    step_mm = float(opts.step_voxels) * float(np.min(labels.spacing_mm))
    di_col, di_row, di_t = (to_index @ (pix * col), to_index @ (pix * row), to_index @ (step_mm * d))
    n_steps = int(np.ceil((t1 - t0) / step_mm)) + 1
    rr, cc = np.mgrid[0:n, 0:n]
    base = (i0[None] + cc.reshape(-1, 1) * di_col + rr.reshape(-1, 1) * di_row).astype(np.float32)
    return _Rays(n=n, pix=pix, col=col, row=row, d=d, plane_origin=plane_origin, base=base,
                 di_t=di_t, step_mm=step_mm, n_steps=n_steps)


def render_view(labels: Volume, table: LabelTable, view_direction_lps: Sequence[float], *,
                centre_lps: Sequence[float], up_lps: Sequence[float] = (0.0, 0.0, 1.0),
                colours: Mapping[int, tuple[int, int, int]] | None = None,
                options: SceneRenderOptions | None = None,
                prepared: PreparedLabels | None = None,
                progress: ProgressCallback | None = None) -> RenderedView:
    """Orthographic, shaded picture of a label map seen along ``view_direction_lps``.

    Each ray's first foreground sample (nearest neighbour, steps of ``step_voxels``) is found
    with empty-space skipping on the clearance map of :func:`prepare_render`: the same sample
    an exhaustive march would find, without visiting the empty space in between.

    Parameters
    ----------
    labels : Volume
        Integer ids, array (z, y, x), any LPS geometry (the label map or the anatomy parts map).
    table : LabelTable
        Names of the ids; colours follow :func:`class_of`.
    view_direction_lps : (3,)
        Direction in which rays travel (into the screen), LPS; any length.
    centre_lps : (3,)
        Point (LPS mm) projected to the picture's centre.
    up_lps : (3,)
        Screen-up hint (e.g. the S1 endplate normal: cranial up), see
        :func:`spinect_core.planning.raycast.view_axes`.
    colours : mapping of id to RGB, optional
        Overrides the colour of individual ids.
    options : SceneRenderOptions, optional
    prepared : PreparedLabels, optional
        ``prepare_render(labels, options=options)``, made once for several views of the same
        map; ``None``: prepared here.
    progress : callable, optional
        ``(fraction, message)``; returning False cancels.

    Returns
    -------
    RenderedView
        Picture (H = W = round(field_mm / pixel_mm)), depth and hit labels.

    Raises
    ------
    ValueError
        ``labels`` does not hold integer ids, or ``prepared`` was made for another grid or
        surface smoothing.
    """
    opts = options or SceneRenderOptions()
    report(progress, 0.0, "rendering: preparing the scene")
    if prepared is None:
        prepared = prepare_render(labels, options=opts)
    else:
        prepared.check(labels, opts)
    rays = _setup_rays(labels, prepared, view_direction_lps, centre_lps, up_lps, opts)
    hit_step, hit_label = _march_skipping(prepared, rays, progress)

    n = rays.n
    depth = np.full(n * n, np.nan, np.float32)
    hit = np.flatnonzero(hit_step >= 0)
    if hit.size:
        depth[hit] = _refine_depth(prepared.occupancy, rays.base[hit].astype(np.float64),
                                   rays.di_t, hit_step[hit], rays.step_mm,
                                   int(opts.refine_iterations))
    depth = depth.reshape(n, n)
    hit_label = hit_label.reshape(n, n)
    report(progress, 0.95, "rendering: shading")
    rgb = _shade(depth, hit_label, table, colours or {}, rays.col, rays.row, rays.d, rays.pix, opts)
    report(progress, 1.0, "rendering done")
    return RenderedView(rgb=rgb, depth_mm=depth, label_ids=hit_label,
                        plane_origin_lps=rays.plane_origin, axis_col_lps=rays.col,
                        axis_row_lps=rays.row, view_direction_lps=rays.d, pixel_mm=rays.pix)


def _march_skipping(prepared: PreparedLabels, rays: _Rays,
                    progress: ProgressCallback | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first non-background sample of each ray, as a march through every sample finds it.

    Empty-space skipping: a sample p_k rounds to voxel v_k whose clearance D
    (:attr:`PreparedLabels.clearance_mm`) bounds the distance from p_k to any point that rounds
    to a foreground voxel; a later sample p_j at r = |p_j - p_k| < D is therefore background,
    and the march jumps to the first sample it cannot rule out (ceil(D / step), at least 1).
    Each ray starts one sample before it enters the box and ends one after it leaves
    (outside, every sample is background). The samples visited are computed exactly as the
    reference march computes them, so the hit sample and its label are the same, bit for bit.

    Returns
    -------
    hit_step : np.ndarray, shape (N,), int64
        Index k of each ray's first non-background sample, -1 for none.
    hit_label : np.ndarray, shape (N,), int32
        Its label id (0 for none).
    """
    crop, clearance, base, n_steps = prepared.crop, prepared.clearance_mm, rays.base, rays.n_steps
    shape_xyz = np.array(crop.shape[::-1])
    di_t32 = rays.di_t.astype(np.float32)
    hit_step = np.full(len(base), -1, np.int64)
    hit_label = np.zeros(len(base), np.int32)
    lo, hi = _ray_box_interval(base, di_t32, n_steps, shape_xyz)
    ray = np.flatnonzero(lo <= hi)
    k = np.maximum(np.floor(lo[ray]) - 1.0, 0.0).astype(np.int64)
    k_end = np.minimum(np.ceil(hi[ray]) + 1.0, n_steps - 1).astype(np.int64)
    # One sample's length in mm in the crop's index metric (the clearance map's), whatever
    # the direction cosines.
    sample_mm = float(np.linalg.norm(prepared.spacing_mm * di_t32.astype(np.float64)))
    # A margin far above the float32 rounding of the positions and the clearances (~1e-5 mm).
    guard_mm = 1e-3
    n_total = max(1, ray.size)
    iteration = 0
    while ray.size:
        pos = base[ray] + k.astype(np.float32)[:, None] * di_t32[None, :]
        ii = np.rint(pos).astype(np.int64)
        inside = np.all((ii >= 0) & (ii < shape_xyz[None, :]), axis=1)
        np.clip(ii, 0, shape_xyz - 1, out=ii)
        flat = (ii[:, 2] * crop.shape[1] + ii[:, 1]) * crop.shape[2] + ii[:, 0]
        vals = np.where(inside, crop.ravel()[flat], 0)
        got = vals != 0
        hits = ray[got]
        hit_step[hits] = k[got]
        hit_label[hits] = vals[got]
        # Outside the box (only just before entry / after exit) the march steps one sample.
        free = np.where(inside, clearance.ravel()[flat], 0.0) - guard_mm
        jump = np.maximum(np.ceil(free / sample_mm), 1.0)
        k = k + np.minimum(jump, n_steps).astype(np.int64)
        keep = ~got & (k <= k_end)
        ray, k, k_end = ray[keep], k[keep], k_end[keep]
        iteration += 1
        if iteration % 8 == 0:
            report(progress, 0.9 * (1.0 - ray.size / n_total), "rendering: casting rays")
    report(progress, 0.9, "rendering: casting rays")
    return hit_step, hit_label


def _ray_box_interval(base: np.ndarray, di_t: np.ndarray, n_steps: int, shape_xyz: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(N,) lo, hi: the steps k in [0, n_steps] where base + k * di_t is in the index box.

    The box is [-0.5, shape - 0.5] per axis (every sample that rounds into the crop); lo > hi
    where the ray misses it (slab test).
    """
    lo = np.full(len(base), 0.0)
    hi = np.full(len(base), float(n_steps))
    for a in range(3):
        lo_b, hi_b = -0.5, float(shape_xyz[a]) - 0.5
        if abs(float(di_t[a])) < 1e-12:
            out = (base[:, a] < lo_b) | (base[:, a] > hi_b)
            lo[out], hi[out] = 1.0, 0.0
            continue
        ta = (lo_b - base[:, a]) / di_t[a]
        tb = (hi_b - base[:, a]) / di_t[a]
        lo = np.maximum(lo, np.minimum(ta, tb))
        hi = np.minimum(hi, np.maximum(ta, tb))
    return lo, hi


def _refine_depth(occ: np.ndarray, base: np.ndarray, di_t: np.ndarray, steps: np.ndarray,
                  step_mm: float, iterations: int) -> np.ndarray:
    """Depth (mm) of the 0.5 crossing of the occupancy near the first hit sample, by bisection.

    The smoothed surface can lie up to about a voxel before or behind the nearest-neighbour
    hit, so the bracket spans two steps either side; where the occupancy at its far end is
    still below 0.5, the far end is kept (the nearest-neighbour hit, give or take a step).
    """
    from scipy import ndimage

    lo = np.maximum(steps - 2, 0).astype(np.float64)
    hi = steps.astype(np.float64) + 2.0
    for _ in range(max(0, iterations)):
        mid = 0.5 * (lo + hi)
        pts = base + mid[:, None] * di_t[None, :]
        v = ndimage.map_coordinates(occ, pts[:, ::-1].T, order=1, mode="constant", cval=0.0,
                                    output=np.float32)
        inside = v >= 0.5
        hi = np.where(inside, mid, hi)
        lo = np.where(inside, lo, mid)
    return (hi * step_mm).astype(np.float32)


def _shade(depth: np.ndarray, ids: np.ndarray, table: LabelTable,
           colours: Mapping[int, tuple[int, int, int]], col: np.ndarray, row: np.ndarray,
           d: np.ndarray, pix: float, opts: SceneRenderOptions) -> np.ndarray:
    """Lambert shading from depth-map normals; (H, W, 3) uint8."""
    from scipy import ndimage

    hit = np.isfinite(depth)
    out = np.empty(depth.shape + (3,), np.float32)
    out[:] = BACKGROUND
    if not hit.any():
        return out.astype(np.uint8)
    # Fill the misses with the nearest hit's depth so the smoothing and gradients near a
    # silhouette use the object's own surface; smoothing hides the remaining voxel facets.
    idx = ndimage.distance_transform_edt(~hit, return_distances=False, return_indices=True)
    filled = depth[tuple(idx)]
    if opts.smooth_px > 0:
        filled = ndimage.gaussian_filter(filled, opts.smooth_px)
    dz_dr, dz_dc = np.gradient(filled, pix)
    # Surface normal facing the viewer in (col, row, depth) coordinates.
    normal = np.stack([dz_dc, dz_dr, -np.ones_like(filled)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    if opts.light_lps is None:
        light = np.array([-0.35, -0.45, -1.0])
    else:
        lv = np.asarray(opts.light_lps, float)
        light = np.array([lv @ col, lv @ row, lv @ d])
    light /= np.linalg.norm(light)
    lambert = np.clip(normal @ light, 0.0, 1.0)
    shade = opts.ambient + (1.0 - opts.ambient) * lambert
    dmin, dmax = float(np.nanmin(depth)), float(np.nanmax(depth))
    cue = 1.0 - opts.depth_cue * (filled - dmin) / max(dmax - dmin, 1e-6)
    factor = (shade * cue).astype(np.float32)
    palette = np.zeros((int(max(ids.max(), max(table.names, default=0))) + 1, 3), np.float32)
    for label_id, name in table.names.items():
        if label_id > 0 and label_id < len(palette):
            palette[label_id] = CLASS_COLOURS[class_of(name)]
    for label_id, rgb in colours.items():
        if 0 < label_id < len(palette):
            palette[label_id] = rgb
    out[hit] = palette[ids[hit]] * factor[hit, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --- overlays --------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Overlay:
    """What :func:`draw_overlays` draws on a rendered view.

    Attributes
    ----------
    outlines : list of (np.ndarray (K, 3), RGB)
        Closed LPS polylines (mm) and their colours (window outlines).
    needle_lps : (entry, target) or None
        Needle end points, LPS mm.
    legend : list of str
        Text lines printed under the picture.
    key : list of (str, RGB)
        Colour key entries.
    scale : int
        Integer magnification of the picture before drawing (crisp lines and text).
    line_width_px : int
        Width of outlines and needle in output pixels.
    """

    outlines: list[tuple[np.ndarray, tuple[int, int, int]]] = field(default_factory=list)
    needle_lps: tuple[np.ndarray, np.ndarray] | None = None
    legend: list[str] = field(default_factory=list)
    key: list[tuple[str, tuple[int, int, int]]] = field(default_factory=list)
    scale: int = 2
    line_width_px: int = 3


def draw_overlays(view: RenderedView, overlay: Overlay) -> np.ndarray:
    """The picture magnified by ``overlay.scale`` with outlines, needle, orientation letters,
    a 10 mm scale bar and a legend panel below it.

    Returns
    -------
    np.ndarray, shape (H*scale + panel, W*scale, 3), uint8
        The scene occupies the top ``H*scale`` rows (square); the legend panel the rest.
    """
    from PIL import Image, ImageDraw, ImageFont

    from spinect_core.reslice.render import orientation_letters

    s = max(1, int(overlay.scale))
    img = Image.fromarray(view.rgb)
    if s > 1:
        img = img.resize((img.width * s, img.height * s), Image.BILINEAR)
    w, h = img.size
    draw = ImageDraw.Draw(img)
    lw = max(1, int(overlay.line_width_px))

    def xy(points_lps: np.ndarray) -> list[tuple[float, float]]:
        rc = view.project(points_lps)
        return [((c + 0.5) * s - 0.5, (r + 0.5) * s - 0.5) for r, c, _ in rc]

    for poly, colour in overlay.outlines:
        pts = xy(np.asarray(poly, float))
        if len(pts) >= 2:
            draw.line(pts + [pts[0]], fill=tuple(colour), width=lw, joint="curve")
    if overlay.needle_lps is not None:
        entry, target = xy(np.vstack([overlay.needle_lps[0], overlay.needle_lps[1]]))
        draw.line([entry, target], fill=NEEDLE_COLOUR, width=lw)
        ring = 4.0 * s
        draw.ellipse([target[0] - ring, target[1] - ring, target[0] + ring, target[1] + ring],
                     outline=NEEDLE_COLOUR, width=lw)
        cross = 3.0 * s
        draw.line([(entry[0] - cross, entry[1]), (entry[0] + cross, entry[1])], fill=NEEDLE_COLOUR,
                  width=lw)
        draw.line([(entry[0], entry[1] - cross), (entry[0], entry[1] + cross)], fill=NEEDLE_COLOUR,
                  width=lw)
    font = ImageFont.load_default(size=max(11, 6 * s + 2))
    pad = 4
    letters = {"right": orientation_letters(view.axis_col_lps),
               "left": orientation_letters(-view.axis_col_lps),
               "bottom": orientation_letters(view.axis_row_lps),
               "top": orientation_letters(-view.axis_row_lps)}
    for where, text in letters.items():
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        tw, th = x1 - x0, y1 - y0
        pos = {"right": (w - tw - pad, (h - th) / 2), "left": (pad, (h - th) / 2),
               "top": ((w - tw) / 2, pad), "bottom": ((w - tw) / 2, h - th - pad)}[where]
        draw.text((pos[0] - x0, pos[1] - y0), text, fill=(255, 255, 255), font=font)
    bar = 10.0 / view.pixel_mm * s
    ybar = h - pad - 2
    draw.line([(pad, ybar), (pad + bar, ybar)], fill=(255, 255, 255), width=2)
    draw.text((pad, ybar - 4), "10 mm", fill=(255, 255, 255), font=font, anchor="lb")

    # Legend panel under the scene, so that no text hides anatomy.
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = [part for text in overlay.legend
             for part in _wrap(text, lambda t: measure.textlength(t, font=font), w - 2 * pad - 4)]
    line_h = font.size + 4
    # Colour key entries flow left to right and wrap.
    key_pos, x, y_key = [], pad + 2, 0
    for name, colour in overlay.key:
        width = font.size + 4 + int(measure.textlength(name, font=font)) + 12
        if x + width > w - pad and x > pad + 2:
            x, y_key = pad + 2, y_key + line_h
        key_pos.append((x, y_key, name, colour))
        x += width
    key_h = (y_key + line_h) if overlay.key else 0
    panel_h = pad * 2 + line_h * len(lines) + key_h + pad
    out = Image.new("RGB", (w, h + panel_h), (255, 255, 255))
    out.paste(img, (0, 0))
    pd = ImageDraw.Draw(out)
    y = h + pad
    for text in lines:
        pd.text((pad + 2, y), text, fill=(20, 20, 20), font=font)
        y += line_h
    for x, dy, name, colour in key_pos:
        pd.rectangle([x, y + dy + 2, x + font.size, y + dy + 2 + font.size], fill=tuple(colour),
                     outline=(60, 60, 60))
        pd.text((x + font.size + 4, y + dy), name, fill=(20, 20, 20), font=font)
    return np.asarray(out, dtype=np.uint8)


def _wrap(text: str, length, width: float) -> list[str]:
    """Greedy word wrap of ``text`` to ``width`` pixels (``length(str) -> pixels``)."""
    words, lines, current = text.split(), [], ""
    for word in words:
        trial = f"{current} {word}".strip()
        if current and length(trial) > width:
            lines.append(current)
            current = word
        else:
            current = trial
    return lines + ([current] if current else [])
