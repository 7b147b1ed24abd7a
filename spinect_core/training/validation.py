"""Validation during training: sliding-window segmentation of the validation cases and per-class
Dice, IoU and pixel accuracy (the study's metrics) on the model grid.

Voxels whose reference is :data:`~.loss.UNLABELLED` are left out of every class's counts (of
predicted as well as reference voxels): whatever the network predicts where nobody labelled
anything is neither right nor wrong.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from spinect_core.labels import LabelTable
from spinect_core.training.dataset import PreparedCase
from spinect_core.training.loss import UNLABELLED
from spinect_core.training.options import TrainOptions

__all__ = ["validate"]


def validate(model: torch.nn.Module, cases: Sequence[PreparedCase], table: LabelTable, *,
             options: TrainOptions, device: torch.device | str) -> dict[str, Any]:
    """Segment prepared validation cases and measure Dice, IoU and pixel accuracy per class.

    Parameters
    ----------
    model : torch.nn.Module
        The bare network (not the DDP wrapper); left in eval mode.
    cases : sequence of PreparedCase
        Normalised images and labels on the model grid; label voxels of
        :data:`~.loss.UNLABELLED` are excluded from the metrics.
    table : LabelTable
    options : TrainOptions
        Patch, stride, blending and batch of the sliding window.
    device : torch.device or str

    Returns
    -------
    dict
        ``{"per_class": {name: {"dice", "iou", "pixel_accuracy"}}, "mean_dice": float,
        "cases": int}``; each metric is the mean over cases (pixel accuracy ignores cases
        where it is undefined; ``None`` when undefined everywhere).
    """
    from spinect_core.inference import Predictor, PredictorOptions
    from spinect_core.metrics import overlap_counts

    # float32 and the default memory layout: validation must not change the training model's
    # numerics (bf16 or channels-last would alter later iterations and break exact resumption).
    predictor = Predictor(model, num_classes=table.num_classes, options=PredictorOptions(
        patch_size=options.patch_size, stride=options.stride, blend=options.val_blend,
        batch_size=options.val_batch_size, device=str(device), precision="float32",
        channels_last=False, keep_probabilities=False, cpu_fallback=True))
    values: dict[str, dict[str, list[float]]] = {
        name: {"dice": [], "iou": [], "pixel_accuracy": []} for name in table.foreground().values()}
    for case in cases:
        pred = predictor.predict(case.image).labels
        labelled = case.labels != UNLABELLED
        for cid, name in table.foreground().items():
            counts = overlap_counts((pred == cid) & labelled, case.labels == cid)
            values[name]["dice"].append(counts.dice)
            values[name]["iou"].append(counts.iou)
            values[name]["pixel_accuracy"].append(counts.pixel_accuracy)
    per_class: dict[str, dict[str, float | None]] = {}
    for name, metrics in values.items():
        per_class[name] = {}
        for key, vals in metrics.items():
            finite = [v for v in vals if math.isfinite(v)]
            per_class[name][key] = float(np.mean(finite)) if finite else None
    dices = [m["dice"] for m in per_class.values() if m["dice"] is not None]
    return {"per_class": per_class, "mean_dice": float(np.mean(dices)) if dices else 0.0,
            "cases": len(cases)}
