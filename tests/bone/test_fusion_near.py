"""The fused bone's "network bone near the CT's" equals a whole-volume distance transform."""

import numpy as np
from scipy import ndimage as ndi

from spinect_core.bone.fusion import _keep_near


def test_slabbed_near_equals_the_whole_volume_distance():
    rng = np.random.default_rng(1)
    spacing = np.array([2.5, 0.7, 0.8])
    for _ in range(3):
        mask = rng.random((40, 50, 60)) > 0.995
        candidates = rng.random((40, 50, 60)) > 0.7
        expected = candidates & (ndi.distance_transform_edt(~mask, sampling=spacing) <= 3.0)
        got = _keep_near(candidates.copy(), mask, spacing, 3.0, slab_voxels=3000)
        assert expected.sum() > 1000
        assert np.array_equal(got, expected)


def test_near_with_nothing_to_be_near():
    candidates = np.ones((5, 6, 7), bool)
    assert not _keep_near(candidates, np.zeros_like(candidates), np.ones(3), 3.0).any()
