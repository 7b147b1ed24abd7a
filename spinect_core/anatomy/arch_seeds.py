"""Seeds of L5's posterior arch, placed from its body's core, for the watershed that derives
the parts.

The parts are a watershed of the bone's distance map from the bodies' cores, which splits the
bone at its narrowest necks. A vertebra's narrowest necks are its pedicles. Labels a voxel
wider than the bone (the CT bone model's, the default fused bone) fill the facet joints, and
through 2-3 mm slices the joints are not seen on the CT either: the articular processes on both
sides of each joint are then one mass thicker than a pedicle, and the floods from S1 and from
L4 take L5's arch (laminae, spinous process, articular processes) before the flood from L5's
body passes its pedicles. L5's pedicles are then found on its transverse processes or on L4's
arch: measured on TotalSegmentator's real 3 mm CT, the L5 pedicle centres 18 and 7 mm from the
reference's.

The seeds are the bone just behind the back of L5's core (:data:`SEED_BEHIND_MM` beyond the
core's last voxel plus the core depth), to either side of the canal
(:data:`SEED_LATERAL_MM`), from the core's centre up to the body's top, in the frame of L5's own
axis. What lies there depends on how far back the core reaches. On TotalSegmentator's CT (the
core reaching into the pedicles' bases) it is the mass the labels make of the L4/L5 facet
joints: of the 59 seed voxels, 43 lie in the reference's L4 (its inferior articular processes)
and 11 in its L5. Claimed for L5, that mass passes L5's arch to it down to the L5/S1 facet
joints, and L4's inferior processes come along.

Measured (2026-12-07): TotalSegmentator's 3 mm CT, ``spinect segment``'s fused labels, pedicle
centres 18.1 / 7.3 -> 1.9 / 1.9 mm from the reference's (left / right), foramen centres 18.8 /
6.7 -> 6.7 / 6.1 mm; with the labels of the network on the array as stored 2.4 / 0.6 mm.
Real-bone phantoms 100-109 at 1 and 3 mm and the procedural ones at 1 mm with the CT bone
model's labels: the landmarks as before (within 0.2 mm); 0.2-1.7 ml of L4's arch in L5 on 5 of
10 real-bone phantoms at 1 mm. Not mended: the same CT resampled to 1.5 mm (pedicle centres 30
and 7 mm off), where the core's back reaches 27 mm behind its centre through labels that fill
the canal, and all 452 seed voxels lie in L4. Tried and not kept: seeds in L5's own pedicles
(the body's wall where the core's 3 mm sections thin below 30 % of the fullest): the 1.5 mm CT
30 -> 8 mm, the 3 mm CT's right side 1.9 -> 8.0 mm (12.2 with the other labels); seeds of L5's
lamina at the midline: along a column leaning forward with the lordosis they took L4's spinous
process, and kept below L5's centre in the patient's height none of L5's own lamina (0-23 mm
above it).
"""

from __future__ import annotations

import numpy as np

#: The seeds lie this far behind the core's back plus the core depth (mm, min and max) ...
SEED_BEHIND_MM = (2.0, 8.0)
#: ... and this far to the side of the core's centre (mm, min and max).
SEED_LATERAL_MM = (8.0, 25.0)


def l5_arch_seeds(bone_pts: np.ndarray, core_pts: np.ndarray, column_up: np.ndarray, *,
                     core_mm: float) -> np.ndarray:
    """Which bone voxels seed L5's posterior arch (see the module's description).

    Parameters
    ----------
    bone_pts : np.ndarray, shape (N, 3)
        LPS centres (mm) of the bone voxels the watershed runs on.
    core_pts : np.ndarray, shape (M, 3)
        LPS centres (mm) of L5's core (its body's bone deeper than ``core_mm``).
    column_up : np.ndarray, shape (3,)
        Vector along the column at L5, pointing cranially (LPS; any length).
    core_mm : float
        The core's depth inside the bone (mm): the body's surface lies that far beyond it.

    Returns
    -------
    np.ndarray, bool, shape (N,)
        True for the seed voxels; all False without a core.
    """
    if len(core_pts) == 0 or len(bone_pts) == 0:
        return np.zeros(len(bone_pts), bool)
    up = np.asarray(column_up, float) / np.linalg.norm(column_up)
    back = np.array([0.0, 1.0, 0.0]) - up[1] * up              # LPS +y is posterior
    back /= np.linalg.norm(back)
    side = np.cross(up, back)
    centre = core_pts.mean(axis=0)
    wall = float(((core_pts - centre) @ back).max()) + core_mm      # the core's back + depth
    top = float(((core_pts - centre) @ up).max()) + core_mm         # the body's top
    rel = bone_pts - centre
    h, b, s = rel @ up, rel @ back, np.abs(rel @ side)
    return ((b >= wall + SEED_BEHIND_MM[0]) & (b <= wall + SEED_BEHIND_MM[1])
            & (s >= SEED_LATERAL_MM[0]) & (s <= SEED_LATERAL_MM[1])
            & (h >= 0.0) & (h <= top))
