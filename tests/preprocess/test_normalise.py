"""CT normalisation: model card round trip, apply, fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinect_core.errors import SpinectError
from spinect_core.preprocess import CTNormalisation, NormalisationError


def test_dict_round_trip_through_json():
    n = CTNormalisation(clip_hu=(-1000, 1800.5), mean_hu=123.4, std_hu=321.0)
    d = json.loads(json.dumps(n.to_dict()))
    assert d == {"scheme": "ct_percentile_zscore", "clip_hu": [-1000.0, 1800.5],
                 "mean_hu": 123.4, "std_hu": 321.0}
    assert CTNormalisation.from_dict(d) == n
    z = CTNormalisation(scheme="zscore")
    assert CTNormalisation.from_dict(z.to_dict()) == z


@pytest.mark.parametrize("bad", [
    {"scheme": "minmax"},
    {"scheme": "ct_percentile_zscore", "clip_hu": [0, 1]},
    {"scheme": "ct_percentile_zscore", "clip_hu": [1, 0], "mean_hu": 0, "std_hu": 1},
    {"scheme": "ct_percentile_zscore", "clip_hu": [0, 1], "mean_hu": 0, "std_hu": 0},
])
def test_bad_dicts_are_refused(bad):
    with pytest.raises(NormalisationError) as info:
        CTNormalisation.from_dict(bad)
    # Both a ValueError (data class) and a SpinectError (one-line CLI message).
    assert isinstance(info.value, ValueError) and isinstance(info.value, SpinectError)


def test_apply_clips_then_standardises():
    n = CTNormalisation(clip_hu=(-100.0, 300.0), mean_hu=50.0, std_hu=100.0)
    x = np.array([-1000, -100, 50, 150, 3000], np.int16)
    out = n.apply(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [-1.5, -1.5, 0.0, 1.0, 2.5])
    assert x[0] == -1000  # input untouched
    np.testing.assert_allclose(n.invert(out[2:4]), [50, 150])


def test_zscore_per_volume():
    rng = np.random.default_rng(0)
    x = rng.normal(300, 50, size=(8, 8, 8))
    out = CTNormalisation(scheme="zscore").apply(x)
    assert abs(out.mean()) < 1e-5 and out.std() == pytest.approx(1.0, abs=1e-5)
    assert np.all(CTNormalisation(scheme="zscore").apply(np.full((2, 2, 2), 7.0)) == 0)


def test_fit_on_known_distribution():
    """Foreground ~ N(40, 100) HU inside air; percentiles and clipped moments known analytically."""
    rng = np.random.default_rng(42)
    cases, masks = [], []
    for _ in range(3):
        ct = np.full((40, 50, 50), -1000.0, np.float32)
        mask = np.zeros(ct.shape, np.uint8)
        mask[5:35, 5:45, 5:45] = 1
        ct[mask > 0] = rng.normal(40, 100, size=int(mask.sum()))
        cases.append(ct)
        masks.append(mask)
    n = CTNormalisation.fit(cases, masks, max_samples_per_case=50_000)
    z = 2.5758293035489004  # standard normal 99.5 % quantile
    assert n.clip_hu[0] == pytest.approx(40 - z * 100, abs=4)
    assert n.clip_hu[1] == pytest.approx(40 + z * 100, abs=4)
    # Clipping at +-2.576 sigma keeps the mean and shrinks the std to ~0.9909 sigma.
    assert n.mean_hu == pytest.approx(40, abs=2)
    assert n.std_hu == pytest.approx(99.09, abs=1.5)
    # Without masks the body threshold (> -500 HU) selects the same voxels here.
    n_body = CTNormalisation.fit(cases, max_samples_per_case=50_000)
    assert n_body.mean_hu == pytest.approx(n.mean_hu, abs=2)
    # Reproducible with the same seed.
    assert CTNormalisation.fit(cases, masks, max_samples_per_case=50_000) == n
    with pytest.raises(ValueError, match="foreground"):
        CTNormalisation.fit([np.full((3, 3, 3), -1000.0)])
    with pytest.raises(ValueError, match="fewer masks"):
        CTNormalisation.fit(cases, masks[:1])
