"""Training losses: the study's weighted softmax cross-entropy and Dice + cross-entropy.

Shapes: ``logits`` (B, C, z, y, x) float, ``target`` (B, z, y, x) int64 class ids.

Class weights (the study used a weighted cross-entropy; its weights are not published) default to
**median-frequency balancing** (Eigen & Fergus 2015): ``w_c = median(f) / f_c`` with ``f_c`` the
voxel frequency of class c over the training cases, clipped to ``[1/max_ratio, max_ratio]``
(an absent class would otherwise get an infinite weight). For background/bone/nerve at roughly
0.9/0.09/0.01 that is about 0.1/1/9: a missed nerve voxel costs as much as ninety missed
background voxels.

The Dice term is the soft Dice of nnU-Net's "batch Dice": per class over the whole batch,
averaged over the foreground classes, ``1 - mean(2 |P.G| + s) / (|P| + |G| + s)``.

**Unlabelled voxels.** A target voxel of :data:`UNLABELLED` (255) has no reference label (e.g. the
nerves, discs and canal of a CT whose only annotation is bone): it contributes nothing to either
term. The cross-entropy is the weighted mean over the labelled voxels only (``ignore_index``), the
soft Dice masks both the probabilities and the one-hot target there, so whatever the network
predicts on such voxels neither helps nor hurts. Teaching them as background instead would train
the network to erase the very structures it is meant to find.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["UNLABELLED", "class_weights", "SegmentationLoss", "soft_dice_loss"]

#: Label-map value meaning "no reference label here": excluded from the loss, from class counts,
#: from foreground sampling and from validation metrics. 255 is the largest uint8, far above any
#: class id of a model's table.
UNLABELLED = 255


def class_weights(voxel_counts: Sequence[int] | np.ndarray, *,
                  scheme: Literal["median_frequency", "inverse", "inverse_sqrt", "none"]
                  = "median_frequency", max_ratio: float = 100.0) -> np.ndarray:
    """Cross-entropy class weights from voxel counts per class.

    Parameters
    ----------
    voxel_counts : sequence of int, shape (C,)
        Voxels of each class over the training cases (labelled voxels only: :data:`UNLABELLED`
        voxels are not a class and must not be counted, see
        :func:`~spinect_core.training.dataset.class_voxel_counts`).
    scheme : {"median_frequency", "inverse", "inverse_sqrt", "none"}
        ``median_frequency``: ``median(f) / f``; ``inverse``: ``1 / f``; ``inverse_sqrt``:
        ``1 / sqrt(f)``; the latter two are scaled to mean 1. ``none``: all ones.
    max_ratio : float
        Weights are clipped to ``[1 / max_ratio, max_ratio]`` (after scaling).

    Returns
    -------
    np.ndarray, float32, shape (C,)
    """
    counts = np.asarray(voxel_counts, dtype=np.float64)
    if scheme == "none":
        return np.ones(counts.size, dtype=np.float32)
    freq = counts / max(counts.sum(), 1.0)
    safe = np.where(freq > 0, freq, np.nan)
    if scheme == "median_frequency":
        w = np.nanmedian(safe) / safe
    elif scheme == "inverse":
        w = 1.0 / safe
        w = w / np.nanmean(w)
    elif scheme == "inverse_sqrt":
        w = 1.0 / np.sqrt(safe)
        w = w / np.nanmean(w)
    else:
        raise ValueError(f"unknown class-weight scheme {scheme!r}")
    w = np.where(np.isnan(w), max_ratio, w)  # an absent class: weight it as much as allowed
    return np.clip(w, 1.0 / max_ratio, max_ratio).astype(np.float32)


class SegmentationLoss(nn.Module):
    """Weighted cross-entropy, optionally plus soft Dice.

    Parameters
    ----------
    kind : {"ce", "dice_ce"}
        ``"ce"``: the study's weighted softmax cross-entropy. ``"dice_ce"``: ``dice_weight *
        Dice loss + ce_weight * CE`` (nnU-Net; robust to class imbalance).
    weights : sequence of C floats, optional
        Cross-entropy class weights (see :func:`class_weights`).
    dice_weight, ce_weight : float
    smooth : float
        Added to numerator and denominator of the soft Dice.

    Returns (forward)
    -----------------
    torch.Tensor
        Scalar loss; :attr:`last_terms` holds the floats of its parts for logging.

    Notes
    -----
    ``target`` voxels equal to :data:`UNLABELLED` are ignored by both terms. A batch without any
    labelled voxel gives a cross-entropy of 0 (not torch's 0/0 = NaN), so a rare all-unlabelled
    batch is a no-op step rather than a "non-finite loss" abort.
    """

    def __init__(self, *, kind: Literal["ce", "dice_ce"] = "ce",
                 weights: Sequence[float] | None = None, dice_weight: float = 1.0,
                 ce_weight: float = 1.0, smooth: float = 1e-5) -> None:
        super().__init__()
        if kind not in ("ce", "dice_ce"):
            raise ValueError(f"loss kind must be 'ce' or 'dice_ce', got {kind!r}")
        self.kind = kind
        self.register_buffer("weights", None if weights is None
                             else torch.as_tensor(np.asarray(weights, dtype=np.float32)))
        self.dice_weight = float(dice_weight)
        self.ce_weight = float(ce_weight)
        self.smooth = float(smooth)
        self.last_terms: dict[str, float] = {}

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # under autocast: losses in float32
        ce = _masked_cross_entropy(logits, target, self.weights)
        if self.kind == "ce":
            self.last_terms = {"ce": float(ce.detach())}
            return ce
        dice = soft_dice_loss(logits, target, smooth=self.smooth)
        self.last_terms = {"ce": float(ce.detach()), "dice": float(dice.detach())}
        return self.ce_weight * ce + self.dice_weight * dice


def _masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                          weights: torch.Tensor | None) -> torch.Tensor:
    """Weighted mean cross-entropy over the labelled voxels; 0 when there are none.

    What ``F.cross_entropy(..., ignore_index=UNLABELLED)`` computes (``sum w_y nll / sum w_y``),
    except that an all-unlabelled batch gives 0 instead of 0/0, without a host synchronisation
    to test for that case.
    """
    total = F.cross_entropy(logits, target, weight=weights, ignore_index=UNLABELLED,
                            reduction="sum")
    labelled = target != UNLABELLED
    if weights is None:
        denom = labelled.sum().to(total.dtype)
    else:
        safe = torch.where(labelled, target, torch.zeros_like(target))
        denom = (weights[safe] * labelled).sum()
    return total / denom.clamp_min(torch.finfo(total.dtype).tiny)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, smooth: float = 1e-5
                   ) -> torch.Tensor:
    """``1 - mean over foreground classes of the batch soft Dice`` (see the module docstring).

    Parameters
    ----------
    logits : torch.Tensor, (B, C, z, y, x)
    target : torch.Tensor, int64, (B, z, y, x)
        Class ids; :data:`UNLABELLED` voxels are left out of every class's sums.
    """
    probs = torch.softmax(logits, dim=1)
    labelled = (target != UNLABELLED).unsqueeze(1).to(probs.dtype)  # (B, 1, z, y, x)
    # one_hot needs ids < C: unlabelled voxels become 0 here and are zeroed by the mask below.
    safe = torch.where(target == UNLABELLED, torch.zeros_like(target), target)
    onehot = F.one_hot(safe, num_classes=logits.shape[1]).movedim(-1, 1).to(probs.dtype)
    probs = probs * labelled
    onehot = onehot * labelled
    dims = (0, 2, 3, 4)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2.0 * inter + smooth) / (denom + smooth)
    return 1.0 - dice[1:].mean()
