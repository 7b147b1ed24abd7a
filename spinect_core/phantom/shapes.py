"""Signed-distance primitives and operators for the phantom.

Every function works on three coordinate arrays ``x, y, z`` of one shape (any shape; in practice
the ``(nz, ny, nx)`` sub-box of the scanner grid that a part occupies), in millimetres, float64,
and returns a signed distance array of the same shape: negative inside, positive outside, zero on
the surface. Several primitives are *approximate* distances (ellipsoids, superellipses, smooth
blends); they are exact on the zero level set and close to metric within a few millimetres of it,
which is all the renderer needs: it normalises by the numerical gradient for partial volume and
only offsets surfaces by 1-3 mm (cortical shells, clearances).

Frames: a :class:`Frame` maps local coordinates to its parent (the patient frame, LPS-like:
x = left, y = posterior, z = superior). Its rotation's *columns* are the local axes expressed in
the parent, the same convention as :attr:`spinect_core.volume.Volume.direction`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]

#: Value standing for "far outside" where a primitive is not evaluated.
FAR_MM = 1.0e4


# --- frames -------------------------------------------------------------------------------------
def rot_x(angle_deg: float) -> np.ndarray:
    """Rotation about x; a positive angle turns +z towards -y (anterior in LPS)."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle_deg: float) -> np.ndarray:
    """Rotation about y; a positive angle turns +z towards +x."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle_deg: float) -> np.ndarray:
    """Rotation about z; a positive angle turns +x towards +y."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Frame:
    """Rigid frame: ``parent = R @ local + t``.

    Attributes
    ----------
    R : ndarray, shape (3, 3)
        Columns are the local x, y, z axes in parent coordinates.
    t : ndarray, shape (3,)
        Local origin in parent coordinates, mm.
    """

    R: np.ndarray
    t: np.ndarray

    def to_local(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Arrays:
        """Local coordinates of parent points given as three arrays."""
        dx, dy, dz = x - self.t[0], y - self.t[1], z - self.t[2]
        R = self.R
        return (R[0, 0] * dx + R[1, 0] * dy + R[2, 0] * dz,
                R[0, 1] * dx + R[1, 1] * dy + R[2, 1] * dz,
                R[0, 2] * dx + R[1, 2] * dy + R[2, 2] * dz)

    def point(self, local_xyz) -> np.ndarray:
        """Parent coordinates of one local point ``(3,)``."""
        return self.R @ np.asarray(local_xyz, dtype=np.float64) + self.t

    def vector(self, local_xyz) -> np.ndarray:
        """Parent components of one local direction ``(3,)``."""
        return self.R @ np.asarray(local_xyz, dtype=np.float64)

    def compose(self, child: "Frame") -> "Frame":
        """The frame of ``child`` (given in this frame) expressed in this frame's parent."""
        return Frame(self.R @ child.R, self.R @ child.t + self.t)


# --- operators ----------------------------------------------------------------------------------
def smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (smooth union) with blend width ``k`` mm; ``k=0`` is ``min``."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def smax(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth maximum (smooth intersection); ``smax(a, -b)`` is a smooth subtraction."""
    return -smin(-a, -b, k)


def union(ds: list[np.ndarray], k: float = 0.0) -> np.ndarray:
    """(Smooth) union of several distance arrays, folded left to right (order fixed)."""
    out = ds[0]
    for d in ds[1:]:
        out = smin(out, d, k)
    return out


# --- primitives ---------------------------------------------------------------------------------
def sd_ellipsoid(x, y, z, radii) -> np.ndarray:
    """Approximate distance to an axis-aligned ellipsoid centred at the origin.

    Uses ``k0 (k0 - 1) / k1`` with ``k0 = |p / r|`` and ``k1 = |p / r^2|``: exact on the surface,
    a good metric estimate near it (Quilez). ``radii`` = semi-axes (mm) along x, y, z.
    """
    rx, ry, rz = (float(r) for r in radii)
    k0 = np.sqrt((x / rx) ** 2 + (y / ry) ** 2 + (z / rz) ** 2)
    k1 = np.sqrt((x / rx ** 2) ** 2 + (y / ry ** 2) ** 2 + (z / rz ** 2) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def sd_ellipse2(x, y, ax: float | np.ndarray, ay: float | np.ndarray) -> np.ndarray:
    """Approximate distance to the ellipse ``(x/ax)^2 + (y/ay)^2 = 1`` (2D, extruded)."""
    k0 = np.sqrt((x / ax) ** 2 + (y / ay) ** 2)
    k1 = np.sqrt((x / ax ** 2) ** 2 + (y / ay ** 2) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def sd_superellipse2(x, y, ax, ay, n: float) -> np.ndarray:
    """Approximate distance to ``|x/ax|^n + |y/ay|^n = 1`` (2D), first order ``(F - 1)/|grad F|``.

    ``F`` is the degree-1 homogeneous gauge of the superellipse, so the estimate is exact on the
    curve and metric to first order near it. ``n > 2`` gives boxier, ``n = 2`` elliptic shapes.
    """
    u = np.abs(x) / ax + 1e-12
    v = np.abs(y) / ay + 1e-12
    s = u ** n + v ** n
    F = s ** (1.0 / n)
    common = s ** (1.0 / n - 1.0)
    gx = common * u ** (n - 1.0) / ax
    gy = common * v ** (n - 1.0) / ay
    return (F - 1.0) / np.maximum(np.sqrt(gx * gx + gy * gy), 1e-9)


def sd_round_box(x, y, z, half, radius: float = 0.0) -> np.ndarray:
    """Exact distance to an axis-aligned box of half-sizes ``half`` rounded by ``radius`` mm."""
    hx, hy, hz = (float(h) - radius for h in half)
    qx, qy, qz = np.abs(x) - hx, np.abs(y) - hy, np.abs(z) - hz
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
    inside = np.minimum(np.maximum(qx, np.maximum(qy, qz)), 0.0)
    return outside + inside - radius


def sd_capsule(x, y, z, a, b, ra: float, rb: float | None = None) -> np.ndarray:
    """Distance to a capsule (segment ``a``-``b`` swept by a sphere), radius linear from ra to rb.

    For a tapered capsule the result is approximate (radius interpolated at the closest point).
    """
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    rb = ra if rb is None else rb
    ab = b - a
    L2 = float(ab @ ab)
    px, py, pz = x - a[0], y - a[1], z - a[2]
    t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) / L2, 0.0, 1.0)
    qx, qy, qz = px - t * ab[0], py - t * ab[1], pz - t * ab[2]
    return np.sqrt(qx * qx + qy * qy + qz * qz) - (ra + t * (rb - ra))


def sd_halfspace(x, y, z, point, normal) -> np.ndarray:
    """Signed distance to the plane through ``point`` with unit ``normal`` (outside = +normal)."""
    n = np.asarray(normal, float)
    n = n / np.linalg.norm(n)
    p = np.asarray(point, float)
    return (x - p[0]) * n[0] + (y - p[1]) * n[1] + (z - p[2]) * n[2]


def _densify(points: np.ndarray, values: list[np.ndarray], step_mm: float = 0.5):
    """Insert vertices so that no segment is longer than ``step_mm`` (values interpolated)."""
    P = np.asarray(points, float)
    out_p, out_v = [P[:1]], [[np.asarray(v, float)[:1]] for v in values]
    for i in range(len(P) - 1):
        n = max(1, int(np.ceil(np.linalg.norm(P[i + 1] - P[i]) / step_mm)))
        t = np.arange(1, n + 1)[:, None] / n
        out_p.append(P[i] + t * (P[i + 1] - P[i]))
        for k, v in enumerate(values):
            v = np.asarray(v, float)
            out_v[k].append(v[i] + t[:, 0] * (v[i + 1] - v[i]))
    return np.vstack(out_p), [np.concatenate(v) for v in out_v]


def _nearest_segments(x, y, z, points: np.ndarray, reach: float):
    """Nearest polyline vertex of every point within ``reach`` mm (KD-tree, deterministic).

    Returns the points ``Q`` (n, 3), vertex indices and a mask of points farther than
    ``reach`` (their index is 0 and their distance must be treated as "far").
    """
    from scipy.spatial import cKDTree

    Q = np.stack([np.ravel(x), np.ravel(y), np.ravel(z)], axis=1)
    dist, idx = cKDTree(points).query(Q, k=1, workers=1, distance_upper_bound=reach)
    far = ~np.isfinite(dist)
    idx = np.where(far, 0, idx)
    return Q, idx, far


def _segment_terms(Q, a, b):
    ab = b - a
    L2 = np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12)
    pa = Q - a
    t = np.clip(np.einsum("ij,ij->i", pa, ab) / L2, 0.0, 1.0)
    q = pa - t[:, None] * ab
    return t, q


def sd_tube(x, y, z, points: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Distance to a tube of varying radius along a polyline (union of tapered capsules).

    The polyline is densified to 0.5 mm and the nearest vertex of every query point is found
    with a KD-tree; the exact capsule distance to the two segments sharing that vertex is then
    taken. This is exact wherever the tube's radius is smaller than its radius of curvature
    (true for roots and muscles) and costs O(N log M) instead of O(N M).

    Parameters
    ----------
    points : ndarray, shape (m, 3)
        Polyline vertices, mm.
    radii : ndarray, shape (m,)
        Radius at each vertex, mm; linear in between.
    """
    P, (Rv,) = _densify(points, [radii])
    reach = float(Rv.max()) + 10.0
    Q, idx, far = _nearest_segments(x, y, z, P, reach)
    out = np.full(len(Q), FAR_MM)
    for i0 in (np.maximum(idx - 1, 0), idx):
        i1 = np.minimum(i0 + 1, len(P) - 1)
        t, q = _segment_terms(Q, P[i0], P[i1])
        d = np.sqrt(np.einsum("ij,ij->i", q, q)) - (Rv[i0] + t * (Rv[i1] - Rv[i0]))
        np.minimum(out, d, out=out)
    # Points beyond the reach: a lower bound of their distance is enough (nothing is painted).
    out[far] = reach - float(Rv.max())
    return out.reshape(np.shape(x))


def sd_elliptic_tube(x, y, z, points: np.ndarray, half_widths: np.ndarray,
                     half_depths: np.ndarray, width_axis=(1.0, 0.0, 0.0)) -> np.ndarray:
    """Approximate distance to a tube of elliptic section along a polyline, capped at both ends.

    The section at the closest point of the polyline is an ellipse with semi-axes
    ``half_widths`` (along ``width_axis`` made normal to the local tangent; the patient x axis
    for the dural sac) and ``half_depths`` (the third axis), interpolated along the line.
    """
    P, (HW, HD) = _densify(points, [half_widths, half_depths])
    rmax = float(max(np.max(HW), np.max(HD)))
    reach = rmax + 10.0
    Q, idx, far = _nearest_segments(x, y, z, P, reach)
    n = len(P)
    # Use the segment leaving the nearest vertex, or the arriving one at the last vertex.
    i0 = np.minimum(idx, n - 2)
    i0 = np.where((idx > 0) & (idx == n - 1), n - 2, i0)
    a, b = P[i0], P[i0 + 1]
    t, q = _segment_terms(Q, a, b)
    T = b - a
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    w_axis = np.asarray(width_axis, float)
    ex = w_axis[None, :] - (T @ w_axis)[:, None] * T
    ex /= np.linalg.norm(ex, axis=1, keepdims=True)
    ey = np.cross(T, ex)
    u = np.einsum("ij,ij->i", q, ex)
    v = np.einsum("ij,ij->i", q, ey)
    hw = HW[i0] + t * (HW[i0 + 1] - HW[i0])
    hd = HD[i0] + t * (HD[i0 + 1] - HD[i0])
    d = sd_ellipse2(u, v, hw, hd)
    # Caps: beyond the first / last vertex the along-axis excess bounds the distance.
    s0 = np.einsum("ij,j->i", Q - P[0], (P[1] - P[0]) / np.linalg.norm(P[1] - P[0]))
    s1 = np.einsum("ij,j->i", Q - P[-1], (P[-1] - P[-2]) / np.linalg.norm(P[-1] - P[-2]))
    d = np.maximum(d, np.maximum(-s0, s1))
    d[far] = reach - rmax
    return d.reshape(np.shape(x))


# --- curves -------------------------------------------------------------------------------------
def catmull_rom(points: np.ndarray, samples_per_segment: int = 8) -> np.ndarray:
    """Centripetal-free (uniform) Catmull-Rom spline through ``points`` (m, 3) -> (k, 3).

    The ends are extended by reflection so the curve passes through the first and last points.
    """
    P = np.asarray(points, float)
    ext = np.vstack([2 * P[0] - P[1], P, 2 * P[-1] - P[-2]])
    out = []
    ts = np.linspace(0.0, 1.0, samples_per_segment, endpoint=False)[:, None]
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * ts + (2 * p0 - 5 * p1 + 4 * p2 - p3) * ts ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * ts ** 3))
    out.append(P[-1:])
    return np.vstack(out)


def resample_values(points_src: np.ndarray, values: np.ndarray, points_dst: np.ndarray) -> np.ndarray:
    """Interpolate per-vertex ``values`` of a coarse polyline onto a dense one by arc length."""
    def arc(p: np.ndarray) -> np.ndarray:
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
        return s / s[-1]
    return np.interp(arc(points_dst), arc(points_src), np.asarray(values, float))


# --- fast evaluation on sub-boxes of a grid (patient-like torso, ``torso.py``) ---------------------
def index_affine(x, y, z) -> tuple[np.ndarray, np.ndarray] | None:
    """``(origin, A)`` with ``(x, y, z)[k, j, i] = origin + A @ (k, j, i)``, or None.

    The renderer hands every part full 3D coordinate arrays that are an affine function of the
    array index (a rotated, scaled grid); this recovers that map so a primitive can evaluate
    itself only on the sub-box where it can be near. ``None`` when the arrays are not 3D, have
    an axis of length 1 or are not affine (callers then evaluate everywhere).
    """
    if np.ndim(x) != 3 or np.shape(x) != np.shape(y) or np.shape(x) != np.shape(z):
        return None
    if min(np.shape(x)) < 2:
        return None
    o = np.array([x[0, 0, 0], y[0, 0, 0], z[0, 0, 0]], dtype=np.float64)
    A = np.empty((3, 3))
    for ax in range(3):
        idx = [0, 0, 0]
        idx[ax] = 1
        t = tuple(idx)
        A[:, ax] = np.array([x[t], y[t], z[t]], dtype=np.float64) - o
    n = np.array(np.shape(x), dtype=np.float64) - 1.0
    far = np.array([x[-1, -1, -1], y[-1, -1, -1], z[-1, -1, -1]], dtype=np.float64)
    if not np.allclose(o + A @ n, far, atol=1e-4 * (1.0 + float(np.abs(far).max()))):
        return None
    if abs(float(np.linalg.det(A))) < 1e-12:
        return None
    return o, A


def box_slices(affine, shape, lo, hi) -> tuple[slice, slice, slice] | None:
    """Index slices of an array (``affine`` from :func:`index_affine`) covering the box lo..hi.

    Returns None when the box misses the array.
    """
    o, A = affine
    lo = np.asarray(lo, float)
    hi = np.asarray(hi, float)
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                        for c in (lo[2], hi[2])])
    idx = np.linalg.solve(A, (corners - o).T).T
    i0 = np.maximum(np.floor(idx.min(axis=0)).astype(int) - 1, 0)
    i1 = np.minimum(np.ceil(idx.max(axis=0)).astype(int) + 2, np.asarray(shape))
    if np.any(i1 <= i0):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(i0, i1))


def eval_in_box(fn, x, y, z, lo, hi, outside: float) -> dict:
    """Evaluate ``fn(x, y, z) -> {key: distance}`` only on the sub-box lo..hi (patient mm).

    Elsewhere every key holds ``outside`` (a lower bound of the distance there, mm). Falls back
    to evaluating everywhere when the arrays are not an affine grid.
    """
    aff = index_affine(x, y, z)
    if aff is None:
        return fn(x, y, z)
    sl = box_slices(aff, np.shape(x), lo, hi)
    if sl is None:
        return {"__empty__": None}
    inner = fn(x[sl], y[sl], z[sl])
    out = {}
    for k, v in inner.items():
        full = np.full(np.shape(x), outside, dtype=np.asarray(v).dtype)
        full[sl] = v
        out[k] = full
    return out


def _pieces(n_seg: int, per_piece: int):
    for i0 in range(0, n_seg, per_piece):
        yield i0, min(i0 + per_piece, n_seg)


def _grid_extent(aff, shape) -> tuple[np.ndarray, np.ndarray]:
    """Patient-frame box of an affine grid of ``shape`` (``aff`` from :func:`index_affine`)."""
    o, A = aff
    n = np.asarray(shape, float) - 1.0
    corners = np.array([[a, b, c] for a in (0.0, n[0]) for b in (0.0, n[1]) for c in (0.0, n[2])])
    P = o + corners @ A.T
    return P.min(axis=0), P.max(axis=0)


def _live_pieces(P: np.ndarray, reach: np.ndarray, per_piece: int, aff, shape):
    """Pieces ``(i0, i1, sl)`` of a polyline whose reach boxes meet the grid: segment range and
    the index box ``sl`` of the grid it can reach (the whole grid when ``aff`` is None, i.e. the
    coordinates are not a regular grid)."""
    out = []
    ext = _grid_extent(aff, shape) if aff is not None else None
    for i0, i1 in _pieces(len(P) - 1, per_piece):
        seg = P[i0:i1 + 1]
        r = float(reach[i0:i1 + 1].max())
        lo, hi = seg.min(axis=0) - r, seg.max(axis=0) + r
        if ext is not None and (np.any(lo > ext[1]) or np.any(hi < ext[0])):
            continue
        if aff is None:
            sl = (slice(None),) * len(shape)
        else:
            sl = box_slices(aff, shape, lo, hi)
            if sl is None:
                continue
        out.append((i0, i1, sl))
    return out


def sd_tube_fast(x, y, z, points: np.ndarray, radii, *, step_mm: float = 2.0,
                 per_piece: int = 8, margin_mm: float = 8.0) -> np.ndarray:
    """Distance to a tube of varying radius along a polyline, evaluated piece by piece.

    Same shape as :func:`sd_tube` (union of tapered capsules) but the polyline is cut into
    pieces of ``per_piece`` segments of about ``step_mm`` and each piece is evaluated (brute
    force) only on the sub-box of the grid it can reach. The result is exact within
    ``margin_mm`` of the surface and ``margin_mm`` (a lower bound) farther out. Used for long
    structures (vessels, ribs, colon) whose bounding box is mostly empty.
    """
    radii = np.broadcast_to(np.asarray(radii, float), (len(points),))
    P, (Rv,) = _densify(np.asarray(points, float), [radii], step_mm)
    shape = np.shape(x)
    out = np.full(shape, margin_mm, dtype=np.float64)
    aff = index_affine(x, y, z)
    for i0, i1, sl in _live_pieces(P, Rv + margin_mm, per_piece, aff, shape):
        xs, ys, zs = x[sl], y[sl], z[sl]
        best = out[sl]
        for i in range(i0, i1):
            a, b = P[i], P[i + 1]
            ab = b - a
            L2 = max(float(ab @ ab), 1e-12)
            px, py, pz = xs - a[0], ys - a[1], zs - a[2]
            t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2]) * (1.0 / L2), 0.0, 1.0)
            qx, qy, qz = px - t * ab[0], py - t * ab[1], pz - t * ab[2]
            d = np.sqrt(qx * qx + qy * qy + qz * qz) - (Rv[i] + t * (Rv[i + 1] - Rv[i]))
            np.minimum(best, d, out=best)
        out[sl] = best
    return out


def sd_elliptic_tube_fast(x, y, z, points: np.ndarray, half_widths, half_depths, *,
                          width_axis=(1.0, 0.0, 0.0), step_mm: float = 2.0,
                          per_piece: int = 8, margin_mm: float = 8.0) -> np.ndarray:
    """Tube of elliptic section along a polyline (like :func:`sd_elliptic_tube`), piecewise.

    Each segment is an elliptic prism (semi-axes interpolated along it and clamped beyond its
    ends, width along ``width_axis`` made normal to the segment) extended by half a segment at
    inner joints so bends leave no gaps, capped flat at the two ends of the polyline; the union
    is evaluated per piece on its sub-box as in :func:`sd_tube_fast`.
    """
    n0 = len(points)
    hw0 = np.broadcast_to(np.asarray(half_widths, float), (n0,))
    hd0 = np.broadcast_to(np.asarray(half_depths, float), (n0,))
    P, (HW, HD) = _densify(np.asarray(points, float), [hw0, hd0], step_mm)
    shape = np.shape(x)
    out = np.full(shape, margin_mm, dtype=np.float64)
    aff = index_affine(x, y, z)
    w_axis = np.asarray(width_axis, float)
    n_seg = len(P) - 1
    for i0, i1, sl in _live_pieces(P, np.maximum(HW, HD) + margin_mm, per_piece, aff, shape):
        xs, ys, zs = x[sl], y[sl], z[sl]
        best = out[sl]
        for i in range(i0, i1):
            a, b = P[i], P[i + 1]
            ab = b - a
            L = max(float(np.linalg.norm(ab)), 1e-9)
            T = ab / L
            ex = w_axis - (T @ w_axis) * T
            ex /= np.linalg.norm(ex)
            ey = np.cross(T, ex)
            px, py, pz = xs - a[0], ys - a[1], zs - a[2]
            s = px * T[0] + py * T[1] + pz * T[2]
            t = np.clip(s * (1.0 / L), 0.0, 1.0)
            u = px * ex[0] + py * ex[1] + pz * ex[2]
            v = px * ey[0] + py * ey[1] + pz * ey[2]
            d = sd_ellipse2(u, v, HW[i] + t * (HW[i + 1] - HW[i]), HD[i] + t * (HD[i + 1] - HD[i]))
            # Beyond a segment's (extended) ends its prism is cut off; the two ends of the
            # polyline are flat caps that also bound the distance inside.
            if i == 0:
                d = np.maximum(d, -s)
            else:
                beyond = -s - 0.5 * L
                d = np.where(beyond > 0, np.maximum(d, beyond), d)
            if i == n_seg - 1:
                d = np.maximum(d, s - L)
            else:
                beyond = s - 1.5 * L
                d = np.where(beyond > 0, np.maximum(d, beyond), d)
            np.minimum(best, d, out=best)
        out[sl] = best
    # Flat caps at both ends bound the distance of every point (the extended inner prisms
    # would otherwise poke through them); the polyline must not turn by 90 degrees or more.
    for p0, p1, sign in ((P[0], P[1], -1.0), (P[-1], P[-2], -1.0)):
        T = (p1 - p0) / max(float(np.linalg.norm(p1 - p0)), 1e-9)
        cap = sign * ((x - p0[0]) * T[0] + (y - p0[1]) * T[1] + (z - p0[2]) * T[2])
        np.maximum(out, cap, out=out)
    return out


def _separable_lerp(C: np.ndarray, frac: list[np.ndarray]) -> np.ndarray:
    """Linear interpolation of a 3D array at a tensor grid of fractional indices (clamped)."""
    out = C
    for axis in (0, 1, 2):
        f = frac[axis]
        m = out.shape[axis]
        i0 = np.clip(np.floor(f).astype(np.int64), 0, m - 2)
        w = np.clip(f - i0, 0.0, 1.0).astype(np.float32)
        shape = [1, 1, 1]
        shape[axis] = len(f)
        w = w.reshape(shape)
        out = np.take(out, i0, axis=axis) * (1.0 - w) + np.take(out, i0 + 1, axis=axis) * w
    return out


class CoarseFields:
    """Evaluate a smooth field function on a coarse grid and interpolate it linearly.

    For soft tissue of patient-like phantoms (labels 0), whose surfaces are smooth on the scale
    of ``step_mm`` (the linear-interpolation error of a distance is about ``step**2 / (8 R)``
    for a surface of radius ``R``: 0.01 mm for the body outline at 3 mm). The coarse lattice is
    aligned with the axes of the grid that calls it (read from the coordinate arrays, see
    :func:`index_affine`), so interpolation is separable and costs a few operations per voxel;
    its origin is fixed by the box ``lo..hi`` (patient mm), so a voxel's value does not depend
    on how the caller cuts the grid into chunks. Only the lattice nodes around the requested
    chunk are evaluated. Falls back to ``fn`` for arrays that are not an affine grid or whose
    spacing is not much finer than ``step_mm``.
    """

    def __init__(self, fn, lo, hi, step_mm: float = 3.0) -> None:
        self.fn = fn
        self.lo = np.asarray(lo, float)
        self.hi = np.asarray(hi, float)
        self.step = float(step_mm)

    def __call__(self, x, y, z) -> dict:
        aff = index_affine(x, y, z)
        if aff is None:
            return self.fn(x, y, z)
        o, A = aff
        norms = np.linalg.norm(A, axis=0)
        # The calling grid is coarse already (the spacing is rounded so that every chunk of a
        # grid takes the same branch).
        if np.round(norms.min(), 4) >= 0.75 * self.step:
            return self.fn(x, y, z)
        Rg = A / norms                        # unit axes (patient frame) of the k, j, i indices
        lo, hi = self.lo, self.hi
        corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                            for c in (lo[2], hi[2])])
        q0 = np.floor((corners @ Rg).min(axis=0) / self.step) * self.step - self.step
        n = np.shape(x)
        qo = o @ Rg                           # lattice coordinates of voxel (0, 0, 0)
        first = (qo - q0) / self.step
        last = (qo + norms * (np.asarray(n) - 1) - q0) / self.step
        m_lo = np.floor(np.minimum(first, last)).astype(int) - 1
        m_hi = np.ceil(np.maximum(first, last)).astype(int) + 2
        axes = [q0[a] + self.step * np.arange(m_lo[a], m_hi[a]) for a in range(3)]
        qk, qj, qi = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
        X = Rg[0, 0] * qk + Rg[0, 1] * qj + Rg[0, 2] * qi
        Y = Rg[1, 0] * qk + Rg[1, 1] * qj + Rg[1, 2] * qi
        Z = Rg[2, 0] * qk + Rg[2, 1] * qj + Rg[2, 2] * qi
        coarse = self.fn(X, Y, Z)
        frac = [(qo[a] + norms[a] * np.arange(n[a]) - q0[a]) / self.step - m_lo[a]
                for a in range(3)]
        return {k: _separable_lerp(np.asarray(C, np.float32), frac) for k, C in coarse.items()}
