"""Synthetic CTs on anisotropic, oblique grids with analytic spheres."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.volume import Volume


def rotation(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotation matrix (Rodrigues) about ``axis`` by ``angle_deg``."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    t = np.deg2rad(angle_deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def world_coords(vol: Volume) -> np.ndarray:
    """LPS mm of every voxel centre, shape (z, y, x, 3)."""
    nz, ny, nx = vol.array.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    idx = np.stack([i, j, k], axis=-1).astype(float)
    return vol.index_to_lps(idx)


#: Sphere centres (LPS mm) and radii (mm) of the synthetic phantom; label ids 1 and 2.
SPHERES = ((np.array([12.0, -8.0, 35.0]), 9.0, 1), (np.array([-14.0, 10.0, 48.0]), 6.0, 2))
BODY_CENTRE = np.array([0.0, 0.0, 40.0])


@pytest.fixture(scope="module")
def oblique_ct() -> tuple[Volume, Volume]:
    """(CT in HU, label map) on a 0.7 x 0.7 x 2.5 mm oblique grid with non-zero origin.

    Body: ellipsoid of soft tissue (40 HU) in air (-1000 HU); sphere 1 "bone" (700 HU, r 9 mm)
    and sphere 2 "nerve" (60 HU, r 6 mm), with exact analytic labels.
    """
    direction = rotation([1.0, 0.4, 0.2], 20.0)
    spacing = np.array([0.7, 0.7, 2.5])
    size_xyz = (140, 120, 34)
    # Put the grid centre near the body centre: origin = centre - direction @ (extent / 2).
    half = direction @ (spacing * (np.array(size_xyz) - 1) / 2)
    origin = BODY_CENTRE - half + np.array([1.3, -0.7, 0.4])
    vol = Volume(array=np.zeros(size_xyz[::-1], dtype=np.int16), spacing_mm=spacing,
                 origin_lps_mm=origin, direction=direction)
    p = world_coords(vol)
    rel = (p - BODY_CENTRE) / np.array([30.0, 25.0, 60.0])
    body = (rel ** 2).sum(-1) <= 1.0
    ct = np.where(body, 40, -1000).astype(np.int16)
    labels = np.zeros(ct.shape, dtype=np.uint8)
    for centre, radius, label in SPHERES:
        inside = ((p - centre) ** 2).sum(-1) <= radius ** 2
        labels[inside] = label
        ct[inside] = 700 if label == 1 else 60
    return vol.with_array(ct), vol.with_array(labels)
