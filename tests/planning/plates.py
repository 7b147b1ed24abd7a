"""Analytic test scenes for the free-window primitive: a plate (blocker) with a prismatic hole
and a target slab behind it, voxelised with 2D supersampling (a voxel column is hole when at
least half of it is inside the hole)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from spinect_core.labels import LabelTable
from spinect_core.volume import Volume

TABLE = LabelTable({0: "background", 1: "plate", 2: "target"})
Z_TOP = 1.0  # plate front face, mm along the plate normal (index z axis)


def plate_scene(hole: Callable[[np.ndarray, np.ndarray], np.ndarray], *, thickness: float,
                voxel: float = 0.25, half: float = 9.0, gap: float = 2.0, slab: float = 1.5,
                rotation: np.ndarray | None = None, origin=(0.0, 0.0, 0.0)
                ) -> tuple[Volume, np.ndarray]:
    """Label map (0 background, 1 plate, 2 target) and the LPS centre of the hole.

    In plate coordinates (mm) the plate spans z in [1, 1 + thickness] (faces on voxel edges),
    x, y in [-half, half]; the hole is ``hole(x, y)``; the target slab lies ``gap`` mm behind.
    LPS = origin + rotation @ plate coordinates; rotation may be any orthogonal matrix.
    """
    R = np.eye(3) if rotation is None else np.asarray(rotation, float)
    n_xy = int(round(2 * half / voxel))
    nz = int(round((Z_TOP + thickness + gap + slab + 1.0) / voxel))
    xs = -half + (np.arange(n_xy) + 0.5) * voxel
    ss = 4
    sub = (np.arange(ss) + 0.5) / ss * voxel - voxel / 2
    fine = (xs[:, None] + sub[None, :]).reshape(-1)
    X, Y = np.meshgrid(fine, fine, indexing="xy")  # rows y, columns x
    hole2d = hole(X, Y).reshape(n_xy, ss, n_xy, ss).mean((1, 3)) >= 0.5
    zc = (np.arange(nz) + 0.5) * voxel
    arr = np.zeros((nz, n_xy, n_xy), np.uint8)
    arr[(zc >= Z_TOP) & (zc <= Z_TOP + thickness)] = np.where(hole2d, 0, 1)[None]
    z_target = Z_TOP + thickness + gap
    arr[(zc >= z_target) & (zc <= z_target + slab)] = 2
    corner = np.array([xs[0], xs[0], zc[0]])
    vol = Volume(array=arr, spacing_mm=[voxel] * 3,
                 origin_lps_mm=np.asarray(origin, float) + R @ corner, direction=R)
    centre = np.asarray(origin, float) + R @ np.array([0.0, 0.0, Z_TOP + thickness / 2])
    return vol, centre


def triangle_hole(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Right triangle, right angle at (-4, -3), legs 8 mm along x and 6 mm along y."""
    u, v = x + 4.0, y + 3.0
    return (u >= 0) & (v >= 0) & (u / 8.0 + v / 6.0 <= 1.0)


def rectangle_hole(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """10 mm along x by 6 mm along y, centred."""
    return (np.abs(x) <= 5.0) & (np.abs(y) <= 3.0)


def tilted_view(theta_deg: float) -> np.ndarray:
    """Plate-frame ray direction at ``theta`` from the normal, tilted about y (the 6 mm leg):
    the far opening shifts along x (the 8 mm leg / the 10 mm side)."""
    t = np.radians(theta_deg)
    return np.array([np.sin(t), 0.0, np.cos(t)])


def triangle_area(theta_deg: float) -> float:
    t = np.radians(theta_deg)
    return 24.0 * np.cos(t) * (1.0 - 2.0 * np.tan(t) / 8.0) ** 2


def rectangle_area(theta_deg: float) -> float:
    t = np.radians(theta_deg)
    return (10.0 * np.cos(t) - 3.0 * np.sin(t)) * 6.0
