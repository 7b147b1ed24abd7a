"""The network's view of a CT: the array permuted and mirrored to the patient's axes, losslessly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from spinect_core.preprocess.orientation import to_model_axes
from spinect_core.volume import Volume


def _stored(axes: tuple[int, int, int], flips: tuple[bool, bool, bool]) -> tuple[Volume, Volume]:
    """A volume stored with the identity direction, and the same voxels stored another way
    (array axes permuted by ``axes`` and mirrored where ``flips``), its geometry to match."""
    rng = np.random.default_rng(0)
    canonical = Volume(array=rng.integers(-1000, 2000, (5, 6, 7)).astype(np.int16),
                       spacing_mm=np.array([0.7, 0.8, 2.5]),
                       origin_lps_mm=np.array([-10.0, 20.0, 300.0]))
    array = np.transpose(canonical.array, axes)
    array = np.flip(array, axis=tuple(k for k in range(3) if flips[k]))
    # Stored array axis k is canonical array axis axes[k], i.e. index axis 2 - axes[k].
    n = np.asarray(canonical.size_xyz)
    cols, spacing, first = [], [], np.zeros(3)
    for i in range(3):                   # stored index axis i = stored array axis 2 - i
        src = 2 - axes[2 - i]             # the canonical index axis it runs along
        sign = -1.0 if flips[2 - i] else 1.0
        cols.append(sign * np.eye(3)[:, src])
        spacing.append(canonical.spacing_mm[src])
        first[src] = n[src] - 1 if sign < 0 else 0
    stored = Volume(array=np.ascontiguousarray(array), spacing_mm=np.array(spacing),
                    origin_lps_mm=canonical.index_to_lps(first),
                    direction=np.stack(cols, axis=1))
    return canonical, stored


@pytest.mark.parametrize("axes", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("flips", [(False, False, False), (True, False, False),
                                   (False, True, True), (True, True, True)])
def test_any_storage_order_is_brought_to_the_patients_axes_and_back(axes, flips) -> None:
    canonical, stored = _stored(axes, flips)
    # The stored volume is the same image: each voxel at the same LPS position.
    k, j, i = 1, 2, 3
    p = canonical.index_to_lps(np.array([i, j, k], float))
    q = stored.lps_to_index(p)
    zyx = tuple(int(round(v)) for v in q[::-1])
    assert stored.array[zyx] == canonical.array[k, j, i]

    r = to_model_axes(stored)
    assert np.array_equal(r.volume.array, canonical.array)
    assert np.allclose(r.volume.direction, np.eye(3))
    assert np.allclose(r.volume.origin_lps_mm, canonical.origin_lps_mm)
    assert np.allclose(r.volume.spacing_mm, canonical.spacing_mm)
    assert r.unchanged == (axes == (0, 1, 2) and not any(flips))
    assert np.array_equal(r.back(r.volume.array), stored.array)
    # Leading axes (classes) are kept.
    stacked = np.stack([r.volume.array, -r.volume.array])
    assert np.array_equal(r.back(stacked), np.stack([stored.array, -stored.array]))


def test_an_oblique_direction_takes_its_closest_axes() -> None:
    a = np.radians(20.0)
    rot = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    # Sagittal slices of an oblique series: index x along -S, y along +P (rotated), z along L.
    direction = rot @ np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    vol = Volume(array=np.arange(60, dtype=np.int16).reshape(3, 4, 5), spacing_mm=[1.0, 2.0, 3.0],
                 origin_lps_mm=[0.0, 0.0, 0.0], direction=direction)
    r = to_model_axes(vol)
    assert np.all(np.diag(r.volume.direction) > 0.9)
    # Every voxel keeps its LPS position.
    zz, yy, xx = np.indices(r.volume.array.shape).reshape(3, -1)
    p = r.volume.index_to_lps(np.stack([xx, yy, zz], 1).astype(float))
    q = np.rint(vol.lps_to_index(p)).astype(int)
    assert np.array_equal(vol.array[q[:, 2], q[:, 1], q[:, 0]], r.volume.array.ravel())
    assert np.array_equal(r.back(r.volume.array), vol.array)


def test_a_volume_already_on_the_patients_axes_is_not_copied() -> None:
    vol = Volume(array=np.zeros((2, 3, 4), np.int16), spacing_mm=[1.0, 1.0, 1.0],
                 origin_lps_mm=[0.0, 0.0, 0.0])
    r = to_model_axes(vol)
    assert r.unchanged and r.volume is vol
