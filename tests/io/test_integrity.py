"""Input integrity of image files: truncation, spacing, NaN/inf and too-small volumes.

Each case is refused with its own error class and message, before anything is computed on a
volume that would look valid and is not (issue 16, case 3 and 7; NaN case 2).
"""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from spinect_core.errors import (InvalidSpacingError, NonFiniteValuesError, NotHounsfieldError,
                                 TruncatedFileError, VolumeTooSmallError)
from spinect_core.io import list_series, load_ct, write_image
from spinect_core.io.integrity import check_finite, check_volume_size
from spinect_core.io.options import LoadOptions
from spinect_core.volume import Volume


def body_ct(shape_zyx=(40, 64, 64), spacing=(0.8, 0.8, 1.0), dtype=np.int16) -> Volume:
    """Air around a soft-tissue ellipse with a bone block: plausible HU, 51 x 51 x 40 mm."""
    nz, ny, nx = shape_zyx
    j, i = np.mgrid[:ny, :nx]
    inside = ((i - nx / 2) / (0.42 * nx)) ** 2 + ((j - ny / 2) / (0.38 * ny)) ** 2 <= 1
    arr = np.full(shape_zyx, -1000, dtype)
    arr[:, inside] = 40
    arr[:, ny // 2 - 6:ny // 2 + 6, nx // 2 - 8:nx // 2 + 8] = 700
    arr[:, inside & (j < ny // 3)] = -100  # fat
    return Volume(array=arr, spacing_mm=spacing, origin_lps_mm=(-25.0, -30.0, 100.0))


@pytest.fixture()
def ct() -> Volume:
    return body_ct()


# --- truncation -----------------------------------------------------------------------------------
def test_half_a_gzip_stream_is_refused_as_truncated(tmp_path, ct):
    whole = write_image(ct, tmp_path / "whole.nii.gz")
    assert load_ct(whole).array.shape == ct.array.shape  # the intact file loads
    data = whole.read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(data[: len(data) // 2])
    for call in (load_ct, list_series):
        with pytest.raises(TruncatedFileError, match=r"cut\.nii\.gz is truncated") as info:
            call(cut)
        assert "MB" in str(info.value) or "bytes" in str(info.value)


def test_a_gzip_stream_cut_inside_the_header_is_truncated(tmp_path, ct):
    data = write_image(ct, tmp_path / "whole.nii.gz").read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(data[:60])
    with pytest.raises(TruncatedFileError):
        load_ct(cut)


def test_a_complete_gzip_stream_of_a_short_nifti_is_truncated(tmp_path, ct):
    raw = write_image(ct, tmp_path / "whole.nii").read_bytes()
    short = tmp_path / "short.nii.gz"
    short.write_bytes(gzip.compress(raw[: len(raw) - 5000]))  # valid gzip, missing voxels
    with pytest.raises(TruncatedFileError, match="short.nii.gz"):
        load_ct(short)


@pytest.mark.parametrize("name", ["cut.nii", "cut.nrrd", "cut.mha"])
def test_truncated_uncompressed_and_other_formats(tmp_path, ct, name):
    whole = write_image(ct, tmp_path / ("whole" + name[3:]))
    data = whole.read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(TruncatedFileError, match=name.replace(".", r"\.")):
        load_ct(tmp_path / name)


def test_compressed_nrrd_and_mha_cut_are_truncated(tmp_path, ct):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(ct.array)
    image.SetSpacing(tuple(float(s) for s in ct.spacing_mm))
    for name in ("z.nrrd", "z.mha"):
        sitk.WriteImage(image, str(tmp_path / name), True)
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(TruncatedFileError):
            load_ct(tmp_path / name)


# --- spacing --------------------------------------------------------------------------------------
def _nifti_with_pixdim(tmp_path, ct, axis: int, value: float, *, gz: bool) -> object:
    raw = bytearray(write_image(ct, tmp_path / "ok.nii").read_bytes())
    assert struct.unpack("<i", raw[:4])[0] == 348
    raw[76 + 4 * (axis + 1): 80 + 4 * (axis + 1)] = struct.pack("<f", value)
    path = tmp_path / ("bad.nii.gz" if gz else "bad.nii")
    path.write_bytes(gzip.compress(bytes(raw)) if gz else bytes(raw))
    return path


@pytest.mark.parametrize("value, word", [(0.0, "zero"), (-0.8, "negative"),
                                         (float("nan"), "non-finite")])
@pytest.mark.parametrize("gz", [False, True])
def test_nifti_non_positive_spacing_is_refused_not_taken_as_1mm(tmp_path, ct, value, word, gz):
    import SimpleITK as sitk

    path = _nifti_with_pixdim(tmp_path, ct, 0, value, gz=gz)
    if value == 0.0:  # what ITK alone makes of it: 1 mm, silently
        assert sitk.ReadImage(str(path)).GetSpacing()[0] == pytest.approx(1.0)
    with pytest.raises(InvalidSpacingError, match=f"{word} voxel spacing along x"):
        load_ct(path)
    with pytest.raises(InvalidSpacingError):
        list_series(path)


def test_nrrd_without_spacing_is_refused(tmp_path, ct):
    arr = ct.array
    header = (f"NRRD0004\ntype: short\ndimension: 3\nsizes: {arr.shape[2]} {arr.shape[1]} "
              f"{arr.shape[0]}\nendian: little\nencoding: raw\n\n").encode()
    path = tmp_path / "nospacing.nrrd"
    path.write_bytes(header + arr.astype("<i2").tobytes())
    with pytest.raises(InvalidSpacingError, match="no voxel spacing"):
        load_ct(path)
    zero = header.replace(b"endian", b"spacings: 0.8 0 1\nendian")
    path.write_bytes(zero + arr.astype("<i2").tobytes())
    with pytest.raises(InvalidSpacingError, match="zero voxel spacing along y"):
        load_ct(path)
    good = header.replace(b"endian", b"spacings: 0.8 0.8 1\nendian")
    path.write_bytes(good + arr.astype("<i2").tobytes())
    np.testing.assert_allclose(load_ct(path).spacing_mm, [0.8, 0.8, 1.0])


def test_nrrd_with_a_zero_space_direction_is_refused(tmp_path, ct):
    path = write_image(ct, tmp_path / "ct.nrrd")
    text = path.read_bytes()
    head, sep, data = text.partition(b"\n\n")
    lines = [ln for ln in head.split(b"\n") if not ln.startswith(b"space directions")]
    lines.insert(3, b"space directions: (0.8,0,0) (0,0,0) (0,0,1)")
    path.write_bytes(b"\n".join(lines) + sep + data)
    with pytest.raises(InvalidSpacingError, match="along y"):
        load_ct(path)


def test_mha_without_or_with_negative_spacing_is_refused(tmp_path, ct):
    path = write_image(ct, tmp_path / "ct.mha")
    data = path.read_bytes()
    start = data.index(b"ElementSpacing")
    end = data.index(b"\n", start) + 1
    (tmp_path / "none.mha").write_bytes(data[:start] + data[end:])
    with pytest.raises(InvalidSpacingError, match="no voxel spacing"):
        load_ct(tmp_path / "none.mha")
    (tmp_path / "neg.mha").write_bytes(data[:start] + b"ElementSpacing = 0.8 -0.8 1\n" + data[end:])
    with pytest.raises(InvalidSpacingError, match="negative"):
        load_ct(tmp_path / "neg.mha")


# --- NaN / inf ------------------------------------------------------------------------------------
def test_a_nan_block_is_refused_naming_how_many_and_where(tmp_path):
    ct = body_ct(dtype=np.float32)
    arr = ct.array.copy()
    arr[10:20, 30:40, 40:50] = np.nan  # where a foramen would be
    arr[12, 31, 41] = np.inf
    path = write_image(ct.with_array(arr), tmp_path / "nan.nii.gz")
    with pytest.raises(NonFiniteValuesError) as info:
        load_ct(path)
    msg = str(info.value)
    assert "1000 voxels that are not numbers (NaN/inf)" in msg
    assert "x 40-49, y 30-39, z 10-19" in msg
    assert "re-export" in msg and "\n" not in msg
    # Without the HU check as well: NaN is never a matter of policy.
    with pytest.raises(NonFiniteValuesError):
        load_ct(path, options=LoadOptions(check_hounsfield=False))


def test_check_finite_passes_integers_and_finite_floats():
    check_finite(np.zeros((3, 4, 5), np.int16))
    check_finite(np.zeros((3, 4, 5), np.float32))
    a = np.zeros((3, 4, 5), np.float32)
    a[2, 3, 4] = -np.inf
    with pytest.raises(NonFiniteValuesError, match="1 voxel that are not numbers.*x 4-4, y 3-3, z 2-2"):
        check_finite(a)


# --- too small ------------------------------------------------------------------------------------
def test_a_5x5x5_volume_is_too_small_before_the_hu_check(tmp_path):
    tiny = Volume(array=np.full((5, 5, 5), 40, np.int16), spacing_mm=(1, 1, 1),
                  origin_lps_mm=(0, 0, 0))  # no air, no fat: the HU check would refuse it too
    path = write_image(tiny, tmp_path / "tiny.nii.gz")
    with pytest.raises(VolumeTooSmallError, match=r"too small.*5x5x5 voxels, 5 x 5 x 5 mm"):
        load_ct(path)
    # With the size check off, the HU check speaks: the order is what the user sees.
    with pytest.raises(NotHounsfieldError):
        load_ct(path, options=LoadOptions(min_voxels_per_axis=0, min_extent_mm=0))


def test_too_small_by_extent_or_by_voxels():
    check_volume_size((40, 64, 64), (0.8, 0.8, 1.0), min_voxels_per_axis=8, min_extent_mm=20)
    with pytest.raises(VolumeTooSmallError, match="51 x 51 x 12 mm"):  # a 12 mm slab
        check_volume_size((12, 64, 64), (0.8, 0.8, 1.0), min_voxels_per_axis=8, min_extent_mm=20)
    with pytest.raises(VolumeTooSmallError, match="64x64x6 voxels"):  # 6 thick slices
        check_volume_size((6, 64, 64), (0.8, 0.8, 5.0), min_voxels_per_axis=8, min_extent_mm=20)
    check_volume_size((6, 64, 64), (0.8, 0.8, 5.0), min_voxels_per_axis=0, min_extent_mm=0)


def test_nan_in_nrrd_is_found_after_reading(tmp_path):
    ct = body_ct(dtype=np.float32)
    arr = ct.array.copy()
    arr[0, 0, :3] = np.nan
    path = write_image(ct.with_array(arr), tmp_path / "nan.nrrd")
    with pytest.raises(NonFiniteValuesError, match="3 voxels .* x 0-2, y 0-0, z 0-0"):
        load_ct(path)


def test_a_file_replaced_after_a_check_is_checked_again(tmp_path, ct):
    path = write_image(ct, tmp_path / "ct.nii.gz")
    load_ct(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedFileError):
        load_ct(path)
