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
