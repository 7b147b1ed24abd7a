"""Small geometric helpers on voxel masks and LPS point clouds (no anatomy knowledge)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy import optimize
from scipy.spatial import cKDTree

from spinect_core.distance import distance_inside

# ``unit`` is the bottom layer's (raises on a zero vector, where this module's own gave NaN);
# kept importable here as ``geometry.unit`` for the anatomy modules.
from spinect_core.vectors import unit
from spinect_core.volume import Volume


def spacing_zyx(grid: Volume) -> np.ndarray:
    """Voxel size (mm) along the array axes (z, y, x), for ``scipy.ndimage`` ``sampling``."""
    return grid.spacing_mm[::-1].copy()


def voxel_points(grid: Volume, mask: np.ndarray, offset_zyx=(0, 0, 0)) -> np.ndarray:
    """LPS centres (mm) of the True voxels of ``mask``, shape (N, 3).

    ``mask`` may be a crop of ``grid``'s array starting at index ``offset_zyx``.
    """
    zz, yy, xx = np.nonzero(mask)
    idx = np.stack([xx + offset_zyx[2], yy + offset_zyx[1], zz + offset_zyx[0]], axis=-1)
    return grid.index_to_lps(idx)


def interface_points(grid: Volume, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """LPS midpoints (mm) between face-adjacent voxels of masks ``a`` and ``b``, shape (N, 3).

    The midpoints sample the surface where the two regions touch (e.g. bone under a disc) to
    within half a voxel, without the half-voxel bias of taking either side's voxel centres.
    """
    out = []
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        pair = (a[tuple(lo)] & b[tuple(hi)]) | (b[tuple(lo)] & a[tuple(hi)])
        zz, yy, xx = np.nonzero(pair)
        idx = np.stack([xx, yy, zz], axis=-1).astype(np.float64)
        idx[:, 2 - axis] += 0.5       # array axis 0 is index z (column 2 of (x, y, z))
        out.append(grid.index_to_lps(idx))
    return np.concatenate(out, axis=0) if out else np.zeros((0, 3))


def fit_plane(points: np.ndarray, *, inlier_mm: float = 2.5, iterations: int = 3
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares plane through LPS points with residual trimming.

    Returns
    -------
    centre : np.ndarray, shape (3,)
        Centroid of the inliers (a point on the plane).
    normal : np.ndarray, shape (3,)
        Unit normal (sign arbitrary).
    inliers : np.ndarray, shape (N,), bool
    """
    pts = np.asarray(points, float)
    keep = np.ones(len(pts), bool)
    for _ in range(iterations):
        c = pts[keep].mean(axis=0)
        _, _, vt = np.linalg.svd(pts[keep] - c, full_matrices=False)
        n = vt[-1]
        resid = np.abs((pts - c) @ n)
        new = resid <= inlier_mm
        if new.sum() < 10 or np.array_equal(new, keep):
            break
        keep = new
    c = pts[keep].mean(axis=0)
    _, _, vt = np.linalg.svd(pts[keep] - c, full_matrices=False)
    return c, vt[-1], keep


def principal_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centroid, standard deviations (descending) and axes (rows) of a point cloud."""
    c = points.mean(axis=0)
    _, s, vt = np.linalg.svd(points - c, full_matrices=False)
    return c, s / np.sqrt(max(len(points) - 1, 1)), vt


def orthogonal_part(v: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Unit vector of ``v`` with its component along unit ``n`` removed."""
    return unit(v - np.dot(v, n) * n)


def cross_axes(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors across each unit direction: ``t`` (N, 3) -> ``a``, ``b`` (N, 3) with
    (t, a, b) right-handed and orthonormal."""
    helper = np.where(np.abs(t[:, [0]]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    a = np.cross(t, helper)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = np.cross(t, a)
    return a, b


def disc_offsets(radius: float, step: float) -> np.ndarray:
    """(M, 2) offsets (same unit as ``radius``) of a square lattice of ``step`` centred on 0,
    within ``radius`` of it: a disc sampled across a direction (see :func:`cross_axes`)."""
    g = np.arange(-radius, radius + 1e-9, step)
    u, v = np.meshgrid(g, g, indexing="ij")
    keep = u ** 2 + v ** 2 <= radius ** 2
    return np.stack([u[keep], v[keep]], 1)


def symmetry_plane(points: np.ndarray, normal0: np.ndarray, point0: np.ndarray, *,
                   max_points: int = 3000, cap_mm: float = 6.0, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Refine a mirror plane of a point cloud by minimising the reflected-to-nearest distance.

    Parameters
    ----------
    points : np.ndarray, shape (N, 3)
        LPS points of a roughly mirror-symmetric structure (mm).
    normal0, point0 : np.ndarray, shape (3,)
        Initial plane normal (unit) and a point on it.
    max_points : int
        Points used (a fixed-seed subsample keeps it fast and deterministic).
    cap_mm : float
        Distances are capped so that asymmetric parts (a longer transverse process) do not
        dominate.

    Returns
    -------
    (normal, point) : the refined unit normal (same sign as ``normal0``) and a point on the plane.
    """
    rng = np.random.default_rng(seed)
    pts = points
    if len(points) > max_points:
        # The subsample must not depend on the order the points come in: a CT stored feet first
        # lists the same voxels in another order, and another subsample turned the mirror plane
        # of a real CT's L5/S1 by 4 degrees and moved its pedicle landmarks 1-5 mm. Sorted by
        # position first, the same points give the same subsample.
        ordered = points[np.lexsort(np.round(points, 3).T[::-1])]
        pts = ordered[rng.choice(len(points), max_points, replace=False)]
    tree = cKDTree(pts)
    n0 = unit(normal0)
    # Two tangent directions to perturb the normal.
    t1 = orthogonal_part(np.array([0.0, 0.0, 1.0]) if abs(n0[2]) < 0.9 else np.array([0.0, 1.0, 0.0]), n0)
    t2 = np.cross(n0, t1)
    d0 = float(np.dot(point0, n0))

    def plane(params):
        a, b, off = params
        n = unit(n0 + a * t1 + b * t2)
        return n, d0 + off

    def cost(params):
        n, d = plane(params)
        s = pts @ n - d
        refl = pts - 2.0 * s[:, None] * n[None, :]
        dist, _ = tree.query(refl)
        return float(np.mean(np.minimum(dist, cap_mm)))

    res = optimize.minimize(cost, np.zeros(3), method="Nelder-Mead",
                            options={"xatol": 1e-3, "fatol": 1e-4, "maxiter": 300,
                                     "initial_simplex": np.array([[0, 0, 0], [0.08, 0, 0],
                                                                  [0, 0.08, 0], [0, 0, 3.0]])})
    n, d = plane(res.x)
    return n, point0 + (d - np.dot(point0, n)) * n


def bbox_slices(mask: np.ndarray, margin_vox=(0, 0, 0)) -> tuple[slice, ...] | None:
    """Index box of the True elements of ``mask`` (any number of axes: (z, y, x) voxels, (row,
    col) pixels) grown by ``margin_vox`` (one per axis) and clipped to the array, or None if
    empty."""
    sl = ndi.find_objects(mask.astype(np.uint8))
    if not sl or sl[0] is None:
        return None
    return tuple(slice(max(s.start - int(m), 0), min(s.stop + int(m), n))
                 for s, m, n in zip(sl[0], margin_vox, mask.shape, strict=True))


def within_mm(mask: np.ndarray, radius_mm: float, sampling) -> np.ndarray:
    """The voxels within ``radius_mm`` of ``mask`` (bool, (z, y, x); its own voxels included;
    ``sampling``: voxel size (z, y, x) mm), as the whole volume's distance map thresholded but
    measured in the mask's box grown by the radius (a vertebral body's in the 260 mm box of
    the levels' pass 2: a twentieth of it)."""
    sp = np.asarray(sampling, float)
    out = np.zeros(mask.shape, bool)
    box = bbox_slices(mask, np.floor(radius_mm / sp).astype(int) + 1)
    if box is not None:
        out[box] = distance_inside(~mask[box], sp) <= radius_mm
    return out


def opening_by_distance(mask: np.ndarray, radius_mm: float, sampling: np.ndarray) -> np.ndarray:
    """Morphological opening with a Euclidean ball of ``radius_mm`` (via two distance maps).

    Keeps the parts of ``mask`` a ball of that radius fits into (vertebral bodies) and drops
    thinner ones (pedicles, processes).
    """
    if not mask.any():
        return mask.copy()
    inside = distance_inside(mask, sampling)
    core = inside >= radius_mm
    if not core.any():
        return np.zeros_like(mask)
    return within_mm(core, radius_mm, sampling) & mask
