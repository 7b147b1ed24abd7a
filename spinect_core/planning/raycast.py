"""Orthographic ray grids and the soft first-hit search through :class:`SceneFields`.

A :class:`RayGrid` is a square of parallel rays on a plane perpendicular to the view direction
``d`` (the direction in which rays travel, LPS). The plane lies beyond the whole scene along
``-d``, so every ray starts outside everything. The LPS point of pixel (row r, column c) at depth
``t`` (mm along ``d`` from the plane) is::

    plane_origin_lps + c * pixel_mm * axis_col_lps + r * pixel_mm * axis_row_lps + t * d

Image orientation: rows run towards ``-up`` (caudal for the default ``up`` = LPS +z) and columns
towards ``axis_row x d``, so the image is what a viewer looking along ``d`` sees (not mirrored).

:func:`cast_first_hits` finds, per ray and per iso-level, the first depth where the target or the
blocker occupancy reaches the level, with sub-sample precision (linear interpolation between
samples). Empty space is skipped by sphere tracing on the scene's distance field; near content
the fields are sampled trilinearly (``torch.nn.functional.grid_sample``) every ``step_voxels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.planning.scene import SceneFields

#: Kind codes of a ray's first hit.
HIT_NONE, HIT_TARGET, HIT_BLOCKER = 0, 1, 2


@dataclass(frozen=True, kw_only=True)
class RayGrid:
    """A square orthographic ray grid.

    Attributes
    ----------
    plane_origin_lps : np.ndarray, shape (3,)
        LPS mm of the centre of pixel (row 0, col 0) on the ray-start plane.
    axis_col_lps, axis_row_lps : np.ndarray, shape (3,)
        Unit LPS vectors along increasing column / row index.
    view_direction_lps : np.ndarray, shape (3,)
        Unit vector in which the rays travel.
    pixel_mm : float
        Ray spacing (mm).
    shape : (int, int)
        (H, W) = (rows, columns).
    """

    plane_origin_lps: np.ndarray
    axis_col_lps: np.ndarray
    axis_row_lps: np.ndarray
    view_direction_lps: np.ndarray
    pixel_mm: float
    shape: tuple[int, int]

    def points_lps(self, rows: np.ndarray, cols: np.ndarray, depth_mm: np.ndarray) -> np.ndarray:
        """LPS points (..., 3) of (fractional) pixel coordinates at depths (mm), broadcast."""
        r = np.asarray(rows, float)[..., None]
        c = np.asarray(cols, float)[..., None]
        t = np.asarray(depth_mm, float)[..., None]
        return (self.plane_origin_lps + c * self.pixel_mm * self.axis_col_lps
                + r * self.pixel_mm * self.axis_row_lps + t * self.view_direction_lps)

    def plane_point_lps(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """LPS points (..., 3) of pixel coordinates on the ray-start plane."""
        return self.points_lps(rows, cols, np.zeros(np.broadcast(rows, cols).shape))

    def project(self, points_lps: np.ndarray) -> np.ndarray:
        """(..., 3) -> (row, col, depth_mm) (..., 3) of LPS points in this grid."""
        p = np.asarray(points_lps, float) - self.plane_origin_lps
        return np.stack([p @ self.axis_row_lps / self.pixel_mm,
                         p @ self.axis_col_lps / self.pixel_mm,
                         p @ self.view_direction_lps], -1)


def unit_vector(v: Sequence[float], name: str = "view direction") -> np.ndarray:
    """``v`` normalised; InputError for a zero or non-finite vector."""
    a = np.asarray(v, dtype=float).reshape(-1)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise InputError(f"{name} must be 3 finite numbers, got {list(a)}")
    n = float(np.linalg.norm(a))
    if n < 1e-9:
        raise InputError(f"{name} is the zero vector")
    return a / n


def view_axes(view_direction_lps: Sequence[float], up_lps: Sequence[float] = (0.0, 0.0, 1.0)
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image axes ``(axis_col, axis_row, d)`` for rays travelling along ``view_direction_lps``.

    ``axis_row`` is ``-up`` made orthogonal to ``d`` (rows run caudally for up = +z); when ``d``
    is within ~8 deg of ``up``, LPS +y (posterior) is used as ``up`` instead. ``axis_col`` =
    ``axis_row x d``, so (col, row, d) is right-handed and the image is not mirrored.
    """
    d = unit_vector(view_direction_lps)
    up = unit_vector(up_lps, "up vector")
    if abs(float(up @ d)) > 0.99:
        up = np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.99 else np.array([1.0, 0.0, 0.0])
    row = -(up - (up @ d) * d)
    row /= np.linalg.norm(row)
    col = np.cross(row, d)
    col /= np.linalg.norm(col)
    return col, row, d


def make_ray_grid(scene_corners_lps: np.ndarray, view_direction_lps: Sequence[float], *,
                  roi_center_lps: Sequence[float], roi_size_mm: float, pixel_mm: float,
                  up_lps: Sequence[float] = (0.0, 0.0, 1.0)) -> RayGrid:
    """A square ray grid of side ``roi_size_mm`` centred (in projection) on ``roi_center_lps``.

    The start plane lies 1 mm beyond the scene corners (8, 3) along ``-d``. The grid has
    ``round(roi_size_mm / pixel_mm)`` pixels per side (at least 1).
    """
    if not pixel_mm > 0:
        raise InputError(f"pixel size must be positive, got {pixel_mm}")
    if not roi_size_mm > 0:
        raise InputError(f"ROI size must be positive, got {roi_size_mm}")
    col, row, d = view_axes(view_direction_lps, up_lps)
    centre = np.asarray(roi_center_lps, float).reshape(3)
    t0 = float(np.min((np.asarray(scene_corners_lps, float) - centre) @ d)) - 1.0
    n = max(int(round(roi_size_mm / pixel_mm)), 1)
    half = (n - 1) / 2.0 * pixel_mm
    origin = centre + t0 * d - half * col - half * row
    return RayGrid(plane_origin_lps=origin, axis_col_lps=col, axis_row_lps=row,
                   view_direction_lps=d, pixel_mm=float(pixel_mm), shape=(n, n))


@dataclass(frozen=True, kw_only=True)
class FirstHits:
    """First surface hits of every ray at several iso-levels.

    Attributes
    ----------
    thresholds : tuple of float
        The iso-levels, ascending (T of them).
    depth_mm : np.ndarray, shape (T, H, W), float32
        Depth of the first hit along ``d`` from the start plane (NaN where nothing is hit).
    kind : np.ndarray, shape (T, H, W), uint8
        :data:`HIT_NONE`, :data:`HIT_TARGET` or :data:`HIT_BLOCKER`.
    margin : np.ndarray, shape (T, H, W), float32
        Signed soft margin of the decision "the target is hit first", in occupancy units
        (positive = target first). For a target-first ray: ``min(tau - max blocker before the
        hit, peak target - tau)``; for a blocker-first ray: ``-min(peak blocker - tau,
        tau - max target before the hit)``; for a ray that hits nothing: ``max target - tau``.
        It changes sign where a window edge crosses between neighbouring rays and varies
        smoothly there, which lets the window area be measured to a fraction of a pixel.
    """

    thresholds: tuple[float, ...]
    depth_mm: np.ndarray
    kind: np.ndarray
    margin: np.ndarray

    def level(self, threshold: float) -> int:
        """Index of ``threshold`` in :attr:`thresholds`."""
        for i, t in enumerate(self.thresholds):
            if abs(t - threshold) < 1e-6:
                return i
        raise KeyError(f"threshold {threshold} was not cast (have {self.thresholds})")


def cast_first_hits(fields: SceneFields, rays: RayGrid, *,
                    thresholds: Sequence[float] = (0.35, 0.5, 0.65),
                    step_voxels: float = 0.5, chunk_samples: int = 16,
                    peak_cap: float = 0.95, peak_length_voxels: float = 3.0) -> FirstHits:
    """First depth at which each ray meets target or blocker occupancy >= each threshold.

    Parameters
    ----------
    fields : SceneFields
    rays : RayGrid
    thresholds : sequence of float
        Iso-levels, each >= ``fields.min_threshold`` (the distance field's guarantee).
    step_voxels : float
        Sampling step along the rays, in units of the smallest voxel size (0.5 default).
    chunk_samples : int
        Samples per marching chunk between empty-space skips.
    peak_cap, peak_length_voxels : float
        After a crossing, the ray keeps sampling the hit channel for its peak (for
        :attr:`FirstHits.margin`) until it reaches ``peak_cap`` or the ray has gone
        ``peak_length_voxels`` (largest voxel size) past the crossing.

    Returns
    -------
    FirstHits
        Per threshold: hit depth (mm from the start plane; linear interpolation between the two
        samples that bracket the crossing), which channel was hit first (ties -> blocker) and
        the signed soft margin.
    """
    import torch
    import torch.nn.functional as F

    taus_np = np.array(sorted(float(t) for t in thresholds), np.float32)
    taus = tuple(float(t) for t in taus_np)
    if taus[0] < fields.min_threshold - 1e-6:
        raise ValueError(f"threshold {taus[0]} is below the scene's min_threshold "
                         f"{fields.min_threshold}")
    H, W = rays.shape
    n_rays = H * W
    n_t = len(taus)
    depth = np.full((n_rays, n_t), np.nan, np.float32)
    kind = np.zeros((n_rays, n_t), np.uint8)
    margin = np.zeros((n_rays, n_t), np.float32)

    occ, dist = fields.torch_fields()
    nz, ny, nx = fields.shape_zyx
    size_xyz = np.array([nx, ny, nz], float)
    inv = np.linalg.inv(fields.affine_lps[:3, :3])  # LPS -> continuous crop index (x, y, z)
    rr, cc = np.meshgrid(np.arange(H, dtype=float), np.arange(W, dtype=float), indexing="ij")
    start_lps = rays.plane_point_lps(rr.reshape(-1), cc.reshape(-1))
    i0 = (start_lps - fields.affine_lps[:3, 3]) @ inv.T  # (N, 3)
    di = inv @ rays.view_direction_lps  # index change per mm of depth
    # Ray segment inside the crop box [0, n-1] (slab method); outside, occupancy is 0.
    t_in, t_out = _slab(i0, di, np.zeros(3), size_xyz - 1.0)
    h = float(step_voxels) * float(np.min(fields.spacing_mm))
    peak_len = float(peak_length_voxels) * float(np.max(fields.spacing_mm))
    # Trilinear interpolation reaches a level only within one voxel diagonal of a voxel at that
    # level, and the interpolated distance field may overestimate by up to one diagonal.
    margin_skip = 2.0 * float(np.linalg.norm(fields.spacing_mm)) + 0.5 * h
    scale = 2.0 / np.maximum(size_xyz - 1.0, 1.0)  # index -> grid_sample's [-1, 1]
    i0n = i0 * scale - 1.0  # (N, 3) normalised grid coordinates at depth 0
    din = di * scale
    k_range = np.arange(chunk_samples + 1) * h

    # Per active ray state (index into the full ray list and per-threshold state).
    idx = np.flatnonzero(t_out > t_in)
    t = t_in[idx].astype(np.float64)
    t_end = t_out[idx].astype(np.float64)
    run_max = np.zeros((len(idx), 2, n_t), np.float32)  # channel maxima before the crossing
    state = np.zeros((len(idx), n_t), np.int8)  # 0 searching, 1 tracking the peak, 2 done
    hit_ch = np.zeros((len(idx), n_t), np.int64)  # 0 target, 1 blocker
    hit_depth = np.full((len(idx), n_t), np.inf)
    pre_other = np.zeros((len(idx), n_t), np.float32)
    peak = np.zeros((len(idx), n_t), np.float32)

    def sample_dist(ray_ids: np.ndarray, depths: np.ndarray) -> np.ndarray:
        g = torch.from_numpy((i0n[ray_ids] + depths[:, None] * din).astype(np.float32))
        out = F.grid_sample(dist, g[None, None, None], mode="bilinear", padding_mode="border",
                            align_corners=True)
        return out[0, 0, 0, 0].numpy().astype(np.float64)

    def finish(sel: np.ndarray) -> None:
        """Write the results of the active rays ``sel`` (bool over active rays)."""
        ids = idx[sel]
        st, ch = state[sel], hit_ch[sel]
        hit = st > 0
        tgt = hit & (ch == 0)
        blk = hit & (ch == 1)
        depth[ids] = np.where(hit, hit_depth[sel], np.nan)
        kind[ids] = np.where(tgt, HIT_TARGET, np.where(blk, HIT_BLOCKER, HIT_NONE))
        rm = run_max[sel]
        f_t = np.minimum(taus_np - pre_other[sel], peak[sel] - taus_np)
        f_b = -np.minimum(peak[sel] - taus_np, taus_np - pre_other[sel])
        f_n = rm[:, 0] - taus_np
        margin[ids] = np.where(tgt, f_t, np.where(blk, f_b, f_n))

    max_rounds = (int(np.ceil(float(np.max(t_end - t)) / (chunk_samples * h))) + 64
                  if len(t) else 0)
    with torch.no_grad():
        for _ in range(max_rounds):
            if len(idx) == 0:
                break
            # 1) Skip empty space by (distance - margin), only for rays still searching: a ray
            #    tracking a peak stays near content anyway.
            searching = (state == 0).any(1)
            for _sphere in range(24):
                cand = np.flatnonzero(searching)
                if len(cand) == 0:
                    break
                step = sample_dist(idx[cand], t[cand]) - margin_skip
                move = step > h
                if not move.any():
                    break
                t[cand[move]] += step[move]
            gone = t > t_end
            if gone.any():
                finish(gone)
                keep = ~gone
                idx, t, t_end, state, hit_ch, hit_depth, pre_other, peak = (
                    a[keep] for a in (idx, t, t_end, state, hit_ch, hit_depth, pre_other, peak))
                run_max = run_max[keep]
                if len(idx) == 0:
                    break
            # 2) Sample one chunk t, t+h, ..., t+K*h.
            depths = t[:, None] + k_range  # (n, K+1)
            g = torch.from_numpy((i0n[idx][:, None, :] + depths[..., None] * din
                                  ).astype(np.float32))
            v = F.grid_sample(occ, g[None, None], mode="bilinear", padding_mode="zeros",
                              align_corners=True)[0, :, 0].permute(1, 2, 0)  # (n, K+1, 2)
            # Bookkeeping in numpy: small torch indexing ops are slow on busy multi-core CPUs.
            v_np = v.numpy()
            above = v_np[..., None] >= taus_np  # (n, K+1, 2, T)
            has = above.any(1)  # (n, 2, T)
            first_all = above.argmax(1)  # (n, 2, T): first sample at/above (0 if none)
            prev = np.maximum(first_all - 1, 0)
            vv = np.broadcast_to(v_np[..., None], v_np.shape + (n_t,))
            v_hi = np.take_along_axis(vv, first_all[:, None], 1)[:, 0]
            v_lo = np.take_along_axis(vv, prev[:, None], 1)[:, 0]
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.clip((taus_np - v_lo) / np.maximum(v_hi - v_lo, 1e-12), 0.0, 1.0)
            frac = np.where(first_all > 0, frac, 0.0)
            dep = t[:, None, None] + (prev + frac) * h  # (n, 2, T)
            dep = np.where(has, dep, np.inf)
            chunk_max = v_np.max(1)  # (n, 2)
            new = (state == 0) & has.any(1)  # (n, T) rays crossing now
            ch = np.where(dep[:, 0] < dep[:, 1], 0, 1)  # first channel; ties -> blocker
            if new.any():
                rows, lv = np.nonzero(new)
                c_sel = ch[rows, lv]
                j = first_all[rows, c_sel, lv]
                other = 1 - c_sel
                k = np.arange(chunk_samples + 1)
                seq_hit = v_np[rows, :, c_sel]  # (m, K+1)
                seq_other = v_np[rows, :, other]
                before = np.where(k[None, :] <= j[:, None], seq_other, 0.0).max(1)
                after = np.where(k[None, :] >= j[:, None], seq_hit, 0.0).max(1)
                pre_other[rows, lv] = np.maximum(run_max[rows, other, lv], before)
                peak[rows, lv] = after
                hit_depth[rows, lv] = dep[rows, c_sel, lv]
                hit_ch[rows, lv] = c_sel
                state[rows, lv] = 1
            # Peaks of rays that crossed in an earlier chunk.
            old = (state == 1) & ~new
            if old.any():
                rows, lv = np.nonzero(old)
                peak[rows, lv] = np.maximum(peak[rows, lv], chunk_max[rows, hit_ch[rows, lv]])
            searching_now = (state == 0)[:, None, :]
            run_max = np.where(searching_now, np.maximum(run_max, chunk_max[:, :, None]), run_max)
            t = t + chunk_samples * h
            done_peak = (state == 1) & ((peak >= peak_cap) | (t[:, None] - hit_depth > peak_len))
            state[done_peak] = 2
            # 3) Retire rays that are done at every level or left the crop.
            out = (state == 2).all(1) | (t > t_end)
            if out.any():
                finish(out)
                keep = ~out
                idx, t, t_end, state, hit_ch, hit_depth, pre_other, peak = (
                    a[keep] for a in (idx, t, t_end, state, hit_ch, hit_depth, pre_other, peak))
                run_max = run_max[keep]
        if len(idx):
            finish(np.ones(len(idx), bool))
    # Rays that never entered the crop hit nothing and saw nothing.
    never = t_out <= t_in
    margin[never] = -taus_np
    return FirstHits(thresholds=taus,
                     depth_mm=np.ascontiguousarray(depth.T.reshape(n_t, H, W)),
                     kind=np.ascontiguousarray(kind.T.reshape(n_t, H, W)),
                     margin=np.ascontiguousarray(margin.T.reshape(n_t, H, W)))


def _slab(origin: np.ndarray, direction: np.ndarray, lo: np.ndarray, hi: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """Parametric entry/exit (t_in, t_out) of rays ``origin + t * direction`` (N, 3) in a box."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / direction
        a = (lo - origin) * inv
        b = (hi - origin) * inv
    tmin = np.where(np.isfinite(a), np.minimum(a, b), -np.inf)
    tmax = np.where(np.isfinite(b), np.maximum(a, b), np.inf)
    # A ray parallel to a slab is inside it for all t, or never.
    parallel = direction == 0
    inside = (origin >= lo) & (origin <= hi)
    tmin = np.where(parallel, np.where(inside, -np.inf, np.inf), tmin)
    tmax = np.where(parallel, np.where(inside, np.inf, -np.inf), tmax)
    t_in = np.maximum(tmin.max(1), 0.0)
    t_out = tmax.min(1)
    return t_in, t_out
