"""prepare_for_model / restore_to_input on an anisotropic, oblique CT with analytic spheres."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.errors import Cancelled
from spinect_core.preprocess import (
    CTNormalisation, Grid, prepare_for_model, prepare_labels, restore_to_input,
)
from tests.preprocess.conftest import SPHERES

NORM = CTNormalisation(clip_hu=(-1000.0, 1500.0), mean_hu=100.0, std_hu=300.0)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def centroid_lps(mask: np.ndarray, grid) -> np.ndarray:
    idx_zyx = np.argwhere(mask).mean(axis=0)
    return grid.index_to_lps(idx_zyx[::-1])


@pytest.fixture(scope="module")
def prepared(oblique_ct):
    ct, _ = oblique_ct
    return prepare_for_model(ct, spacing_mm=1.0, normalisation=NORM)


def test_model_grid_geometry(oblique_ct, prepared):
    ct, _ = oblique_ct
    assert prepared.image.dtype == np.float32
    assert prepared.image.shape == prepared.model_grid.shape_zyx
    np.testing.assert_allclose(prepared.model_grid.spacing_mm, [1.0, 1.0, 1.0])
    # Direction is kept (the model grid is parallel to the oblique input grid).
    np.testing.assert_allclose(prepared.model_grid.direction, ct.direction)
    # Origin kept by the resampling; the crop moves it to the box start.
    np.testing.assert_allclose(prepared.resampled_grid.origin_lps_mm, ct.origin_lps_mm)
    box = prepared.crop_box
    assert box is not None and not box.is_full  # the body is narrower than the field of view
    np.testing.assert_allclose(prepared.model_grid.origin_lps_mm,
                               prepared.resampled_grid.index_to_lps(np.array(box.start_zyx[::-1])))
    # Resampled extent = input extent rounded to whole 1 mm voxels.
    assert prepared.resampled_grid.size_xyz == (98, 84, 85)


def test_normalised_values(prepared):
    # Air (-1000 HU) and soft tissue (40 HU) map through (x - 100) / 300.
    values = np.unique(np.round(prepared.image, 3))
    assert values.min() == pytest.approx((-1000 - 100) / 300, abs=1e-3)
    assert np.any(np.isclose(values, (40 - 100) / 300, atol=1e-3))


def test_label_round_trip_on_exact_input_grid(oblique_ct, prepared):
    ct, labels = oblique_ct
    on_model = prepare_labels(labels, prepared)
    assert on_model.shape == prepared.model_grid.shape_zyx and on_model.dtype == labels.array.dtype
    back = restore_to_input(on_model, prepared, ct)
    restored = ct.with_array(back)
    assert restored.same_grid(ct, atol=1e-9)
    assert back.dtype == labels.array.dtype
    for _, _, label in SPHERES:
        assert dice(back == label, labels.array == label) >= 0.95


def test_probability_round_trip_is_at_least_as_good(oblique_ct, prepared):
    ct, labels = oblique_ct
    on_model = prepare_labels(labels, prepared)
    probs = np.stack([on_model == c for c in range(3)]).astype(np.float32)
    back = restore_to_input(probs, prepared, ct)
    assert back.shape == (3, *ct.array.shape) and back.dtype == np.float32
    np.testing.assert_allclose(back.sum(axis=0), 1.0, atol=1e-5)
    nearest = restore_to_input(on_model, prepared, ct)
    for _, _, label in SPHERES:
        d_prob = dice(back.argmax(0) == label, labels.array == label)
        assert d_prob >= 0.95
        assert d_prob >= dice(nearest == label, labels.array == label) - 0.01


def test_sphere_centres_stay_in_place(oblique_ct, prepared):
    ct, labels = oblique_ct
    on_model = prepare_labels(labels, prepared)
    back = restore_to_input(on_model, prepared, ct)
    for centre, _, label in SPHERES:
        # On the model grid (1 mm) and back on the input grid: centroid within half a model
        # voxel. Nearest neighbour is exact up to tie-breaking: the 0.7 mm and 1 mm grids share
        # the origin, so every 10th input voxel is exactly halfway between two model voxels and
        # ITK rounds those up, a small systematic shift (measured 0.1-0.3 mm).
        assert np.linalg.norm(centroid_lps(on_model == label, prepared.model_grid) - centre) < 0.5
        assert np.linalg.norm(centroid_lps(back == label, ct) - centre) < 0.5
    # The CT's bright sphere is found at the same LPS place on the normalised model image.
    bone = prepared.image > (500 - 100) / 300
    assert np.linalg.norm(centroid_lps(bone, prepared.model_grid) - SPHERES[0][0]) < 0.5


def test_restore_equals_uncrop_then_resample(oblique_ct, prepared):
    """The padded shortcut inside restore_to_input is exactly uncrop + resample."""
    from spinect_core.preprocess import resample_array_to_grid, uncrop

    ct, labels = oblique_ct
    rng = np.random.default_rng(0)
    result = rng.integers(0, 3, size=prepared.model_grid.shape_zyx).astype(np.uint8)
    full = uncrop(result, prepared.crop_box, fill=0)
    reference = resample_array_to_grid(full, prepared.resampled_grid, ct, interpolation="nearest")
    # Input voxels exactly halfway between two model voxels (ties) may round either way with the
    # float noise of the shifted crop origin; compare everywhere else.
    nz, ny, nx = ct.array.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    cont = prepared.resampled_grid.lps_to_index(ct.index_to_lps(np.stack([i, j, k], -1)))
    frac = cont - np.floor(cont)
    no_tie = np.all(np.abs(frac - 0.5) > 1e-3, axis=-1)
    assert no_tie.mean() > 0.3  # half of the slices are ties in z (2.5 mm -> 1 mm)
    restored = restore_to_input(result, prepared, ct)
    np.testing.assert_array_equal(restored[no_tie], reference[no_tie])
    probs = rng.random((3, *prepared.model_grid.shape_zyx)).astype(np.float32)
    probs /= probs.sum(0)
    full_p = uncrop(probs, prepared.crop_box, fill=[1.0, 0.0, 0.0])
    ref_p = np.stack([resample_array_to_grid(full_p[c], prepared.resampled_grid, ct,
                                             default_value=float(c == 0)) for c in range(3)])
    ref_p /= ref_p.sum(0)
    np.testing.assert_allclose(restore_to_input(probs, prepared, ct), ref_p, atol=1e-6)


def test_no_crop_and_same_spacing(oblique_ct):
    ct, labels = oblique_ct
    p = prepare_for_model(ct, spacing_mm=ct.spacing_mm, normalisation=CTNormalisation(scheme="zscore"),
                          crop=False)
    assert p.crop_box is None and p.model_grid.same_as(ct)
    assert abs(float(p.image.mean())) < 1e-4 and float(p.image.std()) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_array_equal(restore_to_input(labels.array, p), labels.array)


def test_wrong_inputs_are_refused(oblique_ct, prepared):
    ct, _ = oblique_ct
    with pytest.raises(ValueError, match="model grid"):
        restore_to_input(np.zeros((3, 3, 3), np.uint8), prepared, ct)
    other = Grid(shape_zyx=ct.array.shape, spacing_mm=ct.spacing_mm,
                 origin_lps_mm=ct.origin_lps_mm + 5, direction=ct.direction)
    with pytest.raises(ValueError, match="grid"):
        restore_to_input(np.zeros(prepared.model_grid.shape_zyx, np.uint8), prepared, other)
    with pytest.raises(ValueError, match="linear or bspline"):
        prepare_for_model(ct, spacing_mm=1.0, normalisation=NORM, interpolation="nearest")


def test_progress_and_cancel(oblique_ct):
    ct, _ = oblique_ct
    seen: list[float] = []
    prepare_for_model(ct, spacing_mm=2.0, normalisation=NORM,
                      progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(Cancelled):
        prepare_for_model(ct, spacing_mm=2.0, normalisation=NORM, progress=lambda f, m: False)
