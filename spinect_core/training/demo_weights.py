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
* :func:`calibrate_on_phantoms` - per-class decision weights fitted on the validation phantoms
  (:mod:`spinect_core.training.calibration`);
* :func:`package_weights` - the shipped file: float16 tensors and a model card that says plainly
  these are demonstration weights trained on synthetic data, with the measured metrics.

Command line::

    python -m spinect_core.training.demo_weights evaluate WEIGHTS [--seeds 0-9] [--json OUT]
    python -m spinect_core.training.demo_weights calibrate WEIGHTS --json FIT.json
    python -m spinect_core.training.demo_weights package BEST_MODEL OUT [--calibration FIT.json]
        [--metrics METRICS.json]
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
           "TABLE2_METRICS", "evaluate_on_phantoms", "evaluate_bone_on_chest",
           "calibrate_on_phantoms", "package_weights", "main"]

#: Phantom seeds of the training, validation and test sets (disjoint).
TRAIN_SEEDS: tuple[int, ...] = tuple(range(100, 116))
VAL_SEEDS: tuple[int, ...] = (116, 117)
TEST_SEEDS: tuple[int, ...] = tuple(range(0, 10))
#: Cranio-caudal fractions of the chest CT used for training and held out for the bone Dice.
CHEST_TRAIN_Z: tuple[float, float] = (0.0, 0.67)
CHEST_TEST_Z: tuple[float, float] = (0.67, 1.0)
#: The metrics of the study's Table 2.
TABLE2_METRICS: tuple[str, ...] = ("dice", "iou", "pixel_accuracy")

DEMO_DESCRIPTION = (
    "DEMONSTRATION WEIGHTS, trained on synthetic data: a narrow 3D U-Net trained with SPINECT "
    "planner's own pipeline on synthetic lumbosacral phantoms (and bone-only labels of one real "
    "chest CT). They show the workflow end to end; they have never seen a labelled patient "
    "lumbosacral CT and must not be used on patients. Train site weights with `spinect train`."
)


def _segment_options(segment_options: Any | None) -> Any:
    from spinect_core.segment import SegmentOptions

    return segment_options or SegmentOptions()


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
    # Bone by volume: the planner's windows depend on where the bone surface lies (DESIGN.md).
    weights, before, after = fit_decision_weights(probabilities, references, segmenter.table,
                                                  match_volume=("bone",))
    return {"decision_weights": weights, "seeds": [int(s) for s in seeds],
            "mean_dice_before": before, "mean_dice_after": after,
            "method": "coordinate ascent of the mean foreground Dice; bone: equal predicted and "
                      "true volume",
            "fitted_on": "validation phantoms (never the test seeds)"}


def package_weights(best_model: str | os.PathLike, out_path: str | os.PathLike, *,
                    metrics: dict[str, Any] | None = None,
                    decision_weights: dict[str, float] | None = None, dtype: str = "float16",
                    overwrite: bool = False) -> Path:
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
    """
    from spinect_core.model import load_weights, save_weights

    loaded = load_weights(best_model)
    card = loaded.card
    card_metrics = dict(card.metrics or {})
    card_metrics.update(metrics or {})
    card = dataclasses.replace(card, name="spinect-demo", description=DEMO_DESCRIPTION,
                               metrics=card_metrics)
    if decision_weights is not None:
        card = dataclasses.replace(card, decision_weights=dict(decision_weights))
    return save_weights(loaded.model, card, out_path, dtype=dtype, overwrite=overwrite)


# --- command line ---------------------------------------------------------------------------------
def _seed_list(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            seeds.extend(range(int(lo), int(hi) + 1))
        elif part.strip():
            seeds.append(int(part))
    return seeds


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
    pk = sub.add_parser("package", help="write the shipped float16 weights + card")
    pk.add_argument("best_model")
    pk.add_argument("out")
    pk.add_argument("--metrics", default=None, help="JSON written by `evaluate --json`")
    pk.add_argument("--calibration", default=None, help="JSON written by `calibrate --json`")
    pk.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    def progress(fraction: float, message: str) -> bool:
        print(f"\r{100 * fraction:5.1f}% {message[:70]:<70}", end="", file=sys.stderr, flush=True)
        return True

    if args.command == "evaluate":
        result: dict[str, Any] = {"phantoms": evaluate_on_phantoms(
            args.weights, seeds=_seed_list(args.seeds), spacing_mm=args.spacing,
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
    path = package_weights(args.best_model, args.out, metrics=metrics,
                           decision_weights=decision_weights, overwrite=args.overwrite)
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
