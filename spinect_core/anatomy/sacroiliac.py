"""Where the sacrum first meets the ilia, measured from a disc above it.

In a sacrum whose first segment is S1 the sacroiliac joints begin beside S1's body, a few
millimetres below its endplate; a body merged on top of the sacrum (an L5 fused to it, in the
patient or in the bone labels) puts the disc above the "sacrum" a vertebra higher, and the
joints begin a vertebra's height below it. Both the count's refusal
(:func:`~spinect_core.anatomy.checks.refuse_l5_fused_to_the_sacrum`) and the split of a
body off the top of the sacrum (:mod:`spinect_core.anatomy.levels`) judge by it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from spinect_core.anatomy import geometry as G
from spinect_core.anatomy.parts import PART_ID
from spinect_core.volume import Volume

#: Highest sacroiliac contact more than this far below the S1 endplate: the "S1" found is too
#: tall for a first sacral segment (an L5 fused to it). Measured: TotalSegmentator's reference
#: bone of a real 3 mm CT 4.7 mm, real-bone phantoms' true labels 13.6-17.7, 21 planned
#: patient-like phantoms -5 to 7; labels that merged L5 into the sacrum 30-37.
SI_JOINT_DEPTH_MM = 25.0
#: Sacrum voxels this close to an ilium (mm) are its side of the joint.
CONTACT_MM = 3.0


def joint_depth_mm(grid: Volume, parts: np.ndarray, centre_lps: np.ndarray,
                   normal_lps: np.ndarray) -> float | None:
    """How far below a plane (mm along its normal) the part named S1 first meets an ilium.

    The top of the sacroiliac contact: the 98th percentile, along ``normal_lps``, of the S1
    voxels within :data:`CONTACT_MM` of an ilium (a few stray voxels higher up do not count).

    Parameters
    ----------
    grid : Volume
        Geometry of ``parts``.
    parts : np.ndarray, uint8, shape (nz, ny, nx)
        Parts map (ids of :data:`~spinect_core.anatomy.parts.PARTS_TABLE`).
    centre_lps, normal_lps : np.ndarray, shape (3,)
        A point of the plane (LPS mm, e.g. the S1 endplate's centre) and its unit normal
        pointing cranially.

    Returns
    -------
    float or None
        Depth (mm, positive below the plane), ``None`` without ilia or contact (fewer than 5
        voxels).
    """
    ilium = (parts == PART_ID["ilium_left"]) | (parts == PART_ID["ilium_right"])
    s1 = parts == PART_ID["S1"]
    if not (ilium.any() and s1.any()):
        return None
    sp = G.spacing_zyx(grid)
    box = G.bbox_slices(s1, np.ceil((CONTACT_MM + 1.0) / sp).astype(int))
    d = ndi.distance_transform_edt(~ilium[box], sampling=sp)
    contact = s1[box] & (d <= CONTACT_MM)
    if contact.sum() < 5:
        return None
    pts = G.voxel_points(grid, contact, tuple(s.start for s in box))
    h = (pts - np.asarray(centre_lps, float)) @ np.asarray(normal_lps, float)
    return -float(np.percentile(h, 98))
