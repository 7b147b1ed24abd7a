"""Choose the bone of a segmentation: the network's, the CT's, or both fused.

``spinect segment/plan --bone network|ct|fused``:

* ``network``: the label map as the network predicted it;
* ``ct``: bone is exactly the CT bone model's (:func:`~spinect_core.bone.segment_bone_from_ct`);
  voxels the network called bone that the CT does not show as bone get the network's next most
  likely class (disc, dura, nerve or background), so the network's soft-tissue classes survive;
* ``fused``: the CT's bone plus the network's bone within :attr:`FusionOptions.near_mm` of it
  (a low-density cancellous region or a thin cortex the thresholds missed), never the network's
  bone far from any CT bone (false bone in enhanced organs, bowel contrast).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage as ndi

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
    """

    near_mm: float = 3.0


def combine_bone(labels: Volume, table: LabelTable, ct_bone: np.ndarray, *, mode: BoneMode,
                 probabilities: np.ndarray | None = None,
                 options: FusionOptions | None = None) -> Volume:
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
        bone class their next most likely class. Without them they become background.
    options : FusionOptions, optional

    Returns
    -------
    Volume
        A new label map (same geometry); ``labels`` is not modified.
    """
    if mode not in BONE_MODES:
        raise ValueError(f"bone mode must be one of {BONE_MODES}, got {mode!r}")
    if mode == "network":
        return labels
    options = options or FusionOptions()
    arr = np.asarray(labels.array)
    ct_mask = np.asarray(ct_bone).astype(bool)
    if ct_mask.shape != arr.shape:
        raise ValueError(f"CT bone mask shape {ct_mask.shape} differs from the labels' {arr.shape}")
    bone_id = table.id_of("bone")
    net_bone = arr == bone_id
    if mode == "ct":
        bone = ct_mask
    else:
        sp = np.asarray(labels.spacing_mm, float)[::-1]
        near = ndi.distance_transform_edt(~ct_mask, sampling=sp) <= options.near_mm \
            if ct_mask.any() else np.zeros_like(ct_mask)
        bone = ct_mask | (net_bone & near)
    out = arr.copy()
    lost = net_bone & ~bone
    if lost.any():
        out[lost] = _next_best(probabilities, lost, bone_id, table)
    out[bone] = bone_id
    return labels.with_array(out)


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
