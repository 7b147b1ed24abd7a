"""Does the network's bone agree with the CT's own bone at L4, L5 and S1?

A network trained on phantoms can miss a vertebral body on a real scan and still produce a label
map that looks complete (issue 11: bodies missed, processes kept). The model-free CT bone model
(:func:`~spinect_core.bone.segment_bone_from_ct`) does not share the network's failure modes, so
their disagreement at the planned levels is a warning that goes into ``plan.json``, the report
and the app: never silence.

How (all in LPS millimetres, on the CT's grid):

1. **Levels from the CT's bone**, not the network's (the CT's bone is there even where the
   network missed a body): :func:`spinect_core.anatomy.levels.derive_parts` on the CT bone
   (block-averaged to about :attr:`AgreementOptions.level_grid_mm`) gives the vertebral body
   centres of the spine chain, cranial first, ending with the sacrum (S1) and L5; the body above
   L5 is L4. When it refuses, the check says that the levels could not be found.
2. **A region per level**: the slab between the mid-points of consecutive body centres along
   the chain (above the highest and below the sacrum: as far as the mid-point on the other
   side), within :attr:`~AgreementOptions.lateral_mm` left and right of the column axis, from
   :attr:`~AgreementOptions.anterior_mm` in front of the body centre to
   :attr:`~AgreementOptions.posterior_mm` behind it (the spinous process).
3. **Per region**: Dice between the network's bone and the CT's bone, and their volumes.

The bound (:data:`MIN_DICE`, :data:`VOLUME_RATIO_RANGE`): a level disagrees when its bone Dice
is below 0.80 or the network's bone volume is outside 0.65-1.5 times the CT bone model's.
Measured on phantoms (1.5 mm voxels, seeds 1-6): the *true* labels reach bone Dice 0.87-0.92
per level against the CT bone model, with volume ratios 0.77-0.85 (the CT bone model's bone is
about a partial-volume voxel thicker than the true bone); the true labels with the L5 body
deleted drop L5 to Dice 0.53-0.75 (ratio 0.36-0.59) while L4 and S1 stay above 0.88. A Dice of
at least 0.80 already bounds the ratio to 0.67-1.5, so the ratio bound only names the kind of
disagreement; it is set no tighter because the CT bone model's thickness bias alone brings a
correct segmentation to about 0.8.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from spinect_core.errors import AnatomyError
from spinect_core.labels import LabelTable
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.vectors import unit_or_zero
from spinect_core.volume import Volume

if TYPE_CHECKING:
    from spinect_core.anatomy.counting import LevelEvidence
    from spinect_core.bone.ct_model import CTBone, CTBoneOptions
    from spinect_core.segment import Segmentation

__all__ = ["MIN_DICE", "VOLUME_RATIO_RANGE", "LEVELS", "AgreementOptions", "LevelAgreement",
           "BoneAgreement", "compare_bone", "check_segmentation", "disagreement_warning",
           "NOMINAL_LEVEL_SPACING_MM", "PlannedLevelCheck", "check_planned_level"]

#: A level whose network bone reaches a lower Dice against the CT bone model disagrees.
MIN_DICE = 0.80
#: A level disagrees when the network's bone volume over the CT bone model's is outside this.
VOLUME_RATIO_RANGE = (0.65, 1.5)
#: The levels checked, cranial first (the planned L5/S1 and the level above).
LEVELS = ("L4", "L5", "S1")

_BONE_TABLE = LabelTable({0: "background", 1: "bone"})


@dataclass(frozen=True, kw_only=True)
class AgreementOptions:
    """Bounds and regions of :func:`compare_bone` (mm).

    Attributes
    ----------
    min_dice : float
        A level with a lower bone Dice disagrees (:data:`MIN_DICE`).
    volume_ratio_range : (float, float)
        A level whose network/CT bone volume ratio is outside disagrees
        (:data:`VOLUME_RATIO_RANGE`).
    lateral_mm : float
        Half-width of a level's region, left and right of the column axis.
    anterior_mm, posterior_mm : float
        Extent of a level's region in front of and behind the body centre.
    level_grid_mm : float
        The CT bone is block-averaged (majority) to about this voxel size before the levels are
        found, as the planning's first pass does (``LevelOptions.coarse_mm``): the body centres
        need no more, and full resolution costs seconds (a 512 x 512 x 133 chest CT: 7.8 s
        against 2.1 s).
    min_ct_bone_ml : float
        A region with less CT bone cannot be judged (reported, no warning).
    """

    min_dice: float = MIN_DICE
    volume_ratio_range: tuple[float, float] = VOLUME_RATIO_RANGE
    lateral_mm: float = 40.0
    anterior_mm: float = 45.0
    posterior_mm: float = 90.0
    level_grid_mm: float = 2.0
    min_ct_bone_ml: float = 1.0


@dataclass(frozen=True, kw_only=True)
class LevelAgreement:
    """The comparison at one level.

    Attributes
    ----------
    level : str
        ``"L4"``, ``"L5"`` or ``"S1"``.
    found : bool
        The level's body was found in the CT's bone.
    centre_lps_mm : np.ndarray or None, shape (3,)
        Body centre (core centroid) from the CT's bone.
    dice : float
        Bone Dice of the network against the CT bone model in the level's region (NaN when not
        found).
    network_ml, ct_ml : float
        Bone volumes in the region, ml.
    missed_ml, extra_ml : float
        CT bone the network lacks; network bone the CT lacks (ml).
    agrees : bool or None
        ``None`` when the level could not be judged.
    reason : str
        Why a level was not judged, or what disagrees.
    """

    level: str
    found: bool
    centre_lps_mm: np.ndarray | None = None
    dice: float = float("nan")
    network_ml: float = float("nan")
    ct_ml: float = float("nan")
    missed_ml: float = float("nan")
    extra_ml: float = float("nan")
    agrees: bool | None = None
    reason: str = ""

    @property
    def volume_ratio(self) -> float:
        """Network bone volume over the CT bone model's (NaN without CT bone)."""
        return self.network_ml / self.ct_ml if self.ct_ml and self.ct_ml > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "found": bool(self.found),
                "centre_lps_mm": (None if self.centre_lps_mm is None
                                  else [round(float(v), 2) for v in self.centre_lps_mm]),
                "bone_dice": _round(self.dice, 4), "network_bone_ml": _round(self.network_ml, 3),
                "ct_bone_ml": _round(self.ct_ml, 3), "volume_ratio": _round(self.volume_ratio, 3),
                "missed_ml": _round(self.missed_ml, 3), "extra_ml": _round(self.extra_ml, 3),
                "agrees": self.agrees, "reason": self.reason}


@dataclass(kw_only=True)
class BoneAgreement:
    """The result of :func:`compare_bone`: per-level records and the warnings they raise.

    Attributes
    ----------
    levels : list of LevelAgreement
        L4, L5, S1 (cranial first); empty when the levels were not found.
    levels_found : bool
    reason : str
        Why the levels were not found ("" when they were).
    ct_ends_at : str or None
        When the CT's count refused because the scan ends above L5 and the ribs named where
        (counted down from T12): the last level in view, e.g. ``"L3"``; else None.
    ct_count_doubt : str
        Why the CT's own count is itself in doubt, when its level confidence is low (e.g. "it
        counts 4 lumbar vertebrae between T12 and the sacrum"); "" otherwise.
    warnings : list of str
        One line per disagreeing level, e.g. "the segmentation disagrees with the CT at L5 (bone
        Dice 0.42 against the CT bone model): review it"; or that the check could not run.
    options : AgreementOptions
    ct_thresholds_hu : dict
        The CT bone model's thresholds, when known.
    timings_s : dict
    """

    levels: list[LevelAgreement] = field(default_factory=list)
    levels_found: bool = False
    reason: str = ""
    ct_ends_at: str | None = None
    ct_count_doubt: str = ""
    warnings: list[str] = field(default_factory=list)
    options: AgreementOptions = field(default_factory=AgreementOptions)
    ct_thresholds_hu: dict[str, float] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def agrees(self) -> bool | None:
        """True when every judged level agrees; ``None`` when nothing could be judged."""
        judged = [r.agrees for r in self.levels if r.agrees is not None]
        return all(judged) if judged else None

    def level(self, name: str) -> LevelAgreement:
        for r in self.levels:
            if r.level == name:
                return r
        raise KeyError(f"no level {name!r} in the check")

    def to_dict(self) -> dict[str, Any]:
        """The ``segmentation_check`` block of ``plan.json`` and ``spinect segment``'s summary."""
        o = self.options
        return {
            "method": "network bone against the model-free CT bone model, per level",
            "bounds": {"min_bone_dice": o.min_dice,
                       "volume_ratio_range": [float(v) for v in o.volume_ratio_range]},
            "region": {"description": "slab between the mid-points of consecutive vertebral body "
                                      "centres of the CT's bone, around the column axis",
                       "lateral_mm": o.lateral_mm, "anterior_mm": o.anterior_mm,
                       "posterior_mm": o.posterior_mm},
            "levels_found": bool(self.levels_found), "reason": self.reason,
            "ct_ends_at": self.ct_ends_at, "ct_count_doubt": self.ct_count_doubt,
            "agrees": self.agrees,
            "levels": [r.to_dict() for r in self.levels],
            "warnings": list(self.warnings),
            "ct_thresholds_hu": {k: _round(v, 2) for k, v in self.ct_thresholds_hu.items()},
        }


def disagreement_warning(record: LevelAgreement, options: AgreementOptions | None = None
                         ) -> str | None:
    """The warning line of a level that disagrees (``None`` when it agrees or was not judged)."""
    options = options or AgreementOptions()
    if record.agrees is None or record.agrees:
        return None
    if not record.dice >= options.min_dice:
        what = f"bone Dice {record.dice:.2f} against the CT bone model"
    else:
        what = f"bone volume {record.volume_ratio:.2f} times the CT bone model's"
    return f"the segmentation disagrees with the CT at {record.level} ({what}): review it"


def compare_bone(network_bone: np.ndarray | Volume, ct_bone: "Volume | CTBone", *,
                 hu: Volume | None = None, options: AgreementOptions | None = None,
                 progress: ProgressCallback | None = None) -> BoneAgreement:
    """Compare a network's bone with the CT bone model's at L4, L5 and S1.

    Parameters
    ----------
    network_bone : np.ndarray or Volume, bool or 0/1, shape (z, y, x)
        The network's bone (before any fusion with the CT's), on the CT's grid.
    ct_bone : Volume or CTBone
        The CT bone model's mask (uint8 0/1, (z, y, x), the CT's geometry) or its whole result.
    hu : Volume, optional
        The CT itself: the CT bone's levels are then counted with the CT's evidence of discs the
        bone bridged, as the planning counts them (dark bands, a collapsed disc inside S1 or L5:
        :func:`~spinect_core.anatomy.levels.derive_parts` with ``ct``).
    options : AgreementOptions, optional
    progress : callable, optional
        ``(fraction, message)``; returning False raises :class:`Cancelled`.

    Returns
    -------
    BoneAgreement
        Never raises for anatomy it cannot find: the result says so (``levels_found`` False and
        a warning).
    """
    options = options or AgreementOptions()
    t0 = time.perf_counter()
    thresholds: dict[str, float] = {}
    cavities = None
    if not isinstance(ct_bone, Volume):
        thresholds = dict(getattr(ct_bone, "thresholds_hu", {}) or {})
        cavities = getattr(ct_bone, "cavities", None)
        ct_bone = ct_bone.mask
    net = np.asarray(network_bone.array if isinstance(network_bone, Volume) else network_bone
                     ).astype(bool, copy=False)
    ct = np.asarray(ct_bone.array).astype(bool, copy=False)
    if net.shape != ct.shape:
        raise ValueError(f"network bone shape {net.shape} differs from the CT bone's {ct.shape}")
    result = BoneAgreement(options=options, ct_thresholds_hu=thresholds)

    report(progress, 0.0, "finding the levels in the CT's bone")
    # The levels from the bone without the voxels filled only as small cavities: in a disc the
    # bone bridges they are its last voxels, and without the network's disc beside them (as in
    # the fusion) the count would merge the bodies across it.
    level_bone = ct if cavities is None else ct & (np.asarray(cavities.array) == 0)
    try:
        chain, evidence = _chain(ct_bone, level_bone, options, hu=hu,
                                 progress=sub_progress(progress, 0.0, 0.7, "levels: "))
    except AnatomyError as exc:
        counted = _chain_with_cavities(ct_bone, ct, options, hu=hu, progress=progress) if (
            cavities is not None) else None
        if counted is None:
            return _levels_not_found(result, exc, t0, progress)
        chain, evidence = counted
    result.levels_found = True
    result.ct_count_doubt = _count_doubt(evidence)
    t1 = time.perf_counter()

    report(progress, 0.7, "comparing the bone per level")
    voxel_ml = float(np.prod(ct_bone.spacing_mm)) / 1000.0
    regions = _regions(chain, options)
    box = _index_box(ct_bone, regions, ct.shape)
    sub = tuple(slice(a, b) for a, b in box)
    n_sub, c_sub = net[sub], ct[sub]
    either = n_sub | c_sub
    zz, yy, xx = np.nonzero(either)
    offset = np.array([b[0] for b in box])
    pts = ct_bone.index_to_lps(np.stack([xx + offset[2], yy + offset[1], zz + offset[0]], axis=1)
                               .astype(np.float64))
    in_net, in_ct = n_sub[zz, yy, xx], c_sub[zz, yy, xx]
    for name in LEVELS:
        region = regions.get(name)
        if region is None:
            result.levels.append(LevelAgreement(
                level=name, found=False,
                reason=f"{name} is not in the CT's bone chain (outside the field of view?)"))
            continue
        inside = region.contains(pts)
        n = int(np.count_nonzero(inside & in_net))
        c = int(np.count_nonzero(inside & in_ct))
        both = int(np.count_nonzero(inside & in_net & in_ct))
        dice = 2.0 * both / (n + c) if n + c else float("nan")
        rec = dict(level=name, found=True, centre_lps_mm=region.centre, dice=dice,
                   network_ml=n * voxel_ml, ct_ml=c * voxel_ml, missed_ml=(c - both) * voxel_ml,
                   extra_ml=(n - both) * voxel_ml)
        if c * voxel_ml < options.min_ct_bone_ml:
            record = LevelAgreement(**rec, agrees=None,
                                    reason=f"too little CT bone at {name} to judge "
                                           f"({c * voxel_ml:.2f} ml)")
        else:
            lo, hi = options.volume_ratio_range
            ratio = n / c
            ok = bool(dice >= options.min_dice and lo <= ratio <= hi)
            record = LevelAgreement(**rec, agrees=ok)
            warning = disagreement_warning(record, options)
            if warning is not None:
                record = LevelAgreement(**rec, agrees=False, reason=warning)
                result.warnings.append(warning)
        result.levels.append(record)
    result.timings_s.update(levels=t1 - t0, compare=time.perf_counter() - t1,
                            total=time.perf_counter() - t0)
    report(progress, 1.0, "bone compared")
    return result


def _chain_with_cavities(grid: Volume, bone: np.ndarray, options: AgreementOptions, *,
                         hu: Volume | None, progress: ProgressCallback | None
                         ) -> tuple[np.ndarray, LevelEvidence] | None:
    """The chain of :func:`_chain` (and its evidence) on the CT bone with its small filled
    cavities, when the count without them failed; None when this fails too.

    The cavities are left out of the count because in a disc the bone bridges they are its
    last voxels. In an elderly spine they are the fatty marrow's pockets: TotalSegmentator's
    real 3 mm CT has 679 of them (18 ml) in every body from L1 to the sacrum and in the ilia,
    and without them the count found no gap between L5 and S1, so the check did not run. With
    them it finds L4-S1 (the planning counts that CT on the same filled bone), the network's
    bone disagrees at L4, L5 and S1 (Dice 0.74 / 0.62 / 0.43) and the planned disc lies between
    the CT's L5 and S1.
    """
    # Held at the first count's end (0.7): the first may have failed anywhere before it, and a
    # bar must not run backwards.
    try:
        return _chain(grid, bone, options, hu=hu,
                      progress=sub_progress(progress, 0.7, 0.7, "levels, with the cavities: "))
    except AnatomyError:
        return None


def _levels_not_found(result: BoneAgreement, exc: AnatomyError, t0: float,
                      progress: ProgressCallback | None) -> BoneAgreement:
    """``result`` saying why the check could not run (``exc``: the count's refusal)."""
    result.reason = f"the levels L4-S1 could not be found in the CT's bone ({exc})"
    result.ct_ends_at = _ends_above_l5(exc)
    result.warnings.append("the segmentation could not be checked against the CT: "
                           + result.reason)
    result.timings_s["total"] = time.perf_counter() - t0
    report(progress, 1.0, "levels not found")
    return result


def check_segmentation(seg: "Segmentation", ct: Volume, *, options: AgreementOptions | None = None,
                       ct_bone_options: "CTBoneOptions | None" = None,
                       progress: ProgressCallback | None = None) -> BoneAgreement:
    """The agreement check of a network segmentation, reusing its CT bone model result.

    The network's own bone (before fusion: :meth:`Segmentation.network_bone_mask`) is compared
    with the CT bone model's (``seg.ct_bone``; run here, and kept in ``seg.ct_bone``, when the
    segmentation did not run it, i.e. bone source ``network``). The result is also stored in
    ``seg.bone_check``.

    Parameters
    ----------
    seg : Segmentation
        From :meth:`spinect_core.segment.Segmenter.segment` on ``ct``.
    ct : Volume
        The CT that was segmented (HU, (z, y, x)).
    options : AgreementOptions, optional
    ct_bone_options : CTBoneOptions, optional
        Used only when the CT bone model has to run.
    progress : callable, optional
    """
    if seg.ct_bone is None:
        from spinect_core.bone.ct_model import segment_bone_from_ct

        seg.ct_bone = segment_bone_from_ct(ct, options=ct_bone_options,
                                           progress=sub_progress(progress, 0.0, 0.5,
                                                                 "CT bone model: "))
        progress = sub_progress(progress, 0.5, 1.0)
    check = compare_bone(seg.network_bone_mask(), seg.ct_bone, hu=ct, options=options,
                         progress=progress)
    seg.bone_check = check
    return check


# --- the planned level against the CT's count ----------------------------------------------------
#: Centre-to-centre distance of two lumbar bodies used when L4 is not in the CT's chain (mm;
#: body height 25-30 mm plus a disc, ANATOMY.md).
NOMINAL_LEVEL_SPACING_MM = 35.0


@dataclass(frozen=True, kw_only=True)
class PlannedLevelCheck:
    """Where the planned L5/S1 disc lies among the vertebrae counted on the CT's own bone.

    The CT bone model's levels (:func:`compare_bone`, step 1) are counted on other evidence than
    the segmentation's, so a segmentation that merged, missed or split a body (and so planned
    one level too high or too low) shows as a disc outside the CT's L5-to-S1 interval.

    Attributes
    ----------
    judged : bool
        The CT's chain held L5 and S1.
    offset_mm : float or None
        The planned disc centre's distance below the CT's L5 body centre along the column
        (caudal +; the unit vector from the CT's L4 to its L5 centre, or from L5 to S1 without
        L4). The right level lies at about half a level spacing.
    level_spacing_mm : float or None
        The CT's L4-L5 centre distance (:data:`NOMINAL_LEVEL_SPACING_MM` without L4).
    agrees : bool or None
        ``0 <= offset_mm <= level_spacing_mm``: the disc lies between the CT's L5 centre and
        the centre of the body below it. ``None`` when not judged.
    warning : str
        What a user must check when it disagrees ("" otherwise).
    """

    judged: bool = False
    offset_mm: float | None = None
    level_spacing_mm: float | None = None
    agrees: bool | None = None
    warning: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"method": "planned L5/S1 disc centre between the CT bone model's L5 body centre "
                          "and one level spacing below it, along the column",
                "judged": bool(self.judged), "offset_mm": _round(self.offset_mm, 1),
                "level_spacing_mm": _round(self.level_spacing_mm, 1), "agrees": self.agrees,
                "warning": self.warning}


def check_planned_level(check: BoneAgreement, disc_centre_lps: np.ndarray | Any
                        ) -> PlannedLevelCheck:
    """Does the planned L5/S1 disc lie where the CT's own bone counts it?

    Parameters
    ----------
    check : BoneAgreement
        :func:`compare_bone`'s result (its L4, L5 and S1 body centres from the CT's bone).
    disc_centre_lps : array-like, shape (3,)
        The planned L5/S1 disc centre (LPS, mm), from the segmentation.

    Returns
    -------
    PlannedLevelCheck
        Not judged when the CT's chain lacks L5 or S1, unless the CT's count (from the ribs)
        says the scan ends above L5 (:attr:`BoneAgreement.ct_ends_at`): then no L5/S1 can be in
        view and the planned one disagrees.
    """
    if not check.levels_found and check.ct_ends_at:
        return PlannedLevelCheck(
            judged=True, agrees=False,
            warning=(f"the level is in doubt: the CT's own bone, counted down from the last "
                     f"rib-bearing vertebra (T12), ends at {check.ct_ends_at}, so L5/S1 would not "
                     "be in the field of view and the planned \"L5/S1\" may be another level; "
                     "confirm the level on the images before using this plan"))
    centres = {r.level: r.centre_lps_mm for r in check.levels
               if r.found and r.centre_lps_mm is not None}
    if not check.levels_found or "L5" not in centres or "S1" not in centres:
        return PlannedLevelCheck()
    l5 = np.asarray(centres["L5"], float)
    if "L4" in centres:
        axis = l5 - np.asarray(centres["L4"], float)
        spacing = float(np.linalg.norm(axis))
    else:
        axis = np.asarray(centres["S1"], float) - l5
        spacing = NOMINAL_LEVEL_SPACING_MM
    u = unit_or_zero(axis)
    if not np.any(u) or spacing <= 0.0:
        return PlannedLevelCheck()
    offset = float((np.asarray(disc_centre_lps, float).reshape(3) - l5) @ u)
    agrees = bool(0.0 <= offset <= spacing)
    warning = ""
    if not agrees:
        where = (f"{-offset:.0f} mm above the centre of the body" if offset < 0.0
                 else f"{offset:.0f} mm below the centre of the body")
        guess = "L4/L5" if offset < 0.0 else "S1/S2"
        # The CT's count can be the one that is off (TotalSegmentator's real CT at 1 mm: the
        # plan at L5/S1, 3.4 mm from the reference's disc; the CT bone's 2 mm blocks joined L5
        # to the sacrum and counted 4 lumbar vertebrae): said, so that both are checked.
        own = (f"; that count is itself in doubt: {check.ct_count_doubt}"
               if check.ct_count_doubt else "")
        warning = (f"the level is in doubt: the planned L5/S1 disc lies {where} that the CT's "
                   f"own bone counts as L5 (the CT's count would make it {guess}{own}); confirm "
                   "the level on the images before using this plan")
    return PlannedLevelCheck(judged=True, offset_mm=offset, level_spacing_mm=spacing,
                             agrees=agrees, warning=warning)


def _ends_above_l5(refusal: AnatomyError) -> str | None:
    """The last level of a refused count that the ribs named above L5 (``"L3"``), else None."""
    from spinect_core.anatomy.counting import level_rank, refused_last_level

    last = refused_last_level(refusal)
    if last is None or getattr(getattr(refusal, "evidence", None), "counted_from", "") != "ribs":
        return None
    return last if level_rank(last) < level_rank("L5") else None


# --- levels and regions --------------------------------------------------------------------------
def _chain(grid: Volume, bone: np.ndarray, options: AgreementOptions, *, hu: Volume | None,
           progress: ProgressCallback | None) -> tuple[np.ndarray, LevelEvidence]:
    """Vertebral body centres of the CT bone's spine chain (K, 3) LPS, cranial first, ending
    with L5 and the sacrum (counted with the CT ``hu`` when given), and the count's evidence;
    raises :class:`AnatomyError` when :func:`derive_parts` refuses."""
    from spinect_core.anatomy.levels import block_majority, block_mean, derive_parts

    # On the blocks of the planning's own first pass (``LevelOptions.coarse_mm``): the chain,
    # ribs and sacrum are then found on the same voxels as when the planning counts a label map
    # on this grid. A finer block size (1.5 mm on a 0.7 x 0.7 x 2.5 mm chest CT) found a lumbar
    # transverse process as a rib and named L2 "T12".
    blocks, coarse, _ = block_majority(np.asarray(bone, bool), grid, (0, 0, 0),
                                       options.level_grid_mm)
    coarse_ct = None if hu is None else coarse.with_array(
        block_mean(np.asarray(hu.array), grid, options.level_grid_mm))
    derived = derive_parts(coarse.with_array(blocks.astype(np.uint8)), _BONE_TABLE, ct=coarse_ct,
                           progress=progress)
    chain = np.asarray(derived.chain_centres_lps, float).reshape(-1, 3)
    # derive_parts takes the sacrum and L5 from the chain's end; use its own fields for them
    # so the check names the levels exactly as the planning does.
    chain[-1] = np.asarray(derived.sacrum_centre_lps, float)
    chain[-2] = np.asarray(derived.l5_centre_lps, float)
    return chain, derived.evidence


def _count_doubt(evidence: LevelEvidence) -> str:
    """Why the CT's own count is in doubt ("" unless its level confidence is low): its number
    of lumbar vertebrae when the ribs and the sacrum disagree, else its confidence."""
    if evidence.confidence != "low":
        return ""
    if evidence.lumbar_count is not None and evidence.lumbar_count != 5:
        return (f"it counts {evidence.lumbar_count} lumbar vertebrae between T12 and the "
                "sacrum")
    return "its own level confidence is low"


@dataclass
class _Region:
    """A level's region: between two planes, within a box about the column axis."""

    centre: np.ndarray
    up_point: np.ndarray
    up_normal: np.ndarray        # points cranially; inside: (p - up_point) . n <= 0
    down_point: np.ndarray
    down_normal: np.ndarray      # points cranially; inside: (p - down_point) . n >= 0
    lateral: np.ndarray
    posterior: np.ndarray
    lateral_mm: float
    anterior_mm: float
    posterior_mm: float

    def contains(self, pts: np.ndarray) -> np.ndarray:
        d = pts - self.centre
        inside = ((pts - self.up_point) @ self.up_normal <= 0.0) & (
            (pts - self.down_point) @ self.down_normal >= 0.0)
        inside &= np.abs(d @ self.lateral) <= self.lateral_mm
        ap = d @ self.posterior
        return inside & (ap >= -self.anterior_mm) & (ap <= self.posterior_mm)

    def corners(self) -> np.ndarray:
        axis = self.up_point - self.down_point
        half = 0.5 * float(np.linalg.norm(axis)) * 1.5 + 5.0   # tilted planes: generous
        a = axis / max(float(np.linalg.norm(axis)), 1e-9)
        mid = 0.5 * (self.up_point + self.down_point)
        out = []
        for s_a in (-half, half):
            for s_l in (-self.lateral_mm, self.lateral_mm):
                for s_p in (-self.anterior_mm, self.posterior_mm):
                    out.append(mid + s_a * a + s_l * self.lateral + s_p * self.posterior)
        return np.array(out)


def _regions(chain: np.ndarray, options: AgreementOptions) -> dict[str, _Region]:
    """The region of each level of :data:`LEVELS` present in the chain (the last body is S1)."""
    out: dict[str, _Region] = {}
    for offset, name in enumerate(reversed(LEVELS)):
        k = len(chain) - 1 - offset
        if k < 0:
            continue
        c = chain[k]
        down = 0.5 * (c + chain[k + 1]) if k + 1 < len(chain) else None
        up = 0.5 * (chain[k - 1] + c) if k > 0 else None
        if up is None and down is None:
            continue
        down_n = unit_or_zero(c - chain[k + 1]) if down is not None else None
        up_n = unit_or_zero(chain[k - 1] - c) if up is not None else None
        if up is None:
            up, up_n = 2.0 * c - down, down_n
        if down is None:
            down, down_n = 2.0 * c - up, up_n
        axis = unit_or_zero(up - down)
        lateral = unit_or_zero(np.array([1.0, 0.0, 0.0]) - axis[0] * axis)
        posterior = unit_or_zero(np.cross(axis, lateral))
        if posterior[1] < 0:        # +y is posterior in LPS
            posterior = -posterior
        out[name] = _Region(centre=c, up_point=up, up_normal=up_n, down_point=down,
                            down_normal=down_n, lateral=lateral, posterior=posterior,
                            lateral_mm=options.lateral_mm, anterior_mm=options.anterior_mm,
                            posterior_mm=options.posterior_mm)
    return out


def _index_box(grid: Volume, regions: dict[str, _Region], shape: tuple[int, ...]
               ) -> list[tuple[int, int]]:
    """(start, stop) per axis (z, y, x) of the index box holding every region."""
    if not regions:
        return [(0, 0)] * 3
    corners = np.concatenate([r.corners() for r in regions.values()])
    idx = grid.lps_to_index(corners)[:, ::-1]                           # (z, y, x)
    lo = np.floor(idx.min(axis=0)).astype(int) - 1
    hi = np.ceil(idx.max(axis=0)).astype(int) + 2
    return [(max(int(a), 0), min(int(b), int(n))) for a, b, n in zip(lo, hi, shape)]


def _round(v: Any, digits: int) -> float | None:
    if v is None:
        return None
    v = float(v)
    return round(v, digits) if math.isfinite(v) else None
