import numpy as np
import pytest

from spinect_core.inference import tiling


@pytest.mark.parametrize("size,patch,stride", [
    (32, 32, 20), (33, 32, 20), (51, 32, 20), (52, 32, 20), (53, 32, 20), (97, 32, 20),
    (64, 64, 40), (65, 64, 40), (127, 64, 40), (300, 64, 40), (7, 3, 1), (10, 4, 4), (11, 4, 4),
])
def test_window_starts_cover_every_voxel_and_end_at_the_end(size, patch, stride):
    starts = tiling.window_starts(size, patch, stride)
    assert starts[0] == 0
    assert starts[-1] + patch == size
    assert all(b > a for a, b in zip(starts, starts[1:]))
    assert all(b - a <= stride for a, b in zip(starts, starts[1:]))
    covered = np.zeros(size, bool)
    for s in starts:
        covered[s:s + patch] = True
    assert covered.all()


def test_window_starts_matches_monai_dense_patch_slices():
    from monai.data.utils import dense_patch_slices

    for shape in [(32, 64, 64), (33, 65, 97), (51, 127, 129), (96, 192, 192), (45, 100, 77)]:
        ours = tiling.tile_starts(shape, (32, 64, 64), (20, 40, 40))
        monai = [tuple(s.start for s in sl) for sl in
                 dense_patch_slices(shape, (32, 64, 64), (20, 40, 40))]
        assert ours == monai, shape


def test_study_volume_has_125_windows():
    assert tiling.num_windows((96, 192, 192), (32, 64, 64), (20, 40, 40)) == 125


def test_stride_larger_than_patch_is_rejected():
    with pytest.raises(ValueError, match="stride"):
        tiling.window_starts(100, 32, 33)
    with pytest.raises(ValueError):
        tiling.window_starts(100, 32, 0)


def test_axis_shorter_than_patch_requires_padding():
    with pytest.raises(ValueError, match="pad"):
        tiling.window_starts(20, 32, 20)
    assert tiling.padding_for((20, 64, 63), (32, 64, 64)) == ((6, 6), (0, 0), (0, 1))
    assert tiling.padding_for((40, 70, 90), (32, 64, 64)) == ((0, 0), (0, 0), (0, 0))
    # after padding a single window covers the short axes
    assert tiling.num_windows((20, 64, 63), (32, 64, 64), (20, 40, 40)) == 1


def test_tile_starts_cover_volume_3d():
    shape, patch, stride = (23, 31, 17), (8, 12, 6), (5, 7, 4)
    count = np.zeros(shape, int)
    for z, y, x in tiling.tile_starts(shape, patch, stride):
        count[z:z + patch[0], y:y + patch[1], x:x + patch[2]] += 1
    assert count.min() >= 1


def test_gaussian_map_matches_monai():
    import torch
    from monai.data.utils import compute_importance_map

    for patch in [(32, 64, 64), (8, 12, 7), (5, 5, 5)]:
        ours = tiling.gaussian_importance_map(patch, 0.125)
        ref = compute_importance_map(patch, mode="gaussian", sigma_scale=0.125,
                                     dtype=torch.float32).numpy()
        assert ours.dtype == np.float32 and ours.shape == patch
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)


def test_gaussian_map_shape_and_symmetry():
    w = tiling.gaussian_importance_map((32, 64, 64))
    assert w.min() >= 1e-3 - 1e-9
    assert w[15, 31, 31] == w.max()
    np.testing.assert_array_equal(w, w[::-1, ::-1, ::-1])
