"""Orthographic ray grids and sphere tracing through the signed distance fields of a scene.

A :class:`RayGrid` is a square of parallel rays on a plane perpendicular to the view direction
``d`` (the direction in which rays travel, LPS). The plane lies beyond the whole scene along
``-d``, so every ray starts outside everything. The LPS point of pixel (row r, column c) at depth
``t`` (mm along ``d`` from the plane) is::

    plane_origin_lps + c * pixel_mm * axis_col_lps + r * pixel_mm * axis_row_lps + t * d

Image orientation: rows run towards ``-up`` (caudal for the default ``up`` = LPS +z) and columns
towards ``axis_row x d``, so the image is what a viewer looking along ``d`` sees (not mirrored).

:func:`trace_rays` sphere-traces every ray on ``min(sdf_target, sdf_blocker)``
(:meth:`scene.TorchFields.sample`: trilinear, or exact voxel cubes) with a minimum step, refines
the first crossing by regula falsi, measures the penetration into the hit structure, and returns
per ray the first hit (which structure, sub-sample depth) and a signed margin in mm whose zero
level is the window edge (see :class:`RayHits`). Work is vectorised over the active rays, which
are compacted as they finish. :func:`trace_rays_many` traces the rays of many grids (views) in
one loop, or only a rectangular part of a grid, with the same numbers per ray.

The cast runs on torch, one code path for every device: on the scene's device
(``SceneOptions.device``, default ``"auto"``: CUDA when present, else the CPU) from the ray
set-up to the margins; the rays' start points and directions are set up in float64 numpy and
the results come back as numpy. On the CPU a cast uses one torch thread per
:data:`CPU_RAYS_PER_THREAD` rays (in practice one: see there), restoring the count after.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.planning.scene import SceneFields
from spinect_core.vectors import unit

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

    def crop(self, box: tuple[int, int, int, int]) -> "RayGrid":
        """The sub-grid of rows ``r0:r1`` and columns ``c0:c1`` (``box = (r0, r1, c0, c1)``),
        whose pixel (0, 0) is pixel (r0, c0) of this grid."""
        r0, r1, c0, c1 = _check_box(box, self.shape)
        return RayGrid(plane_origin_lps=self.plane_point_lps(np.float64(r0), np.float64(c0)),
                       axis_col_lps=self.axis_col_lps, axis_row_lps=self.axis_row_lps,
                       view_direction_lps=self.view_direction_lps, pixel_mm=self.pixel_mm,
                       shape=(r1 - r0, c1 - c0))


def _check_box(box: Sequence[int], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    r0, r1, c0, c1 = (int(v) for v in box)
    if not (0 <= r0 < r1 <= shape[0] and 0 <= c0 < c1 <= shape[1]):
        raise InputError(f"crop {tuple(box)} is not a non-empty part of a {shape} grid")
    return r0, r1, c0, c1


def unit_vector(v: Sequence[float], name: str = "view direction") -> np.ndarray:
    """``v`` normalised (:func:`spinect_core.vectors.unit`); InputError naming ``name`` for a
    zero, non-finite or wrongly shaped vector (user input: the CLI reports it in one line)."""
    return unit(v, name, error=InputError)


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
class RayHits:
    """First hits and signed margins of every ray of a grid.

    Attributes
    ----------
    depth_mm : np.ndarray, shape (H, W), float32
        Depth of the first surface hit along ``d`` from the start plane (NaN where none).
    kind : np.ndarray, shape (H, W), uint8
        :data:`HIT_NONE`, :data:`HIT_TARGET` or :data:`HIT_BLOCKER`.
    margin_mm : np.ndarray, shape (H, W), float32
        Signed margin (mm, > 0 = the target is hit first):

        * target first: ``min(min blocker distance before the hit, penetration into the target)``;
        * blocker first: ``-min(penetration into the blocker, min target distance before the hit)``;
        * nothing hit: ``-min target distance`` along the ray.

        The minimum distance of a ray to a structure it misses equals the in-plane distance
        between the pixel and the structure's projection, so near a window edge formed by a
        missed structure the margin is the signed in-plane distance to that edge (linear across
        it). Penetrations (capped at ``penetration_cap_mm``) only fix the sign and a magnitude
        that is right for rays parallel to the hit surface.
    exact : np.ndarray, shape (H, W), bool
        The margin is a minimum distance to a missed structure (an in-plane distance), not a
        penetration depth.
    """

    depth_mm: np.ndarray
    kind: np.ndarray
    margin_mm: np.ndarray
    exact: np.ndarray


def trace_rays(fields: SceneFields, rays: RayGrid, **options: Any) -> RayHits:
    """Sphere-trace every ray of ``rays`` through ``fields``.

    :func:`trace_rays_many` for one grid; ``options`` are its keyword arguments.

    Returns
    -------
    RayHits
    """
    return trace_rays_many(fields, [rays], **options)[0]


def trace_rays_many(fields: SceneFields, grids: Sequence[RayGrid], *,
                    crops: Sequence[tuple[int, int, int, int] | None] | None = None,
                    min_step_voxels: float = 0.25, relax: float = 0.9,
                    near_mm: float | None = None, penetration_cap_mm: float = 2.0,
                    max_iterations: int = 2000, refine_steps: int = 6, golden_steps: int = 8,
                    refine_within_px: float = 3.0) -> list[RayHits]:
    """Sphere-trace every ray of several grids (e.g. many views) through ``fields`` together.

    Each ray is traced independently, so the result of a grid does not depend on the grids
    traced with it (the numbers are identical to tracing it alone). Tracing many grids at once
    shares the per-iteration overhead of the marching loop, which dominates for small grids:
    the loop runs until the slowest ray (one grazing a surface) finishes.

    The cast runs on torch on the scene's device (:attr:`SceneFields.device`: CUDA when present,
    else the CPU) from the ray set-up to the margins; only the results come back as numpy.

    Parameters
    ----------
    fields : SceneFields
    grids : sequence of RayGrid
        Any directions, sizes and pixel sizes.
    crops : sequence of (r0, r1, c0, c1) or None, optional
        Per grid, trace only its rows ``r0:r1`` and columns ``c0:c1`` (the rays are exactly
        those of the whole grid); None traces the whole grid.
    min_step_voxels : float
        Smallest step (units of the smallest voxel size): a ray that comes closer to a surface
        than this steps across it and the crossing is refined by regula falsi.
    relax : float
        Steps are ``relax * distance`` within ``near_mm`` of any surface (full distance beyond):
        a safety factor for the trilinear field, which is not exactly 1-Lipschitz near rims.
    near_mm : float, optional
        Default: two voxels (largest size).
    penetration_cap_mm : float
        Length (mm) past the first hit over which the penetration depth is measured.
    max_iterations : int
        Safety cap on marching iterations (rays still running count as hitting nothing).
    refine_steps : int
        Regula falsi steps locating a crossing.
    golden_steps : int
        Golden-section steps refining the minimum distance to a missed structure.
    refine_within_px : float
        That refinement is done for rays within this many pixels (of their own grid) of such a
        structure (the margins that the window's edges and their repair depend on).

    Returns
    -------
    list of RayHits
        One per grid, in order (of the crop's shape where cropped).
    """
    grids = list(grids)
    if not grids:
        return []
    crops = [None] * len(grids) if crops is None else list(crops)
    if len(crops) != len(grids):
        raise InputError(f"{len(crops)} crops for {len(grids)} ray grids")
    boxes = [(0, g.shape[0], 0, g.shape[1]) if box is None else _check_box(box, g.shape)
             for g, box in zip(grids, crops)]
    shapes = [(r1 - r0, c1 - c0) for r0, r1, c0, c1 in boxes]
    sizes = [h * w for h, w in shapes]
    nz, ny, nx = fields.shape_zyx
    size_xyz = np.array([nx, ny, nz], float)
    inv = np.linalg.inv(fields.affine_lps[:3, :3])  # LPS -> continuous crop index (x, y, z)
    i0_parts, di_parts, reach_parts = [], [], []
    for g, (r0, r1, c0, c1), size in zip(grids, boxes, sizes):
        rr, cc = np.meshgrid(np.arange(r0, r1, dtype=float), np.arange(c0, c1, dtype=float),
                             indexing="ij")
        i0_parts.append((g.plane_point_lps(rr.reshape(-1), cc.reshape(-1))
                         - fields.affine_lps[:3, 3]) @ inv.T)
        # Index change per mm of depth, one row per ray (grids differ in direction).
        di_parts.append(np.broadcast_to(inv @ g.view_direction_lps, (size, 3)))
        reach_parts.append(np.full(size, refine_within_px * g.pixel_mm, np.float32))
    i0 = np.concatenate(i0_parts)
    di = np.concatenate(di_parts)
    t_in, t_out = _slab(i0, di, np.zeros(3), size_xyz - 1.0)
    tf = fields.torch_fields()
    import torch

    # (inference mode: no autograd bookkeeping per operation, a few per cent on the CPU)
    with _cpu_threads(tf.device, len(i0)), torch.inference_mode():
        depth, kind, margin, exact = _trace(
            tf, i0, di, t_in, t_out, np.concatenate(reach_parts),
            h_min=float(min_step_voxels) * float(np.min(fields.spacing_mm)),
            near=2.0 * float(np.max(fields.spacing_mm)) if near_mm is None else float(near_mm),
            relax=float(relax), cap=float(penetration_cap_mm),
            max_iterations=int(max_iterations), refine_steps=int(refine_steps),
            golden_steps=int(golden_steps))
    finite = np.isfinite(margin)
    if not finite.all():
        # Rays that never enter the crop pass farther than its pad from everything.
        margin = np.where(finite, margin, -fields.max_abs_distance_mm()).astype(np.float32)
    out = []
    for shape, a, b in zip(shapes, np.cumsum([0] + sizes[:-1]), np.cumsum(sizes)):
        out.append(RayHits(depth_mm=depth[a:b].reshape(shape), kind=kind[a:b].reshape(shape),
                           margin_mm=margin[a:b].reshape(shape),
                           exact=exact[a:b].reshape(shape)))
    return out


#: On the CPU, torch splits an operation over threads from ~32k elements on; the caster's
#: arrays are that large only in big batches, and with the other cores busy (the usual case on
#: a 2-core workstation) the threads wait for each other: a 100k-point lookup measured 3.7 ms on
#: one thread and 130 ms on two. One thread per this many rays, up to torch's thread count.
CPU_RAYS_PER_THREAD = 1 << 20


#: Marching iterations between the caster's questions "how many rays still run?" per device
#: type: each is a host sync on a GPU (tens of microseconds), free on the CPU.
SYNC_EVERY = {"cpu": 1, "cuda": 8, "other": 8}


class _cpu_threads:
    """Context: torch's intra-op threads for a CPU cast of ``rays`` rays, restored after.

    The thread count is process-wide, and the app casts in worker threads while other workers
    may run torch (the DRR view): the first cast to enter saves the count, the last to leave
    restores it (a lock and a count of casts in progress), so overlapping casts never leave
    the process on fewer threads.
    """

    _lock = threading.Lock()
    _active = 0
    _saved = 0

    def __init__(self, device: Any, rays: int) -> None:
        self.cpu = device.type == "cpu"
        self.rays = int(rays)

    def __enter__(self) -> None:
        if not self.cpu:
            return
        import torch

        cls = type(self)
        with cls._lock:
            if cls._active == 0:
                cls._saved = torch.get_num_threads()
            cls._active += 1
            want = max(1, min(cls._saved, -(-self.rays // CPU_RAYS_PER_THREAD)))
            if want != torch.get_num_threads():
                torch.set_num_threads(want)

    def __exit__(self, *exc: Any) -> None:
        if not self.cpu:
            return
        import torch

        cls = type(self)
        with cls._lock:
            cls._active -= 1
            if cls._active == 0 and torch.get_num_threads() != cls._saved:
                torch.set_num_threads(cls._saved)


def _trace(tf: Any, i0_np: np.ndarray, di_np: np.ndarray, t_in_np: np.ndarray,
           t_out_np: np.ndarray, reach_np: np.ndarray, *, h_min: float, near: float,
           relax: float, cap: float, max_iterations: int, refine_steps: int,
           golden_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ray cast of :func:`trace_rays_many` on ``tf`` (:class:`scene.TorchFields`).

    Rays ``i0 + t * di`` (crop indices, (n, 3) each) between ``t_in`` and ``t_out`` (n,);
    returns depth (n,) float32, kind (n,) uint8, margin (n,) float32 and exact (n,) bool.
    State is kept as (channel, ray) tensors so that each channel is one contiguous row.
    """
    import torch

    dev = tf.device
    f32 = torch.float32
    n = len(i0_np)
    i0 = torch.from_numpy(np.ascontiguousarray(i0_np.T, np.float32)).to(dev)  # (3, n)
    di = torch.from_numpy(np.ascontiguousarray(di_np.T, np.float32)).to(dev)
    reach = torch.from_numpy(reach_np).to(dev)
    t_in = torch.from_numpy(t_in_np.astype(np.float32)).to(dev)
    t_out = torch.from_numpy(t_out_np.astype(np.float32)).to(dev)
    inf = torch.inf

    def sample(ids: Any, t: Any) -> Any:
        """(2, m) distances of rays ``ids`` (m,) at depths ``t`` (m,)."""
        return tf.sample(torch.addcmul(i0.index_select(1, ids), di.index_select(1, ids), t))

    depth = torch.full((n,), torch.nan, dtype=f32, device=dev)
    kind = torch.zeros(n, dtype=torch.uint8, device=dev)
    min_before = torch.full((2, n), inf, dtype=f32, device=dev)  # before the hit
    t_min = torch.zeros((2, n), dtype=f32, device=dev)  # depth of that minimum
    pen = torch.zeros(n, dtype=f32, device=dev)
    # --- phase 1: march to the first crossing of either surface -------------------------------
    # State of the active rays only. A finished ray stays in place with its state frozen until
    # finished rays make up an eighth of the state (and at least 256 rays); then their results
    # are scattered back and the state is compacted: that bookkeeping costs a dozen operations,
    # which on every iteration would cost more than marching a few frozen rays along (in the
    # long tail of the last rays grazing a surface, one finishes every other iteration).
    ids = torch.from_numpy(np.flatnonzero(t_out_np > t_in_np)).to(dev)
    t = t_in.index_select(0, ids)
    t_end = t_out.index_select(0, ids)
    start, step_dir = i0.index_select(1, ids), di.index_select(1, ids)
    skip = tf.skip_field()
    if skip is not None and skip[3] >= max(near, h_min) and len(ids):
        t = _skip_open_space(skip, start, step_dir, t, t_end)
    t_prev = t.clone()
    v_prev = torch.full((2, len(ids)), inf, dtype=f32, device=dev)
    v_last = v_prev.clone()  # values where each finished ray stopped
    mn = v_prev.clone()
    t_mn = torch.zeros((2, len(ids)), dtype=f32, device=dev)
    alive = torch.ones(len(ids), dtype=torch.bool, device=dev)
    n_alive = len(ids)
    hits: list[tuple[Any, ...]] = []

    def flush() -> None:
        """Scatter the finished rays' minima and record their crossings."""
        fin = (~alive).nonzero().squeeze(1)
        if len(fin) == 0:
            return
        at = ids.index_select(0, fin)
        min_before.index_copy_(1, at, mn.index_select(1, fin))
        t_min.index_copy_(1, at, t_mn.index_select(1, fin))
        v_fin = v_last.index_select(1, fin)
        sel = (torch.minimum(v_fin[0], v_fin[1]) <= 0).nonzero().squeeze(1)
        if len(sel):
            hits.append((at.index_select(0, sel), t_prev.index_select(0, fin.index_select(0, sel)),
                         t.index_select(0, fin.index_select(0, sel)),
                         v_prev.index_select(1, fin.index_select(0, sel)),
                         v_fin.index_select(1, sel)))

    # The loop's constants as tensors (a Python number costs each operation a conversion).
    zero_t, near_t, relax_t, h_t = (torch.tensor(x, dtype=f32, device=dev)
                                    for x in (0.0, near, relax, h_min))
    # How often the loop asks how many rays are still running (a host sync on a GPU): on the
    # CPU every iteration (it compacts as soon as it can); elsewhere every few iterations,
    # every ray's state is frozen by masks in between and a few iterations may run idle. The
    # numbers are the same either way (a frozen ray never changes).
    sync_every = SYNC_EVERY.get(dev.type, SYNC_EVERY["other"])
    for it in range(max_iterations):
        if n_alive == 0:
            break
        # (Fewest operations per iteration: in the long tail of a few rays each operation's
        # fixed cost, ~1.5 us on the CPU, is what counts.)
        v = tf.sample(torch.addcmul(start, step_dir, t))
        m = v.amin(0)
        free = torch.gt(m, zero_t)
        better = torch.lt(v, mn)
        better &= free  # (bitwise ops on bools: logical_and_ and co. cost 2-3x more)
        mn = torch.where(better, v, mn)
        t_mn = torch.where(better, t, t_mn)
        t_next = torch.where(torch.lt(m, near_t), m * relax_t, m).clamp_(min=h_t).add_(t)
        done = torch.gt(t_next, t_end)
        done |= ~free
        if sync_every > 1 or n_alive < len(ids):  # (else every ray is alive)
            done &= alive
        synced = sync_every == 1 or (it + 1) % sync_every == 0
        n_done = int(done.count_nonzero()) if sync_every == 1 else -1  # -1: not asked
        if n_done:
            v_last = torch.where(done, v, v_last)
            alive ^= done  # (done is part of alive: this drops it)
            if sync_every == 1:
                n_alive -= n_done
            elif synced:
                n_alive = int(alive.count_nonzero())
        if n_alive < len(ids) or sync_every > 1:  # frozen rays keep their state
            t_prev = torch.where(alive, t, t_prev)
            v_prev = torch.where(alive, v, v_prev)
            t = torch.where(alive, t_next, t)
            if synced and n_done and (n_alive == 0
                                      or len(ids) - n_alive >= max(len(ids) // 8, 256)):
                flush()
                keep = alive.nonzero().squeeze(1)
                ids, t_end = ids.index_select(0, keep), t_end.index_select(0, keep)
                start, step_dir = start.index_select(1, keep), step_dir.index_select(1, keep)
                mn, t_mn = mn.index_select(1, keep), t_mn.index_select(1, keep)
                t_prev, v_prev = t_prev.index_select(0, keep), v_prev.index_select(1, keep)
                t, v_last = t.index_select(0, keep), v_last.index_select(1, keep)
                alive = torch.ones(len(keep), dtype=torch.bool, device=dev)
        else:
            t_prev, v_prev, t = t, v, t_next
    flush()  # (rays still running after max_iterations count as hitting nothing)
    if hits:
        ids, lo, hi, vlo, vhi = (torch.cat(parts, -1) for parts in zip(*hits))
        # Which surface is crossed first: locate each crossed channel's crossing, earliest wins
        # (ties -> blocker).
        # Usually one channel crossed: refine it; where both did, refine the target too.
        # (index_select / index_copy_ throughout: indexing with tensors costs ~10x more.)
        ch = (vhi[1] <= 0).to(torch.int64)  # 1 = blocker
        both = ((vhi[0] <= 0) & (vhi[1] <= 0)).nonzero().squeeze(1)
        n_hits = len(ids)
        if len(both):
            # The target's crossing of those rays in the same regula falsi calls (rows after
            # the n_hits first).
            th = _regula_falsi(sample, torch.cat([ids, ids.index_select(0, both)]),
                               torch.cat([lo, lo.index_select(0, both)]),
                               torch.cat([hi, hi.index_select(0, both)]),
                               torch.cat([vlo, vlo.index_select(1, both)], 1),
                               torch.cat([vhi, vhi.index_select(1, both)], 1),
                               torch.cat([ch, torch.zeros_like(both)]), refine_steps)
            th, t_target = th[:n_hits], th[n_hits:]
            first = t_target < th.index_select(0, both)
            ch.index_copy_(0, both, torch.where(first, 0, ch.index_select(0, both)))
            th.index_copy_(0, both, torch.where(first, t_target, th.index_select(0, both)))
        else:
            th = _regula_falsi(sample, ids, lo, hi, vlo, vhi, ch, refine_steps)
        depth.index_copy_(0, ids, th)
        kind.index_copy_(0, ids, (ch + HIT_TARGET).to(torch.uint8))  # 0 -> target, 1 -> blocker
        # The other channel at the hit point completes its minimum before the hit (and the
        # hit channel's value there is the penetration's first sample below).
        l_start, l_dir = i0.index_select(1, ids), di.index_select(1, ids)
        v_hit = tf.sample(torch.addcmul(l_start, l_dir, th))
        min_before.index_copy_(1, ids, torch.minimum(min_before.index_select(1, ids), v_hit))
        # --- phase 2: penetration into the hit structure over ``cap`` mm --------------------
        # Only a sign and a rough size are needed here (margins near edges come from missed
        # structures or are repaired in the image), so full distance steps. The state of the
        # rays still inside is compacted as they leave.
        deepest = torch.zeros(len(ids), dtype=f32, device=dev)
        live = torch.arange(len(ids), device=dev)  # positions in the hit arrays
        l_ch, l_th, l_t = ch[None], th, th
        l_deep = torch.zeros(len(ids), dtype=f32, device=dev)
        for it in range(max_iterations):
            if len(live) == 0:
                break
            v = (v_hit if it == 0 else tf.sample(torch.addcmul(l_start, l_dir, l_t))
                 ).gather(0, l_ch)[0]
            l_deep = torch.maximum(l_deep, -v)
            l_t = l_t + (0.5 * v.abs()).clamp_(min=h_min)
            # Keep going while inside (the first sample may sit just before the crossing).
            keep = ((v <= 0) | (l_t - l_th < 2.0 * h_min)).logical_and_(l_t <= l_th + cap)
            n_keep = int(keep.count_nonzero())
            if n_keep == len(live):
                continue
            deepest.index_copy_(0, live, l_deep)
            sel = keep.nonzero().squeeze(1)
            live, l_deep, l_t, l_th = (x.index_select(0, sel) for x in (live, l_deep, l_t, l_th))
            l_start, l_dir, l_ch = (x.index_select(1, sel) for x in (l_start, l_dir, l_ch))
        deepest.index_copy_(0, live, l_deep)  # (rays still inside after max_iterations)
        pen.index_copy_(0, ids, deepest)
    # The exact part of a margin is the minimum distance to a missed structure (the blocker for
    # a target-first ray, the target otherwise): sphere-tracing samples can miss that minimum by
    # a few per cent of itself, so refine it near edges by golden-section search around the best
    # sample.
    is_target = kind == HIT_TARGET
    missed = is_target.to(torch.int64)  # channel of the missed structure (1: blocker)
    m_ex = min_before.gather(0, missed[None])[0]
    todo = ((m_ex < reach) & ((kind == 0) | (m_ex <= pen))).nonzero().squeeze(1)
    if len(todo):
        c = missed.index_select(0, todo)[None]
        m_todo = m_ex.index_select(0, todo)
        step = (relax * m_todo).clamp_(min=h_min)
        t_best = t_min.index_select(1, todo).gather(0, c)[0]
        lo_t = t_best - 1.5 * step
        d_todo = depth.index_select(0, todo)
        hi_t = torch.minimum(t_best + 1.5 * step,
                             torch.where(torch.isfinite(d_todo), d_todo, inf))
        best = _golden_min(lambda tt: sample(todo, tt).gather(0, c)[0], lo_t, hi_t,
                           golden_steps)
        refined = min_before.index_select(1, todo)
        refined.scatter_(0, c, torch.minimum(m_todo, best)[None])
        min_before.index_copy_(1, todo, refined)
    zero = torch.zeros((), dtype=f32, device=dev)
    margin = torch.where(is_target, torch.minimum(min_before[1], pen),
                         torch.where(kind == HIT_BLOCKER, -torch.minimum(pen, min_before[0]),
                                     -min_before[0]))
    # Only a ray that meets the target first is free. The target's "distance before the hit"
    # of any other ray can dip below zero: sampled at a blocker hit where the two surfaces
    # touch (target and blocker parts of one bone), or the refined minimum of a ray grazing
    # the target between two steps; such rays are edge rays (margin 0), never free.
    margin = torch.where(is_target, margin, torch.minimum(margin, zero))
    exact = torch.where(is_target, min_before[1] <= pen,
                        torch.where(kind == HIT_BLOCKER, min_before[0] <= pen, True))
    return (depth.cpu().numpy(), kind.cpu().numpy(), margin.cpu().numpy(),
            exact.cpu().numpy())


#: Rounds of the empty-space skip before the marching loop (each moves a ray through open space
#: as far as its block's lower bound allows; later rounds rarely move a ray).
SKIP_ROUNDS = 3


def _skip_open_space(skip: Any, start: Any, step_dir: Any, t: Any, t_end: Any) -> Any:
    """Depths (n,) after the marching loop's steps through open space, taken at once.

    In open space (:meth:`scene.TorchFields.skip_field`) every sample reads the clamp
    ``value`` and the loop steps exactly ``value`` mm per iteration, so ``k`` of its steps
    are ``k`` additions of ``value`` (done here one by one, so the depths are those of the
    loop), as long as they stay within the block's lower bound and at or before ``t_end``
    (the loop then samples there, as it would have). Only the depth of the minimum of the
    rays that never leave open space changes, and it is not used (their minimum is the clamp).
    """
    import torch

    bound, strides, block, value, last = skip
    scale = 1.0 / block
    for _ in range(SKIP_ROUNDS):
        q = torch.addcmul(start, step_dir, t)
        cell = torch.minimum(q.mul_(scale).floor_().clamp_(min=0.0), last).to(torch.int64)
        lb = bound.index_select(0, (cell * strides).sum(0))
        k = torch.minimum(lb, t_end - t).div_(value).floor_()
        most = int(k.max())
        if most < 1:
            break
        for j in range(most):
            t = torch.where(k > j, t + value, t)
    return t


def _regula_falsi(sample, ids, lo, hi, v_lo, v_hi, channel, steps: int):
    """Depth (m,) where each ray's channel ``channel`` (m,) crosses 0 between ``lo`` (f > 0) and
    ``hi`` (f <= 0); ``v_lo``, ``v_hi`` (2, m) are both channels' values there (tensors)."""
    import torch

    pick = channel[None]
    f_lo, f_hi = v_lo.gather(0, pick)[0], v_hi.gather(0, pick)[0]
    f_lo = torch.where(torch.isfinite(f_lo), f_lo, 1.0)
    for _ in range(steps):
        w = (f_lo / (f_lo - f_hi).clamp(min=1e-12)).clamp_(0.05, 0.95)
        mid = lo + w * (hi - lo)
        f = sample(ids, mid).gather(0, pick)[0]
        below = f <= 0
        hi = torch.where(below, mid, hi)
        f_hi = torch.where(below, f, f_hi)
        lo = torch.where(below, lo, mid)
        f_lo = torch.where(below, f_lo, f)
    w = (f_lo / (f_lo - f_hi).clamp(min=1e-12)).clamp_(0.0, 1.0)
    return lo + w * (hi - lo)


def _golden_min(f, lo, hi, steps: int):
    """Smallest value (m,) of ``f(t)`` found by golden-section search on ``[lo, hi]`` per ray
    (tensors)."""
    import torch

    g = float(np.float32((np.sqrt(5.0) - 1.0) / 2.0))
    hi = torch.maximum(hi, lo)
    a, b = lo + (1 - g) * (hi - lo), lo + g * (hi - lo)
    fa, fb = f(a), f(b)
    best = torch.minimum(fa, fb)
    for _ in range(steps):
        left = fa < fb  # the minimum lies in [lo, b]
        hi = torch.where(left, b, hi)
        lo = torch.where(left, lo, a)
        new_t = torch.where(left, lo + (1 - g) * (hi - lo), lo + g * (hi - lo))
        f_new = f(new_t)
        a, b = torch.where(left, new_t, b), torch.where(left, a, new_t)
        fa, fb = torch.where(left, f_new, fb), torch.where(left, fa, f_new)
        best = torch.minimum(best, f_new)
    return best


def _slab(origin: np.ndarray, direction: np.ndarray, lo: np.ndarray, hi: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """Parametric entry/exit (t_in, t_out) of rays ``origin + t * direction`` (N, 3) in a box."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / direction
        a = (lo - origin) * inv
        b = (hi - origin) * inv
    parallel = direction == 0
    if parallel.any():
        # A ray parallel to a slab is inside it for all t, or never.
        inside = (origin >= lo) & (origin <= hi)
        a = np.where(parallel, np.where(inside, -np.inf, np.inf), a)
        b = np.where(parallel, np.where(inside, np.inf, -np.inf), b)
    t_in = np.maximum(np.minimum(a, b).max(1), 0.0)
    t_out = np.maximum(a, b).min(1)
    return t_in, t_out
