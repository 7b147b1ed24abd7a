"""Compare predicted and reference label maps per class, as in the study's Table 2.

Per class: Dice, IoU, pixel accuracy (TP / true voxels), HD95 in mm and surface Dice at 1 mm
(definitions and empty-mask conventions in :mod:`~spinect_core.metrics.overlap` and
:mod:`~spinect_core.metrics.surface`).

Classes are matched by **name** through the two label tables (case-insensitive), so a prediction
numbered ``{1: bone, 2: nerve}`` compares correctly with a reference numbered ``{1: nerve, 2:
bone}``. Background is not evaluated unless asked for. A class present in only one table is
skipped with a note.

Grids: metrics are computed on the **reference (ground-truth) grid**. A prediction on another grid
(e.g. the model grid) is resampled onto it with nearest neighbour and a note says so; pass
``on_grid_mismatch="error"`` to refuse instead. Grids that agree within 1e-3 mm (origin, spacing)
and 1e-4 (direction) count as equal (NIfTI stores geometry in float32).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np

from spinect_core.errors import InputError
from spinect_core.labels import LabelTable
from spinect_core.metrics.overlap import overlap_counts
from spinect_core.metrics.surface import surface_distances
from spinect_core.progress import ProgressCallback, report
from spinect_core.volume import Volume

__all__ = [
    "METRICS", "METRIC_LABELS", "ClassMetrics", "CaseMetrics", "MetricSummary", "CaseResult",
    "EvaluationReport", "compare_label_maps", "summarise", "pair_label_maps",
    "evaluate_pair", "evaluate_paths",
]

#: Metric keys, in table order.
METRICS = ("dice", "iou", "pixel_accuracy", "hd95_mm", "surface_dice_1mm")
#: Column titles of the text table.
METRIC_LABELS = {"dice": "Dice", "iou": "IoU", "pixel_accuracy": "Pixel acc.",
                 "hd95_mm": "HD95 (mm)", "surface_dice_1mm": "Surface Dice 1 mm"}
#: One-line definitions written into the JSON report.
METRIC_DEFINITIONS = {
    "dice": "2|P&G| / (|P|+|G|); 1 when both empty",
    "iou": "|P&G| / |P|G|| (Jaccard); 1 when both empty",
    "pixel_accuracy": "|P&G| / |G| (study definition: TP / true voxels, i.e. recall); "
                      "1 when both empty, null when only G is empty",
    "hd95_mm": "max of the two directed 95th percentiles of distances between 6-connected "
               "surface voxels, mm; 0 when both empty, null when one is empty",
    "surface_dice_1mm": "fraction of surface voxels of P and G within 1 mm of the other surface; "
                        "1 when both empty, 0 when one is empty",
}


def _json_number(value: float) -> float | None:
    """``None`` for NaN/inf so the JSON stays valid."""
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass(frozen=True, kw_only=True)
class ClassMetrics:
    """Metrics of one class in one case.

    Attributes
    ----------
    name : str
        Class name (the reference table's spelling).
    dice, iou, pixel_accuracy : float
        In [0, 1]; ``pixel_accuracy`` is NaN when only the reference is empty.
    hd95_mm : float
        Millimetres; ``inf`` when exactly one mask is empty.
    surface_dice_1mm : float
        In [0, 1].
    n_pred_voxels, n_gt_voxels, tp_voxels : int
        Voxel counts on the reference grid.
    """

    name: str
    dice: float
    iou: float
    pixel_accuracy: float
    hd95_mm: float
    surface_dice_1mm: float
    n_pred_voxels: int
    n_gt_voxels: int
    tp_voxels: int

    def value(self, metric: str) -> float:
        return float(getattr(self, metric))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the five metrics (non-finite -> ``None``) and the voxel counts."""
        out: dict[str, Any] = {m: _json_number(self.value(m)) for m in METRICS}
        out.update(n_pred_voxels=self.n_pred_voxels, n_gt_voxels=self.n_gt_voxels,
                   tp_voxels=self.tp_voxels)
        return out


class CaseMetrics(dict):
    """``dict[name, ClassMetrics]`` of one case, plus ``notes`` (skipped classes, resampling)."""

    def __init__(self, *args: Any, notes: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[str] = list(notes)


def _grids_match(a: Volume, b: Volume) -> bool:
    return (a.array.shape == b.array.shape
            and np.allclose(a.spacing_mm, b.spacing_mm, rtol=0, atol=1e-3)
            and np.allclose(a.origin_lps_mm, b.origin_lps_mm, rtol=0, atol=1e-3)
            and np.allclose(a.direction, b.direction, rtol=0, atol=1e-4))


def _match_classes(pred_table: LabelTable, gt_table: LabelTable,
                   classes: Sequence[str] | None) -> tuple[list[tuple[str, int, int]], list[str]]:
    """``[(name, pred_id, gt_id)]`` of the classes to evaluate, and notes on skipped ones."""
    pred_ids = {n.casefold(): i for i, n in pred_table.names.items()}
    gt_ids = {n.casefold(): i for i, n in gt_table.names.items()}
    notes: list[str] = []
    if classes is None:
        wanted = [n for i, n in gt_table.names.items() if i != 0]
        wanted += [n for i, n in pred_table.names.items()
                   if i != 0 and n.casefold() not in gt_ids]
    else:
        wanted = list(dict.fromkeys(classes))
    matched = []
    for name in wanted:
        key = name.casefold()
        in_pred, in_gt = key in pred_ids, key in gt_ids
        if in_pred and in_gt:
            matched.append((gt_table.names[gt_ids[key]], pred_ids[key], gt_ids[key]))
        elif in_gt:
            notes.append(f"class '{name}' is not in the prediction's label table; skipped")
        elif in_pred:
            notes.append(f"class '{name}' is not in the reference label table; skipped")
        else:
            notes.append(f"class '{name}' is in neither label table; skipped")
    return matched, notes


def compare_label_maps(pred: Volume, pred_table: LabelTable, gt: Volume, gt_table: LabelTable,
                       *, classes: Sequence[str] | None = None,
                       on_grid_mismatch: Literal["resample", "error"] = "resample"
                       ) -> CaseMetrics:
    """Per-class metrics of a predicted label map against a reference.

    Parameters
    ----------
    pred, gt : Volume
        Integer label maps, arrays (z, y, x), LPS geometry.
    pred_table, gt_table : LabelTable
        Their label tables; classes are matched by name.
    classes : sequence of str, optional
        Names to evaluate; default every foreground class of either table (those missing from the
        other table are skipped with a note).
    on_grid_mismatch : {"resample", "error"}
        When ``pred`` is not on ``gt``'s grid: resample it (nearest neighbour, with a note) or
        raise :class:`InputError`.

    Returns
    -------
    CaseMetrics
        ``{name: ClassMetrics}`` in the reference table's order, with ``.notes``.

    Raises
    ------
    InputError
        No class in common, or grids differ and ``on_grid_mismatch="error"``.
    """
    matched, notes = _match_classes(pred_table, gt_table, classes)
    if not matched:
        raise InputError("prediction and reference have no class in common to evaluate "
                         f"(prediction: {list(pred_table.names.values())}, "
                         f"reference: {list(gt_table.names.values())})")
    pred_array = pred.array
    if not _grids_match(pred, gt):
        if on_grid_mismatch == "error":
            raise InputError("prediction and reference are on different grids "
                             "(size, spacing, origin or direction); resample the prediction first")
        from spinect_core.preprocess.resample import resample_array_to_grid

        pred_array = resample_array_to_grid(pred.array, pred, gt, interpolation="nearest",
                                            default_value=0)
        notes.append("prediction was on another grid; resampled onto the reference grid "
                     "(nearest neighbour)")
    for role, array, table in (("prediction", pred_array, pred_table), ("reference", gt.array,
                                                                          gt_table)):
        notes.extend(_unnamed_values_note(role, array, table))
    spacing_zyx = gt.spacing_mm[::-1]
    out = CaseMetrics(notes=notes)
    for name, pred_id, gt_id in matched:
        p = pred_array == pred_id
        g = gt.array == gt_id
        counts = overlap_counts(p, g)
        dist = surface_distances(p, g, spacing_zyx)
        out[name] = ClassMetrics(
            name=name, dice=counts.dice, iou=counts.iou, pixel_accuracy=counts.pixel_accuracy,
            hd95_mm=dist.hausdorff(95.0), surface_dice_1mm=dist.surface_dice(1.0),
            n_pred_voxels=counts.n_pred, n_gt_voxels=counts.n_gt, tp_voxels=counts.tp)
    return out


def _unnamed_values_note(role: str, array: np.ndarray, table: LabelTable) -> list[str]:
    """A note naming the values of ``array`` that ``table`` does not name (e.g. 7 or 255): they
    belong to no evaluated class, so a class stored under another value would score as absent
    rather than fail."""
    values, counts = np.unique(np.asarray(array), return_counts=True)
    unknown = [(int(v), int(c)) for v, c in zip(values, counts) if int(v) not in table.names]
    if not unknown:
        return []
    listed = ", ".join(f"{v} ({c} voxels)" for v, c in unknown[:8])
    return [f"the {role} holds values its label table does not name: {listed}; they count as "
            "no class (check the label table)"]


@dataclass(frozen=True, kw_only=True)
class MetricSummary:
    """Summary of one metric of one class over cases.

    ``mean``, ``sd`` (sample standard deviation, ddof=1; ``None`` for fewer than 2 values),
    ``min`` and ``max`` are over the finite values; ``n`` counts those, ``n_undefined`` the cases
    where the metric was NaN or infinite (e.g. HD95 with one mask empty), which are left out.
    """

    mean: float | None
    sd: float | None
    min: float | None
    max: float | None
    n: int
    n_undefined: int

    def to_dict(self) -> dict[str, Any]:
        return {"mean": _json_number(self.mean), "sd": _json_number(self.sd),  # type: ignore[arg-type]
                "min": _json_number(self.min), "max": _json_number(self.max),  # type: ignore[arg-type]
                "n": self.n, "n_undefined": self.n_undefined}


def _summary(values: Sequence[float]) -> MetricSummary:
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    n_undef = int(arr.size - finite.size)
    if finite.size == 0:
        return MetricSummary(mean=None, sd=None, min=None, max=None, n=0, n_undefined=n_undef)
    return MetricSummary(mean=float(finite.mean()),
                         sd=float(finite.std(ddof=1)) if finite.size > 1 else None,
                         min=float(finite.min()), max=float(finite.max()),
                         n=int(finite.size), n_undefined=n_undef)


def summarise(cases: Iterable[Mapping[str, ClassMetrics]]) -> dict[str, dict[str, MetricSummary]]:
    """Mean, SD, min and max per class and metric over cases.

    Parameters
    ----------
    cases : iterable of mapping name -> ClassMetrics
        One mapping per case (e.g. :func:`compare_label_maps` results). A class missing from a
        case is simply not counted for it.

    Returns
    -------
    dict
        ``{class name: {metric: MetricSummary}}``, classes in first-seen order.
    """
    values: dict[str, dict[str, list[float]]] = {}
    for case in cases:
        for name, m in case.items():
            per = values.setdefault(name, {k: [] for k in METRICS})
            for k in METRICS:
                per[k].append(m.value(k))
    return {name: {k: _summary(v) for k, v in per.items()} for name, per in values.items()}


# --- files and folders -----------------------------------------------------------------------
@dataclass(kw_only=True)
class CaseResult:
    """One evaluated pair of label-map files."""

    name: str
    pred_path: Path
    gt_path: Path
    metrics: CaseMetrics

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pred": self.pred_path.name, "gt": self.gt_path.name,
                "classes": {n: m.to_dict() for n, m in self.metrics.items()},
                "notes": list(self.metrics.notes)}


def _is_label_image(path: Path) -> bool:
    from spinect_core.io.labelmap import IMAGE_SUFFIXES

    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and name.endswith(IMAGE_SUFFIXES)


def pair_label_maps(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike
                    ) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Pair the label-map files of two folders by name.

    Files are matched by their name without the image extension (``case1.nii.gz`` pairs with
    ``case1.nrrd``); sidecar ``.labels.json`` files and other non-image files are ignored.

    Returns
    -------
    pairs : list of (name, pred_path, gt_path)
        Sorted by name.
    notes : list of str
        Files found in only one folder.
    """
    from spinect_core.io.labelmap import image_stem

    def index(folder: Path, role: str) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for p in sorted(folder.iterdir()):
            if not _is_label_image(p):
                continue
            stem = image_stem(p)
            if stem in found:
                raise InputError(f"two {role} label maps are named '{stem}' "
                                 f"({found[stem].name}, {p.name}); keep one")
            found[stem] = p
        return found

    preds = index(Path(pred_dir), "predicted")
    gts = index(Path(gt_dir), "reference")
    names = sorted(set(preds) & set(gts))
    notes = [f"'{n}' has no reference label map; skipped" for n in sorted(set(preds) - set(gts))]
    notes += [f"'{n}' has no predicted label map; skipped" for n in sorted(set(gts) - set(preds))]
    return [(n, preds[n], gts[n]) for n in names], notes


def evaluate_pair(pred_path: str | os.PathLike, gt_path: str | os.PathLike, *,
                  classes: Sequence[str] | None = None,
                  on_grid_mismatch: Literal["resample", "error"] = "resample") -> CaseResult:
    """Load two label-map files (with their sidecar tables) and compare them."""
    from spinect_core.io.labelmap import image_stem, load_label_map

    pred, pred_table = load_label_map(pred_path)
    gt, gt_table = load_label_map(gt_path)
    metrics = compare_label_maps(pred, pred_table, gt, gt_table, classes=classes,
                                 on_grid_mismatch=on_grid_mismatch)
    return CaseResult(name=image_stem(gt_path), pred_path=Path(pred_path), gt_path=Path(gt_path),
                      metrics=metrics)


@dataclass(kw_only=True)
class EvaluationReport:
    """Results of :func:`evaluate_paths`: cases, per-class summary, notes."""

    mode: Literal["files", "folders"]
    cases: list[CaseResult]
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, dict[str, MetricSummary]]:
        return summarise(c.metrics for c in self.cases)

    def to_dict(self) -> dict[str, Any]:
        """One JSON object: ``classes`` (means), ``summary``, ``cases``, ``notes``."""
        summary = self.summary
        return {
            "format": "spinect-evaluation",
            "version": 1,
            "coordinate_system": "LPS",
            "mode": self.mode,
            "n_cases": len(self.cases),
            "classes": {n: {k: s.to_dict()["mean"] for k, s in per.items()}
                        for n, per in summary.items()},
            "summary": {n: {k: s.to_dict() for k, s in per.items()} for n, per in summary.items()},
            "definitions": dict(METRIC_DEFINITIONS),
            "cases": [c.to_dict() for c in self.cases],
            "notes": list(self.notes) + [f"{c.name}: {n}" for c in self.cases
                                         for n in c.metrics.notes],
        }

    def to_json(self) -> str:
        # allow_nan=False: a NaN/inf that slipped through would make invalid JSON; fail loudly.
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def format_table(self) -> str:
        """A text table like the study's Table 2 (mean +- SD [min-max] when several cases)."""
        summary = self.summary
        several = len(self.cases) > 1

        def cell(metric: str, s: MetricSummary) -> str:
            digits = 2 if metric == "hd95_mm" else 3
            if s.mean is None:
                text = "n/a"
            elif not several:
                text = f"{s.mean:.{digits}f}"
            else:
                sd = "n/a" if s.sd is None else f"{s.sd:.{digits}f}"
                text = f"{s.mean:.{digits}f} ± {sd} [{s.min:.{digits}f}-{s.max:.{digits}f}]"
            if s.n_undefined:
                text += f" ({s.n_undefined} undefined)"
            return text

        header = ["Class"] + [METRIC_LABELS[m] for m in METRICS]
        rows = [[name] + [cell(m, per[m]) for m in METRICS] for name, per in summary.items()]
        widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
        lines = []
        if several:
            lines.append(f"{len(self.cases)} cases; mean ± SD [min-max] over cases")
        else:
            lines.append(f"case {self.cases[0].name}" if self.cases else "no cases")
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        notes = self.to_dict()["notes"]
        if notes:
            lines.append("")
            lines += [f"note: {n}" for n in notes]
        return "\n".join(lines)


def evaluate_paths(pred: str | os.PathLike, gt: str | os.PathLike, *,
                   classes: Sequence[str] | None = None,
                   on_grid_mismatch: Literal["resample", "error"] = "resample",
                   progress: ProgressCallback | None = None) -> EvaluationReport:
    """Evaluate two label-map files, or two folders of them (paired by name).

    Parameters
    ----------
    pred, gt : path-like
        Both files or both folders.
    classes : sequence of str, optional
        Class names to evaluate (default: all foreground classes).
    on_grid_mismatch : {"resample", "error"}
    progress : callable, optional
        ``progress(fraction, message)``; returning False cancels.

    Raises
    ------
    InputError
        Missing paths, a file against a folder, or no pairs.
    """
    p, g = Path(pred), Path(gt)
    for path, role in ((p, "prediction"), (g, "reference")):
        if not path.exists():
            raise InputError(f"{role} path {path} does not exist")
    if p.is_dir() != g.is_dir():
        raise InputError("give two label-map files or two folders, not a file and a folder")
    if not p.is_dir():
        report(progress, 0.0, p.name)
        result = evaluate_pair(p, g, classes=classes, on_grid_mismatch=on_grid_mismatch)
        report(progress, 1.0, "done")
        return EvaluationReport(mode="files", cases=[result])
    pairs, notes = pair_label_maps(p, g)
    if not pairs:
        raise InputError(f"no label maps with the same name in {p} and {g}")
    cases = []
    for i, (name, pp, gp) in enumerate(pairs):
        report(progress, i / len(pairs), name)
        cases.append(evaluate_pair(pp, gp, classes=classes, on_grid_mismatch=on_grid_mismatch))
    report(progress, 1.0, "done")
    return EvaluationReport(mode="folders", cases=cases, notes=notes)
