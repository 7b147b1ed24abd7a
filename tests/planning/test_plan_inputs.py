"""The planner's inputs on the CT grid: a label map on another grid is resampled in the core
(:func:`spinect_core.planning.plan.labels_on_ct_grid`, what :class:`PlanEngine` does for the CLI,
the demo and the app alike)."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.errors import InputError
from spinect_core.planning.plan import labels_on_ct_grid
from spinect_core.volume import Volume


def _ct() -> Volume:
    return Volume(array=np.zeros((8, 10, 12), np.int16), spacing_mm=(1.0, 1.0, 2.0),
                  origin_lps_mm=(-5.0, -4.0, 10.0))


def test_a_label_map_on_the_ct_grid_is_used_as_it_is() -> None:
    ct = _ct()
    labels = ct.with_array(np.ones(ct.array.shape, np.uint8))
    out, note = labels_on_ct_grid(labels, ct)
    assert out is labels and note == ""


def test_a_label_map_on_another_grid_is_resampled_nearest_neighbour() -> None:
    ct = _ct()
    # Half the voxels in x and y, 2 mm further along x: class 3 fills x >= 1 mm (LPS).
    arr = np.zeros((8, 6, 6), np.uint8)  # covers the CT in y and z
    xs = -3.0 + 2.0 * np.arange(6)  # LPS x of the columns' centres
    arr[:, :, xs >= 1.0] = 3
    labels = Volume(array=arr, spacing_mm=(2.0, 2.0, 2.0), origin_lps_mm=(-3.0, -4.0, 10.0))
    out, note = labels_on_ct_grid(labels, ct, what="label map")
    assert out.same_grid(ct) and out.array.dtype == np.uint8
    assert "resampled" in note and "label map" in note
    ct_x = -5.0 + np.arange(12)
    # Nearest neighbour: ids only, none invented; columns well inside either part keep theirs.
    assert set(np.unique(out.array)) <= {0, 3}
    assert np.all(out.array[:, :, ct_x >= 2.0] == 3)
    assert np.all(out.array[:, :, ct_x <= -1.0] == 0)


def test_a_label_map_that_misses_the_ct_is_refused() -> None:
    ct = _ct()
    far = Volume(array=np.ones((4, 4, 4), np.uint8), spacing_mm=(1.0, 1.0, 1.0),
                 origin_lps_mm=(500.0, 500.0, 500.0))
    with pytest.raises(InputError, match="does not overlap the CT"):
        labels_on_ct_grid(far, ct)


def test_the_planning_name_is_the_one_function_the_loaders_use() -> None:
    from spinect_core.io import labelmap

    assert labels_on_ct_grid is labelmap.labels_on_ct_grid


def test_atol_decides_what_counts_as_the_same_grid() -> None:
    ct = _ct()
    # 5e-4 mm off along x: the same grid at atol 1e-3 (what file loaders pass), another at 1e-4.
    shifted = Volume(array=np.ones(ct.array.shape, np.uint8), spacing_mm=ct.spacing_mm,
                     origin_lps_mm=ct.origin_lps_mm + np.array([5e-4, 0.0, 0.0]))
    out, note = labels_on_ct_grid(shifted, ct, atol=1e-3)
    assert out is shifted and note == ""
    out, note = labels_on_ct_grid(shifted, ct)  # default 1e-4: another grid, resampled
    assert out is not shifted and out.same_grid(ct, atol=0.0) and "resampled" in note
    assert np.all(out.array == 1)


def test_without_the_overlap_check_a_map_that_misses_the_ct_comes_back_empty() -> None:
    ct = _ct()
    far = Volume(array=np.ones((4, 4, 4), np.uint8), spacing_mm=(1.0, 1.0, 1.0),
                 origin_lps_mm=(500.0, 500.0, 500.0))
    out, note = labels_on_ct_grid(far, ct, check_overlap=False)
    assert out.same_grid(ct) and not np.any(out.array) and "resampled" in note


def test_progress_is_told_only_when_resampling() -> None:
    ct = _ct()
    seen: list[tuple[float, str]] = []

    def progress(fraction: float, message: str) -> bool:
        seen.append((fraction, message))
        return True

    labels_on_ct_grid(ct.with_array(np.ones(ct.array.shape, np.uint8)), ct, progress=progress)
    assert seen == []
    coarse = Volume(array=np.ones((4, 5, 6), np.uint8), spacing_mm=(2.0, 2.0, 4.0),
                    origin_lps_mm=(-4.5, -3.5, 11.0))
    labels_on_ct_grid(coarse, ct, what="instance map", progress=progress)
    assert [f for f, _ in seen] == [0.0, 1.0] and "instance map" in seen[0][1]
