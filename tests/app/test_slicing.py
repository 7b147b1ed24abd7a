"""Display slices: index planes, radiological orientation, window/level, label overlay."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.volume import Volume

from app.colors import color_of
from app.slicing import (DICOM_PRESET, MIN_WIDTH_HU, PRESETS, WL_HU_PER_PIXEL, WindowLevel,
                         dicom_window, display_to_index, distance_mm, drag_window, extract_slice,
                         index_to_display, label_lut, lps_text, overlay_labels, plane_specs, position_text,
                         presets_for, slice_position_mm, value_at, window_to_uint8)


def _volume(direction=np.eye(3), shape=(4, 5, 6), spacing=(0.5, 0.7, 2.0)) -> Volume:
    return Volume(array=np.arange(np.prod(shape)).reshape(shape).astype(np.int16),
                  spacing_mm=spacing, origin_lps_mm=(0, 0, 0), direction=direction)


def test_identity_grid_gives_radiological_views() -> None:
    vol = _volume()
    axial, sagittal, coronal = plane_specs(vol)
    assert (axial.axis, sagittal.axis, coronal.axis) == (0, 2, 1)
    # Axial: rows = y (A at top, as +y is posterior), cols = x (patient left on the right).
    assert not axial.flip_rows and not axial.flip_cols
    assert axial.edges == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    # Sagittal and coronal: superior up, so rows (z increasing = superior) are flipped.
    assert sagittal.flip_rows and coronal.flip_rows
    assert sagittal.edges["top"] == "S" and sagittal.edges["left"] == "A"
    assert coronal.edges["left"] == "R" and coronal.edges["right"] == "L"
    assert (axial.row_spacing_mm, axial.col_spacing_mm) == (0.7, 0.5)
    assert (sagittal.row_spacing_mm, sagittal.col_spacing_mm) == (2.0, 0.7)
    assert all(s.obliquity_deg == pytest.approx(0.0) for s in (axial, sagittal, coronal))


def test_extract_slice_orients_the_plane() -> None:
    vol = _volume()
    axial, sagittal, coronal = plane_specs(vol)
    a = extract_slice(vol.array, axial, 2)
    np.testing.assert_array_equal(a, vol.array[2])
    s = extract_slice(vol.array, sagittal, 3)
    np.testing.assert_array_equal(s, vol.array[::-1, :, 3])       # (z flipped, y)
    c = extract_slice(vol.array, coronal, 1)
    np.testing.assert_array_equal(c, vol.array[::-1, 1, :])       # (z flipped, x)
    assert extract_slice(vol.array, axial, 99).shape == (5, 6)    # clamped


@pytest.mark.parametrize("direction", [
    np.eye(3),
    np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float),   # a sagittal stack, flipped axes
    np.array([[-1, 0, 0], [0, 0, 1], [0, -1, 0]], float),   # a coronal stack
    np.diag([-1.0, -1.0, 1.0]),                             # RAS-like index axes
])
def test_every_grid_is_shown_in_radiological_orientation(direction) -> None:
    vol = _volume(np.asarray(direction, float), shape=(7, 8, 9), spacing=(1.0, 1.0, 1.0))
    nz, ny, nx = vol.array.shape
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    world = vol.index_to_lps(np.stack([i, j, k], axis=-1))  # (z, y, x, 3) LPS
    for spec in plane_specs(vol):
        mid = vol.array.shape[spec.axis] // 2
        lps = {n: extract_slice(world[..., n], spec, mid) for n in range(3)}
        if spec.name == "Axial":
            assert lps[1][0, 0] < lps[1][-1, 0]     # anterior (small P) at the top
            assert lps[0][0, 0] < lps[0][0, -1]     # patient left on the right
        elif spec.name == "Sagittal":
            assert lps[2][0, 0] > lps[2][-1, 0]     # superior at the top
            assert lps[1][0, 0] < lps[1][0, -1]     # anterior on the left
        else:
            assert lps[2][0, 0] > lps[2][-1, 0]
            assert lps[0][0, 0] < lps[0][0, -1]
        # The slice normal is the view's anatomical axis.
        normal = {"Axial": 2, "Sagittal": 0, "Coronal": 1}[spec.name]
        assert np.ptp(lps[normal]) == pytest.approx(0.0, abs=1e-9)


def test_oblique_grid_is_reported() -> None:
    a = np.radians(12.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    specs = plane_specs(_volume(rz))
    assert specs[0].obliquity_deg == pytest.approx(0.0, abs=1e-6)
    assert specs[1].obliquity_deg == pytest.approx(12.0, abs=1e-6)
    assert "12° oblique" in specs[1].title(0, (4, 5, 6))
    assert specs[0].title(0, (4, 5, 6), "S 0.0 mm") == "Axial · S 0.0 mm · slice 1/4"


def test_window_level_presets_are_3d_slicers() -> None:
    values = {k: (wl.width, wl.level) for k, wl in PRESETS.items()}
    assert values == {"bone": (1000.0, 400.0), "soft": (350.0, 40.0), "brain": (100.0, 50.0),
                      "air": (1000.0, -426.0), "lung": (1400.0, -500.0)}
    soft = PRESETS["soft"]
    out = window_to_uint8(np.array([-1000.0, -135.0, 40.0, 215.0, 3000.0]), soft.width,
                          soft.level)
    assert out.tolist() == [0, 0, 127, 255, 255]


def _with_headers(headers) -> Volume:
    from spinect_core.volume import CTMetadata

    vol = _volume()
    vol.metadata = CTMetadata(source_format="dicom", source_headers=tuple(headers))
    return vol


def test_dicom_window_is_the_first_preset() -> None:
    from pydicom.dataset import Dataset
    from pydicom.multival import MultiValue
    from pydicom.valuerep import DSfloat

    plain = Dataset()
    plain.WindowCenter, plain.WindowWidth = "40", "400"
    multi = Dataset()  # two windows in the header: the first one is the series' default
    multi.WindowCenter = MultiValue(DSfloat, ["300", "40"])
    multi.WindowWidth = MultiValue(DSfloat, ["1500", "400"])
    multi.WindowCenterWidthExplanation = ["BONE", "SOFT"]
    assert dicom_window(_with_headers([plain, plain, plain])) == WindowLevel("DICOM window",
                                                                             400.0, 40.0)
    # The middle slice's header names the window.
    assert dicom_window(_with_headers([plain, multi, plain])) == WindowLevel("DICOM: BONE",
                                                                             1500.0, 300.0)
    presets = presets_for(_with_headers([multi]))
    assert list(presets)[0] == DICOM_PRESET and list(presets)[1:] == list(PRESETS)
    # No header, no window tags or a zero width: the Slicer presets only.
    bad = Dataset()
    bad.WindowCenter, bad.WindowWidth = "40", "0"
    for vol in (_volume(), _with_headers([Dataset()]), _with_headers([bad])):
        assert dicom_window(vol) is None
        assert list(presets_for(vol)) == list(PRESETS)


def test_drag_window_moves_width_and_level_by_the_pixel_rate() -> None:
    start = WindowLevel("x", 1000.0, 400.0)
    moved = drag_window(start, 10, -5)
    assert moved.width == pytest.approx(1000.0 + 10 * WL_HU_PER_PIXEL)
    assert moved.level == pytest.approx(400.0 - 5 * WL_HU_PER_PIXEL)
    assert drag_window(start, -10_000, 0).width == MIN_WIDTH_HU


def test_slice_position_and_display_index_in_lps() -> None:
    flipped = np.array([[-1, 0, 0], [0, -1, 0], [0, 0, -1]], float)  # index axes toward R, A, I
    for direction in (np.eye(3), flipped):
        vol = Volume(array=np.zeros((4, 5, 6), np.int16), spacing_mm=(0.5, 0.7, 2.0),
                     origin_lps_mm=(10.0, -20.0, 3.0), direction=direction)
        axial, sagittal, coronal = plane_specs(vol)
        shape = vol.array.shape
        for spec in (axial, sagittal, coronal):
            n = spec.size(shape)
            # Each index step moves the slice by the spacing; positive_step points to S, L, P.
            p0, p1 = (slice_position_mm(vol, spec, i) for i in (1, 1 + spec.positive_step))
            assert p1 - p0 == pytest.approx(vol.spacing_mm[2 - spec.axis])
            for index in (0, n - 1):
                for row, col in ((0.0, 0.0), (2.0, 3.5)):
                    xyz = display_to_index(spec, shape, index, row, col)
                    lps = vol.index_to_lps(xyz)
                    # The displayed pixel lies on the named slice ...
                    assert lps[spec.normal_lps] == pytest.approx(
                        slice_position_mm(vol, spec, index))
                    # ... and the displayed (row, col) is the pixel extract_slice put there.
                    if float(row).is_integer() and float(col).is_integer():
                        world = np.arange(vol.array.size).reshape(shape)
                        expected = extract_slice(world, spec, index)[int(row), int(col)]
                        assert value_at(world, xyz) == expected
    vol = Volume(array=np.zeros((4, 5, 6), np.int16), spacing_mm=(1, 1, 2.5),
                 origin_lps_mm=(0, 0, -5.0))
    axial = plane_specs(vol)[0]
    assert position_text(axial, slice_position_mm(vol, axial, 0)) == "I 5.0 mm"
    assert position_text(axial, slice_position_mm(vol, axial, 3)) == "S 2.5 mm"
    assert value_at(vol.array, np.array([6.0, 0, 0])) is None
    assert lps_text(np.array([1.25, -2.0, 30.0])) == "LPS (1.2, -2.0, 30.0) mm"


@pytest.mark.parametrize("direction", [
    np.eye(3),
    np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float),   # a sagittal stack, flipped axes
    np.diag([-1.0, -1.0, -1.0]),                            # index axes toward R, A, I
])
def test_index_to_display_inverts_display_to_index(direction) -> None:
    vol = _volume(np.asarray(direction, float), shape=(4, 5, 6))
    shape = vol.array.shape
    rng = np.random.default_rng(0)
    for spec in plane_specs(vol):
        # Continuous display points of slice 2 go to indices and come back unchanged.
        n_rows, n_cols = shape[spec.row_axis], shape[spec.col_axis]
        rows, cols = rng.uniform(-0.5, n_rows - 0.5, 20), rng.uniform(-0.5, n_cols - 0.5, 20)
        xyz = np.array([display_to_index(spec, shape, 2, r, c) for r, c in zip(rows, cols)])
        index, row, col = index_to_display(spec, shape, xyz)
        assert index.shape == (20,) and np.allclose(index, 2.0)
        assert np.allclose(row, rows) and np.allclose(col, cols)
        # Every voxel is shown at the pixel of its slice that extract_slice puts its value at.
        k, j, i = np.indices(shape)
        xyz = np.stack([i, j, k], -1).reshape(-1, 3).astype(float)
        index, row, col = (np.rint(a).astype(int) for a in index_to_display(spec, shape, xyz))
        shown = np.array([extract_slice(vol.array, spec, s)[r, c]
                          for s, r, c in zip(index, row, col)])
        assert np.array_equal(shown, vol.array.reshape(-1))
        # One point: 0-d arrays.
        one = index_to_display(spec, shape, xyz[7])
        assert all(np.ndim(a) == 0 for a in one)


def test_distance_uses_each_axis_spacing() -> None:
    vol = Volume(array=np.zeros((4, 5, 6), np.int16), spacing_mm=(0.5, 0.8, 2.5),
                 origin_lps_mm=(0, 0, 0), direction=np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1.]]))
    assert distance_mm(vol, [0, 0, 0], [4, 0, 0]) == pytest.approx(2.0)
    assert distance_mm(vol, [0, 0, 0], [0, 3, 0]) == pytest.approx(2.4)
    assert distance_mm(vol, [1, 1, 1], [4, 5, 3]) == pytest.approx(np.sqrt(1.5**2 + 3.2**2 + 5**2))


def test_overlay_colours_labels_and_respects_visibility() -> None:
    grey = np.full((2, 3), 100, np.uint8)
    labels = np.array([[0, 1, 2], [0, 2, 0]])
    lut = label_lut({0: "background", 1: "bone", 2: "nerve"}, color_of)
    rgb = overlay_labels(grey, labels, lut, alpha=1.0)
    assert tuple(rgb[0, 0]) == (100, 100, 100)
    assert tuple(rgb[0, 1]) == color_of("bone")
    assert tuple(rgb[0, 2]) == color_of("nerve")
    hidden = overlay_labels(grey, labels, lut, alpha=1.0, visible=np.array([True, True, False]))
    assert tuple(hidden[0, 2]) == (100, 100, 100)
