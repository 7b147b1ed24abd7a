"""Discs that the labels bridged, found on the CT across the bone column.

A network or a threshold that calls an intervertebral disc bone joins two vertebral bodies
into one, and every count through them is off by one. The CT still shows the disc, in one of
two ways, both a band across the column that differs from the bone above and below it:

- **a dark band** (:func:`dark_bands`): a disc 4-6 mm high seen through 2-3 mm slices takes the
  endplates' density by partial volume and is labelled bone, but stays darker than the bone on
  both sides of it;
- **a bright plate** (:func:`bright_plates`): a collapsed (degenerate) disc 2-4 mm high between
  two cortical endplates is, through 3 mm slices, one plate brighter than the marrow on both
  sides of it (measured on a real-bone phantom with a 3-4 mm L5/S1 disc at 3 mm slices: 530-735
  HU between marrow at 110-160 HU, and the network and the CT bone model both called it bone).

Both are searched along the array axis that runs most cranio-caudally, only where the voxel and
the two it is compared with lie deep inside the labels' bone: a bridged disc joins two bodies
into one thick mass, while the marrow of a thin bone lies between cortices that are the bone's
own surface, and facet and sacroiliac joints run cranio-caudally.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from spinect_core.anatomy import geometry as G
from spinect_core.distance import distance_inside
from spinect_core.volume import Volume

_FULL = np.ones((3, 3, 3), bool)


def dark_bands(hu: np.ndarray, bone: np.ndarray, grid: Volume, *,
               reaches_mm: tuple[float, ...] = (3.0, 5.0, 7.0), drop_hu: float = 50.0,
               min_depth_mm: float = 4.0, min_mm3: float = 300.0) -> np.ndarray:
    """Bone-labelled voxels that are a dark band between bright bone above and below: discs
    the labels bridged.

    A bone voxel is in a band when the CT (smoothed in-plane by 0.7 mm) is at least ``drop_hu``
    darker there than at one of ``reaches_mm`` (at least one slice) both above and below it
    (measured on the real-bone phantoms at 2.5 mm slices: the CT bone model called 52 % of a
    thin L5/S1 disc bone, and the two bodies' cores merged). Marrow next to an endplate is not a
    band (only one side is brighter); bands smaller than ``min_mm3`` (trabecular texture) are
    dropped.

    Parameters
    ----------
    hu : np.ndarray, shape (z, y, x)
        The CT (HU) on ``grid``.
    bone : np.ndarray, bool, same shape
        The labels' bone.
    grid : Volume
        Geometry of both (spacing, direction).
    reaches_mm, drop_hu, min_depth_mm, min_mm3 : float
        Distances compared, the contrast, the depth inside bone and the smallest band.

    Returns
    -------
    np.ndarray, bool, same shape
    """
    return _bands(hu, bone, grid, sign=-1.0, reaches_mm=reaches_mm, contrast_hu=drop_hu,
                  min_depth_mm=min_depth_mm, min_mm3=min_mm3)


def bright_plates(hu: np.ndarray, bone: np.ndarray, grid: Volume, *,
                  reaches_mm: tuple[float, ...] = (3.0, 5.0, 7.0), rise_hu: float = 150.0,
                  min_depth_mm: float = 4.0, min_mm3: float = 300.0) -> np.ndarray:
    """Bone-labelled voxels that are a bright plate between darker bone above and below: the
    two endplates of a collapsed disc the labels bridged.

    A bone voxel is in a plate when the CT (smoothed in-plane by 0.7 mm) is at least
    ``rise_hu`` brighter there than at one of ``reaches_mm`` both above and below it. One
    endplate facing a disc is not a plate (the disc side is not deep inside bone), nor is the
    cortex of a thin bone. The plates of sacroiliac joints the labels filled are found too:
    they lie far lateral of the column, which the caller checks.

    Parameters
    ----------
    hu, bone, grid
        As :func:`dark_bands`.
    reaches_mm, rise_hu, min_depth_mm, min_mm3 : float
        Distances compared, the contrast, the depth inside bone and the smallest plate.

    Returns
    -------
    np.ndarray, bool, same shape
    """
    return _bands(hu, bone, grid, sign=1.0, reaches_mm=reaches_mm, contrast_hu=rise_hu,
                  min_depth_mm=min_depth_mm, min_mm3=min_mm3)


def across_bone(band: np.ndarray, bone: np.ndarray, grid: Volume, *, reach_mm: float = 6.0
                ) -> np.ndarray:
    """Each connected piece of ``band`` widened within its own plane by ``reach_mm``, inside
    ``bone``.

    A band is only found deep inside bone (``min_depth_mm``): the rim of the body around it
    still joins the bone above to the bone below, and a cut of the labels' bone along it must
    reach the body's surface to part the two bodies. The widening keeps to the piece's plane
    (its least principal axis is the normal; its thickness along the normal, at least half the
    largest voxel side, is kept, plus half that side): a disc tilted 40 degrees with the
    sacrum, widened in the axial plane instead, cut 15 mm of the vertebral body above it at
    3 mm slices.

    Parameters
    ----------
    band, bone : np.ndarray, bool, shape (z, y, x)
    grid : Volume
        Their geometry (spacing, direction).
    reach_mm : float

    Returns
    -------
    np.ndarray, bool, same shape
    """
    sp = G.spacing_zyx(grid)
    half = np.ceil(reach_mm / sp).astype(int)
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    ball = sum((g * s) ** 2 for g, s in zip(grids, sp)) <= reach_mm ** 2
    voxel = float(sp.max())
    out = band.copy()
    lab, _ = ndi.label(band, structure=_FULL)
    for k, box in enumerate(ndi.find_objects(lab), start=1):
        if box is None:
            continue
        box = tuple(slice(max(b.start - h, 0), min(b.stop + h, size))
                    for b, h, size in zip(box, half, band.shape))
        piece = lab[box] == k
        idx = np.argwhere(piece) * sp                      # (m, 3) mm, (z, y, x)
        centre = idx.mean(axis=0)
        normal = np.linalg.svd(idx - centre, full_matrices=False)[2][-1]
        # Its half-thickness along the normal, plus half a voxel: a disc is not quite flat.
        thick = max(float(np.abs((idx - centre) @ normal).max()), 0.5 * voxel) + 0.5 * voxel
        zyx = np.indices(piece.shape).reshape(3, -1).T * sp
        in_plane = (np.abs((zyx - centre) @ normal) <= thick).reshape(piece.shape)
        out[box] |= ndi.binary_dilation(piece, structure=ball) & in_plane & bone[box]
    return out


def _bands(hu: np.ndarray, bone: np.ndarray, grid: Volume, *, sign: float,
           reaches_mm: tuple[float, ...], contrast_hu: float, min_depth_mm: float,
           min_mm3: float) -> np.ndarray:
    """Deep bone voxels at least ``contrast_hu`` darker (``sign`` -1) or brighter (+1) than the
    CT both above and below them; connected pieces of at least ``min_mm3``."""
    out = np.zeros(bone.shape, bool)
    box = G.bbox_slices(bone, np.zeros(3, int))
    if box is None:
        return out
    sp = G.spacing_zyx(grid)
    axis = grid.cranio_caudal_axis_zyx
    sub_bone = bone[box]
    sigma = np.where(np.arange(3) == axis, 0.0, 0.7 / sp)
    # Signed so that the band is always the brighter: a dark band is a bright one of -HU.
    h = sign * ndi.gaussian_filter(np.asarray(hu[box], np.float32), sigma=sigma)
    n = h.shape[axis]

    def along(start: int, stop: int) -> tuple[slice, ...]:
        return tuple(slice(start, stop) if a == axis else slice(None) for a in range(3))

    deep = distance_inside(sub_bone, sp) >= min_depth_mm
    band = np.zeros(h.shape, bool)
    for k in sorted({max(1, int(round(r / float(sp[axis])))) for r in reaches_mm}):
        if n <= 2 * k:
            continue
        mid, below, above = along(k, n - k), along(0, n - 2 * k), along(2 * k, n)
        beside = np.maximum(h[below], h[above])
        band[mid] |= deep[mid] & deep[below] & deep[above] & (h[mid] >= beside + contrast_hu)
    lab, count = ndi.label(band, structure=_FULL)
    if count == 0:
        return out
    sizes = np.bincount(lab.ravel()) * float(np.prod(sp))
    sizes[0] = 0.0
    out[box] = (sizes >= min_mm3)[lab]
    return out
