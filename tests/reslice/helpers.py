"""Synthetic scene for the reslice tests: a linear HU field on a rotated grid and a nerve ball."""

from __future__ import annotations

import numpy as np

from spinect_core.planning.trajectory import Trajectory, trajectory_angles
from spinect_core.volume import CTMetadata, Volume

#: HU = GRADIENT . p + OFFSET (exactly reproduced by trilinear interpolation).
GRADIENT = np.array([3.0, -2.0, 1.5])
OFFSET = 100.0
NERVE_CENTRE = np.array([4.0, 2.0, 6.0])
NERVE_RADIUS = 5.0


def rotation(ax_deg: float, az_deg: float) -> np.ndarray:
    a, b = np.radians(ax_deg), np.radians(az_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    return rz @ rx


def scene(spacing=(1.0, 1.0, 1.25), shape=(48, 64, 64)) -> tuple[Volume, Volume]:
    """CT (linear field, float32) and labels (nerve ball id 2, bone slab id 1) on a rotated grid."""
    direction = rotation(8.0, -12.0)
    spacing = np.asarray(spacing, float)
    size_xyz = np.array(shape[::-1])
    origin = -direction @ (spacing * (size_xyz - 1) / 2.0)
    meta = CTMetadata(series_instance_uid="1.2.826.0.1.3680043.8.498.1",
                      frame_of_reference_uid="1.2.826.0.1.3680043.8.498.2",
                      study_instance_uid="1.2.826.0.1.3680043.8.498.3")
    ct = Volume(array=np.zeros(shape, np.float32), spacing_mm=spacing, origin_lps_mm=origin,
                direction=direction, metadata=meta)
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    pts = ct.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))
    ct.array[...] = pts @ GRADIENT + OFFSET
    labels = np.zeros(shape, np.uint8)
    labels[pts[..., 2] < -12.0] = 1
    labels[np.linalg.norm(pts - NERVE_CENTRE, axis=-1) <= NERVE_RADIUS] = 2
    return ct, ct.with_array(labels)


def trajectory(entry, target) -> Trajectory:
    entry, target = np.asarray(entry, float), np.asarray(target, float)
    length = float(np.linalg.norm(target - entry))
    d = (target - entry) / length
    ax, sag = trajectory_angles(d)
    return Trajectory(entry_lps_mm=entry, target_lps_mm=target, direction_lps=d, length_mm=length,
                      angle_to_axial_deg=ax, angle_to_sagittal_deg=sag,
                      skin_entry_from_midline_mm=float("nan"), min_nerve_clearance_mm=15.0,
                      min_bone_clearance_mm=15.0, crosses=[], safe=True, reason="")


#: Posterolateral (left), caudally pointing needle ending near the nerve ball.
ENTRY = np.array([14.0, 24.0, 10.0])
TARGET = np.array([-2.0, -6.0, 1.0])
ENDPLATE_NORMAL = np.array([0.0, -0.5, 0.866])  # cranial and a little anterior
