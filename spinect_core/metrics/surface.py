"""Surface-distance metrics of one class: 95th-percentile Hausdorff distance and surface Dice.

Definitions follow MONAI (``compute_hausdorff_distance``, ``compute_surface_dice`` without
sub-voxel surfaces), which follow DeepMind's surface-distance package at voxel level:

* **surface voxels** of a mask = mask voxels with at least one 6-connected neighbour outside it
  (``mask XOR binary_erosion(mask)``; the array border counts as outside).
* **directed distances** P -> G = for every surface voxel of P, the Euclidean distance in mm
  (voxel centres scaled by the spacing) to the nearest surface voxel of G, computed with
  ``scipy.ndimage.distance_transform_edt(~surface_G, sampling=spacing_zyx)``.
* **HD95** (symmetric) = max(95th percentile of P -> G, 95th percentile of G -> P), percentiles
  with linear interpolation (numpy's and torch's default). This is MONAI's definition; the
  DeepMind package instead weights each surface element by its area, which changes values by a
  fraction of a voxel on anisotropic grids.
* **surface Dice at tolerance t** (Nikolov et al. 2021) = (number of P-surface voxels within t of
  G's surface + number of G-surface voxels within t of P's surface) / (total surface voxels of P
  and G). Voxel counts, not surfel areas (MONAI's ``use_subvoxels=False``).

Empty masks (documented choice): both empty -> HD95 = 0.0 mm and surface Dice = 1.0 (perfect
agreement; MONAI returns NaN for both); exactly one empty -> HD95 = inf (``null`` in JSON) and
surface Dice = 0.0 (MONAI: inf and 0.0).

Spacing here is in **(z, y, x)** order, matching the array axes; a :class:`Volume`'s
``spacing_mm`` is (x, y, z), so pass ``volume.spacing_mm[::-1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["SurfaceDistances", "surface_voxels", "surface_distances", "hausdorff_distance",
           "surface_dice"]


def _bbox_union(a: np.ndarray, b: np.ndarray, margin: int = 1) -> tuple[slice, ...]:
    """Slices of the bounding box of ``a | b`` grown by ``margin`` (clipped at the array)."""
    both = a | b
    out = []
    for axis in range(both.ndim):
        other = tuple(i for i in range(both.ndim) if i != axis)
        idx = np.flatnonzero(both.any(axis=other))
        out.append(slice(max(0, idx[0] - margin), min(both.shape[axis], idx[-1] + 1 + margin)))
    return tuple(out)


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """Boolean (z, y, x) mask of the surface voxels of ``mask`` (6-connectivity, border = outside)."""
    from scipy import ndimage

    m = np.asarray(mask, dtype=bool)
    # scipy's default structuring element is the 6-neighbourhood cross; border_value=0 makes
    # voxels on the array border surface voxels, as in MONAI and DeepMind's package.
    return m & ~ndimage.binary_erosion(m, border_value=0)


@dataclass(frozen=True)
class SurfaceDistances:
    """Directed surface distances of one class, millimetres.

    Attributes
    ----------
    pred_to_gt : np.ndarray, shape (n_pred_surface,)
        For every surface voxel of the prediction, the distance to the ground truth's surface.
    gt_to_pred : np.ndarray, shape (n_gt_surface,)
    """

    pred_to_gt: np.ndarray
    gt_to_pred: np.ndarray

    def hausdorff(self, percentile: float = 95.0) -> float:
        """Symmetric percentile Hausdorff distance (max of the two directed percentiles), mm."""
        n_p, n_g = self.pred_to_gt.size, self.gt_to_pred.size
        if n_p == 0 and n_g == 0:
            return 0.0
        if n_p == 0 or n_g == 0:
            return float("inf")
        return float(max(np.percentile(self.pred_to_gt, percentile),
                         np.percentile(self.gt_to_pred, percentile)))

    def surface_dice(self, tolerance_mm: float = 1.0) -> float:
        """Fraction of both surfaces within ``tolerance_mm`` of the other surface."""
        total = self.pred_to_gt.size + self.gt_to_pred.size
        if total == 0:
            return 1.0
        good = np.count_nonzero(self.pred_to_gt <= tolerance_mm) + \
            np.count_nonzero(self.gt_to_pred <= tolerance_mm)
        return float(good) / total


def surface_distances(pred: np.ndarray, gt: np.ndarray,
                      spacing_zyx_mm: Sequence[float] | np.ndarray) -> SurfaceDistances:
    """Directed distances between the surfaces of two binary masks.

    Parameters
    ----------
    pred, gt : np.ndarray of bool, shape (z, y, x)
    spacing_zyx_mm : sequence of 3 floats
        Voxel size along z, y, x in millimetres (note the order: array axes).

    Returns
    -------
    SurfaceDistances
        One-sided distance arrays are empty when that mask is empty; when only the other mask is
        empty they are ``inf``.
    """
    from scipy import ndimage

    p = np.asarray(pred, dtype=bool)
    g = np.asarray(gt, dtype=bool)
    if p.shape != g.shape:
        raise ValueError(f"masks differ in shape: {p.shape} vs {g.shape}")
    spacing = np.asarray(spacing_zyx_mm, dtype=np.float64).reshape(p.ndim)
    if not p.any() and not g.any():
        return SurfaceDistances(np.zeros(0), np.zeros(0))
    # Work in the bounding box of both masks (+1 voxel so erosion sees the outside): every
    # surface voxel, hence every nearest surface voxel, lies inside it, so distances are exact.
    box = _bbox_union(p, g)
    p, g = p[box], g[box]
    sp, sg = surface_voxels(p), surface_voxels(g)
    if not sp.any() or not sg.any():
        inf_p = np.full(np.count_nonzero(sp), np.inf)
        inf_g = np.full(np.count_nonzero(sg), np.inf)
        return SurfaceDistances(inf_p, inf_g)
    dist_to_g = ndimage.distance_transform_edt(~sg, sampling=spacing)
    dist_to_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return SurfaceDistances(dist_to_g[sp], dist_to_p[sg])


def hausdorff_distance(pred: np.ndarray, gt: np.ndarray, spacing_zyx_mm: Sequence[float], *,
                       percentile: float = 95.0) -> float:
    """Symmetric percentile Hausdorff distance in mm (0.0 both empty, inf one empty).

    Parameters
    ----------
    pred, gt : np.ndarray of bool, shape (z, y, x)
    spacing_zyx_mm : sequence of 3 floats
        Voxel size along z, y, x, millimetres.
    percentile : float
        95 for HD95; 100 for the classic Hausdorff distance.
    """
    return surface_distances(pred, gt, spacing_zyx_mm).hausdorff(percentile)


def surface_dice(pred: np.ndarray, gt: np.ndarray, spacing_zyx_mm: Sequence[float], *,
                 tolerance_mm: float = 1.0) -> float:
    """Normalised surface Dice at ``tolerance_mm`` (1.0 both empty, 0.0 one empty)."""
    return surface_distances(pred, gt, spacing_zyx_mm).surface_dice(tolerance_mm)
