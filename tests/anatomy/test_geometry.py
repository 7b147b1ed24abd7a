"""Small geometry helpers of the anatomy package."""

from __future__ import annotations

import numpy as np
import pytest

from scipy import ndimage as ndi

from spinect_core.anatomy.geometry import bbox_slices, within_mm


def test_bbox_slices_grows_and_clips_in_two_and_three_dimensions():
    img = np.zeros((10, 12), bool)
    img[2:4, 5:9] = True
    assert bbox_slices(img, (1, 3)) == (slice(1, 5), slice(2, 12))      # clipped at 12
    vol = np.zeros((5, 6, 7), bool)
    vol[0, 3, 6] = True
    assert bbox_slices(vol) == (slice(0, 1), slice(3, 4), slice(6, 7))
    assert bbox_slices(vol, (2, 2, 2)) == (slice(0, 3), slice(1, 6), slice(4, 7))
    assert bbox_slices(np.zeros((4, 4), bool), (1, 1)) is None


def test_bbox_slices_wants_one_margin_per_axis():
    with pytest.raises(ValueError):
        bbox_slices(np.ones((3, 3), bool), (1, 1, 1))


@pytest.mark.parametrize("radius_mm", [0.5, 2.0, 3.7, 20.0])
def test_within_mm_is_the_whole_volume_distance_map_thresholded(radius_mm):
    rng = np.random.default_rng(3)
    mask = np.zeros((30, 26, 22), bool)
    mask[8:14, 9:12, 5:9] = True
    mask[tuple(rng.integers(4, 20, size=(3, 5)))] = True    # a few lone voxels
    sp = np.array([2.0, 0.7, 1.1])
    whole = ndi.distance_transform_edt(~mask, sampling=sp) <= radius_mm
    np.testing.assert_array_equal(within_mm(mask, radius_mm, sp), whole)
    assert not within_mm(np.zeros((4, 5, 6), bool), radius_mm, sp).any()
