"""Dice, IoU and pixel accuracy: hand-computed cases and agreement with MONAI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spinect_core.metrics import dice, iou, overlap_counts, pixel_accuracy


def test_hand_computed_3x3x3():
    gt = np.zeros((3, 3, 3), bool)
    gt[1] = True                       # 9 true voxels (middle slice)
    pred = np.zeros((3, 3, 3), bool)
    pred[1, :2, :] = True              # 6 of them found ...
    pred[0, 0, 0] = pred[2, 2, 2] = True  # ... plus 2 false positives
    c = overlap_counts(pred, gt)
    assert (c.tp, c.fp, c.fn, c.n_pred, c.n_gt) == (6, 2, 3, 8, 9)
    assert dice(pred, gt) == pytest.approx(2 * 6 / (8 + 9))
    assert iou(pred, gt) == pytest.approx(6 / 11)
    # Pixel accuracy (study): TP / true voxels; false positives do not lower it.
    assert pixel_accuracy(pred, gt) == pytest.approx(6 / 9)


def test_empty_masks():
    empty = np.zeros((2, 2, 2), bool)
    full = np.ones((2, 2, 2), bool)
    assert (dice(empty, empty), iou(empty, empty), pixel_accuracy(empty, empty)) == (1.0, 1.0, 1.0)
    assert (dice(empty, full), iou(empty, full), pixel_accuracy(empty, full)) == (0.0, 0.0, 0.0)
    assert dice(full, empty) == 0.0 and iou(full, empty) == 0.0
    assert math.isnan(pixel_accuracy(full, empty))
    with pytest.raises(ValueError, match="shape"):
        dice(empty, np.zeros((2, 2, 3), bool))


def _one_hot(labels: np.ndarray, n: int) -> np.ndarray:
    return np.stack([labels == c for c in range(n)])[None].astype(np.float32)


def test_agrees_with_monai_dice_and_iou():
    torch = pytest.importorskip("torch")
    monai_metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(3)
    n_classes = 4
    for _ in range(3):
        gt = rng.integers(0, n_classes, size=(9, 12, 15))
        # Predictions agree with the reference on ~70 % of voxels.
        pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, n_classes, size=gt.shape))
        yp, yt = torch.from_numpy(_one_hot(pred, n_classes)), torch.from_numpy(_one_hot(gt, n_classes))
        dm = monai_metrics.DiceMetric(include_background=False, reduction="none")
        im = monai_metrics.MeanIoU(include_background=False, reduction="none")
        d_ref = dm(yp, yt).numpy()[0]
        i_ref = im(yp, yt).numpy()[0]
        for c in range(1, n_classes):
            assert dice(pred == c, gt == c) == pytest.approx(float(d_ref[c - 1]), abs=1e-6)
            assert iou(pred == c, gt == c) == pytest.approx(float(i_ref[c - 1]), abs=1e-6)
