"""Choose the bone of a segmentation: the network's, the CT's, or both fused.

``spinect segment/plan --bone network|ct|fused``:

* ``network``: the label map as the network predicted it;
* ``ct``: bone is exactly the CT bone model's (:func:`~spinect_core.bone.segment_bone_from_ct`);
  voxels the network called bone that the CT does not show as bone get the network's next most
  likely class (disc, dura, nerve or background), so the network's soft-tissue classes survive;
* ``fused``: the CT's bone plus the network's bone within :attr:`FusionOptions.near_mm` of it
  (a low-density cancellous region or a thin cortex the thresholds missed), never the network's
  bone far from any CT bone (false bone in enhanced organs, bowel contrast) nor in a disc the
  CT bone model found walled in by osteophytes and left out (``ct_not_bone``); optionally
  (:attr:`FusionOptions.soft_classes`, off by default) the network's disc, dura or nerve stays
  where the CT is darker than cortex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from spinect_core.bone.ct_model import _bbox
from spinect_core.distance import distance_inside
from spinect_core.labels import LabelTable
from spinect_core.volume import Volume

__all__ = ["BONE_MODES", "BoneMode", "FusionOptions", "combine_bone"]

BoneMode = Literal["network", "ct", "fused"]
#: The choices of ``--bone``.
BONE_MODES: tuple[str, ...] = ("network", "ct", "fused")


@dataclass(frozen=True, kw_only=True)
class FusionOptions:
    """Options of :func:`combine_bone`.

    Attributes
    ----------
    near_mm : float
        ``fused``: network bone within this distance (mm) of the CT's bone is kept.
    soft_classes : tuple of str
        ``fused``: the network's classes that keep their voxels from the CT's bone where the CT
        is darker than :attr:`soft_below_hu` (classes the table lacks are ignored), e.g.
        ``("disc", "dura", "nerve")``. The CT bone model's filled holes are a geometric guess:
        on patient-like phantoms at 2-3 mm it fills discs and the canal, and the fused labels
        call them bone. Measured 2026-12-05 with ``("disc", "dura", "nerve")`` against the
        truth (seeds 206, 216, 221) without / with it: disc 0.40-0.75 / 0.82-0.90, dura
        0.52-0.94 / 0.89-0.94, bone 0.77-0.87 / 0.78-0.88; on the real CTs, where the network
        finds little disc and no dura, bone Dice within 0.002. L5/S1 on 24 patient-like
        phantoms: 19 within 3 mm instead of 18 and one refusal fewer, but with the sacrum made
        coreless (``benchmarks/levels_patient_like.py --hollow sacrum``) one case was planned a
        level off (34 mm) at *moderate* confidence, where without it that case is refused: a
        confident wrong level, so it is **off by default** until the level count is safe with
        the network's discs kept. The level count now doubts that case (its sacrum's core is
        hardly larger than the body above's), but on the real-bone phantoms at 1 x 1 x 2.5 mm
        the rule planned seed 106 a level off (35.1 mm) at moderate confidence with a sacrum
        that looks right (2.2x as wide, 5.2x as large; 7.5 mm, low, without the rule), so it
        stays off (measured 2026-12-05, session 15).
    soft_below_hu : float
        Cortex is brighter (300 HU and more, the CT bone model's lowest seed threshold); a
        filled hole (marrow, or a disc, canal or root taken for it) is darker.
    """

    near_mm: float = 3.0
    soft_classes: tuple[str, ...] = ()
    soft_below_hu: float = 300.0


def combine_bone(labels: Volume, table: LabelTable, ct_bone: np.ndarray, *, mode: BoneMode,
                 probabilities: np.ndarray | None = None, next_best: np.ndarray | None = None,
                 in_place: bool = False, options: FusionOptions | None = None,
                 ct_hu: np.ndarray | None = None,
                 ct_not_bone: np.ndarray | None = None,
                 ct_cavities: np.ndarray | None = None) -> Volume:
    """The label map with its bone class taken from ``mode``.

    Parameters
    ----------
    labels : Volume
        The network's class ids, array (z, y, x) uint8.
    table : LabelTable
        Must have a ``bone`` class.
    ct_bone : np.ndarray, bool or 0/1, shape (z, y, x)
        The CT bone model's mask on the same grid.
    mode : {"network", "ct", "fused"}
    probabilities : np.ndarray, shape (C, z, y, x), optional
        The network's class probabilities on the same grid; used to give voxels that lose the
        bone class their next most likely class. Without them (and without ``next_best``) they
        become background.
    next_best : np.ndarray, uint8, optional
        The class each voxel takes when it loses the bone class (wins over ``probabilities``):
        shape (z, y, x), or one value per voxel of the network's bone (``labels == bone``) in
        C order, which is all that is ever read (a tenth of the memory).
    in_place : bool
        Change ``labels.array`` itself and return ``labels`` (a thin-slice CT's label map is
        hundreds of MB; :class:`~spinect_core.segment.Segmenter` owns its map and needs no copy).
    options : FusionOptions, optional
    ct_hu : np.ndarray, shape (z, y, x), optional
        The CT's HU on the same grid: with it, ``fused`` keeps the network's soft-tissue classes
        where the CT is darker than cortex (:attr:`FusionOptions.soft_below_hu`).
    ct_not_bone : np.ndarray, bool or 0/1, shape (z, y, x), optional
        Voxels the CT bone model decided are not bone though enclosed like marrow
        (:attr:`~spinect_core.bone.ct_model.CTBone.discs`): ``fused`` does not add the
        network's bone there (on the real lumbar crop the network's bone within 3 mm of the
        endplates put the discs back: fused bone Dice 0.844 against the CT model's 0.866).
    ct_cavities : np.ndarray, bool or 0/1, shape (z, y, x), optional
        Voxels the CT bone model filled only as small cavities of its filled bone
        (:attr:`~spinect_core.bone.ct_model.CTBone.cavities`): where the network calls them
        disc they stay disc in ``ct`` and ``fused`` (in a disc the bone bridges at 3 mm its
        last voxels are such cavities, and the level count needs them: filled, L5's core
        merged with a neighbour's on 4 of 17 patient-like phantoms).

    Returns
    -------
    Volume
        The label map with the combined bone (same geometry); unless ``in_place``, a new one
        and ``labels`` is not modified.
    """
    if mode not in BONE_MODES:
        raise ValueError(f"bone mode must be one of {BONE_MODES}, got {mode!r}")
    if mode == "network":
        return labels
    options = options or FusionOptions()
    arr = np.asarray(labels.array)
    ct_mask = np.asarray(ct_bone)
    ct_mask = ct_mask.view(bool) if ct_mask.dtype == np.uint8 and ct_mask.max(initial=0) <= 1 \
        else ct_mask.astype(bool)
    if ct_mask.shape != arr.shape:
        raise ValueError(f"CT bone mask shape {ct_mask.shape} differs from the labels' {arr.shape}")
    bone_id = table.id_of("bone")
    net_bone = arr == bone_id
    if mode == "ct":
        bone = ct_mask
    else:
        sp = np.asarray(labels.spacing_mm, float)[::-1]
        # In place, one boolean map at a time: on a thin-slice CT each is hundreds of MB.
        bone = ~ct_mask
        bone &= net_bone
        _keep_near(bone, ct_mask, sp, options.near_mm)  # the network's bone near the CT's
        if ct_not_bone is not None:
            if ct_not_bone.shape != arr.shape:
                raise ValueError(f"CT not-bone mask shape {ct_not_bone.shape} differs from the "
                                 f"labels' {arr.shape}")
            bone &= np.asarray(ct_not_bone) == 0
        bone |= ct_mask
        soft_ids = [table.id_of(c) for c in options.soft_classes if table.has(c)]
        if ct_hu is not None and soft_ids:
            hu = np.asarray(ct_hu)
            if hu.shape != arr.shape:
                raise ValueError(f"CT shape {hu.shape} differs from the labels' {arr.shape}")
            for z in range(0, arr.shape[0], 16):         # 16 slices at a time (thin-slice CTs)
                rows = slice(z, z + 16)
                soft = np.isin(arr[rows], soft_ids)
                soft &= hu[rows] < options.soft_below_hu
                bone[rows] &= ~soft
    if ct_cavities is not None and table.has("disc"):
        if ct_cavities.shape != arr.shape:
            raise ValueError(f"CT cavities shape {ct_cavities.shape} differs from the labels' "
                             f"{arr.shape}")
        disc_id = table.id_of("disc")
        if np.shares_memory(bone, ct_mask):
            bone = bone.copy()                           # "ct": the caller's mask stays as is
        for z in range(0, arr.shape[0], 16):             # 16 slices at a time
            rows = slice(z, z + 16)
            bone[rows] &= ~((np.asarray(ct_cavities[rows]) != 0) & (arr[rows] == disc_id))
    # The voxels the network called bone that lose the class, in C order among its bone
    # voxels (what a compact ``next_best`` holds), then as a map in net_bone's own memory.
    lost_of_bone = ~bone[net_bone]
    compact = next_best is not None and next_best.shape != arr.shape
    replacement = next_best[lost_of_bone] if compact else None
    lost = net_bone
    for z in range(0, lost.shape[0], 16):              # lost &= ~bone, 16 slices at a time
        lost[z:z + 16] &= ~bone[z:z + 16]
    if lost_of_bone.any() and replacement is None:
        replacement = (_next_best(probabilities, lost, bone_id, table) if next_best is None
                       else next_best[lost])
    out = arr if in_place else arr.copy()
    if lost_of_bone.any():
        out[lost] = replacement
    del lost, net_bone
    out[bone] = bone_id
    return labels if in_place else labels.with_array(out)


def _next_best(probabilities: np.ndarray | None, where: np.ndarray, bone_id: int,
               table: LabelTable) -> np.ndarray:
    """The most likely class other than bone at the voxels of ``where`` (background without
    probabilities)."""
    background = table.id_of("background") if table.has("background") else 0
    if probabilities is None:
        return np.full(int(where.sum()), background, np.uint8)
    p = np.asarray(probabilities)[:, where].astype(np.float32)      # (C, n)
    p[bone_id] = -1.0
    return np.argmax(p, axis=0).astype(np.uint8)


def _keep_near(candidates: np.ndarray, mask: np.ndarray, spacing_zyx: np.ndarray,
               radius_mm: float, *, slab_voxels: int = 2_000_000) -> np.ndarray:
    """Keep, in place, only the ``candidates`` voxels within ``radius_mm`` of ``mask``.

    The distance transform runs only in the box around the candidates, a z-slab at a time
    with a margin of ``radius_mm`` on every side, so it never holds a whole-volume float map
    (a full-size Euclidean distance transform of a thin-slice CT needs several GB).

    Parameters
    ----------
    candidates : np.ndarray, bool, shape (z, y, x)
        Changed in place (and returned).
    mask : np.ndarray, bool, same shape
    spacing_zyx : np.ndarray, shape (3,), mm
    radius_mm : float
    """
    if not candidates.any():
        return candidates
    if not mask.any():
        candidates[...] = False
        return candidates
    margin = np.ceil(radius_mm / spacing_zyx).astype(int) + 1
    box = _bbox(candidates)
    lo = [b.start for b in box]
    hi = [b.stop for b in box]
    ny, nx = hi[1] - lo[1], hi[2] - lo[2]
    step = max(1, slab_voxels // max(1, ny * nx))
    for z0 in range(lo[0], hi[0], step):
        z1 = min(hi[0], z0 + step)
        box = tuple(slice(max(0, a - m), min(n, b + m)) for a, b, m, n in
                    zip((z0, lo[1], lo[2]), (z1, hi[1], hi[2]), margin, mask.shape))
        inner = tuple(slice(a - b.start, c - b.start) for a, c, b in
                      zip((z0, lo[1], lo[2]), (z1, hi[1], hi[2]), box))
        target = (slice(z0, z1), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
        sub = mask[box]
        if not sub.any():
            candidates[target] = False
            continue
        candidates[target] &= distance_inside(~sub, spacing_zyx)[inner] <= radius_mm
    return candidates
