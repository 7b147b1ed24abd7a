"""NIfTI / NRRD / MHA through SimpleITK: LPS geometry round trips."""

import numpy as np
import pytest

from spinect_core.errors import NotHounsfieldError, SingleSliceError, UnsupportedFormatError
from spinect_core.io import list_series, load_ct, write_image
from spinect_core.volume import Volume
from tests.io.dicom_factory import rotation


def ct_volume(dtype=np.int16):
    rng = np.random.default_rng(0)
    a = rng.integers(-1024, 1500, size=(6, 9, 11)).astype(dtype)
    a[:, 0] = -1024
    return Volume(array=a, spacing_mm=[0.7, 0.9, 2.0], origin_lps_mm=[-12.5, 30.0, -100.0],
                  direction=rotation(10, -20, 35))


@pytest.mark.parametrize("name,fmt", [("ct.nii.gz", "nifti"), ("ct.nii", "nifti"),
                                      ("ct.nrrd", "nrrd"), ("ct.mha", "mha")])
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_round_trip(tmp_path, name, fmt, dtype):
    vol = ct_volume(dtype)
    write_image(vol, tmp_path / name)
    back = load_ct(tmp_path / name)
    assert back.array.dtype == dtype
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.spacing_mm, vol.spacing_mm, atol=1e-5)
    np.testing.assert_allclose(back.origin_lps_mm, vol.origin_lps_mm, atol=1e-4)
    np.testing.assert_allclose(back.direction, vol.direction, atol=1e-5)
    assert back.metadata.source_format == fmt
    [info] = list_series(tmp_path / name)
    assert info.size == (11, 9, 6) and info.source_format == fmt


def test_nifti_ras_on_disk_is_returned_as_lps(tmp_path):
    import nibabel as nib

    affine_ras = np.array([[0.8, 0, 0, 10.0], [0, 0.9, 0, 20.0], [0, 0, 2.0, -30.0], [0, 0, 0, 1]])
    data_xyz = np.full((8, 7, 5), -1000, np.int16)
    data_xyz[2:6, 2:5, 1:4] = 50
    img = nib.Nifti1Image(data_xyz, affine_ras)
    img.set_sform(affine_ras, code=1)
    img.set_qform(affine_ras, code=1)
    nib.save(img, tmp_path / "ras.nii.gz")
    vol = load_ct(tmp_path / "ras.nii.gz")
    np.testing.assert_allclose(vol.origin_lps_mm, [-10.0, -20.0, -30.0], atol=1e-5)
    np.testing.assert_allclose(vol.direction, np.diag([-1.0, -1.0, 1.0]), atol=1e-6)
    np.testing.assert_allclose(vol.spacing_mm, [0.8, 0.9, 2.0], atol=1e-6)
    np.testing.assert_array_equal(vol.array, data_xyz.transpose(2, 1, 0))
    # the voxel (x=3, y=3, z=2) at RAS (12.4, 22.7, -26) is at LPS (-12.4, -22.7, -26)
    np.testing.assert_allclose(vol.index_to_lps([3, 3, 2]), [-12.4, -22.7, -26.0], atol=1e-5)


def test_single_slice_image_refused(tmp_path):
    vol = ct_volume()
    write_image(Volume(array=vol.array[:1], spacing_mm=[1, 1, 1], origin_lps_mm=[0, 0, 0]),
                tmp_path / "one.nrrd")
    with pytest.raises(SingleSliceError):
        load_ct(tmp_path / "one.nrrd")


def test_not_hu_image_refused(tmp_path):
    vol = ct_volume()
    write_image(vol.with_array((vol.array.astype(np.float32) + 1024) / 4000), tmp_path / "n.mha")
    with pytest.raises(NotHounsfieldError):
        load_ct(tmp_path / "n.mha")


def test_garbage_files_refused(tmp_path):
    (tmp_path / "bad.nii.gz").write_bytes(b"not an image at all")
    with pytest.raises(UnsupportedFormatError, match="bad.nii.gz"):
        load_ct(tmp_path / "bad.nii.gz")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="x.txt"):
        load_ct(tmp_path / "x.txt")
