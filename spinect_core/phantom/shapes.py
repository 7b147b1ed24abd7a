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

    @staticmethod
    def identity() -> "Frame":
        return Frame(np.eye(3), np.zeros(3))

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


def frame_from_axes(origin, z_axis, x_hint=(1.0, 0.0, 0.0)) -> Frame:
    """Frame whose z axis is ``z_axis`` and whose x axis is ``x_hint`` made orthogonal to it."""
    z = np.asarray(z_axis, float)
    z = z / np.linalg.norm(z)
    x = np.asarray(x_hint, float) - np.dot(x_hint, z) * z
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return Frame(np.column_stack([x, y, z]), np.asarray(origin, float))


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


def polyline_length(points: np.ndarray) -> float:
    """Total length of a polyline (m, 3), mm."""
    return float(np.sum(np.linalg.norm(np.diff(points, axis=0), axis=1)))


def resample_values(points_src: np.ndarray, values: np.ndarray, points_dst: np.ndarray) -> np.ndarray:
    """Interpolate per-vertex ``values`` of a coarse polyline onto a dense one by arc length."""
    def arc(p: np.ndarray) -> np.ndarray:
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
        return s / s[-1]
    return np.interp(arc(points_dst), arc(points_src), np.asarray(values, float))
