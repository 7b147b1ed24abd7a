"""The not-HU heuristic, both sides of each rule."""

import numpy as np
import pytest

from spinect_core.errors import NotHounsfieldError
from spinect_core.io.hounsfield import check_hounsfield


def body(seed=0, air=True):
    rng = np.random.default_rng(seed)
    a = rng.normal(40, 20, size=(20, 40, 40)).astype(np.float32)  # soft tissue
    a[:, :, :6] = rng.normal(-100, 15, size=(20, 40, 6))  # fat
    if air:
        a[:, :5] = rng.normal(-1000, 30, size=(20, 5, 40))
    return a


def test_normal_ct_passes():
    check_hounsfield(body())


def test_tight_fov_without_air_passes():
    check_hounsfield(body(air=False))


def test_padding_outside_fov_ignored():
    a = body()
    a[:, :, -8:] = -3024  # outside the reconstruction circle
    check_hounsfield(a)
    b = body()
    b[:, :, -8:] = -2000
    check_hounsfield(b, padding_value=-2000)


def test_unrescaled_with_air_at_zero_refused():
    with pytest.raises(NotHounsfieldError, match="neither air"):
        check_hounsfield(body() + 1024)


def test_unrescaled_tight_fov_refused():
    with pytest.raises(NotHounsfieldError):
        check_hounsfield(body(air=False) + 1024)


def test_normalised_or_mr_refused():
    with pytest.raises(NotHounsfieldError):
        check_hounsfield(np.random.default_rng(1).random((10, 10, 10)).astype(np.float32))


def test_doubled_intercept_refused():
    with pytest.raises(NotHounsfieldError, match="below -1500"):
        check_hounsfield(body() - 1024)


def test_absurd_high_values_refused():
    a = body()
    a[:, 20:] = 40000
    with pytest.raises(NotHounsfieldError, match="32000"):
        check_hounsfield(a)


def test_missing_intercept_named():
    with pytest.raises(NotHounsfieldError, match="RescaleIntercept"):
        check_hounsfield(body() + 1024, missing_intercept=True)
