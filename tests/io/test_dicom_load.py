"""DICOM folder/file loading: geometry, series choice, faults and their specific errors."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.errors import (
    Cancelled,
    GantryTiltError,
    InconsistentSeriesError,
    MissingSlicesError,
    NoImagesFoundError,
    NotCTError,
    NotHounsfieldError,
    SingleSliceError,
)
from spinect_core.io import LoadOptions, list_series, load_ct
from spinect_core.io.dicom_write import DicomUIDs
from tests.io import dicom_factory as fac

SPACING_XY = (0.7, 0.8)


def random_hu(shape, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(-1024, 1500, size=shape).astype(np.int16)
    a[:, 0, :] = -1024  # some air, as every CT has
    return a


def all_text(volume) -> str:
    return " ".join(volume.warnings) + repr(volume.metadata)


def assert_no_identifiers(text: str) -> None:
    for secret in (fac.IDENTIFYING_NAME, "Doe", fac.IDENTIFYING_ID, fac.IDENTIFYING_DATE):
        assert secret not in text


@pytest.mark.parametrize("angles", [(0, 0, 0), (12, -25, 37)])
def test_round_trip_exact_geometry_shuffled(tmp_path, angles):
    direction = fac.rotation(*angles)
    origin = np.array([-101.25, 37.5, -412.125])
    arr = random_hu((12, 20, 24))
    pos = fac.grid_positions(origin, direction, 1.25, len(arr))
    fac.write_series(tmp_path, arr, pos, direction=direction, spacing_xy=SPACING_XY)
    vol = load_ct(tmp_path)
    assert vol.array.dtype == np.int16
    np.testing.assert_array_equal(vol.array, arr)
    np.testing.assert_allclose(vol.spacing_mm, [0.7, 0.8, 1.25], atol=1e-6)
    np.testing.assert_allclose(vol.origin_lps_mm, origin, atol=1e-6)
    np.testing.assert_allclose(vol.direction, direction, atol=1e-6)
    assert vol.warnings == []
    assert vol.metadata.modality == "CT" and vol.metadata.source_format == "dicom"
    assert vol.metadata.series_description == "synthetic"
    assert vol.metadata.slice_thickness_mm == pytest.approx(2.0)
    assert_no_identifiers(all_text(vol))


def test_reversed_slice_direction_gives_right_handed_grid(tmp_path):
    # Positions running against row x col: the loader sorts along the normal, so the slice
    # axis is +normal and the origin is the slice with the lowest normal coordinate.
    arr = random_hu((6, 10, 10))
    pos = fac.grid_positions([0, 0, 0], np.diag([1.0, 1.0, -1.0]), 3.0, 6)  # z decreasing
    fac.write_series(tmp_path, arr, pos, direction=np.eye(3), spacing_xy=(1, 1))
    vol = load_ct(tmp_path)
    np.testing.assert_allclose(vol.direction, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(vol.origin_lps_mm, [0, 0, -15], atol=1e-6)
    np.testing.assert_array_equal(vol.array, arr[::-1])


def test_two_series_largest_chosen_other_listed(tmp_path):
    small_uids, big_uids = DicomUIDs(), DicomUIDs()
    fac.write_series(tmp_path / "a", random_hu((30, 8, 8)),
                     fac.grid_positions([0, 0, 0], np.eye(3), 0.5, 30), spacing_xy=(1, 1),
                     uids=small_uids, series_description="thin short")
    fac.write_series(tmp_path / "b", random_hu((10, 8, 8), 1),
                     fac.grid_positions([0, 0, 0], np.eye(3), 5.0, 10), spacing_xy=(1, 1),
                     uids=big_uids, series_description="long")
    vol = load_ct(tmp_path)
    assert vol.metadata.series_instance_uid == big_uids.series_instance_uid  # 45 mm > 14.5 mm
    assert any(small_uids.series_instance_uid in w for w in vol.warnings)
    infos = list_series(tmp_path)
    assert {i.uid for i in infos} == {small_uids.series_instance_uid,
                                      big_uids.series_instance_uid}
    first = infos[0]
    assert first.uid == big_uids.series_instance_uid
    assert first.number_of_slices == 10 and first.size == (8, 8, 10)
    assert first.extent_mm == pytest.approx(45.0) and first.spacing_mm[2] == pytest.approx(5.0)
    picked = load_ct(tmp_path, options=LoadOptions(series_uid=small_uids.series_instance_uid))
    assert picked.array.shape == (30, 8, 8)
    with pytest.raises(NoImagesFoundError, match="not in"):
        load_ct(tmp_path, options=LoadOptions(series_uid="1.2.3.4"))


def test_mr_series_refused(tmp_path):
    fac.write_series(tmp_path, random_hu((5, 8, 8)),
                     fac.grid_positions([0, 0, 0], np.eye(3), 2, 5), modality="MR")
    with pytest.raises(NotCTError, match="MR") as info:
        load_ct(tmp_path)
    assert_no_identifiers(str(info.value))
    assert list_series(tmp_path)[0].modality == "MR"


def test_ct_chosen_beside_mr(tmp_path):
    fac.write_series(tmp_path / "mr", random_hu((20, 8, 8)),
                     fac.grid_positions([0, 0, 0], np.eye(3), 5, 20), modality="MR")
    fac.write_series(tmp_path / "ct", random_hu((5, 8, 8)),
                     fac.grid_positions([0, 0, 0], np.eye(3), 2, 5))
    vol = load_ct(tmp_path)
    assert vol.metadata.modality == "CT" and vol.array.shape[0] == 5
    assert any("MR" in w for w in vol.warnings)


def ramp_series(tmp_path, n=12, spacing=2.0, drop=(), shape=(6, 7), **kwargs):
    """Slices whose HU is linear along the normal: linear interpolation reproduces it exactly."""
    direction = fac.rotation(0, 10, 0)
    pos = fac.grid_positions([5, -3, 100], direction, spacing, n)
    s = np.arange(n) * spacing
    arr = np.empty((n, *shape))
    arr[:] = (-1000 + 40 * s)[:, None, None]
    keep = [k for k in range(n) if k not in drop]
    fac.write_series(tmp_path, arr[keep], pos[keep], direction=direction, spacing_xy=(1, 1),
                     **kwargs)
    return arr, direction


def test_one_missing_slice_is_interpolated_with_warning(tmp_path):
    arr, direction = ramp_series(tmp_path, drop=(5,))
    vol = load_ct(tmp_path)
    assert vol.array.shape == arr.shape
    np.testing.assert_allclose(vol.array, arr, atol=1e-3)
    np.testing.assert_allclose(vol.direction, direction, atol=1e-6)
    assert vol.spacing_mm[2] == pytest.approx(2.0)
    assert any("irregular" in w and "2.0x" in w for w in vol.warnings)


def test_too_many_missing_slices_refused(tmp_path):
    ramp_series(tmp_path, drop=(5, 6))  # gap 6 mm = 3x the median 2 mm
    with pytest.raises(MissingSlicesError, match=r"3\.0x"):
        load_ct(tmp_path)
    # ... unless the policy allows it
    vol = load_ct(tmp_path, options=LoadOptions(max_gap_ratio=3.5))
    assert vol.array.shape[0] == 12


def test_irregular_spacing_refused_when_resampling_disabled(tmp_path):
    ramp_series(tmp_path, drop=(5,))
    with pytest.raises(MissingSlicesError, match="irregular"):
        load_ct(tmp_path, options=LoadOptions(resample_irregular=False))


def sphere_hu(centre, radius):
    def f(p):
        d = np.linalg.norm(p - np.asarray(centre), axis=-1)
        inside_body = np.abs(p[..., 0] - centre[0]) < 12
        return np.where(d < radius, 1000.0, np.where(inside_body, 40.0, -1000.0))
    return f


@pytest.mark.parametrize("tilt_deg", [18.5, -25.0])
def test_gantry_tilt_resampled_orthogonal_and_sphere_in_place(tmp_path, tilt_deg):
    t = np.radians(tilt_deg)
    row, col = np.array([1.0, 0, 0]), np.array([0, np.cos(t), -np.sin(t)])
    centre = np.array([10.0, 12.0, 20.0])
    dz = 1.5  # table steps along z; the slice planes are tilted (GE style headers)
    pos = np.array([[-5.0, -8.0, 0.0]]) + np.outer(np.arange(28) * dz, [0, 0, 1])
    spacing = (0.9, 0.9)
    arr = fac.sample_world(sphere_hu(centre, 6.0), pos, row, col, spacing, (48, 36))
    fac.write_series(tmp_path, arr, pos, row_dir=row, col_dir=col, spacing_xy=spacing)
    vol = load_ct(tmp_path)
    tilt_w = [w for w in vol.warnings if "gantry tilt" in w]
    assert tilt_w and f"{abs(tilt_deg):.1f} degrees" in tilt_w[0]
    d = vol.direction
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(d[:, 0], row, atol=1e-6)
    np.testing.assert_allclose(d[:, 1], col, atol=1e-6)
    np.testing.assert_allclose(d[:, 2], np.cross(row, col), atol=1e-6)
    idx = np.argwhere(vol.array > 500)[:, ::-1]  # (x, y, z)
    centroid = vol.index_to_lps(idx).mean(axis=0)
    np.testing.assert_allclose(centroid, centre, atol=0.4)
    # a sheared (uncorrected) volume would put the sphere off by z * tan(tilt) ~ several mm;
    # the grid must cover the data, padded with air where no slice reached.
    assert vol.array.min() >= -1024.5
    with pytest.raises(GantryTiltError, match=f"{abs(tilt_deg):.1f} degrees"):
        load_ct(tmp_path, options=LoadOptions(correct_gantry_tilt=False))


def truncate(path, keep_fraction):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])


def test_corrupt_files_skipped_with_warning(tmp_path):
    arr, _ = ramp_series(tmp_path, n=12, shape=(32, 32), random_names=False, subfolders=False, shuffle=False)
    files = sorted(tmp_path.glob("*.dcm"))
    truncate(files[4], 0.97)  # pixel data cut short: header readable, pixels not
    truncate(files[7], 0.5)  # header cut short
    (tmp_path / "notes.txt").write_text("not dicom")  # ignored silently
    vol = load_ct(tmp_path)
    text = " ".join(vol.warnings)
    assert files[4].name in text and files[7].name in text
    assert "irregular" in text  # two interior gaps were interpolated
    np.testing.assert_allclose(vol.array, arr, atol=1e-3)
    with pytest.raises(InconsistentSeriesError):
        load_ct(tmp_path, options=LoadOptions(skip_corrupt_files=False))


def test_single_slice_refused(tmp_path):
    fac.write_series(tmp_path, random_hu((1, 8, 8)), np.zeros((1, 3)))
    with pytest.raises(SingleSliceError):
        load_ct(tmp_path)


def test_single_file_of_series_loads_whole_series(tmp_path):
    paths = fac.write_series(tmp_path, random_hu((5, 8, 8)),
                             fac.grid_positions([0, 0, 0], np.eye(3), 2, 5), subfolders=False)
    vol = load_ct(paths[2])
    assert vol.array.shape == (5, 8, 8)
    assert any("single file" in w for w in vol.warnings)


def test_empty_and_missing_paths(tmp_path):
    with pytest.raises(NoImagesFoundError, match="no DICOM images"):
        load_ct(tmp_path)
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(NoImagesFoundError):
        load_ct(tmp_path)
    with pytest.raises(NoImagesFoundError, match="does not exist"):
        load_ct(tmp_path / "nope")


def test_missing_series_uid_grouped_by_geometry(tmp_path):
    def no_uid(ds, k):
        del ds.SeriesInstanceUID

    arr = random_hu((6, 8, 8))
    fac.write_series(tmp_path / "a", arr, fac.grid_positions([0, 0, 0], np.eye(3), 2, 6),
                     spacing_xy=(1, 1), edit=no_uid)
    # a second uid-less series with another orientation must stay separate
    other = fac.rotation(0, 0, 30)
    fac.write_series(tmp_path / "b", random_hu((3, 8, 8)), fac.grid_positions([0, 0, 0], other, 2, 3),
                     direction=other, spacing_xy=(1, 1), edit=no_uid)
    vol = load_ct(tmp_path)
    np.testing.assert_array_equal(vol.array, arr)
    assert len(list_series(tmp_path)) == 2


def test_inconsistent_inplane_geometry_refused(tmp_path):
    def other_spacing(ds, k):
        if k == 3:
            ds.PixelSpacing = ["0.5", "0.5"]

    fac.write_series(tmp_path, random_hu((6, 8, 8)), fac.grid_positions([0, 0, 0], np.eye(3), 2, 6),
                     spacing_xy=(1, 1), edit=other_spacing)
    with pytest.raises(InconsistentSeriesError, match="pixel spacing"):
        load_ct(tmp_path)


def test_duplicate_positions_refused(tmp_path):
    pos = fac.grid_positions([0, 0, 0], np.eye(3), 2, 6)
    pos[3] = pos[2]
    fac.write_series(tmp_path, random_hu((6, 8, 8)), pos)
    with pytest.raises(InconsistentSeriesError, match="same position"):
        load_ct(tmp_path)


def test_unrescaled_unsigned_data_refused(tmp_path):
    def raw(ds, k):
        # HU + 1024 stored unsigned, no rescale tags: air reads as 0.
        values = np.frombuffer(ds.PixelData, dtype="<i2").astype(np.int32) + 1024
        ds.PixelData = values.astype("<u2").tobytes()
        ds.PixelRepresentation = 0
        del ds.RescaleIntercept, ds.RescaleSlope

    arr = np.full((5, 8, 8), 40, np.int16)
    arr[:, :2] = -1000
    fac.write_series(tmp_path, arr, fac.grid_positions([0, 0, 0], np.eye(3), 2, 5), edit=raw)
    with pytest.raises(NotHounsfieldError, match="RescaleIntercept"):
        load_ct(tmp_path)
    vol = load_ct(tmp_path, options=LoadOptions(check_hounsfield=False))
    assert vol.array.min() == 24  # (-1000 + 1024): nothing was silently rescaled


def test_tight_fov_with_fat_and_intercept_accepted(tmp_path):
    def unsigned_with_intercept(ds, k):
        values = np.frombuffer(ds.PixelData, dtype="<i2").astype(np.int32) + 1024
        ds.PixelData = values.astype("<u2").tobytes()
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = "-1024"

    rng = np.random.default_rng(3)
    arr = rng.integers(-120, 80, size=(5, 8, 8)).astype(np.int16)  # fat and soft tissue only
    fac.write_series(tmp_path, arr, fac.grid_positions([0, 0, 0], np.eye(3), 2, 5),
                     edit=unsigned_with_intercept)
    vol = load_ct(tmp_path)
    np.testing.assert_array_equal(vol.array, arr)


def test_rescale_slope_gives_float(tmp_path):
    def slope(ds, k):
        ds.RescaleSlope = "0.5"
        ds.RescaleIntercept = "-1000.25"

    arr = random_hu((4, 6, 6)) // 2 + 1000
    fac.write_series(tmp_path, arr, fac.grid_positions([0, 0, 0], np.eye(3), 2, 4), edit=slope)
    vol = load_ct(tmp_path)
    assert vol.array.dtype == np.float32
    np.testing.assert_allclose(vol.array, arr * 0.5 - 1000.25)


def test_enhanced_multiframe_ct(tmp_path):
    direction = fac.rotation(5, 0, -15)
    origin = np.array([1.0, 2.0, 3.0])
    arr = random_hu((7, 10, 9))
    pos = fac.grid_positions(origin, direction, 1.5, 7)
    f = fac.write_enhanced_ct(tmp_path / "enhanced.dcm", arr, pos, direction=direction,
                              spacing_xy=(0.6, 0.7), frame_order=[3, 0, 6, 1, 5, 2, 4])
    for path in (f, tmp_path):
        vol = load_ct(path)
        np.testing.assert_array_equal(vol.array, arr)
        np.testing.assert_allclose(vol.origin_lps_mm, origin, atol=1e-6)
        np.testing.assert_allclose(vol.direction, direction, atol=1e-6)
        np.testing.assert_allclose(vol.spacing_mm, [0.6, 0.7, 1.5], atol=1e-6)


def test_plain_multiframe_shared_geometry(tmp_path):
    direction = fac.rotation(0, 0, 90)
    arr = random_hu((5, 6, 8))
    f = fac.write_plain_multiframe(tmp_path / "mf.dcm", arr, origin=np.array([0, 0, -50.0]),
                                   direction=direction, spacing_xy=(1.0, 1.0), slice_spacing=2.5)
    vol = load_ct(f)
    np.testing.assert_array_equal(vol.array, arr)
    np.testing.assert_allclose(vol.direction, direction, atol=1e-6)
    np.testing.assert_allclose(vol.spacing_mm, [1, 1, 2.5], atol=1e-6)


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90",
                                    "1.2.840.10008.1.2.4.80"])
def test_compressed_series(tmp_path, syntax):
    """RLE Lossless, JPEG 2000 Lossless and JPEG-LS Lossless written with pydicom's encoders
    (JPEG-LS through pyjpegls), then decoded."""
    from pydicom.pixels import get_encoder

    if not get_encoder(syntax).is_available:
        pytest.skip(f"no pydicom encoder for {syntax} here")
    arr = random_hu((4, 64, 64))  # J2K needs tiles large enough for its default resolutions
    fac.write_series(tmp_path, arr, fac.grid_positions([0, 0, 0], np.eye(3), 2, 4),
                     transfer_syntax=syntax)
    import pydicom

    some = next(p for p in tmp_path.rglob("*") if p.is_file())
    assert pydicom.dcmread(some).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(load_ct(tmp_path).array, arr)


def test_progress_reported_and_cancellable(tmp_path):
    fac.write_series(tmp_path, random_hu((6, 8, 8)), fac.grid_positions([0, 0, 0], np.eye(3), 2, 6))
    seen = []
    load_ct(tmp_path, progress=lambda f, m: seen.append((f, m)))
    assert seen and seen[-1][0] == 1.0
    assert all(0 <= f <= 1 for f, _ in seen)
    assert_no_identifiers(" ".join(m for _, m in seen))
    with pytest.raises(Cancelled):
        load_ct(tmp_path, progress=lambda f, m: f < 0.5)
