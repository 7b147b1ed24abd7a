"""Display slices: index planes, radiological orientation, window/level, label overlay."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.volume import Volume

from app.colors import color_of
from app.slicing import (PRESETS, extract_slice, label_lut, overlay_labels, plane_specs,
                         window_to_uint8)


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
    assert "index plane" in specs[0].title(0, (4, 5, 6))


def test_window_level_presets() -> None:
    bone = PRESETS["bone"]
    assert (bone.width, bone.level) == (2000.0, 400.0)
    soft = PRESETS["soft"]
    assert (soft.width, soft.level) == (400.0, 40.0)
    out = window_to_uint8(np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0]), soft.width, soft.level)
    assert out.tolist() == [0, 0, 127, 255, 255]


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
