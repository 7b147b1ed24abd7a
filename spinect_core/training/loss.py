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
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["class_weights", "SegmentationLoss"]


def class_weights(voxel_counts: Sequence[int] | np.ndarray, *,
                  scheme: Literal["median_frequency", "inverse", "inverse_sqrt", "none"]
                  = "median_frequency", max_ratio: float = 100.0) -> np.ndarray:
    """Cross-entropy class weights from voxel counts per class.

    Parameters
    ----------
    voxel_counts : sequence of int, shape (C,)
        Voxels of each class over the training cases.
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
        ce = F.cross_entropy(logits, target, weight=self.weights)
        if self.kind == "ce":
            self.last_terms = {"ce": float(ce.detach())}
            return ce
        dice = soft_dice_loss(logits, target, smooth=self.smooth)
        self.last_terms = {"ce": float(ce.detach()), "dice": float(dice.detach())}
        return self.ce_weight * ce + self.dice_weight * dice


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, smooth: float = 1e-5
                   ) -> torch.Tensor:
    """``1 - mean over foreground classes of the batch soft Dice`` (see the module docstring).

    Parameters
    ----------
    logits : torch.Tensor, (B, C, z, y, x)
    target : torch.Tensor, int64, (B, z, y, x)
    """
    probs = torch.softmax(logits, dim=1)
    onehot = F.one_hot(target, num_classes=logits.shape[1]).movedim(-1, 1).to(probs.dtype)
    dims = (0, 2, 3, 4)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2.0 * inter + smooth) / (denom + smooth)
    return 1.0 - dice[1:].mean()
