"""The distance map of a mask against scipy's on masks with known answers."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
from scipy import ndimage as ndi

from spinect_core.distance import distance_inside


def _mask() -> np.ndarray:
    rng = np.random.default_rng(7)
    mask = np.zeros((24, 30, 28), bool)
    mask[4:20, 6:25, 5:22] = True                      # a block with holes and lone voxels
    mask[tuple(rng.integers(0, 24, size=(3, 40)))] ^= True
    return mask


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 0.7, 0.8), (0.5, 1.25, 2.0)])
def test_it_is_scipys_euclidean_distance_to_the_nearest_voxel_outside(spacing):
    mask = _mask()
    found = distance_inside(mask, spacing)
    assert found.dtype == np.float32 and found.shape == mask.shape
    np.testing.assert_allclose(found, ndi.distance_transform_edt(mask, sampling=spacing),
                               atol=1e-4)
    assert not found[~mask].any()


def test_a_slab_has_its_half_thickness_in_the_middle():
    mask = np.zeros((9, 5, 5), bool)
    mask[2:7] = True                                   # 5 slices of 2 mm, open to the sides
    mask[:, 0, :] = mask[:, -1, :] = mask[:, :, 0] = mask[:, :, -1] = False
    d = distance_inside(mask, (2.0, 10.0, 10.0))
    assert d[4, 2, 2] == pytest.approx(6.0)            # three slices from the nearest outside
    assert d[2, 2, 2] == pytest.approx(2.0)


def test_empty_full_and_without_simpleitk(monkeypatch):
    assert not distance_inside(np.zeros((3, 4, 5), bool), (1, 1, 1)).any()
    full = np.ones((3, 4, 5), bool)
    np.testing.assert_allclose(distance_inside(full, (1, 1, 1)),
                               ndi.distance_transform_edt(full))
    real_import = builtins.__import__

    def no_simpleitk(name, *args, **kwargs):
        if name == "SimpleITK":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_simpleitk)
    mask = _mask()
    np.testing.assert_allclose(distance_inside(mask, (2.0, 1.0, 1.0)),
                               ndi.distance_transform_edt(mask, sampling=(2.0, 1.0, 1.0)),
                               atol=1e-5)
    with pytest.raises(ValueError):
        distance_inside(np.ones((3, 3), bool), (1.0, 1.0))
