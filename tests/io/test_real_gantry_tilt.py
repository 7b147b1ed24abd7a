"""The real GE head CT with 18.5 degree gantry tilt and irregular spacing (shared data)."""

import numpy as np
import pytest

from spinect_core.errors import GantryTiltError
from spinect_core.io import LoadOptions, list_series, load_ct


@pytest.fixture(scope="module")
def tilt_folder(shared_data):
    folder = shared_data / "dicom_gantry_tilt_head"
    if not folder.is_dir():
        pytest.skip("gantry-tilt series absent")
    return folder


def test_loads_corrected_never_sheared(tilt_folder):
    vol = load_ct(tilt_folder)
    text = " ".join(vol.warnings)
    assert "gantry tilt of 18.5 degrees" in text
    assert "irregular" in text
    d = vol.direction
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-6)  # orthogonal, not sheared
    assert np.linalg.det(d) == pytest.approx(1.0, abs=1e-6)
    # row (1,0,0), column tilted by 18.5 degrees about x
    assert np.degrees(np.arccos(abs(d[2, 2]))) == pytest.approx(18.5, abs=0.1)
    lo, mid, hi = np.percentile(vol.array, [0.5, 50, 99.9])
    assert -1600 < lo < -900 and hi > 300 and hi < 4000  # air, and bone/skull present
    head = np.argwhere(vol.array > -300)
    extent = (head.max(0) - head.min(0)) * vol.spacing_mm[::-1]  # z, y, x mm
    assert 120 < extent[1] < 260 and 120 < extent[2] < 260
    assert 100 < extent[0] < 200
    assert vol.metadata.modality == "CT" and vol.metadata.manufacturer


def test_refused_with_tilt_named_when_correction_disabled(tilt_folder):
    with pytest.raises(GantryTiltError, match="18.5 degrees"):
        load_ct(tilt_folder, options=LoadOptions(correct_gantry_tilt=False))


def test_listed(tilt_folder):
    [info] = list_series(tilt_folder)
    assert info.modality == "CT" and info.number_of_slices == 28 and info.size == (512, 512, 28)
