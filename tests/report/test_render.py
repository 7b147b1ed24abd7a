"""The software renderer and the area map on scenes with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.labels import LabelTable
from spinect_core.report.html import carm_instruction
from spinect_core.report.maps import colormap, render_area_map
from spinect_core.report.render import (CLASS_COLOURS, Overlay, SceneRenderOptions, class_of,
                                        draw_overlays, render_view)
from spinect_core.errors import Cancelled
from spinect_core.volume import Volume

TABLE = LabelTable({0: "background", 1: "bone", 2: "nerve"})


def _scene(spacing=(1.0, 1.0, 1.0), direction=np.eye(3)):
    """A bone sphere (radius 15 mm) at LPS (0, 0, 0) and a nerve block at x 25..35 mm."""
    n = (60, 60, 90)  # z, y, x
    vol = Volume(array=np.zeros(n, np.uint8), spacing_mm=np.asarray(spacing, float),
                 origin_lps_mm=np.zeros(3), direction=np.asarray(direction, float))
    zz, yy, xx = np.indices(n)
    pts = vol.index_to_lps(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)).reshape(*n, 3)
    centre = vol.index_to_lps(np.array([[30.0, 30.0, 30.0]]))[0]
    rel = pts - centre
    arr = np.zeros(n, np.uint8)
    arr[np.linalg.norm(rel, axis=-1) <= 15.0] = 1
    arr[(rel[..., 0] >= 25) & (rel[..., 0] <= 35) & (np.abs(rel[..., 1]) <= 5)
        & (np.abs(rel[..., 2]) <= 5)] = 2
    return vol.with_array(arr), centre


@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, 1.0, -1.0])])
def test_sphere_depth_and_colours(direction) -> None:
    labels, centre = _scene(direction=direction)
    view = render_view(labels, TABLE, (0.0, 1.0, 0.0), centre_lps=centre,
                       options=SceneRenderOptions(field_mm=80.0, pixel_mm=0.5))
    n = view.depth_mm.shape[0]
    assert view.rgb.shape == (n, n, 3) and n == 160
    # The centre pixel sees the sphere's front (y = -15 mm): depth = distance plane -> surface.
    r, c, depth_centre = view.project(centre[None])[0]
    assert (r, c) == pytest.approx(((n - 1) / 2, (n - 1) / 2), abs=1e-9)
    hit = view.depth_mm[int(round(r)), int(round(c))]
    assert hit == pytest.approx(depth_centre - 15.0, abs=0.6)
    # A point 10 mm to the side: the sphere surface is sqrt(15^2 - 10^2) in front of the centre.
    side = view.project((centre + np.array([10.0, 0.0, 0.0]))[None])[0]
    assert view.depth_mm[int(round(side[0])), int(round(side[1]))] == pytest.approx(
        depth_centre - np.sqrt(15 ** 2 - 10 ** 2), abs=0.8)
    # The nerve block is seen at x + 30 mm, and nothing at x - 30 mm.
    nerve = view.project((centre + np.array([30.0, 0.0, 0.0]))[None])[0]
    assert view.label_ids[int(round(nerve[0])), int(round(nerve[1]))] == 2
    empty = view.project((centre - np.array([30.0, 0.0, 0.0]))[None])[0]
    assert np.isnan(view.depth_mm[int(round(empty[0])), int(round(empty[1]))])
    # Colours keep the class hue under shading; the sphere's centre faces the light.
    px = view.rgb[int(round(r)), int(round(c))].astype(float)
    ivory = np.asarray(CLASS_COLOURS["bone"], float)
    np.testing.assert_allclose(px / px[0], ivory / ivory[0], atol=0.03)
    assert px[0] > 150
    # A rim pixel (grazing normal) is darker than the centre.
    rim = view.project((centre + np.array([-14.5, 0.0, 0.0]))[None])[0]
    assert view.rgb[int(round(rim[0])), int(round(rim[1]))].sum() < px.sum()


def test_image_axes_follow_up_and_are_not_mirrored() -> None:
    labels, centre = _scene()
    view = render_view(labels, TABLE, (0.0, 1.0, 0.0), centre_lps=centre, up_lps=(0, 0, 1),
                       options=SceneRenderOptions(field_mm=40.0, pixel_mm=1.0))
    np.testing.assert_allclose(view.axis_row_lps, [0, 0, -1], atol=1e-12)  # rows run caudally
    np.testing.assert_allclose(np.cross(view.axis_col_lps, view.axis_row_lps),
                               view.view_direction_lps, atol=1e-12)


def test_rendering_can_be_cancelled() -> None:
    labels, centre = _scene()
    with pytest.raises(Cancelled):
        render_view(labels, TABLE, (0.0, 1.0, 0.0), centre_lps=centre,
                    progress=lambda f, m: False if "casting" in m else None)


def test_overlays_draw_outline_needle_and_legend() -> None:
    labels, centre = _scene()
    view = render_view(labels, TABLE, (0.0, 1.0, 0.0), centre_lps=centre,
                       options=SceneRenderOptions(field_mm=80.0, pixel_mm=0.5))
    square = centre + np.array([[-5, 0, -5], [5, 0, -5], [5, 0, 5], [-5, 0, 5]], float)
    rgb = draw_overlays(view, Overlay(outlines=[(square, (0, 225, 235))],
                                      needle_lps=(centre + [0, -60, 0], centre), scale=2,
                                      legend=["a legend line"], key=[("bone", (255, 250, 215))]))
    n = view.rgb.shape[0] * 2
    assert rgb.shape[1] == n and rgb.shape[0] > n
    # The outline passes through the projected square's edge midpoint.
    r, c, _ = view.project((centre + np.array([5.0, 0.0, 0.0]))[None])[0]
    y, x = int(round((r + 0.5) * 2 - 0.5)), int(round((c + 0.5) * 2 - 0.5))
    patch = rgb[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3)
    assert np.any(np.all(np.abs(patch.astype(int) - (0, 225, 235)) < 10, axis=1))


def test_class_names_map_to_colour_classes() -> None:
    assert [class_of(n) for n in ("bone", "L5", "S1", "ilium_left", "root_L5_left", "nerve",
                                  "disc_L5S1", "dura")] == [
        "bone", "bone_highlight", "bone_highlight", "bone", "nerve", "nerve", "disc", "dura"]


def test_area_map_marks_the_peak_where_it_is() -> None:
    alphas = np.array([0.0, 15.0, 30.0, 45.0, 60.0, 75.0])
    betas = np.array([-35.0, -20.0, -5.0, 10.0, 25.0, 35.0])  # uneven last step, as the optimiser
    values = np.zeros((6, 6))
    values[4, 1] = 20.0  # the peak at alpha 60, beta -20
    rgb = render_area_map(alphas, betas, values, best=(60.0, -20.0, 20.0), title="t", side="left")
    yellow = np.all(np.abs(rgb.astype(int) - colormap(np.array([1.0]))[0]) < 4, axis=-1)
    purple = np.all(np.abs(rgb.astype(int) - colormap(np.array([0.0]))[0]) < 4, axis=-1)
    ys, xs = np.nonzero(yellow)
    assert ys.size > 1000
    # The peak cell is the 5th column (of 6) and the 5th row from the top (beta -20 of 6 rows).
    ps = np.flatnonzero(purple[int(ys.mean())])  # the peak's row: empty cells either side
    left, right = ps.min(), ps.max()
    assert (xs.mean() - left) / (right - left + 1) == pytest.approx(4.5 / 6, abs=0.03)
    # The white cross of the best view sits on the peak cell's centre.
    cy, cx = int(ys.mean()), int(xs.mean())
    centre = rgb[cy - 2:cy + 3, cx - 2:cx + 3].reshape(-1, 3)
    assert np.any(np.all(centre > 240, axis=1))
    assert not np.any(np.all(rgb[cy - 30:cy - 20, cx - 5:cx + 5] > 240, axis=-1))  # only there


def test_carm_words() -> None:
    # The one C-arm language (spinect_core.planning.carm), HTML-escaped.
    text = carm_instruction({"side": "left", "oblique_deg": 25.2, "tilt_deg": -11.6})
    assert text == "25.2° ipsilateral (left) oblique, 11.6° caudal tilt"
    assert carm_instruction({"side": "right", "oblique_deg": -5, "tilt_deg": 0}) == (
        "5.0° contralateral (contra-right) oblique, no tilt")
    assert carm_instruction(None) == "&mdash;"


def test_area_map_axes_are_c_arm_degrees_with_the_literature_band() -> None:
    from spinect_core.report.maps import AreaMapOptions, map_x

    alphas = np.arange(0.0, 61.0, 5.0)  # C-arm oblique, degrees
    betas = np.arange(-40.0, 41.0, 10.0)  # C-arm tilt, degrees
    values = np.tile(np.linspace(1.0, 20.0, len(betas)), (len(alphas), 1))
    plain = render_area_map(alphas, betas, values, side="left",
                            options=AreaMapOptions(oblique_band_deg=None))
    banded = render_area_map(alphas, betas, values, side="left")
    top = 34 + AreaMapOptions().font_px  # the map's first row; the band's label is above it
    changed = np.flatnonzero(np.any(plain[top:] != banded[top:], axis=(0, 2)))
    # The shading spans the obliques 25 to 30 degrees on the oblique axis (cell centres at the
    # grid's C-arm angles), and nothing else changes on the map.
    x25, x30 = map_x(alphas, 25.0), map_x(alphas, 30.0)
    assert changed.min() == pytest.approx(x25, abs=1.5)
    assert changed.max() == pytest.approx(x30, abs=1.5)
    rows = np.flatnonzero(np.any(plain[:, int(x25) + 3] != banded[:, int(x25) + 3], axis=-1))
    assert rows.size > 300  # the whole height of the map
    # The same map shifted: a grid from 10 degrees puts the band further left.
    assert map_x(alphas + 10.0, 25.0) < x25 - 20
    # Lighter, never darker: the band keeps the colours readable.
    band = (slice(top, None), slice(int(x25) + 3, int(x30) - 2))
    assert (banded[band].astype(int) >= plain[band].astype(int)).all()


# --- Empty-space skipping: the same first hit as the exhaustive march ----------------------

def _rotation(axis, angle_deg: float) -> np.ndarray:
    """Rotation matrix about ``axis`` by ``angle_deg`` (Rodrigues)."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = np.radians(angle_deg)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def _thin_scene() -> Volume:
    """Anisotropic, obliquely oriented grid with one-voxel-thin structures: a tilted plate, a
    line, scattered single voxels and a small block (ids 1-4)."""
    n = (24, 50, 46)  # z, y, x
    arr = np.zeros(n, np.uint8)
    zz, yy, xx = np.indices(n)
    arr[np.abs(xx - 0.7 * yy - 5) < 0.5] = 1  # a plate one voxel thick, tilted in x-y
    arr[12, 25, 3:40] = 2  # a line along x
    rng = np.random.default_rng(7)
    arr[tuple(rng.integers(0, n, size=(40, 3)).T)] = 3  # isolated voxels
    arr[2:5, 40:44, 30:33] = 4
    return Volume(array=arr, spacing_mm=np.array([0.7, 0.9, 2.5]), origin_lps_mm=np.array([5., -3., 8.]),
                  direction=_rotation((1.0, 2.0, 0.5), 23.0))


@pytest.fixture(scope="module")
def phantom_instances() -> Volume:
    """The per-level instance map of a coarse phantom on obliquely rotated axes."""
    import dataclasses

    from spinect_core.phantom import generate_phantom

    labels = generate_phantom(seed=0, spacing_mm=(1.5, 1.5, 2.0)).instances
    return dataclasses.replace(labels, direction=_rotation((0.3, -1.0, 0.2), 17.0))


def _views_of(labels: Volume) -> list[tuple[np.ndarray, np.ndarray]]:
    """(view direction, up) pairs: along the grid axes (grazing the voxel faces), oblique,
    and nearly parallel to the thin scene's plate."""
    m = labels.direction
    plate = m @ np.array([0.7 * 0.7, 0.9, 0.0])  # x - 0.7 y = 5 runs along (0.7, 1, 0) voxels
    return [(m[:, 0], m[:, 2]), (-m[:, 2], m[:, 1]), (m @ [1.0, 1.0, 1.0], m[:, 2]),
            (m @ [0.3, -1.0, 0.6], (0.0, 0.0, 1.0)), (plate + 0.02 * m[:, 2], m[:, 2]),
            (m @ [1.0, 1e-7, 0.0], m[:, 1])]


def _march_exhaustive(prepared, rays) -> tuple[np.ndarray, np.ndarray]:
    """The oracle: every sample of every ray that meets the box (24 samples at a time), the
    first non-background one its hit (-1 and label 0 for none). The march render_view used
    before it skipped empty space."""
    from spinect_core.report.render import _ray_box_interval

    crop, base, n_steps = prepared.crop, rays.base, rays.n_steps
    shape_xyz = np.array(crop.shape[::-1])
    di_t32 = rays.di_t.astype(np.float32)
    hit_step = np.full(len(base), -1, np.int64)
    hit_label = np.zeros(len(base), np.int32)
    lo, hi = _ray_box_interval(base, di_t32, n_steps, shape_xyz)
    active = np.flatnonzero(lo <= hi)
    k = 0
    while k < n_steps and active.size:
        ks = np.arange(k, min(k + 24, n_steps), dtype=np.float32)
        idx = base[active][:, None, :] + ks[None, :, None] * di_t32[None, None, :]
        ii = np.rint(idx).astype(np.int64)
        inside = np.all((ii >= 0) & (ii < shape_xyz[None, None, :]), axis=2)
        np.clip(ii, 0, shape_xyz - 1, out=ii)
        vals = np.where(inside, crop[ii[..., 2], ii[..., 1], ii[..., 0]], 0)
        got = vals != 0
        any_hit = got.any(axis=1)
        first = np.argmax(got, axis=1)
        hits = active[any_hit]
        hit_step[hits] = k + first[any_hit]
        hit_label[hits] = vals[any_hit, first[any_hit]]
        active = active[~any_hit]
        k += 24
    return hit_step, hit_label


@pytest.mark.parametrize("scene", ["thin", "phantom"])
def test_skipping_march_finds_the_exhaustive_first_hit(scene, request) -> None:
    from spinect_core.report.render import _march_skipping, _setup_rays, prepare_render

    labels = _thin_scene() if scene == "thin" else request.getfixturevalue("phantom_instances")
    opts = SceneRenderOptions(field_mm=90.0, pixel_mm=0.6)
    prepared = prepare_render(labels, options=opts)
    # The map lets rays skip: not every voxel of the crop is next to the foreground.
    assert prepared.clearance_mm.max() > 3.0
    centre = labels.index_to_lps(np.array(labels.array.shape[::-1], float)[None] / 2.0)[0]
    hits = 0
    for direction, up in _views_of(labels):
        rays = _setup_rays(labels, prepared, direction, centre, up, opts)
        ref_step, ref_label = _march_exhaustive(prepared, rays)
        step, label = _march_skipping(prepared, rays)
        np.testing.assert_array_equal(step, ref_step)
        np.testing.assert_array_equal(label, ref_label)
        hits += int((ref_step >= 0).sum())
    assert hits > 1000  # the views do see the scene


def test_clearance_bounds_the_distance_between_voxel_boxes() -> None:
    from spinect_core.report.render import _clearance_map

    rng = np.random.default_rng(3)
    fg = rng.random((9, 13, 11)) < 0.01
    fg[4, 6, 5] = True
    spacing_xyz = np.array([0.8, 0.8, 1.5])
    clearance = _clearance_map(fg, spacing_xyz)
    # Brute force: the gap between the closed unit boxes of each voxel and each foreground voxel.
    v = np.stack(np.indices(fg.shape), axis=-1).reshape(-1, 1, 3)
    u = np.argwhere(fg)[None]
    gap = np.maximum(np.abs(v - u) - 1, 0) * spacing_xyz[::-1]
    exact = np.linalg.norm(gap, axis=-1).min(axis=1).reshape(fg.shape)
    assert (clearance <= exact + 1e-5).all()
    assert (clearance[fg] == 0).all()
    # Coarse cells give a bound, not a useless one: far from the foreground it lets rays skip.
    assert (clearance > 0.5 * exact - 2.0).all() and clearance.max() > 3.0


def test_prepared_scene_gives_the_same_picture_and_checks_its_grid() -> None:
    from spinect_core.report.render import prepare_render

    labels, centre = _scene(spacing=(0.8, 0.8, 1.5))
    opts = SceneRenderOptions(field_mm=60.0, pixel_mm=0.5)
    prepared = prepare_render(labels, options=opts)
    for direction in ((0.0, 1.0, 0.0), (1.0, 0.4, -0.3)):
        plain = render_view(labels, TABLE, direction, centre_lps=centre, options=opts)
        again = render_view(labels, TABLE, direction, centre_lps=centre, options=opts,
                            prepared=prepared)
        np.testing.assert_array_equal(again.rgb, plain.rgb)
        np.testing.assert_array_equal(again.label_ids, plain.label_ids)
        np.testing.assert_array_equal(again.depth_mm, plain.depth_mm)
    other, _ = _scene(spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="grid"):
        render_view(other, TABLE, (0.0, 1.0, 0.0), centre_lps=centre, options=opts,
                    prepared=prepared)
    with pytest.raises(ValueError, match="surface_sigma"):
        render_view(labels, TABLE, (0.0, 1.0, 0.0), centre_lps=centre, prepared=prepared,
                    options=SceneRenderOptions(field_mm=60.0, surface_sigma_voxels=0.0))


def test_rendering_an_empty_map_hits_nothing() -> None:
    labels, centre = _scene()
    empty = labels.with_array(np.zeros_like(labels.array))
    view = render_view(empty, TABLE, (0.3, 1.0, 0.2), centre_lps=centre,
                       options=SceneRenderOptions(field_mm=40.0, pixel_mm=1.0))
    assert np.isnan(view.depth_mm).all() and (view.label_ids == 0).all()
