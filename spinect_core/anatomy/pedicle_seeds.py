"""Seeds of L5's pedicles, placed from its body, for the watershed that derives the parts.

The parts are a watershed of the bone's distance map from the bodies' cores, which splits the
bone at its narrowest necks. A vertebra's narrowest necks are its pedicles. Labels a voxel
wider than the bone (the CT bone model's, the default fused bone) fill the facet joints, and
through 2-3 mm slices the joints are not seen on the CT either: the inferior articular
processes of L5 and the superior ones of S1 are then one mass thicker than a pedicle, and the
flood from S1 takes L5's whole arch (laminae, spinous process, articular processes and the
pedicles' back half) before the flood from L5's body passes its pedicles. L5's pedicles are
then found on its transverse processes or on L4's arch: measured on TotalSegmentator's real
3 mm CT, the L5 pedicle centres 18 and 7 mm from the reference's.

L5's pedicles belong to L5 whatever the joints show. In the frame of L5's core (``h`` along the
column, cranial positive; ``b`` towards the back; ``s`` to the side) they are the bone just
behind the body's posterior wall (:data:`PEDICLE_BEHIND_MM`), to either side of the canal
(:data:`PEDICLE_LATERAL_MM`), from the core's centre up to the body's top (the pedicles leave
the body's upper half; the facet joint with L4 lies further back, the one with S1 lower).
Seeded there, the flood from L5 reaches its arch through the pedicles and meets the flood from
S1 where the two arches meet, at the facet joints.

Measured (2026-12-07): TotalSegmentator's 3 mm CT, ``spinect segment``'s fused labels, pedicle
centres 18.1 / 7.3 -> 1.9 / 1.9 mm from the reference's (left / right), foramen centres 18.8 /
6.7 -> 6.7 / 6.1 mm; real-bone phantoms 100-109 at 1 and 3 mm and the procedural ones at 1 mm
with the CT bone model's labels: the landmarks as before (within 0.2 mm), 0.2-1.7 ml of L4's
arch taken into L5 on 5 of 10 real-bone phantoms at 1 mm (through the L4/L5 facet joints). Seeds
of L5's lamina at the midline were tried too: along a column leaning forward with the lordosis
they took L4's spinous process and, kept below L5's centre in the patient's height, none of
L5's own lamina (which lies 0-23 mm above it).
"""

from __future__ import annotations

import numpy as np

#: The pedicle seeds lie this far behind the body's posterior wall (mm, min and max).
PEDICLE_BEHIND_MM = (2.0, 8.0)
#: ... and this far to the side of the core's centre (mm, min and max).
PEDICLE_LATERAL_MM = (8.0, 25.0)


def l5_pedicle_seeds(bone_pts: np.ndarray, core_pts: np.ndarray, column_up: np.ndarray, *,
                     core_mm: float) -> np.ndarray:
    """Which bone voxels seed L5's pedicles.

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
        True for the voxels in L5's pedicles (see the module's description); all False without
        a core.
    """
    if len(core_pts) == 0 or len(bone_pts) == 0:
        return np.zeros(len(bone_pts), bool)
    up = np.asarray(column_up, float) / np.linalg.norm(column_up)
    back = np.array([0.0, 1.0, 0.0]) - up[1] * up              # LPS +y is posterior
    back /= np.linalg.norm(back)
    side = np.cross(up, back)
    centre = core_pts.mean(axis=0)
    wall = float(((core_pts - centre) @ back).max()) + core_mm      # the posterior wall
    top = float(((core_pts - centre) @ up).max()) + core_mm         # the body's top
    rel = bone_pts - centre
    h, b, s = rel @ up, rel @ back, np.abs(rel @ side)
    return ((b >= wall + PEDICLE_BEHIND_MM[0]) & (b <= wall + PEDICLE_BEHIND_MM[1])
            & (s >= PEDICLE_LATERAL_MM[0]) & (s <= PEDICLE_LATERAL_MM[1])
            & (h >= 0.0) & (h <= top))
