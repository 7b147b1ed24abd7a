"""HD95 and surface Dice: analytic cases, empty masks and agreement with MONAI."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from spinect_core.metrics import hausdorff_distance, surface_dice, surface_distances, surface_voxels

SPACING_ZYX = (2.5, 0.7, 0.9)  # anisotropic, in array-axis order


def ellipsoid(shape, centre, radii_mm, spacing_zyx) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing_zyx)], indexing="ij")
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii_mm)) <= 1.0


def test_surface_voxels_of_a_cube():
    m = np.zeros((5, 5, 5), bool)
    m[1:4, 1:4, 1:4] = True
    s = surface_voxels(m)
    assert s.sum() == 26 and not s[2, 2, 2]
    # The array border counts as outside.
    assert surface_voxels(np.ones((3, 3, 3), bool)).sum() == 26


def test_shifted_box_analytic():
    """A box shifted by 2 voxels along x: every surface distance is 0 or a multiple of 0.9 mm."""
    gt = np.zeros((12, 20, 20), bool)
    gt[3:9, 5:15, 5:12] = True
    pred = np.roll(gt, 2, axis=2)
    d = surface_distances(pred, gt, SPACING_ZYX)
    # The far faces of the shifted box are 2 voxels (1.8 mm) from the reference's surface.
    assert d.pred_to_gt.max() == pytest.approx(1.8)
    assert hausdorff_distance(pred, gt, SPACING_ZYX, percentile=100) == pytest.approx(1.8)
    assert 0 < hausdorff_distance(pred, gt, SPACING_ZYX) <= 1.8 + 1e-9
    # At a 2 mm tolerance every surface voxel is within reach; at 0.5 mm only the shared parts.
    assert surface_dice(pred, gt, SPACING_ZYX, tolerance_mm=2.0) == 1.0
    assert surface_dice(pred, gt, SPACING_ZYX, tolerance_mm=0.5) < 1.0
    assert hausdorff_distance(gt, gt, SPACING_ZYX) == 0.0 and surface_dice(gt, gt, SPACING_ZYX) == 1.0


def test_empty_masks():
    empty = np.zeros((4, 4, 4), bool)
    blob = empty.copy()
    blob[1:3, 1:3, 1:3] = True
    assert hausdorff_distance(empty, empty, SPACING_ZYX) == 0.0
    assert surface_dice(empty, empty, SPACING_ZYX) == 1.0
    assert math.isinf(hausdorff_distance(blob, empty, SPACING_ZYX))
    assert math.isinf(hausdorff_distance(empty, blob, SPACING_ZYX))
    assert surface_dice(blob, empty, SPACING_ZYX) == 0.0
    assert surface_dice(empty, blob, SPACING_ZYX) == 0.0


def _monai(pred: np.ndarray, gt: np.ndarray, spacing) -> tuple[float, float]:
    torch = pytest.importorskip("torch")
    monai_metrics = pytest.importorskip("monai.metrics")
    yp = torch.from_numpy(np.stack([~pred, pred])[None].astype(np.float32))
    yt = torch.from_numpy(np.stack([~gt, gt])[None].astype(np.float32))
    hd = monai_metrics.compute_hausdorff_distance(yp, yt, include_background=False, percentile=95,
                                                  spacing=list(spacing))
    sd = monai_metrics.compute_surface_dice(yp, yt, class_thresholds=[1.0], include_background=False,
                                            spacing=list(spacing))
    return float(hd[0, 0]), float(sd[0, 0])


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("case", range(4))
def test_agrees_with_monai(case):
    rng = np.random.default_rng(case)
    shape = (18, 40, 36)
    gt = ellipsoid(shape, (20.0, 14.0, 16.0), (12.0, 8.0, 10.0), SPACING_ZYX)
    if case == 0:    # shifted and scaled ellipsoid
        pred = ellipsoid(shape, (21.0, 13.0, 17.5), (11.0, 9.0, 10.0), SPACING_ZYX)
    elif case == 1:  # noisy boundary
        pred = gt ^ (ndimage.binary_dilation(gt) & ~ndimage.binary_erosion(gt)
                     & (rng.random(shape) < 0.4))
    elif case == 2:  # random smooth blobs
        pred = ndimage.gaussian_filter(rng.random(shape), 2.0) > 0.5
        gt = ndimage.gaussian_filter(rng.random(shape), 2.0) > 0.5
    else:            # touching the array border (border counts as outside in both)
        pred = ellipsoid(shape, (0.0, 14.0, 16.0), (12.0, 8.0, 10.0), SPACING_ZYX)
    hd_ref, sd_ref = _monai(pred, gt, SPACING_ZYX)
    # MONAI computes in float32; we compute in float64: agreement to float32 precision.
    assert hausdorff_distance(pred, gt, SPACING_ZYX) == pytest.approx(hd_ref, rel=1e-5, abs=1e-5)
    assert surface_dice(pred, gt, SPACING_ZYX, tolerance_mm=1.0) == pytest.approx(sd_ref, abs=1e-6)
