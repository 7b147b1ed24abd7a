"""compare_label_maps (matching by class name, grids, notes) and summarise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.labels import LabelTable
from spinect_core.metrics import METRICS, compare_label_maps, dice, summarise
from spinect_core.volume import Volume

GT_TABLE = LabelTable({0: "background", 1: "bone", 2: "nerve"})
# Same classes numbered the other way round, plus a class the reference does not have.
PRED_TABLE = LabelTable({0: "background", 1: "nerve", 2: "bone", 3: "disc"})


def label_pair() -> tuple[Volume, Volume]:
    gt = np.zeros((10, 16, 16), np.uint8)
    gt[2:8, 3:12, 3:12] = 1          # bone
    gt[4:6, 12:15, 5:9] = 2          # nerve
    pred_gt_ids = gt.copy()
    pred_gt_ids[2, 3:12, 3:12] = 0   # miss one slice of bone
    # Renumber into the prediction's table: bone 1 -> 2, nerve 2 -> 1; add a disc (3).
    pred = np.zeros_like(gt)
    pred[pred_gt_ids == 1] = 2
    pred[pred_gt_ids == 2] = 1
    pred[0, 0, 0] = 3
    geom = dict(spacing_mm=[0.8, 0.8, 2.0], origin_lps_mm=[10.0, -20.0, 5.0],
                direction=np.diag([-1.0, 1.0, 1.0]))
    return Volume(array=pred, **geom), Volume(array=gt, **geom)


def test_classes_are_matched_by_name():
    pred, gt = label_pair()
    res = compare_label_maps(pred, PRED_TABLE, gt, GT_TABLE)
    assert list(res) == ["bone", "nerve"]
    assert res["nerve"].dice == 1.0 and res["nerve"].hd95_mm == 0.0
    bone_gt = gt.array == 1
    assert res["bone"].dice == pytest.approx(dice(pred.array == 2, bone_gt))
    assert res["bone"].pixel_accuracy == pytest.approx(5 / 6)   # 5 of 6 slices found
    assert res["bone"].iou == pytest.approx(5 / 6)
    assert res["bone"].n_gt_voxels == 6 * 81 and res["bone"].tp_voxels == 5 * 81
    # A missed 2 mm slice: the reference's first slice is 2 mm (one slice) from the prediction.
    assert res["bone"].hd95_mm == pytest.approx(2.0)
    assert any("disc" in n and "reference" in n for n in res.notes)


def test_class_selection_and_no_common_class():
    pred, gt = label_pair()
    res = compare_label_maps(pred, PRED_TABLE, gt, GT_TABLE, classes=["Nerve", "dura"])
    assert list(res) == ["nerve"]
    assert any("dura" in n and "neither" in n for n in res.notes)
    with pytest.raises(InputError, match="no class in common"):
        compare_label_maps(pred, PRED_TABLE, gt, GT_TABLE, classes=["disc"])


def test_empty_classes_and_json_safety():
    pred, gt = label_pair()
    empty_pred = pred.with_array(np.zeros_like(pred.array))
    res = compare_label_maps(empty_pred, PRED_TABLE, gt, GT_TABLE)
    assert res["bone"].dice == 0.0 and math.isinf(res["bone"].hd95_mm)
    d = res["bone"].to_dict()
    assert d["hd95_mm"] is None and d["surface_dice_1mm"] == 0.0
    json.dumps(d, allow_nan=False)
    both_empty = compare_label_maps(empty_pred, PRED_TABLE, gt.with_array(np.zeros_like(gt.array)),
                                    GT_TABLE)
    assert [both_empty["bone"].value(m) for m in METRICS] == [1.0, 1.0, 1.0, 0.0, 1.0]


def test_other_grid_is_resampled_or_refused():
    from spinect_core.preprocess import resample_to_spacing

    pred, gt = label_pair()
    fine = resample_to_spacing(pred, [0.4, 0.4, 1.0], interpolation="nearest")
    res = compare_label_maps(fine, PRED_TABLE, gt, GT_TABLE)
    assert any("resampled" in n for n in res.notes)
    # Halving the spacing and coming back with nearest neighbour is lossless here.
    same = compare_label_maps(pred, PRED_TABLE, gt, GT_TABLE)
    assert res["bone"].dice == pytest.approx(same["bone"].dice)
    with pytest.raises(InputError, match="different grids"):
        compare_label_maps(fine, PRED_TABLE, gt, GT_TABLE, on_grid_mismatch="error")
    # Float noise from a file format is not a different grid.
    noisy = Volume(array=pred.array, spacing_mm=pred.spacing_mm + 1e-5,
                   origin_lps_mm=pred.origin_lps_mm - 1e-4, direction=pred.direction)
    assert not any("resampled" in n for n in compare_label_maps(noisy, PRED_TABLE, gt, GT_TABLE).notes)


def test_summarise_mean_sd_min_max():
    pred, gt = label_pair()
    a = compare_label_maps(pred, PRED_TABLE, gt, GT_TABLE)
    b = compare_label_maps(gt.with_array(np.where(gt.array == 1, 2, np.where(gt.array == 2, 1, 0))
                                         .astype(np.uint8)), PRED_TABLE, gt, GT_TABLE)
    empty = compare_label_maps(pred.with_array(np.zeros_like(pred.array)), PRED_TABLE, gt, GT_TABLE)
    s = summarise([a, b, empty])
    bone = s["bone"]["dice"]
    values = [a["bone"].dice, 1.0, 0.0]
    assert bone.mean == pytest.approx(np.mean(values))
    assert bone.sd == pytest.approx(np.std(values, ddof=1))
    assert (bone.min, bone.max, bone.n, bone.n_undefined) == (0.0, 1.0, 3, 0)
    hd = s["bone"]["hd95_mm"]  # the empty prediction's inf HD95 is left out and counted
    assert hd.n == 2 and hd.n_undefined == 1 and hd.max == pytest.approx(2.0)
    single = summarise([a])["nerve"]["dice"]
    assert single.sd is None and single.to_dict()["sd"] is None


def test_values_the_label_table_does_not_name_are_reported():
    """Bone stored as 7 and a 255 block are not scored silently as a perfect or empty class."""
    import numpy as np

    from spinect_core.labels import DEFAULT_LABELS
    from spinect_core.metrics.evaluate import compare_label_maps
    from spinect_core.volume import Volume

    gt = np.zeros((8, 8, 8), np.uint8)
    gt[2:6, 2:6, 2:6] = 1
    pred = np.where(gt == 1, 7, 0).astype(np.uint8)
    pred[0, 0, :3] = 255

    def vol(a):
        return Volume(array=a, spacing_mm=np.ones(3), origin_lps_mm=np.zeros(3),
                      direction=np.eye(3))

    result = compare_label_maps(vol(pred), DEFAULT_LABELS, vol(gt), DEFAULT_LABELS)
    assert result["bone"].dice == 0.0
    note = [n for n in result.notes if "does not name" in n]
    assert note and "7 (64 voxels)" in note[0] and "255 (3 voxels)" in note[0]
    assert note[0].startswith("the prediction")
