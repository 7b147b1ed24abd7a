"""Body crop and its inverse."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.preprocess import BodyCropOptions, CropBox, crop_to_body, uncrop
from spinect_core.volume import Volume


def phantom() -> Volume:
    a = np.full((30, 40, 50), -1000, np.int16)
    a[10:20, 12:30, 15:40] = 40          # body
    a[2:4, 2:4, 2:4] = 300               # small detached object (e.g. a table clip): dropped
    return Volume(array=a, spacing_mm=[0.5, 1.0, 2.0], origin_lps_mm=[5.0, -3.0, 7.0],
                  direction=np.diag([1.0, -1.0, 1.0]))


def test_body_box_with_margin_in_mm():
    vol = phantom()
    cropped, box = crop_to_body(vol, options=BodyCropOptions(margin_mm=4.0))
    # margin 4 mm = 2 slices in z (2 mm), 4 rows in y (1 mm), 8 columns in x (0.5 mm).
    assert box.start_zyx == (8, 8, 7) and box.stop_zyx == (22, 34, 48)
    assert cropped.array.shape == box.shape_zyx
    # Every voxel keeps its LPS position.
    np.testing.assert_allclose(cropped.origin_lps_mm, vol.index_to_lps(np.array([7, 8, 8])))
    np.testing.assert_allclose(cropped.index_to_lps(np.array([3, 4, 5])),
                               vol.index_to_lps(np.array([10, 12, 13])))
    np.testing.assert_array_equal(cropped.array, vol.array[box.slices])


def test_more_components_and_max_extent():
    vol = phantom()
    _, box = crop_to_body(vol, options=BodyCropOptions(margin_mm=0, max_components=2,
                                                      min_component_fraction=0.0))
    assert box.start_zyx == (2, 2, 2)
    _, box = crop_to_body(vol, options=BodyCropOptions(margin_mm=0, max_extent_mm=(5.0, 100, 100)))
    assert box.shape_zyx[2] == 10 and box.start_zyx[2] == 22  # 5 mm = 10 columns, centred on 27
    assert box.shape_zyx[:2] == (10, 18)


def test_empty_body_gives_full_box():
    vol = phantom().with_array(np.full((30, 40, 50), -1000, np.int16))
    cropped, box = crop_to_body(vol)
    assert box.is_full and cropped.same_grid(vol)


def test_uncrop_labels_and_probabilities():
    box = CropBox(start_zyx=(1, 2, 3), stop_zyx=(4, 6, 8), full_shape_zyx=(5, 7, 9))
    labels = np.ones(box.shape_zyx, np.uint8)
    full = uncrop(labels, box, (5, 7, 9))
    assert full.dtype == np.uint8 and full.sum() == labels.size and full[box.slices].all()
    probs = np.full((3, *box.shape_zyx), 1 / 3, np.float32)
    fp = uncrop(probs, box, fill=[1.0, 0.0, 0.0])
    np.testing.assert_allclose(fp[:, 0, 0, 0], [1, 0, 0])
    np.testing.assert_allclose(fp.sum(0), 1.0, atol=1e-6)
    assert CropBox.from_dict(box.to_dict()) == box
    with pytest.raises(ValueError):
        uncrop(labels, box, (5, 7, 10))
    with pytest.raises(ValueError):
        CropBox(start_zyx=(0, 0, 0), stop_zyx=(6, 1, 1), full_shape_zyx=(5, 5, 5))
