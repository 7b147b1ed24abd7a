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


def passes(array, **kwargs) -> bool:
    """True when ``check_hounsfield`` accepts ``array``, False when it refuses it as not HU."""
    try:
        check_hounsfield(array, **kwargs)
    except NotHounsfieldError:
        return False
    return True


def test_normal_ct_passes():
    assert passes(body())
    assert not passes(body() + 1024)  # the same body unrescaled


def test_tight_fov_without_air_passes_on_its_fat():
    # Rule 4's bound is -30 HU at the 0.5th percentile: fat (-100 HU) alone keeps a tight field
    # of view in, and the same body shifted until its fat reads as water is refused.
    a = body(air=False)
    assert float(np.percentile(a, 0.5)) < -100
    assert passes(a)
    assert passes(a + 40)  # fat at -60 HU: still below the bound
    assert not passes(a + 160)  # fat at +60 HU: no fat and no air


def test_padding_outside_fov_ignored():
    a = body()
    a[:, :, -8:] = -3024  # outside the reconstruction circle: 20 % of voxels, the minimum
    assert passes(a)
    # Not ignored when it is not the volume's minimum: 20 % of voxels below -1500 HU is refused.
    a[0, 0, 0] = -3100
    assert not passes(a)
    b = body()
    b[:, :, -8:] = -2000
    b[0, 0, 0] = -3100  # so -2000 is not the minimum either: only the header's value removes it
    assert not passes(b)
    assert passes(b, padding_value=-2000)


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
