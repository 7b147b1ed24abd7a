"""Resampling keeps LPS geometry exact."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.preprocess import (
    Grid, new_size_for_spacing, resample_probabilities_to_grid, resample_to_grid,
    resample_to_spacing,
)
from spinect_core.volume import Volume
from tests.preprocess.conftest import rotation


def ramp_volume() -> Volume:
    """A linear function of LPS position on an oblique grid: linear resampling is exact on it."""
    direction = rotation([0.2, 1.0, 0.3], 25.0)
    vol = Volume(array=np.zeros((12, 20, 24), np.float32), spacing_mm=[0.8, 0.9, 2.0],
                 origin_lps_mm=[-10.0, 5.0, 30.0], direction=direction)
    return vol.with_array(ramp_of(vol))


def ramp_of(grid) -> np.ndarray:
    nz, ny, nx = grid.shape if isinstance(grid, Grid) else grid.array.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    p = grid.index_to_lps(np.stack([i, j, k], -1).astype(float))
    return (2.0 * p[..., 0] - 3.0 * p[..., 1] + 0.5 * p[..., 2]).astype(np.float32)


def test_new_size_rounds_extent():
    assert new_size_for_spacing((512, 512, 100), (0.7, 0.7, 2.5), (1, 1, 1)) == (358, 358, 250)
    assert new_size_for_spacing((10, 10, 10), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0 + 1e-9)) == (10, 10, 10)
    assert new_size_for_spacing((1, 1, 1), (0.5, 0.5, 0.5), (3, 3, 3)) == (1, 1, 1)


def test_resample_to_spacing_keeps_origin_direction_and_values():
    vol = ramp_volume()
    out = resample_to_spacing(vol, 1.0)
    np.testing.assert_allclose(out.origin_lps_mm, vol.origin_lps_mm)
    np.testing.assert_allclose(out.direction, vol.direction)
    np.testing.assert_allclose(out.spacing_mm, [1.0, 1.0, 1.0])
    assert out.size_xyz == (19, 18, 24)
    assert out.array.dtype == np.float32
    # Linear interpolation of a linear function is exact inside the input's voxel centres.
    inside = np.zeros(out.array.shape, bool)
    nz, ny, nx = out.array.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    cont = vol.lps_to_index(out.index_to_lps(np.stack([i, j, k], -1).astype(float)))
    inside = np.all((cont >= 0) & (cont <= np.array(vol.size_xyz) - 1), axis=-1)
    assert inside.mean() > 0.7
    np.testing.assert_allclose(out.array[inside], ramp_of(out)[inside], atol=1e-3)


def test_int16_linear_is_not_truncated():
    vol = Volume(array=np.array([[[0, 1]]], np.int16).repeat(2, 0).repeat(2, 1),
                 spacing_mm=[2, 2, 2], origin_lps_mm=[0, 0, 0])
    out = resample_to_grid(vol, Grid(shape_zyx=(1, 1, 1), spacing_mm=[1, 1, 1],
                                     origin_lps_mm=[1.0, 0, 0]))
    assert out.array.dtype == np.float32 and out.array[0, 0, 0] == pytest.approx(0.5)


def test_nearest_keeps_labels_and_dtype():
    vol = ramp_volume()
    labels = vol.with_array((np.arange(vol.array.size) % 4).reshape(vol.array.shape).astype(np.uint8))
    out = resample_to_spacing(labels, [0.5, 0.5, 0.5], interpolation="nearest")
    assert out.array.dtype == np.uint8
    assert set(np.unique(out.array)) <= {0, 1, 2, 3}
    back = resample_to_grid(out, labels, interpolation="nearest")
    assert back.same_grid(labels)
    # Halving the spacing puts a fine voxel centre within a quarter voxel of each coarse one.
    np.testing.assert_array_equal(back.array, labels.array)


def test_bool_arrays_and_bspline():
    vol = ramp_volume()
    mask = vol.with_array(vol.array > 0)
    out = resample_to_spacing(mask, 1.0, interpolation="nearest")
    assert out.array.dtype == bool
    spl = resample_to_spacing(vol, 1.0, interpolation="bspline")
    assert spl.array.dtype == np.float32
    with pytest.raises(ValueError, match="interpolation"):
        resample_to_spacing(vol, 1.0, interpolation="cubic")  # type: ignore[arg-type]


def test_default_value_outside():
    vol = ramp_volume()
    shifted = Grid(shape_zyx=(4, 4, 4), spacing_mm=[1, 1, 1], origin_lps_mm=[500.0, 500, 500])
    out = resample_to_grid(vol, shifted, default_value=-1024)
    assert np.all(out.array == -1024)


def test_probabilities_resampled_and_renormalised():
    src = Grid(shape_zyx=(10, 10, 10), spacing_mm=[2, 2, 2], origin_lps_mm=[0, 0, 0])
    rng = np.random.default_rng(1)
    probs = rng.random((3, 10, 10, 10)).astype(np.float32)
    probs /= probs.sum(0)
    ref = Grid(shape_zyx=(24, 24, 24), spacing_mm=[1, 1, 1], origin_lps_mm=[-2.0, -2.0, -2.0])
    out = resample_probabilities_to_grid(probs, src, ref)
    assert out.shape == (3, 24, 24, 24) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-5)
    # Outside the source (more than half a voxel beyond its first centre): certain background.
    np.testing.assert_allclose(out[:, 0, 0, 0], [1, 0, 0])
    # At a coarse voxel centre the value is the source's.
    np.testing.assert_allclose(out[:, 2 + 4, 2 + 6, 2 + 8], probs[:, 2, 3, 4], atol=1e-6)
    with pytest.raises(ValueError, match="fill"):
        resample_probabilities_to_grid(probs, src, ref, fill=[1, 0])


@pytest.mark.parametrize("direction", [np.eye(3), np.array([[0.8, 0.6, 0], [-0.6, 0.8, 0], [0, 0, 1.0]])])
@pytest.mark.parametrize("dtype,interpolation", [(np.int16, "linear"), (np.int16, "nearest"),
                                                 (bool, "nearest"), (np.float32, "linear")])
def test_large_volumes_are_resampled_in_slabs_with_the_same_result(monkeypatch, direction, dtype,
                                                                   interpolation):
    import spinect_core.preprocess.resample as resample
    from spinect_core.preprocess.resample import Grid, resample_array_to_grid

    rng = np.random.default_rng(0)
    src = Grid(shape_zyx=(60, 50, 40), spacing_mm=np.array([0.7, 0.8, 0.5]),
               origin_lps_mm=np.array([1.0, 2.0, 3.0]), direction=direction)
    ref = Grid(shape_zyx=(35, 45, 33), spacing_mm=np.ones(3), origin_lps_mm=np.array([-3.0, 0, 2]),
               direction=np.eye(3))
    a = rng.random(src.shape_zyx) > 0.5 if dtype is bool else rng.normal(0, 100, src.shape_zyx
                                                                         ).astype(dtype)
    whole = resample_array_to_grid(a, src, ref, interpolation=interpolation, default_value=7)
    monkeypatch.setattr(resample, "SLAB_VOXELS", 3000)       # about 3 output slices per slab
    slabs = resample_array_to_grid(a, src, ref, interpolation=interpolation, default_value=7)
    assert slabs.dtype == whole.dtype
    assert np.array_equal(slabs, whole)
