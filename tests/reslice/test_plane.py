"""Oblique planes: axes, needle inside both planes, exact resampling geometry, rendering."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.labels import DEFAULT_LABELS
from spinect_core.reslice import (LABEL_COLOURS, RenderOptions, oblique_planes, orientation_letters,
                                  plane_axes, render_plane)
from tests.reslice.helpers import (ENDPLATE_NORMAL, ENTRY, GRADIENT, OFFSET, TARGET, scene,
                                   trajectory)


@pytest.fixture(scope="module")
def planes():
    ct, labels = scene()
    main, companion = oblique_planes(ct, labels, trajectory(ENTRY, TARGET),
                                     endplate_normal_lps=ENDPLATE_NORMAL, pixel_mm=0.4,
                                     size_mm=(50.0, 30.0), padding_mm=5.0)
    return ct, labels, main, companion


def test_plane_axes_follow_the_needle_and_the_endplate_normal():
    u = (ENTRY - TARGET) / np.linalg.norm(ENTRY - TARGET)
    ax = plane_axes(u, ENDPLATE_NORMAL)
    a2, a3 = ax["axis2"], ax["companion_axis2"]
    assert abs(a2 @ u) < 1e-12 and np.linalg.norm(a2) == pytest.approx(1.0)
    # a2 lies in span(u, n) and on the cranial side of the normal
    assert abs(np.linalg.det(np.stack([u, ENDPLATE_NORMAL, a2]))) < 1e-12
    assert a2 @ ENDPLATE_NORMAL > 0
    np.testing.assert_allclose(a3, np.cross(u, a2), atol=1e-12)
    with pytest.raises(ValueError, match="parallel"):
        plane_axes(u, u + 1e-4)


def test_entry_and_target_lie_in_both_planes_at_the_needle_pixels(planes):
    _, _, main, companion = planes
    length = np.linalg.norm(ENTRY - TARGET)
    u = (ENTRY - TARGET) / length
    for plane in (main, companion):
        for point, rc in ((ENTRY, plane.entry_pixel), (TARGET, plane.target_pixel)):
            row, col, offset = plane.lps_to_pixel(point)
            assert abs(offset) < 0.5 * plane.pixel_mm * 1e-3  # exactly in the plane
            assert (row, col) == pytest.approx(tuple(rc), abs=1e-6)
            np.testing.assert_allclose(plane.pixel_to_lps(*rc), point, atol=1e-9)
        np.testing.assert_allclose(plane.col_axis_lps, u, atol=1e-12)
        assert abs(plane.col_axis_lps @ plane.row_axis_lps) < 1e-12
        # the target sits exactly on a pixel centre; the needle runs along the middle row
        assert plane.target_pixel == pytest.approx(np.round(plane.target_pixel))
        assert plane.target_pixel[0] == (plane.shape[0] - 1) // 2
        # the whole needle plus the padding fits
        assert plane.target_pixel[1] * plane.pixel_mm >= 5.0 - 1e-9
        assert (plane.shape[1] - 1 - plane.entry_pixel[1]) * plane.pixel_mm >= 5.0 - 1e-9
    # the needle plane shows the cranial side up (row axis = -axis2), the companion is orthogonal
    assert main.row_axis_lps @ ENDPLATE_NORMAL < 0
    assert abs(main.row_axis_lps @ companion.row_axis_lps) < 1e-12
    np.testing.assert_allclose(companion.normal_lps, -main.row_axis_lps, atol=1e-12)


def test_resampled_values_are_the_ct_at_the_pixel_positions(planes):
    ct, labels, main, companion = planes
    for plane in (main, companion):
        rows, cols = np.mgrid[0:plane.shape[0], 0:plane.shape[1]]
        pts = plane.pixel_to_lps(rows, cols)
        expected = pts @ GRADIENT + OFFSET
        inside = plane.inside
        assert 0.3 < inside.mean() <= 1.0  # the plane reaches past the rotated CT's edges
        # within the voxel centres the linear field is reproduced exactly (the outer half voxel
        # repeats the edge value, as ITK does)
        idx = ct.lps_to_index(pts)
        core = np.all((idx >= 0) & (idx <= np.array(ct.size_xyz) - 1), axis=-1)
        assert core.sum() > 0.9 * inside.sum() and not (core & ~inside).any()
        np.testing.assert_allclose(plane.image[core], expected[core], atol=2e-3)
        assert np.all(plane.image[~inside] == -1024.0)
        # labels: the nearest voxel's id
        near = np.rint(idx).astype(int)
        ok = inside & np.all((near >= 0) & (near < np.array(ct.size_xyz)), axis=-1)
        truth = labels.array[near[..., 2][ok], near[..., 1][ok], near[..., 0][ok]]
        np.testing.assert_array_equal(plane.labels[ok], truth)
    assert (main.labels == 2).any() and (main.labels == 1).any()


def test_one_slice_volume_has_the_plane_geometry(planes):
    _, _, main, _ = planes
    vol = main.to_volume("ct")
    assert vol.array.shape == (1,) + main.shape
    r, c = 7, 11
    np.testing.assert_allclose(vol.index_to_lps(np.array([c, r, 0.0])), main.pixel_to_lps(r, c),
                               atol=1e-9)
    assert np.linalg.det(vol.direction) == pytest.approx(1.0)
    assert vol.metadata.frame_of_reference_uid == "1.2.826.0.1.3680043.8.498.2"
    lab = main.to_volume("labels")
    assert lab.array.dtype == np.uint8 and lab.same_grid(vol)


def test_render_draws_ct_overlay_needle_and_letters(planes):
    _, _, main, _ = planes
    opts = RenderOptions(scale=2, overlay_alpha=0.5)
    rgb = render_plane(main, options=opts)
    assert rgb.shape == (2 * main.shape[0], 2 * main.shape[1], 3) and rgb.dtype == np.uint8
    # needle: the needle colour along the middle row between target and entry
    row = int(round((main.target_pixel[0] + 0.5) * 2 - 0.5))
    mid_col = int(round(((main.target_pixel[1] + main.entry_pixel[1]) / 2 + 0.5) * 2 - 0.5))
    assert tuple(rgb[row, mid_col]) == opts.needle_colour
    # nerve overlay: yellow tint (R, G high, B low) where the labels say nerve, away from the needle
    nerve = np.argwhere(main.labels == 2)
    assert len(nerve)
    tinted = rgb[nerve[:, 0] * 2, nerve[:, 1] * 2].astype(int)
    yellowish = (tinted[:, 0] - tinted[:, 2] > 60) & (tinted[:, 1] - tinted[:, 2] > 50)
    assert yellowish.mean() > 0.8
    # no overlay -> grey CT (R == G == B) at those pixels, apart from drawn marks
    plain = render_plane(main, options=RenderOptions(scale=2, overlay_alpha=0.0, draw_needle=False,
                                                     letters=False))
    g = plain[nerve[:, 0] * 2, nerve[:, 1] * 2]
    assert np.all(g[:, 0] == g[:, 1]) and np.all(g[:, 1] == g[:, 2])
    # letters are drawn in white at the edges (pixels change versus the plain picture)
    assert (rgb[:, :40] != render_plane(main, options=RenderOptions(scale=2, overlay_alpha=0.5,
                                                                    letters=False))[:, :40]).any()
    assert set(LABEL_COLOURS) >= {"bone", "nerve", "disc", "dura"}


def test_orientation_letters():
    assert orientation_letters((0.8, 0.6, 0.0)) == "LP"
    assert orientation_letters((0.0, -1.0, 0.1)) == "A"
    assert orientation_letters((-0.1, 0.2, -0.97)) == "I"
    assert orientation_letters((-0.7, 0.0, 0.7)) in ("RS", "SR")


def test_planes_without_labels_and_bad_arguments():
    ct, _ = scene(shape=(20, 24, 24))
    traj = trajectory(ENTRY * 0.3, TARGET * 0.3)
    main, companion = oblique_planes(ct, None, traj, endplate_normal_lps=ENDPLATE_NORMAL,
                                     pixel_mm=0.5, size_mm=(20.0, 10.0))
    assert main.labels is None and main.table is None
    assert render_plane(main).shape[2] == 3
    with pytest.raises(ValueError):
        oblique_planes(ct, None, traj, endplate_normal_lps=ENDPLATE_NORMAL, pixel_mm=0.0)
    with pytest.raises(ValueError, match="parallel"):
        oblique_planes(ct, None, traj, endplate_normal_lps=traj.direction_lps)
    # default table when labels are given
    _, labels = scene(shape=(20, 24, 24))
    m2, _ = oblique_planes(ct, labels, traj, endplate_normal_lps=ENDPLATE_NORMAL, pixel_mm=0.5,
                           size_mm=(20.0, 10.0))
    assert m2.table == DEFAULT_LABELS
