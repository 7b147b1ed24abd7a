"""Warnings for transitional lumbosacral anatomy (sacralised L5, lumbarised S1), and for an L5
whose posterior arch the derived parts cut short.

Transitional vertebrae are common (roughly 1 in 8 adults) and change which level a needle
really reaches; the planner carries on but says so. All checks measure on the parts map in the
anatomical frame of the S1 endplate (``h`` along its normal, mm). With the level evidence of
:func:`~spinect_core.anatomy.levels.derive_parts`, the count's own warnings (4 or 6 lumbar
vertebrae between the last rib-bearing vertebra and the sacrum) come first and any sign found
here lowers its confidence.
"""

from __future__ import annotations

import numpy as np

from spinect_core.anatomy import geometry as G
from spinect_core.anatomy.counting import LevelEvidence
from spinect_core.anatomy.landmarks import SIDE_SIGN, CoreLandmarks
from spinect_core.anatomy.levels import refuse_a_broken_count
from spinect_core.anatomy.parts import PART_ID
from spinect_core.anatomy.sacroiliac import SI_JOINT_DEPTH_MM, joint_depth_mm
from spinect_core.distance import distance_inside
from spinect_core.volume import Volume

#: Mean L5/S1 disc thickness below which L5 is reported as possibly sacralised (normal 5-14).
THIN_DISC_MM = 3.0
#: Distance from the midline (mm) beyond which L5 bone is transverse process, not body.
TP_LATERAL_MM = 32.0


#: L5 bone more than this far behind the L5/S1 disc's centre (mm, across the S1 endplate's
#: normal) and this far to one side of the midline is that side's posterior arch.
ARCH_POSTERIOR_MM = 15.0
ARCH_LATERAL_MM = 8.0
#: An L5 inferior articular process hangs down behind the disc to the facet joint with S1: the
#: lowest bone of L5's arch on a side lies 9-15 mm below the S1 endplate's centre (measured on
#: 10 real-bone phantoms' true labels and TotalSegmentator's reference L5 of a real 3 mm CT).
#: Above it, the arch's lower half was given to S1.
ARCH_LOWEST_MM = 0.0


def short_arch_warnings(grid: Volume, parts: np.ndarray, core: CoreLandmarks) -> list[str]:
    """Warnings, per side, where L5's posterior arch ends above the S1 endplate (empty if none).

    Bone labels a voxel wider than the bone (the CT bone model's, the default fused bone) fill
    the facet joints, and the watershed that derives the parts can then split each vertebra's
    arch at its narrowest neck, the pars interarticularis, giving the lower half (lamina,
    inferior articular processes) to the level below and taking the one above's: L5's pedicle
    and foramen are then found 5-30 mm off (real-bone phantoms with the CT's bone:
    ``benchmarks/landmarks_ct_bone.py``). On those, an arch ending above the S1 endplate marked
    17 of the 18 sides whose landmarks were more than 4 mm off and none of the 2 right; on
    TotalSegmentator's real 3 mm CT, the right side (its L5 ends 1 mm above, the reference's
    13 mm below). The procedural phantom's boxy processes end higher: 4 of its 12 sides with
    right landmarks are marked too. Since the facet joints end the watershed's seeds
    (session 24, ``levels._seedable``) the real-bone phantoms' arches are whole and none of
    their 20 sides is marked. The parameters are those of :func:`transitional_warnings` (the
    parts map on ``grid``, the core landmarks).
    """
    pts = G.voxel_points(grid, parts == PART_ID["L5"])
    if len(pts) == 0:
        return []
    normal = core.s1_endplate_normal_lps
    post_axis = np.cross(normal, G.orthogonal_part(core.midline_normal_lps, normal))
    h = (pts - core.s1_endplate_centre_lps) @ normal
    behind = (pts - core.disc_centre_lps) @ post_axis > ARCH_POSTERIOR_MM
    lat = (pts - core.midline_point_lps) @ core.midline_normal_lps
    out = []
    for side, sign in SIDE_SIGN.items():
        arch = behind & (sign * lat > ARCH_LATERAL_MM)
        if not arch.any():
            continue
        lowest = float(h[arch].min())
        if lowest > ARCH_LOWEST_MM:
            out.append(f"L5's posterior arch on the {side} side ends {lowest:.0f} mm above the S1 "
                       "endplate, where an L5 inferior articular process reaches 9-15 mm below "
                       "it: the segmentation may have given the lower half of L5's arch to S1 "
                       "(a facet joint its bone fills), which moves the L5 pedicle and the "
                       "foramen found; check them on the images")
    return out


def disc_thickness_mm(grid: Volume, parts: np.ndarray, core: CoreLandmarks) -> float:
    """Mean L5/S1 disc thickness: disc volume / its area projected on the S1 endplate (mm)."""
    disc = parts == PART_ID["disc_L5S1"]
    n = int(disc.sum())
    if n == 0:
        return 0.0
    pts = G.voxel_points(grid, disc)
    nrm = core.s1_endplate_normal_lps
    a = G.orthogonal_part(np.array([1.0, 0.0, 0.0]) if abs(nrm[0]) < 0.9 else
                          np.array([0.0, 1.0, 0.0]), nrm)
    b = np.cross(nrm, a)
    # Cells as large as the largest voxel side, so that projected voxel centres leave no holes.
    cell = float(grid.spacing_mm.max())
    rel = pts - core.disc_centre_lps
    uv = np.floor(np.stack([rel @ a, rel @ b], -1) / cell).astype(int)
    area = len(np.unique(uv, axis=0)) * cell * cell
    return n * float(np.prod(grid.spacing_mm)) / max(area, 1e-9)


def transitional_warnings(grid: Volume, parts: np.ndarray, core: CoreLandmarks, *,
                          evidence: LevelEvidence | None = None) -> list[str]:
    """Human-readable warnings for sacralisation / lumbarisation signs (empty when none).

    Parameters
    ----------
    grid : Volume
        Geometry of ``parts``.
    parts : np.ndarray, uint8, shape (nz, ny, nx)
        Parts map (ids of :data:`~spinect_core.anatomy.parts.PARTS_TABLE`).
    core : CoreLandmarks
        Endplates and midline of L5/S1.
    evidence : LevelEvidence, optional
        The level count of :func:`~spinect_core.anatomy.levels.derive_parts`. Its warnings (a
        lumbar count other than 5) lead the returned list; when this function finds a sign of
        its own, the evidence is updated in place: the sign is added to its warnings and its
        confidence is lowered to at most ``"moderate"``.

    Returns
    -------
    list of str

    Raises
    ------
    AnatomyError
        With ``evidence``: the count is refused when the ribs disagree with it and the
        sacroiliac joints begin a vertebra low (:func:`refuse_l5_fused_to_the_sacrum`).
    """
    si_depth = sacroiliac_joint_depth_mm(grid, parts, core)
    out = _signs(grid, parts, core, si_depth_mm=si_depth)
    if evidence is None:
        return out
    for w in out:
        if w not in evidence.warnings:
            evidence.warnings.append(w)
    if out:
        evidence.downgrade("moderate", "signs of transitional anatomy at L5/S1 (see the "
                           "warnings): the level name depends on the count")
    refuse_l5_fused_to_the_sacrum(evidence, si_depth)
    return list(evidence.warnings)


def sacroiliac_joint_depth_mm(grid: Volume, parts: np.ndarray, core: CoreLandmarks
                              ) -> float | None:
    """How far below the S1 endplate (mm, along its normal) the sacrum first meets an ilium
    (:func:`~spinect_core.anatomy.sacroiliac.joint_depth_mm`): in a sacrum whose first segment
    is S1 the joints begin beside S1's body, within :data:`SI_JOINT_DEPTH_MM` of its endplate;
    a body merged on top of the sacrum (an L5 fused to it, in the patient or in the bone labels)
    moves the endplate found a vertebra higher.

    Returns
    -------
    float or None
        Depth (mm, positive below the endplate), ``None`` without ilia or contact (fewer than 5
        voxels).
    """
    return joint_depth_mm(grid, parts, core.s1_endplate_centre_lps,
                          core.s1_endplate_normal_lps)


def refuse_l5_fused_to_the_sacrum(evidence: LevelEvidence, sacroiliac_depth_mm: float | None
                                  ) -> None:
    """Refuse the count (:class:`~spinect_core.errors.AnatomyError` carrying ``evidence``) when
    the ribs disagree with the count from the sacrum and the sacroiliac joints begin more than
    :data:`SI_JOINT_DEPTH_MM` below the disc above the sacrum (``sacroiliac_depth_mm``, from
    :func:`sacroiliac_joint_depth_mm`; ``None``: no joint found, nothing refused).

    Each sign alone is a transitional vertebra's (a warning, the plan at "moderate"). Together
    they say the body on top of the "sacrum" is a vertebra, L5 by the ribs, merged into it in
    the bone labels or fused to it in the patient, so the disc above the sacrum is L4/L5 by the
    rib count: TotalSegmentator's real 3 mm CT reconstructed 0.75 mm off its grid, with 12 HU of
    noise, had L5 merged into the sacrum's core (2.4x as tall as L5), 4 lumbar vertebrae by the
    ribs, the joints 37 mm below that disc, and was planned 36 mm from L5/S1 at "moderate".
    Judged with :func:`~spinect_core.anatomy.levels.refuse_a_broken_count`'s rule.
    """
    depth = sacroiliac_depth_mm
    if evidence.rib_count_agrees is not False or depth is None or depth <= SI_JOINT_DEPTH_MM:
        return
    evidence.chain_faults.append(
        f"the sacroiliac joints begin {depth:.0f} mm below the disc above the sacrum, a "
        "vertebra lower than beside a first sacral segment (L5 merged into the sacrum in the "
        "bone labels, or fused to it: a sacralised L5)")
    refuse_a_broken_count(evidence)


def _signs(grid: Volume, parts: np.ndarray, core: CoreLandmarks, *,
           si_depth_mm: float | None) -> list[str]:
    """The sacralisation / lumbarisation signs measured on the parts map (``si_depth_mm``:
    :func:`sacroiliac_joint_depth_mm` of it)."""
    out: list[str] = []
    sp = G.spacing_zyx(grid)
    t = disc_thickness_mm(grid, parts, core)
    if t < THIN_DISC_MM:
        out.append(f"possible sacralised L5: the L5/S1 disc is {'absent' if t == 0 else 'very thin'}"
                   f" (mean {t:.1f} mm); check the level count on a full-spine view")

    l5 = parts == PART_ID["L5"]
    s1 = parts == PART_ID["S1"]
    ilium = (parts == PART_ID["ilium_left"]) | (parts == PART_ID["ilium_right"])
    box = G.bbox_slices(l5, np.ceil(4.0 / sp).astype(int))
    if box is not None:
        pts = G.voxel_points(grid, np.ones(l5[box].shape, bool), tuple(s.start for s in box))
        lat = ((pts - core.midline_point_lps) @ core.midline_normal_lps).reshape(l5[box].shape)
        # Only beyond the vertebral bodies (half-width <= ~30 mm): the facet joints (~15-20 mm
        # from the midline) and the disc are normal contacts.
        s1_lateral = s1[box] & (np.abs(lat) > TP_LATERAL_MM)
        blockers = ilium[box] | s1_lateral
        if blockers.any():
            d = distance_inside(~blockers, sp)
            touch = l5[box] & (d <= 2.0)
            for side, sgn in (("left", 1.0), ("right", -1.0)):
                if np.count_nonzero(touch & (sgn * lat > TP_LATERAL_MM)) >= 3:
                    out.append(f"possible sacralised L5: the {side} L5 transverse process touches "
                               "the sacrum or ilium")

    if si_depth_mm is not None and si_depth_mm > SI_JOINT_DEPTH_MM:
        out.append(f"possible sacralised L5: the sacroiliac joints begin {si_depth_mm:.0f} mm below"
                   " the lowest disc, as if L5 were fused to the sacrum; check the level count")

    # Lumbarised S1: a disc-like gap in the bone column under the S1 endplate.
    if s1.any():
        pts = G.voxel_points(grid, s1)
        rel = pts - core.s1_endplate_centre_lps
        h = rel @ core.s1_endplate_normal_lps
        radial = np.linalg.norm(rel - np.outer(h, core.s1_endplate_normal_lps), axis=1)
        col = h[(radial <= 10.0) & (h < 0)]
        if len(col):
            step = max(1.5, float(grid.spacing_mm.max()))
            edges = np.arange(0.0, -65.0, -step)[::-1]
            counts, _ = np.histogram(col, bins=edges)
            counts = counts[::-1]                              # from the endplate downwards
            ref = float(np.median(counts[: max(int(15.0 / step), 2)]))
            if ref > 0:
                low = np.nonzero(counts < 0.25 * ref)[0]
                for i in low:
                    depth = (i + 0.5) * step
                    if 15.0 <= depth <= 45.0 and np.any(counts[i + 1:] > 0.5 * ref):
                        out.append(f"possible lumbarised S1: a disc-like gap {depth:.0f} mm below "
                                   "the S1 endplate (an S1/S2 disc); check the level count")
                        break
    return out
