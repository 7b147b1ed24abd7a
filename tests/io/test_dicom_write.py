"""The library's DICOM series writer (used by exports): round trip and refusal to overwrite."""

import numpy as np
import pydicom
import pytest

from spinect_core.io import load_ct, write_dicom_series
from spinect_core.io.atomic import FileExistsRefusedError
from spinect_core.volume import CTMetadata, Volume
from tests.io.dicom_factory import rotation


def test_round_trip_oblique(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(-1024, 3000, size=(5, 12, 10)).astype(np.int16)
    vol = Volume(array=arr, spacing_mm=[0.6, 0.75, 1.5], origin_lps_mm=[3.0, -4.0, 5.0],
                 direction=rotation(-30, 15, 100), metadata=CTMetadata(series_description="ph"))
    paths = write_dicom_series(vol, tmp_path)
    assert [p.name for p in paths] == [f"IM{k:05d}.dcm" for k in range(1, 6)]
    ds = pydicom.dcmread(paths[0])
    assert ds.Modality == "CT" and str(ds.PatientName) == "" and ds.SeriesDescription == "ph"
    back = load_ct(tmp_path)
    np.testing.assert_array_equal(back.array, arr)
    np.testing.assert_allclose(back.direction, vol.direction, atol=1e-9)
    np.testing.assert_allclose(back.origin_lps_mm, vol.origin_lps_mm, atol=1e-9)
    np.testing.assert_allclose(back.spacing_mm, vol.spacing_mm, atol=1e-9)
    with pytest.raises(FileExistsRefusedError):
        write_dicom_series(vol, tmp_path)
    write_dicom_series(vol, tmp_path, overwrite=True)
