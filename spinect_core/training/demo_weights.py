"""The bundled demonstration weights: how they are measured and packaged.

The weights in ``assets/weights/spinect_default.safetensors`` were trained with this package's own
pipeline (:func:`spinect_core.training.train`) on synthetic phantoms (seeds in
:data:`TRAIN_SEEDS`, validation :data:`VAL_SEEDS`) plus a cranial slab of the real chest CT in
``shared/data/real_ct_chest`` with bone-only labels. This module holds the parts of that recipe
that must stay reproducible:

* :func:`evaluate_on_phantoms` - Dice, IoU and pixel accuracy per class (the study's Table 2) on
  phantoms never used in training (:data:`TEST_SEEDS`), each segmented on its own grid exactly
  as ``spinect segment`` would;
* :func:`evaluate_bone_on_chest` - bone Dice on the held-out caudal slab of the chest CT;
* :func:`evaluate_bone_on_real_ct` - bone on real CT for each bone source (``--bone network|ct|
  fused``) and for the issue's yardstick (``HU > 120`` with slice-wise hole filling): the chest
  CT's held-out slab, and the real lumbar crop counted within 3 mm of its labelled vertebrae
  (:func:`bone_metrics_near_reference`);
* :func:`calibrate_on_phantoms` - per-class decision weights fitted on the validation phantoms
  (:mod:`spinect_core.training.calibration`);
* :func:`package_weights` - the shipped file: float16 tensors and a model card that says plainly
  these are demonstration weights trained on synthetic data, with the measured metrics.

Command line::

    python -m spinect_core.training.demo_weights evaluate WEIGHTS [--seeds 0-9] [--json OUT]
    python -m spinect_core.training.demo_weights calibrate WEIGHTS --json FIT.json
    python -m spinect_core.training.demo_weights real-ct [WEIGHTS] [--data SHARED_DATA]
        [--json REAL.json]
    python -m spinect_core.training.demo_weights package BEST_MODEL OUT [--calibration FIT.json]
        [--metrics METRICS.json] [--real-ct REAL.json]

The phantom and chest evaluations measure the weights themselves: the bone class is the
network's (``SegmentOptions(bone="network")``) unless ``segment_options`` says otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spinect_core.progress import ProgressCallback, report, sub_progress

__all__ = ["TRAIN_SEEDS", "VAL_SEEDS", "TEST_SEEDS", "CHEST_TRAIN_Z", "CHEST_TEST_Z",
           "TABLE2_METRICS", "BASELINE", "LUMBAR_BAND_MM", "evaluate_on_phantoms",
           "evaluate_bone_on_chest", "evaluate_bone_on_real_ct", "bone_metrics",
           "bone_metrics_near_reference", "threshold_bone_baseline", "format_real_ct_table",
           "real_ct_card_entry", "calibrate_on_phantoms", "package_weights", "main"]

#: Phantom seeds of the training, validation and test sets (disjoint).
TRAIN_SEEDS: tuple[int, ...] = tuple(range(100, 116))
VAL_SEEDS: tuple[int, ...] = (116, 117)
TEST_SEEDS: tuple[int, ...] = tuple(range(0, 10))
#: Cranio-caudal fractions of the chest CT used for training and held out for the bone Dice.
CHEST_TRAIN_Z: tuple[float, float] = (0.0, 0.67)
CHEST_TEST_Z: tuple[float, float] = (0.67, 1.0)
#: The metrics of the study's Table 2.
TABLE2_METRICS: tuple[str, ...] = ("dice", "iou", "pixel_accuracy")
#: Row name of the issue's yardstick in the real-CT results: ``HU > 120`` with slice-wise hole
#: filling (:func:`threshold_bone_baseline`).
BASELINE = "baseline_hu120_filled"
#: The lumbar crop's metric counts prediction and reference within this distance (mm) of the
#: labelled vertebrae (the crop's edges hold bone that is not labelled).
LUMBAR_BAND_MM = 3.0

DEMO_DESCRIPTION = (
    "DEMONSTRATION WEIGHTS, trained on synthetic data: a narrow 3D U-Net trained with SPINECT "
    "planner's own pipeline on synthetic lumbosacral phantoms (and bone-only labels of one real "
    "chest CT). They show the workflow end to end; they have never seen a labelled patient "
    "lumbosacral CT and must not be used on patients. Train site weights with `spinect train`."
)


def _segment_options(segment_options: Any | None) -> Any:
    """The caller's options, or the network's own bone (the product's default bone source may
    be the CT's or a fusion; the weights' metrics are the network's)."""
    from spinect_core.segment import SegmentOptions

    return segment_options or SegmentOptions(bone="network")


def _segmented_phantoms(segmenter: Any, seeds: Sequence[int], spacing_mm: Sequence[float],
                        progress: ProgressCallback | None):
    """Yield ``(seed, phantom, segmentation)`` for each seed, reporting progress per phantom."""
    from spinect_core.phantom import generate_phantom

    n = len(seeds)
    for i, seed in enumerate(seeds):
        step = sub_progress(progress, i / n, (i + 1) / n, f"phantom {seed}: ")
        phantom = generate_phantom(seed=int(seed), spacing_mm=tuple(spacing_mm),
                                   progress=sub_progress(step, 0.0, 0.3))
        yield seed, phantom, segmenter.segment(phantom.ct, progress=sub_progress(step, 0.3, 1.0))


def evaluate_on_phantoms(weights: str | os.PathLike | None, *, seeds: Sequence[int] = TEST_SEEDS,
                         spacing_mm: Sequence[float] = (1.0, 1.0, 1.0),
                         segment_options: Any | None = None,
                         progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Segment phantoms and compare with their exact labels.

    Parameters
    ----------
    weights : path or None
        Weights file; ``None``: the bundled default.
    seeds : sequence of int
        Phantom seeds (default :data:`TEST_SEEDS`, never used in training).
    spacing_mm : 3 floats
        Phantom voxel size (x, y, z), millimetres.
    segment_options : SegmentOptions, optional
    progress : callable, optional
        ``progress(fraction, message)``; returning ``False`` cancels.

    Returns
    -------
    dict
        ``{"seeds": [...], "per_case": [{"seed": s, "classes": {name: metrics}}],
        "summary": {name: {metric: {"mean", "sd", "min", "max", "n", ...}}}}``; metrics are the
        study's Dice, IoU and pixel accuracy plus HD95 (mm) and surface Dice at 1 mm, on the
        phantom's own grid.
    """
    from spinect_core.labels import DEFAULT_LABELS
    from spinect_core.metrics.evaluate import compare_label_maps, summarise
    from spinect_core.segment import Segmenter

    segmenter = Segmenter.from_weights(weights, options=_segment_options(segment_options))
    cases, per_case = [], []
    for seed, phantom, seg in _segmented_phantoms(segmenter, seeds, spacing_mm, progress):
        metrics = compare_label_maps(seg.labels, seg.table, phantom.labels, DEFAULT_LABELS)
        cases.append(metrics)
        per_case.append({"seed": int(seed),
                         "classes": {name: m.to_dict() for name, m in metrics.items()}})
    summary = {name: {metric: s.to_dict() for metric, s in per_metric.items()}
               for name, per_metric in summarise(cases).items()}
    return {"seeds": [int(s) for s in seeds], "spacing_mm": [float(v) for v in spacing_mm],
            "per_case": per_case, "summary": summary}


def evaluate_bone_on_chest(weights: str | os.PathLike | None, chest_dir: str | os.PathLike, *,
                           z_range: tuple[float, float] = CHEST_TEST_Z,
                           segment_options: Any | None = None,
                           progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Bone Dice, IoU and pixel accuracy on a slab of the real chest CT.

    The reference is the CT's own bone classes (an automatic segmenter's output, good to about
    0.95 Dice, not manual ground truth); see :mod:`spinect_core.training.real_ct`.

    Parameters
    ----------
    weights : path or None
        Weights file; ``None``: the bundled default.
    chest_dir : path
        Folder with ``ct.nii.gz``, ``labels.nii.gz`` and ``structures.csv``.
    z_range : (float, float)
        Cranio-caudal fractions of the slab (default :data:`CHEST_TEST_Z`, held out of training).

    Returns
    -------
    dict
        ``{"z_range": [...], "bone": {"dice", "iou", "pixel_accuracy", ...}, "slices": n}``.
    """
    from spinect_core.io import load_ct
    from spinect_core.labels import LabelTable
    from spinect_core.metrics.evaluate import compare_label_maps
    from spinect_core.segment import Segmenter
    from spinect_core.training.real_ct import axial_slab, bone_mask_reference

    chest = Path(chest_dir)
    report(progress, 0.0, "loading the chest CT")
    slab = axial_slab(load_ct(chest / "ct.nii.gz"), z_range)
    reference = bone_mask_reference(chest / "labels.nii.gz", chest / "structures.csv",
                                    z_range=z_range)
    segmenter = Segmenter.from_weights(weights, options=_segment_options(segment_options))
    seg = segmenter.segment(slab, progress=sub_progress(progress, 0.05, 0.95, "segmenting: "))
    ref_volume = slab.with_array(reference.astype(np.uint8))
    metrics = compare_label_maps(seg.labels, seg.table, ref_volume,
                                 LabelTable({0: "background", 1: "bone"}), classes=["bone"])
    report(progress, 1.0, "compared")
    return {"z_range": [float(z) for z in z_range], "slices": int(slab.array.shape[0]),
            "bone": metrics["bone"].to_dict(),
            "reference": "automatic 118-class segmentation shipped with the CT (not manual)"}


# --- bone on real CT, per bone source -------------------------------------------------------------
def bone_metrics(pred: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Overlap metrics of a binary bone mask against a reference.

    Parameters
    ----------
    pred, reference : np.ndarray, bool or 0/1, same shape (z, y, x)

    Returns
    -------
    dict
        ``dice``, ``iou``, ``pixel_accuracy`` (the study's: TP / reference voxels, i.e. recall),
        ``recall`` (the same number, by its usual name), ``precision`` (TP / predicted voxels;
        ``None`` when nothing is predicted), and the voxel counts ``n_pred``, ``n_ref``, ``tp``.
    """
    from spinect_core.metrics.overlap import overlap_counts

    c = overlap_counts(pred, reference)
    recall = None if c.n_gt == 0 else c.tp / c.n_gt
    return {"dice": c.dice, "iou": c.iou, "pixel_accuracy": recall, "recall": recall,
            "precision": None if c.n_pred == 0 else c.tp / c.n_pred,
            "n_pred": c.n_pred, "n_ref": c.n_gt, "tp": c.tp}


def bone_metrics_near_reference(pred: np.ndarray, reference: np.ndarray,
                                spacing_zyx: Sequence[float], *,
                                band_mm: float = LUMBAR_BAND_MM) -> dict[str, Any]:
    """Bone metrics counted within ``band_mm`` of the reference only.

    For a reference that labels some bones but not all (the lumbar crop labels its vertebrae;
    the crop's edges hold ribs, pelvis or neighbouring vertebrae that are not labelled): the
    prediction and the reference are both restricted to the voxels within ``band_mm``
    (Euclidean, anisotropic) of a reference voxel, reference included. Bone predicted farther
    away is neither rewarded nor penalised; over-segmentation of a labelled vertebra by up to
    ``band_mm`` still counts against the prediction.

    Parameters
    ----------
    pred, reference : np.ndarray, bool or 0/1, same shape (z, y, x)
    spacing_zyx : 3 floats
        Voxel size along (z, y, x), millimetres.
    band_mm : float

    Returns
    -------
    dict
        As :func:`bone_metrics`, plus ``band_mm`` and ``n_pred_outside_band`` (predicted voxels
        left out).
    """
    from scipy import ndimage

    pred = np.asarray(pred).astype(bool)
    reference = np.asarray(reference).astype(bool)
    if pred.shape != reference.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} vs {reference.shape}")
    if reference.any():
        near = ndimage.distance_transform_edt(~reference, sampling=[float(s) for s in
                                                                    spacing_zyx]) <= band_mm
    else:
        near = np.zeros(reference.shape, bool)
    out = bone_metrics(pred & near, reference)
    out.update(band_mm=float(band_mm), n_pred_outside_band=int((pred & ~near).sum()))
    return out


def threshold_bone_baseline(ct: Any, *, hu: float = 120.0) -> np.ndarray:
    """The issue's yardstick: ``HU > hu`` with slice-wise hole filling.

    Holes are filled in each slice of the stored array's first axis (the file's own slices:
    axial for an axial acquisition, sagittal for the PIR-stored lumbar crop), as five lines of
    numpy would; this reproduces the issue's figures (lumbar crop: Dice 0.75, recall 0.74).

    Parameters
    ----------
    ct : Volume
        HU, array (z, y, x).
    hu : float

    Returns
    -------
    np.ndarray, bool, shape (z, y, x)
    """
    from scipy import ndimage

    mask = np.asarray(ct.array) > hu
    for k in range(mask.shape[0]):
        if mask[k].any():
            mask[k] = ndimage.binary_fill_holes(mask[k])
    return mask


def _bone_by_mode(segmenter: Any, ct: Any, modes: Sequence[str],
                  progress: ProgressCallback | None) -> tuple[dict[str, np.ndarray], Any]:
    """Bone masks of each source from one network run (and one CT bone model run).

    With ``bone="fused"`` the segmenter keeps the network's own bone and the CT bone model's
    mask beside the fused labels, so all three sources come from one run: ``network`` is the
    network's bone, ``ct`` the CT bone model's mask (``combine_bone(mode="ct")`` makes exactly
    that the bone class), ``fused`` the labels' bone.
    """
    with_ct = any(m != "network" for m in modes)
    segmenter.options = dataclasses.replace(segmenter.options,
                                            bone="fused" if with_ct else "network")
    seg = segmenter.segment(ct, progress=progress)
    bone_id = seg.table.id_of("bone")
    masks: dict[str, np.ndarray] = {}
    for mode in modes:
        if mode == "network":
            masks[mode] = np.asarray(seg.network_bone_mask()).astype(bool)
        elif mode == "ct":
            masks[mode] = np.asarray(seg.ct_bone.mask.array).astype(bool)
        else:
            masks[mode] = np.asarray(seg.labels.array) == bone_id
    return masks, seg.ct_bone


def evaluate_bone_on_real_ct(weights: str | os.PathLike | None, *,
                             modes: Sequence[str] = ("network", "ct", "fused"),
                             chest_dir: str | os.PathLike | None = None,
                             lumbar_dir: str | os.PathLike | None = None,
                             chest_z_range: tuple[float, float] = CHEST_TEST_Z,
                             band_mm: float = LUMBAR_BAND_MM, baseline: bool = True,
                             segment_options: Any | None = None,
                             progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Bone on real CT for each bone source, and the ``HU > 120`` yardstick.

    * ``real_ct_chest`` (contrast CT, C5-L3): the held-out caudal slab (``chest_z_range``,
      never trained on), reference :func:`~spinect_core.training.real_ct.bone_mask_reference`
      (an automatic segmenter's bone classes, not manual);
    * ``real_ct_lumbar_crop`` (noisy, low-density bodies): reference ``vertebrae.nii.gz > 0``,
      both masks counted within ``band_mm`` of it (:func:`bone_metrics_near_reference`).

    Each CT is segmented once: the network's bone, the CT bone model's and the fused bone come
    from the same run (as ``spinect segment --bone network|ct|fused`` would give them).

    Parameters
    ----------
    weights : path or None
        Weights file; ``None``: the bundled default.
    modes : sequence of {"network", "ct", "fused"}
    chest_dir, lumbar_dir : path, optional
        ``real_ct_chest`` (``ct.nii.gz``, ``labels.nii.gz``, ``structures.csv``) and
        ``real_ct_lumbar_crop`` (``ct.nii.gz``, ``vertebrae.nii.gz``) folders; a dataset whose
        folder is ``None`` is skipped (at least one is needed).
    chest_z_range : (float, float)
    band_mm : float
    baseline : bool
        Add the :data:`BASELINE` row (:func:`threshold_bone_baseline`).
    segment_options : SegmentOptions, optional
        Device, precision, blending; its ``bone`` is set per run.
    progress : callable, optional

    Returns
    -------
    dict
        ``{"weights": {name, version, tensors_sha256}, "modes": [...], "definitions": {...},
        "real_ct_chest": {"z_range", "slices", "reference", "ct_bone_thresholds_hu",
        "bone": {mode or BASELINE: metrics}}, "real_ct_lumbar_crop": {"band_mm", "reference",
        "ct_bone_thresholds_hu", "bone": {...}}}``; metrics as :func:`bone_metrics`.
    """
    from spinect_core.bone import BONE_MODES
    from spinect_core.io import load_ct
    from spinect_core.io.labelmap import read_label_image
    from spinect_core.segment import Segmenter
    from spinect_core.training.real_ct import axial_slab, bone_mask_reference

    modes = [str(m) for m in modes]
    unknown = sorted(set(modes) - set(BONE_MODES))
    if unknown or not modes:
        raise ValueError(f"modes must be among {list(BONE_MODES)}, got {modes}")
    if chest_dir is None and lumbar_dir is None:
        raise ValueError("give chest_dir, lumbar_dir or both")
    segmenter = Segmenter.from_weights(weights, options=_segment_options(segment_options))
    card = segmenter.card
    result: dict[str, Any] = {
        "weights": {"name": card.name, "version": card.version,
                    "tensors_sha256": card.tensors_sha256 or None},
        "modes": modes,
        "definitions": {
            "network": "the network's bone class",
            "ct": "the model-free CT bone model (spinect_core.bone.segment_bone_from_ct)",
            "fused": "CT bone plus the network's bone within 3 mm of it (combine_bone)",
            BASELINE: "HU > 120, holes filled in each slice of the stored array's first axis",
            "pixel_accuracy": "the study's: TP / reference voxels (= recall)",
        },
    }
    n_sets = int(chest_dir is not None) + int(lumbar_dir is not None)
    done = 0
    if chest_dir is not None:
        step = sub_progress(progress, done / n_sets, (done + 1) / n_sets, "chest CT: ")
        chest = Path(chest_dir)
        report(step, 0.0, "loading")
        slab = axial_slab(load_ct(chest / "ct.nii.gz"), chest_z_range)
        reference = bone_mask_reference(chest / "labels.nii.gz", chest / "structures.csv",
                                         z_range=chest_z_range)
        masks, ct_bone = _bone_by_mode(segmenter, slab, modes, sub_progress(step, 0.05, 0.95))
        rows = {mode: bone_metrics(mask, reference) for mode, mask in masks.items()}
        if baseline:
            rows[BASELINE] = bone_metrics(threshold_bone_baseline(slab), reference)
        result["real_ct_chest"] = {
            "z_range": [float(z) for z in chest_z_range], "slices": int(slab.array.shape[0]),
            "reference": "automatic 118-class segmentation shipped with the CT (not manual); "
                         "held-out caudal slab",
            "ct_bone_thresholds_hu": None if ct_bone is None else dict(ct_bone.thresholds_hu),
            "bone": rows}
        done += 1
    if lumbar_dir is not None:
        step = sub_progress(progress, done / n_sets, 1.0, "lumbar crop: ")
        lumbar = Path(lumbar_dir)
        report(step, 0.0, "loading")
        ct = load_ct(lumbar / "ct.nii.gz")
        vertebrae = read_label_image(lumbar / "vertebrae.nii.gz", exact_integers=True)
        if not ct.same_grid(vertebrae, atol=1e-3):
            raise ValueError("vertebrae.nii.gz is not on the grid of the lumbar crop's CT")
        reference = np.asarray(vertebrae.array) > 0
        spacing_zyx = np.asarray(ct.spacing_mm, float)[::-1]
        masks, ct_bone = _bone_by_mode(segmenter, ct, modes, sub_progress(step, 0.05, 0.95))
        rows = {mode: bone_metrics_near_reference(mask, reference, spacing_zyx, band_mm=band_mm)
                for mode, mask in masks.items()}
        if baseline:
            rows[BASELINE] = bone_metrics_near_reference(threshold_bone_baseline(ct), reference,
                                                         spacing_zyx, band_mm=band_mm)
        result["real_ct_lumbar_crop"] = {
            "band_mm": float(band_mm),
            "reference": "vertebrae.nii.gz > 0 (VerSe-style L2-L4 labels, checked by eye); "
                         f"both masks counted within {band_mm:g} mm of it",
            "ct_bone_thresholds_hu": None if ct_bone is None else dict(ct_bone.thresholds_hu),
            "bone": rows}
    report(progress, 1.0, "real-CT bone measured")
    return result


def format_real_ct_table(result: dict[str, Any]) -> str:
    """A Markdown table: bone source x chest held-out Dice / precision / recall and lumbar-crop
    Dice / recall within the band."""
    def cell(row: dict[str, Any] | None, key: str) -> str:
        value = None if row is None else row.get(key)
        return "n/a" if value is None else f"{value:.3f}"

    chest = result.get("real_ct_chest", {}).get("bone", {})
    lumbar = result.get("real_ct_lumbar_crop", {}).get("bone", {})
    band = result.get("real_ct_lumbar_crop", {}).get("band_mm", LUMBAR_BAND_MM)
    lines = ["| bone source | chest Dice | chest precision | chest recall | "
             f"lumbar {band:g} mm Dice | lumbar recall |", "|---|---|---|---|---|---|"]
    for name in [*result.get("modes", []), BASELINE]:
        if name not in chest and name not in lumbar:
            continue
        c, lu = chest.get(name), lumbar.get(name)
        title = "HU > 120 + hole filling" if name == BASELINE else name
        lines.append(f"| {title} | {cell(c, 'dice')} | {cell(c, 'precision')} | "
                     f"{cell(c, 'recall')} | {cell(lu, 'dice')} | {cell(lu, 'recall')} |")
    return "\n".join(lines)


def calibrate_on_phantoms(weights: str | os.PathLike, *, seeds: Sequence[int] = VAL_SEEDS,
                          spacing_mm: Sequence[float] = (1.0, 1.0, 1.0),
                          progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Fit the card's decision weights on the validation phantoms (never the test ones).

    Returns
    -------
    dict
        ``{"decision_weights": {...}, "seeds": [...], "mean_dice_before": d0,
        "mean_dice_after": d1}`` (mean foreground Dice on those phantoms).
    """
    from spinect_core.segment import Segmenter, SegmentOptions
    from spinect_core.training.calibration import fit_decision_weights

    segmenter = Segmenter.from_weights(weights, options=SegmentOptions(keep_probabilities=True))
    # Fit on the raw probabilities: any factors already in the card must not bias the fit.
    segmenter.card = dataclasses.replace(segmenter.card, decision_weights={})
    probabilities, references = [], []
    for _seed, phantom, seg in _segmented_phantoms(segmenter, seeds, spacing_mm, progress):
        probabilities.append(seg.probabilities)
        references.append(phantom.labels.array)
    # Bone by volume: the planner's windows depend on where the bone surface lies (docs/ARCHITECTURE.md, 4.2).
    weights, before, after = fit_decision_weights(probabilities, references, segmenter.table,
                                                  match_volume=("bone",))
    return {"decision_weights": weights, "seeds": [int(s) for s in seeds],
            "mean_dice_before": before, "mean_dice_after": after,
            "method": "coordinate ascent of the mean foreground Dice; bone: equal predicted and "
                      "true volume",
            "fitted_on": "validation phantoms (never the test seeds)"}


def real_ct_card_entry(result: dict[str, Any]) -> dict[str, Any]:
    """The model card's ``metrics["real_ct_bone"]``: :func:`evaluate_bone_on_real_ct`'s result
    without the weights' own identity (the card is that) and with the headline metrics only
    (Dice, IoU, precision, recall, pixel accuracy; voxel counts dropped)."""
    keep = ("dice", "iou", "precision", "recall", "pixel_accuracy")
    out: dict[str, Any] = {"modes": list(result.get("modes", [])),
                           "definitions": dict(result.get("definitions", {}))}
    for name in ("real_ct_chest", "real_ct_lumbar_crop"):
        if name not in result:
            continue
        entry = {k: v for k, v in result[name].items() if k != "bone"}
        entry["bone"] = {row: {k: metrics.get(k) for k in keep}
                         for row, metrics in result[name]["bone"].items()}
        out[name] = entry
    return out


def package_weights(best_model: str | os.PathLike, out_path: str | os.PathLike, *,
                    metrics: dict[str, Any] | None = None,
                    decision_weights: dict[str, float] | None = None, dtype: str = "float16",
                    overwrite: bool = False,
                    real_ct_metrics: dict[str, Any] | None = None) -> Path:
    """Write the shipped demonstration weights from a trained best model.

    Parameters
    ----------
    best_model : path
        ``best_model.safetensors`` written by :func:`spinect_core.training.train`.
    out_path : path
        Destination ``.safetensors`` (its card goes beside it as ``<stem>.json``).
    metrics : dict, optional
        Test metrics to add to the card's ``metrics`` (kept beside the training validation).
    decision_weights : dict, optional
        Calibrated per-class factors (:func:`calibrate_on_phantoms`); ``None`` keeps the card's.
    dtype : {"float16", "bfloat16", "float32"}
        Storage dtype; float16 halves the file and changes labels on a negligible share of voxels.
    overwrite : bool
        Replace an existing file (otherwise an existing file is an error).
    real_ct_metrics : dict, optional
        :func:`evaluate_bone_on_real_ct`'s result; recorded as the card's
        ``metrics["real_ct_bone"]`` (bone Dice, precision, recall per bone source and the
        ``HU > 120`` baseline, on the chest CT's held-out slab and the lumbar crop).
    """
    from spinect_core.model import load_weights, save_weights

    loaded = load_weights(best_model)
    card = loaded.card
    card_metrics = dict(card.metrics or {})
    card_metrics.update(metrics or {})
    if real_ct_metrics is not None:
        card_metrics["real_ct_bone"] = real_ct_card_entry(real_ct_metrics)
    card = dataclasses.replace(card, name="spinect-demo", description=DEMO_DESCRIPTION,
                               metrics=card_metrics)
    if decision_weights is not None:
        card = dataclasses.replace(card, decision_weights=dict(decision_weights))
    return save_weights(loaded.model, card, out_path, dtype=dtype, overwrite=overwrite)


# --- command line ---------------------------------------------------------------------------------
def parse_seeds(text: str) -> tuple[int, ...]:
    """Phantom seeds from a command line's list: comma-separated seeds and inclusive ranges
    (``"0-2,5,7-8"`` -> ``(0, 1, 2, 5, 7, 8)``); blank items are skipped.

    Raises
    ------
    ValueError
        An item that is not a non-negative seed or a range ``a-b`` with ``a <= b``.
    """
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi if dash else lo)
        except ValueError:
            raise ValueError(f"not a seed or a range of seeds: {part!r}") from None
        if first < 0 or last < first:
            raise ValueError(f"not a seed or a range of seeds: {part!r}")
        seeds.extend(range(first, last + 1))
    return tuple(seeds)


def format_table2(summary: dict[str, Any]) -> str:
    """A Markdown table (class x Dice / IoU / pixel accuracy, mean +- SD) of a summary."""
    lines = ["| class | Dice | IoU | pixel accuracy |", "|---|---|---|---|"]
    for name, per in summary.items():
        cells = []
        for metric in TABLE2_METRICS:
            s = per[metric]
            if s["mean"] is None:
                cells.append("n/a")
            else:
                sd = f" +- {s['sd']:.3f}" if s["sd"] is not None else ""
                cells.append(f"{s['mean']:.3f}{sd}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _default_data_dir() -> Path:
    """``$SPINECT_SHARED_DATA``, else ``shared/data`` beside the checkout (development only)."""
    env = os.environ.get("SPINECT_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spinect_core.training.demo_weights",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="Table-2 metrics on test phantoms (+ chest bone Dice)")
    ev.add_argument("weights", nargs="?", default=None, help="weights file (default: bundled)")
    ev.add_argument("--seeds", default="0-9", help="phantom seeds, e.g. 0-9 or 0,3,5")
    ev.add_argument("--spacing", type=float, nargs=3, default=(1.0, 1.0, 1.0))
    ev.add_argument("--chest", default=None, help="real_ct_chest folder for the bone Dice")
    ev.add_argument("--json", dest="json_out", default=None, help="write the metrics here")
    cb = sub.add_parser("calibrate", help="fit decision weights on the validation phantoms")
    cb.add_argument("weights")
    cb.add_argument("--json", dest="json_out", required=True, help="write the fit here")
    rc = sub.add_parser("real-ct", help="bone on real CT per bone source (network, ct, fused) "
                                        "and the HU > 120 baseline")
    rc.add_argument("weights", nargs="?", default=None, help="weights file (default: bundled)")
    rc.add_argument("--data", default=None,
                    help="folder holding real_ct_chest/ and real_ct_lumbar_crop/ (default: "
                         "$SPINECT_SHARED_DATA, else shared/data beside the checkout)")
    rc.add_argument("--chest", default=None, help="real_ct_chest folder (overrides --data)")
    rc.add_argument("--lumbar", default=None,
                    help="real_ct_lumbar_crop folder (overrides --data)")
    rc.add_argument("--modes", default="network,ct,fused", help="bone sources, comma-separated")
    rc.add_argument("--json", dest="json_out", default=None, help="write the metrics here")
    pk = sub.add_parser("package", help="write the shipped float16 weights + card")
    pk.add_argument("best_model")
    pk.add_argument("out")
    pk.add_argument("--metrics", default=None, help="JSON written by `evaluate --json`")
    pk.add_argument("--calibration", default=None, help="JSON written by `calibrate --json`")
    pk.add_argument("--real-ct", dest="real_ct", default=None,
                    help="JSON written by `real-ct --json` (recorded as metrics.real_ct_bone)")
    pk.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    def progress(fraction: float, message: str) -> bool:
        print(f"\r{100 * fraction:5.1f}% {message[:70]:<70}", end="", file=sys.stderr, flush=True)
        return True

    if args.command == "evaluate":
        result: dict[str, Any] = {"phantoms": evaluate_on_phantoms(
            args.weights, seeds=parse_seeds(args.seeds), spacing_mm=args.spacing,
            progress=progress)}
        if args.chest:
            result["real_ct_chest"] = evaluate_bone_on_chest(args.weights, args.chest,
                                                             progress=progress)
        print(file=sys.stderr)
        print(format_table2(result["phantoms"]["summary"]))
        if "real_ct_chest" in result:
            print(f"real_ct_chest bone Dice (held-out slab): "
                  f"{result['real_ct_chest']['bone']['dice']:.3f}")
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(result, indent=1))
        return 0
    if args.command == "real-ct":
        data = Path(args.data) if args.data else _default_data_dir()
        chest = Path(args.chest) if args.chest else data / "real_ct_chest"
        lumbar = Path(args.lumbar) if args.lumbar else data / "real_ct_lumbar_crop"
        chest_dir = chest if (chest / "ct.nii.gz").is_file() else None
        lumbar_dir = lumbar if (lumbar / "ct.nii.gz").is_file() else None
        if chest_dir is None and lumbar_dir is None:
            print(f"error: neither {chest} nor {lumbar} holds a ct.nii.gz", file=sys.stderr)
            return 2
        measured = evaluate_bone_on_real_ct(
            args.weights, modes=[m.strip() for m in args.modes.split(",") if m.strip()],
            chest_dir=chest_dir, lumbar_dir=lumbar_dir, progress=progress)
        print(file=sys.stderr)
        print(format_real_ct_table(measured))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(measured, indent=1))
        return 0
    if args.command == "calibrate":
        fit = calibrate_on_phantoms(args.weights, progress=progress)
        print(file=sys.stderr)
        print(json.dumps(fit))
        Path(args.json_out).write_text(json.dumps(fit, indent=1))
        return 0
    metrics = None
    decision_weights = None
    if args.calibration:
        fit = json.loads(Path(args.calibration).read_text())
        decision_weights = fit["decision_weights"]
        metrics = {"calibration": fit}
    if args.metrics:
        measured = json.loads(Path(args.metrics).read_text())
        metrics = dict(metrics or {})
        metrics["test_phantoms"] = {
            "seeds": measured["phantoms"]["seeds"],
            "note": "phantom seeds never used in training, each segmented on its own 1 mm grid",
            "summary": {name: {m: per[m] for m in TABLE2_METRICS}
                        for name, per in measured["phantoms"]["summary"].items()}}
        if "real_ct_chest" in measured:
            metrics["real_ct_chest_bone"] = measured["real_ct_chest"]
    real_ct = json.loads(Path(args.real_ct).read_text()) if args.real_ct else None
    path = package_weights(args.best_model, args.out, metrics=metrics,
                           decision_weights=decision_weights, overwrite=args.overwrite,
                           real_ct_metrics=real_ct)
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
