"""The L5/S1 parts on a fine grid, where a coarse label map's landmarks are measured.

The landmark definitions (:mod:`spinect_core.anatomy.landmarks`) are sizes of a few millimetres:
a ball of 8.5 mm that fits into the body but not the pedicle, a slab 1-5 mm behind the body's
wall that only the pedicle crosses, 1 mm sections along the pedicle. On a 3 mm label map each is
one or two voxels, and the staircase of the voxels moves them by a voxel: measured on 10
real-bone phantoms labelled exactly at 3 mm, the pedicle centre, its lower margin or the
foramen centre lay more than 4 mm from those of the same phantoms at 1 mm on 15 of 20 sides (up
to 14 mm). Resampled shape-wise to 1 mm (each part's indicator interpolated linearly, then the
largest taken: the parts' boundaries become smooth surfaces between the voxel centres, not 3 mm
steps), all three were within 4 mm on 17 of 20 sides (nearest-neighbour resampling: 8 of 20).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinect_core.anatomy import geometry as G
from spinect_core.anatomy.parts import PART_ID
from spinect_core.preprocess.resample import Grid, block_grid, resample_array_to_grid
from spinect_core.volume import Volume

#: The parts the landmarks are measured on (the rest counts as background there).
LANDMARK_PARTS = ("L5", "S1", "disc_L5S1")


@dataclass(frozen=True, kw_only=True)
class FineGridOptions:
    """Options of :func:`landmark_parts` (millimetres).

    Attributes
    ----------
    coarse_mm : float
        A label map with a voxel side longer than this is resampled (1-1.25 mm maps are
        measured as they are: the landmark rules were measured at 1 mm).
    spacing_mm : float
        Largest voxel side of the fine grid (an axis already finer keeps its spacing: a
        0.7 x 0.7 x 3 mm CT is measured at 0.7 x 0.7 x 1 mm).
    margin_mm : float
        The fine grid covers L5 and the L5/S1 disc with this margin: the S1 endplate, the S1
        superior articular processes and the bone under the foramina lie within it.
    """

    coarse_mm: float = 1.25
    spacing_mm: float = 1.0
    margin_mm: float = 30.0


def landmark_parts(grid: Volume, parts: np.ndarray, *, options: FineGridOptions | None = None
                   ) -> tuple[Volume, np.ndarray]:
    """The grid and parts map to measure the landmarks on.

    Parameters
    ----------
    grid : Volume
        Geometry of ``parts`` (its array is not read).
    parts : np.ndarray, uint8, shape (nz, ny, nx)
        Parts map (:data:`~spinect_core.anatomy.parts.PARTS_TABLE` ids).
    options : FineGridOptions, optional

    Returns
    -------
    fine : Volume
        ``grid`` itself when no voxel side exceeds ``coarse_mm`` (or there is no L5); else a
        box about L5 and the disc with voxel sides of at most ``spacing_mm`` (the box's
        extent divided evenly), same direction.
    fine_parts : np.ndarray, uint8, shape of ``fine``
        ``parts`` itself, or :data:`LANDMARK_PARTS` resampled shape-wise onto ``fine`` (each
        part's indicator interpolated linearly; a voxel takes the part whose share is largest,
        background included); other parts are background there.
    """
    o = options or FineGridOptions()
    spacing = np.asarray(grid.spacing_mm, float)          # (x, y, z)
    l5 = parts == PART_ID["L5"]
    if spacing.max() <= o.coarse_mm or not l5.any():
        return grid, parts
    keep = l5 | (parts == PART_ID["disc_L5S1"])
    margin = np.ceil(o.margin_mm / spacing[::-1]).astype(int)
    box = G.bbox_slices(keep, margin)
    src = block_grid(grid, box)
    # The fine box spans the same physical extent as the coarse one (voxel edges, not centres).
    fine_sp = np.minimum(spacing, o.spacing_mm)
    extent = np.array(src.shape_zyx[::-1], float) * spacing                 # (x, y, z)
    n_xyz = np.maximum(np.round(extent / fine_sp).astype(int), 1)
    fine_sp = extent / n_xyz
    start = src.index_to_lps(np.full(3, -0.5)) + np.asarray(src.direction, float).reshape(
        3, 3) @ (0.5 * fine_sp)
    fine_grid = Grid(shape_zyx=(int(n_xyz[2]), int(n_xyz[1]), int(n_xyz[0])),
                     spacing_mm=fine_sp, origin_lps_mm=start, direction=src.direction)
    sub = parts[box]
    best = np.zeros(fine_grid.shape_zyx, np.uint8)
    rest = np.ones(fine_grid.shape_zyx, np.float32)       # the background's share
    share = np.zeros(fine_grid.shape_zyx, np.float32)
    for name in LANDMARK_PARTS:
        mask = sub == PART_ID[name]
        if not mask.any():
            continue
        s = resample_array_to_grid(mask.astype(np.float32), src, fine_grid,
                                   interpolation="linear")
        rest -= s
        win = s > share
        best[win] = PART_ID[name]
        share[win] = s[win]
    best[rest >= share] = 0
    fine = Volume(array=best, spacing_mm=fine_grid.spacing_mm,
                  origin_lps_mm=fine_grid.origin_lps_mm, direction=fine_grid.direction)
    return fine, best
