"""Voxel-overlap metrics of one class: Dice, IoU (Jaccard) and the study's pixel accuracy.

Definitions (``P`` = predicted voxels of the class, ``G`` = ground-truth voxels):

* Dice = 2 |P & G| / (|P| + |G|)
* IoU (Jaccard) = |P & G| / |P | G|
* pixel accuracy, as the SPINECT study defines it = |P & G| / |G| (true-positive voxels over true
  voxels, i.e. sensitivity / recall; it ignores false positives, which Dice and IoU penalise).

Empty masks (documented choice, the same in every metric of this package):

* both empty -> perfect agreement: Dice = IoU = pixel accuracy = 1.0 (nothing to find, nothing
  found). MONAI's ``DiceMetric(ignore_empty=True)`` returns NaN here instead.
* only the prediction empty -> 0.0 for all three.
* only the ground truth empty -> Dice = IoU = 0.0; pixel accuracy is undefined (no true voxel to
  recall) and returned as NaN (``null`` in JSON; summaries skip it and count it as undefined).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OverlapCounts", "overlap_counts", "dice", "iou", "pixel_accuracy"]


@dataclass(frozen=True, kw_only=True)
class OverlapCounts:
    """Voxel counts of one class.

    Attributes
    ----------
    tp : int
        Voxels in both prediction and ground truth.
    n_pred, n_gt : int
        Voxels in the prediction / ground truth.
    """

    tp: int
    n_pred: int
    n_gt: int

    @property
    def fp(self) -> int:
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        return self.n_gt - self.tp

    @property
    def dice(self) -> float:
        if self.n_pred + self.n_gt == 0:
            return 1.0
        return 2.0 * self.tp / (self.n_pred + self.n_gt)

    @property
    def iou(self) -> float:
        union = self.n_pred + self.n_gt - self.tp
        return 1.0 if union == 0 else self.tp / union

    @property
    def pixel_accuracy(self) -> float:
        if self.n_gt == 0:
            return 1.0 if self.n_pred == 0 else float("nan")
        return self.tp / self.n_gt


def overlap_counts(pred: np.ndarray, gt: np.ndarray) -> OverlapCounts:
    """Count true-positive, predicted and true voxels of two binary masks.

    Parameters
    ----------
    pred, gt : np.ndarray of bool, same shape (z, y, x)
        Non-bool arrays are read as ``!= 0``.
    """
    p = np.asarray(pred, dtype=bool)
    g = np.asarray(gt, dtype=bool)
    if p.shape != g.shape:
        raise ValueError(f"masks differ in shape: {p.shape} vs {g.shape}")
    return OverlapCounts(tp=int(np.count_nonzero(p & g)), n_pred=int(np.count_nonzero(p)),
                         n_gt=int(np.count_nonzero(g)))


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice coefficient of two binary masks (1.0 when both are empty)."""
    return overlap_counts(pred, gt).dice


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union (Jaccard) of two binary masks (1.0 when both are empty)."""
    return overlap_counts(pred, gt).iou


def pixel_accuracy(pred: np.ndarray, gt: np.ndarray) -> float:
    """The study's pixel accuracy: true-positive voxels / true voxels (NaN when only gt is empty)."""
    return overlap_counts(pred, gt).pixel_accuracy
