"""A vertebral body that the bone labels joined to the one below it through a narrow bridge,
parted at the bridge's neck.

Bodies are found as the bone's cores (voxels deeper than a few millimetres inside it): a disc,
labelled or not, is not bone and cuts the column between two cores. Labels that call a strip
of a disc bone (its thin posterior wedge, partial volume at 1.5-3 mm slices) can still join two
cores through a bridge only just deeper than the core depth; slightly deeper, the two cores
stand apart. The watershed of the distance map between them then finds the bridge's narrowest
cross-section, which a cut of a few voxels removes: the cores part, nothing else of the bone
changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from spinect_core.anatomy import geometry as G
from spinect_core.distance import distance_inside
from spinect_core.volume import Volume

_FULL = np.ones((3, 3, 3), bool)


@dataclass(frozen=True)
class Neck:
    """The bridge found by :func:`top_body_neck`.

    Attributes
    ----------
    top_centre_lps : np.ndarray, shape (3,)
        Centroid (LPS mm) of the upper body's core where it stands apart.
    cut : np.ndarray, bool, the bone's shape (z, y, x)
        The voxels to remove from the bone: the neck, one voxel thick on each side.
    depth_mm : float
        The depth inside the bone (mm) at which the two cores stand apart.
    """

    top_centre_lps: np.ndarray
    cut: np.ndarray
    depth_mm: float


def top_body_neck(bone: np.ndarray, part: np.ndarray, grid: Volume, *, core_mm: float,
                  min_core_mm3: float, deeper_mm: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0),
                  margin_mm: float = 25.0) -> Neck | None:
    """The neck through which the most cranial body inside ``part`` joins the rest of it.

    ``part``'s core (bone deeper than ``core_mm``) is one piece; at ``core_mm`` plus each of
    ``deeper_mm`` in turn its cores (pieces of at least ``min_core_mm3``) are taken, and at the
    first depth with two or more, the most cranial one (by centroid) and the others seed a
    watershed of the distance map over the core. The neck is where the two regions touch.

    Parameters
    ----------
    bone : np.ndarray, bool, shape (z, y, x)
        The labels' bone (already cut where the caller cut it).
    part : np.ndarray, bool, same shape
        The body that may hold two (e.g. the part named S1).
    grid : Volume
        Geometry of both.
    core_mm, min_core_mm3 : float
        Core depth (mm) and the smallest core (mm^3), as the level count uses them.
    deeper_mm : tuple of float
        Depths beyond ``core_mm`` tried, shallowest first.
    margin_mm : float
        Bone this far around ``part`` is kept in the distance map (deeper than any core).

    Returns
    -------
    Neck or None
        None when ``part`` is empty or its core does not part into two at any depth tried.
    """
    from skimage.segmentation import watershed

    sp = G.spacing_zyx(grid)
    box = G.bbox_slices(part, np.ceil(margin_mm / sp).astype(int))
    if box is None:
        return None
    off = tuple(s.start for s in box)
    inside = part[box]
    dt = distance_inside(bone[box], sp)
    core = inside & (dt >= core_mm)
    voxel_mm3 = float(np.prod(sp))
    for extra in deeper_mm:
        lab, n = ndi.label(core & (dt >= core_mm + extra), structure=_FULL)
        if n < 2:
            continue
        sizes = np.bincount(lab.ravel()) * voxel_mm3
        pieces = [k for k in range(1, n + 1) if sizes[k] >= min_core_mm3]
        if len(pieces) < 2:
            continue
        centres = [G.voxel_points(grid, lab == k, off).mean(axis=0) for k in pieces]
        top = int(np.argmax([c[2] for c in centres]))
        seeds = np.where(lab == pieces[top], 1, np.where(np.isin(lab, pieces), 2, 0))
        # Full connectivity: two cores may touch only across a voxel's edge or corner.
        regions = watershed(-dt, seeds, mask=core, connectivity=3)
        neck = (regions == 1) & ndi.binary_dilation(regions == 2, structure=_FULL)
        if not neck.any():
            continue
        cut = np.zeros(bone.shape, bool)
        cut[box] = ndi.binary_dilation(neck, structure=_FULL) & core
        return Neck(centres[top], cut, float(core_mm + extra))
    return None
