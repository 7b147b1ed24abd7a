"""Segmentation metrics as the SPINECT study reports them, plus surface distances.

Per class: Dice, IoU (Jaccard), pixel accuracy (TP / true voxels), HD95 (mm) and surface Dice at
1 mm. Classes are compared by name through label tables. See :mod:`.overlap`, :mod:`.surface` and
:mod:`.evaluate` for definitions and empty-mask conventions.
"""

from spinect_core.metrics.evaluate import (
    METRICS, CaseMetrics, CaseResult, ClassMetrics, EvaluationReport, MetricSummary,
    compare_label_maps, evaluate_pair, evaluate_paths, pair_label_maps, summarise,
)
from spinect_core.metrics.overlap import OverlapCounts, dice, iou, overlap_counts, pixel_accuracy
from spinect_core.metrics.surface import (
    SurfaceDistances, hausdorff_distance, surface_dice, surface_distances, surface_voxels,
)

__all__ = [
    "METRICS", "CaseMetrics", "CaseResult", "ClassMetrics", "EvaluationReport", "MetricSummary",
    "compare_label_maps", "evaluate_pair", "evaluate_paths", "pair_label_maps", "summarise",
    "OverlapCounts", "dice", "iou", "overlap_counts", "pixel_accuracy",
    "SurfaceDistances", "hausdorff_distance", "surface_dice", "surface_distances", "surface_voxels",
]
