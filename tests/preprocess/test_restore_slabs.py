"""Slab-wise restoring of model-grid probabilities equals the whole-volume restore."""

import numpy as np
import pytest

from spinect_core.preprocess import (CTNormalisation, prepare_for_model,
                                     restore_probabilities_in_slabs, restore_to_input)
from spinect_core.volume import Volume

NORMALISATION = CTNormalisation.from_dict({"scheme": "ct_percentile_zscore",
                                           "clip_hu": [-100, 1000], "mean_hu": 0, "std_hu": 100})


@pytest.mark.parametrize("direction", [np.eye(3), np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1.0]])])
def test_slabs_equal_the_whole_volume_restore(direction):
    # A body in a box of air, so the model grid is a crop of the resampled grid: the slabs must
    # reproduce the certain-background border that the crop adds, and the outside.
    arr = np.full((70, 90, 80), -1000, np.int16)
    arr[20:45, 30:60, 25:50] = 40
    ct = Volume(array=arr, spacing_mm=np.array([0.8, 0.7, 1.3]),
                origin_lps_mm=np.array([3.0, -2.0, 5.0]), direction=direction)
    prepared = prepare_for_model(ct, spacing_mm=(1.0, 1.0, 1.0), normalisation=NORMALISATION,
                                 crop=True)
    assert prepared.crop_box is not None and prepared.crop_box.start_zyx != (0, 0, 0)
    probs = np.random.default_rng(0).random((4, *prepared.model_grid.shape_zyx)).astype(np.float16)
    whole = np.stack([1 - restore_to_input(1 - probs[0].astype(np.float32), prepared, ct,
                                           interpolation="linear")]
                     + [restore_to_input(probs[c].astype(np.float32), prepared, ct,
                                         interpolation="linear") for c in range(1, 4)])
    slabs = np.full_like(whole, np.nan)
    seen = []
    for z, q in restore_probabilities_in_slabs(probs, prepared, ct, slab_voxels=3000):
        assert q.dtype == np.float32 and q.shape == (4, z.stop - z.start, 90, 80)
        slabs[:, z] = q
        seen.append(z)
    assert len(seen) > 10                               # really in slabs
    assert np.abs(slabs - whole).max() < 1e-6
    # outside the body's crop everything is certain background
    assert np.allclose(slabs[:, 0, 0, 0], [1, 0, 0, 0])


def test_slabs_refuse_a_result_of_another_grid():
    ct = Volume(array=np.zeros((10, 12, 14), np.int16), spacing_mm=np.ones(3),
                origin_lps_mm=np.zeros(3), direction=np.eye(3))
    prepared = prepare_for_model(ct, spacing_mm=(1.0, 1.0, 1.0), normalisation=NORMALISATION,
                                 crop=False)
    with pytest.raises(ValueError, match="model grid"):
        next(restore_probabilities_in_slabs(np.zeros((3, 5, 5, 5), np.float32), prepared, ct))
