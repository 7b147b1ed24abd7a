"""Euclidean distance maps of voxel masks, in millimetres: the bottom layer's, shared by the CT
bone model and the anatomy.

:func:`distance_inside` is :func:`scipy.ndimage.distance_transform_edt` of a mask (each voxel's
distance to the nearest voxel outside it) computed by SimpleITK's Maurer transform: exact as
well, in float32, on all cores and without scipy's feature transform. Measured 2026-12-07 on
the 27 M-voxel box of the bone at L5/S1 of a 0.8 x 0.8 x 1 mm CT, 2 cores: scipy 4.3-5.6 s,
SimpleITK 0.8 s, the largest difference 2.4e-5 mm. Without SimpleITK (the training machine has
none) scipy computes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

__all__ = ["distance_inside"]


def distance_inside(mask: np.ndarray, spacing_zyx: Any) -> np.ndarray:
    """Each voxel's distance (mm) to the nearest voxel outside ``mask``; 0 outside it.

    Parameters
    ----------
    mask : np.ndarray, bool, shape (z, y, x)
    spacing_zyx : sequence of 3 floats
        Voxel size (mm) along z, y, x.

    Returns
    -------
    np.ndarray, float32, ``mask``'s shape
        As ``scipy.ndimage.distance_transform_edt(mask, sampling=spacing_zyx)`` (float64 there;
        a mask with no voxel outside it is left to scipy, whose answer that is).
    """
    mask = np.asarray(mask, bool)
    spacing = [float(s) for s in spacing_zyx]
    if mask.ndim != 3 or len(spacing) != 3:
        raise ValueError(f"a 3D mask and 3 spacings are needed, got shape {mask.shape} and "
                         f"{len(spacing)} spacings")
    if not mask.any():
        return np.zeros(mask.shape, np.float32)
    try:
        import SimpleITK as sitk
    except ImportError:
        sitk = None
    if sitk is None or mask.all():
        return ndi.distance_transform_edt(mask, sampling=spacing).astype(np.float32)
    outside = sitk.GetImageFromArray((~mask).view(np.uint8))
    outside.SetSpacing(spacing[::-1])
    # The outside is the object: a mask voxel's (positive) distance is to the nearest object
    # voxel's centre, as scipy measures it (inside the object ITK measures to its contour).
    signed = sitk.SignedMaurerDistanceMap(outside, insideIsPositive=False, squaredDistance=False,
                                          useImageSpacing=True)
    return np.maximum(sitk.GetArrayFromImage(signed), np.float32(0.0))
