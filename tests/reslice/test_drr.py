"""Validation of the simulated radiograph (DRR) against analytic projections on tiny volumes."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.errors import Cancelled
from spinect_core.reslice.drr import (
    MU_WATER_PER_MM, DRROptions, DRROverlay, compute_drr, drr_to_uint8, render_drr_overlay,
    render_plan_drr, write_drr_png)
from spinect_core.volume import Volume

SDD, SID = 1000.0, 600.0


def _air(shape_zyx, spacing=1.0, centre=(0.0, 0.0, 0.0), direction=np.eye(3)) -> Volume:
    """Air volume centred on ``centre`` (LPS)."""
    size_xyz = np.array(shape_zyx[::-1], float)
    sp = np.full(3, float(spacing))
    origin = np.asarray(centre, float) - direction @ (sp * (size_xyz - 1) / 2.0)
    return Volume(array=np.full(shape_zyx, -1000.0, np.float32), spacing_mm=sp,
                  origin_lps_mm=origin, direction=direction)


def _voxel_lps(ct: Volume) -> np.ndarray:
    k, j, i = np.meshgrid(*(np.arange(n) for n in ct.array.shape), indexing="ij")
    return ct.index_to_lps(np.stack([i, j, k], axis=-1).astype(float))


BEAD = np.array([6.0, -4.0, 5.0])


def _bead_ct() -> Volume:
    # A rotated grid so the LPS <-> index mapping is exercised too.
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    ct = _air((40, 40, 40), spacing=0.75, direction=rot)
    ct.array[np.linalg.norm(_voxel_lps(ct) - BEAD, axis=-1) <= 1.5] = 3000.0  # metal-like
    return ct


def _analytic_pixel(point, d, up_hint, n_px, pixel_mm, tube="below"):
    """Where ``point`` lands, written out from the pinhole model (not from the module).

    ``d`` is the view direction (detector -> patient); the X-rays travel against it with the
    tube below the table, along it with the tube above. The picture is seen along ``d``.
    """
    d = np.asarray(d, float) / np.linalg.norm(d)
    up = np.asarray(up_hint, float) - np.dot(up_hint, d) * d
    up /= np.linalg.norm(up)
    right = np.cross(d, up)
    beam = -d if tube == "below" else d
    source = -SID * beam  # isocentre at the origin
    rel = point - source
    depth = rel @ beam
    mag = SDD / depth  # similar triangles
    col = (n_px - 1) / 2 + (rel @ right) * mag / pixel_mm
    row = (n_px - 1) / 2 - (rel @ up) * mag / pixel_mm
    return row, col


VIEWS = {  # view directions (detector -> patient)
    "AP": (0.0, 1.0, 0.0),
    "oblique 35 deg": (np.sin(np.radians(35)), np.cos(np.radians(35)), 0.0),
    "oblique 30 deg + caudal 20 deg": (np.sin(np.radians(30)) * np.cos(np.radians(20)),
                                      np.cos(np.radians(30)) * np.cos(np.radians(20)),
                                      -np.sin(np.radians(20))),
}


TUBES = ("below", "above")


@pytest.fixture(scope="module")
def bead_drrs():
    ct = _bead_ct()
    out = {}
    for tube in TUBES:
        opts = DRROptions(detector_size_mm=(60.0, 60.0), detector_pixels=(64, 64), step_mm=0.25,
                          device="cpu", tube=tube)
        for name, d in VIEWS.items():
            out[name, tube] = compute_drr(ct, d, (0.0, 0.0, 0.0), options=opts)
    return out


def _centroid(img):
    w = np.where(img > 0.2 * img.max(), img, 0.0)
    rr, cc = np.indices(img.shape)
    return float((w * rr).sum() / w.sum()), float((w * cc).sum() / w.sum())


@pytest.mark.parametrize("tube", TUBES)
@pytest.mark.parametrize("name", list(VIEWS))
def test_bead_projects_to_the_analytic_pixel(bead_drrs, name, tube):
    r = bead_drrs[name, tube]
    row, col = _analytic_pixel(BEAD, VIEWS[name], (0, 0, 1), 64, 60.0 / 64, tube)
    got = _centroid(r.line_integrals)
    assert abs(got[0] - row) < 0.5 and abs(got[1] - col) < 0.5, (name, got, (row, col))
    # The bead is off-centre, so a sign slip in either axis would miss by many pixels.
    assert abs(row - 31.5) > 3 and abs(col - 31.5) > 3


@pytest.mark.parametrize("tube", TUBES)
@pytest.mark.parametrize("name", list(VIEWS))
def test_project_matches_where_the_bead_appears(bead_drrs, name, tube):
    r = bead_drrs[name, tube]
    rows, cols = r.project(BEAD[None])
    got = _centroid(r.line_integrals)
    assert abs(rows[0] - got[0]) < 0.5 and abs(cols[0] - got[1]) < 0.5
    # pixel_to_lps inverts project on the detector plane.
    p = r.geometry.pixel_to_lps(rows[0], cols[0])
    rr, cc = r.project(p[None])
    assert np.allclose([rr[0], cc[0]], [rows[0], cols[0]], atol=1e-9)


@pytest.mark.parametrize("tube", TUBES)
def test_plate_area_scales_with_magnification_squared(tube):
    # 20 x 20 x 2 mm plate, face-on (view along +y), 60 mm beyond the isocentre as seen: nearer
    # the source when the tube is below (rays along -y), farther when it is above.
    depth = 60.0
    ct = _air((32, 10, 32), spacing=1.0, centre=(0.0, depth, 0.0))
    ct.array[6:26, 4:6, 6:26] = 1000.0  # voxel edges at +-10 mm: the trilinear 50 % crossing
    n, size = 121, 60.0
    r = compute_drr(ct, (0, 1, 0), (0, 0, 0),
                    options=DRROptions(detector_size_mm=(size, size), detector_pixels=(n, n),
                                       step_mm=0.25, device="cpu", tube=tube))
    L = r.line_integrals
    area = float((L > 0.5 * L.max()).sum()) * (size / n) ** 2
    expected = 20.0 * 20.0 * (SDD / (SID + (depth if tube == "above" else -depth))) ** 2
    assert abs(area / expected - 1.0) < 0.03, (area, expected)
    # Not merely the isocentre magnification: that would be 20 % off here.
    assert abs(area / (400.0 * (SDD / SID) ** 2) - 1.0) > 0.1


def test_water_cube_line_integral_through_its_centre():
    ct = _air((30, 30, 30), spacing=1.0)
    ct.array[5:25, 5:25, 5:25] = 0.0  # 20 mm of water
    before = ct.array.copy()
    for d in [(0, 1, 0), (1, 0, 0)]:
        r = compute_drr(ct, d, (0, 0, 0),
                        options=DRROptions(detector_size_mm=(61.0, 61.0), detector_pixels=(61, 61),
                                           step_mm=0.5, device="cpu"))
        centre = float(r.line_integrals[30, 30])  # odd pixel count: this ray is the central ray
        assert abs(centre / (MU_WATER_PER_MM * 20.0) - 1.0) < 0.02, (d, centre)
    assert np.array_equal(ct.array, before)  # the caller's HU are left alone
    # A corner ray (30 mm off-centre at the detector, the shadow's edge is at 17) sees only air (mu clipped at 0).
    assert float(r.line_integrals[0, 0]) == pytest.approx(0.0, abs=1e-6)


def test_progress_reaches_one_and_cancel_stops():
    ct = _air((8, 8, 8))
    opts = DRROptions(detector_size_mm=(20.0, 20.0), detector_pixels=(16, 16), device="cpu",
                      max_samples_per_chunk=16 * 40)  # a few rows per chunk
    seen: list[float] = []
    compute_drr(ct, (0, 1, 0), (0, 0, 0), options=opts,
                progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and len(seen) > 3
    calls: list[float] = []

    def stop_after_first_chunk(f, m):
        calls.append(f)
        return f <= 0.0

    with pytest.raises(Cancelled):
        compute_drr(ct, (0, 1, 0), (0, 0, 0), options=opts, progress=stop_after_first_chunk)
    assert calls[-1] < 1.0


def test_grey_picture_and_overlay_png(bead_drrs, tmp_path):
    r = bead_drrs["AP", "below"]
    g = drr_to_uint8(r.line_integrals)
    row, col = (int(round(v[0])) for v in r.project(BEAD[None]))
    assert g.dtype == np.uint8 and g[row, col] < 40 and g[0, 0] == 255  # dense dark, air white
    rgb = render_drr_overlay(r, [DRROverlay(points_lps=BEAD[None], colour=(255, 0, 0),
                                            marker_radius_px=8, width_px=2),
                                 DRROverlay(points_lps=np.array([[-10, 0, -10], [10, 0, -10]]),
                                            colour=(0, 255, 0))], scale=2)
    assert rgb.shape == (128, 128, 3)
    # The ring passes 8 px right of the bead's centre; the line at z = -10 lies below the centre.
    ring = rgb[(2 * row + 1) - 2:(2 * row + 1) + 3, (2 * col + 1) + 6:(2 * col + 1) + 11]
    assert (ring == (255, 0, 0)).all(axis=-1).any()
    lr, lc = r.project(np.array([[0.0, 0.0, -10.0]]))
    y = int(round((lr[0] + 0.5) * 2))
    assert (rgb[y - 2:y + 3, 60:68] == (0, 255, 0)).all(axis=-1).any()
    path = write_drr_png(rgb, tmp_path / "drr.png")
    assert path.stat().st_size > 0
    with pytest.raises(Exception):
        write_drr_png(rgb, path)  # never silently overwritten


def test_the_plan_on_a_drr_windows_in_their_colours_needle_in_the_needle_colour(bead_drrs):
    """render_plan_drr, the one drawing of the app's fluoroscopy and the report's DRRs."""
    from spinect_core.vocabulary import NEEDLE_COLOUR, WINDOW_COLOURS

    r = bead_drrs["AP", "below"]
    square = np.array([[-12.0, 0, -12], [12, 0, -12], [12, 0, 12], [-12, 0, 12]])
    entry, target = np.array([-15.0, 0.0, 15.0]), BEAD
    rgb = render_plan_drr(r, outlines=[("kambin", square), ("safe", 0.5 * square),
                                       ("safe", square[:1])],  # one point: no outline
                          needles=[(entry, target)], scale=2)
    expected = render_drr_overlay(r, [
        DRROverlay(points_lps=square, colour=WINDOW_COLOURS["kambin"], closed=True),
        DRROverlay(points_lps=0.5 * square, colour=WINDOW_COLOURS["safe"], closed=True),
        DRROverlay(points_lps=np.stack([entry, target]), colour=NEEDLE_COLOUR),
        DRROverlay(points_lps=target[None], colour=NEEDLE_COLOUR)], scale=2)
    assert np.array_equal(rgb, expected)
    for colour in (WINDOW_COLOURS["kambin"], WINDOW_COLOURS["safe"], NEEDLE_COLOUR):
        assert (rgb == colour).all(axis=-1).sum() > 20, colour


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu():
    ct = _bead_ct()
    kw = dict(detector_size_mm=(60.0, 60.0), detector_pixels=(64, 64), step_mm=0.5)
    a = compute_drr(ct, VIEWS["oblique 35 deg"], (0, 0, 0), options=DRROptions(device="cpu", **kw))
    b = compute_drr(ct, VIEWS["oblique 35 deg"], (0, 0, 0), options=DRROptions(device="cuda", **kw))
    assert np.allclose(a.line_integrals, b.line_integrals, atol=1e-4 * a.line_integrals.max())


def test_tube_below_the_table_and_the_picture_as_seen_from_the_back():
    """The usual C-arm for a prone patient: tube under the table (AP rays), detector above the
    back, the picture seen looking down at the back with the head up: the patient's left (LPS
    +x) on the image's left, superior at the top, whatever side the tube is on."""
    from spinect_core.reslice.drr import detector_geometry

    view = (0.0, -1.0, 0.0)  # straight PA view of a prone patient: into the back
    below = detector_geometry(view, (0, 0, 0), options=DRROptions())
    above = detector_geometry(view, (0, 0, 0), options=DRROptions(tube="above"))
    assert below.source_lps_mm[1] == pytest.approx(-SID)      # anterior: under the table
    assert below.centre_lps_mm[1] == pytest.approx(SDD - SID)  # detector behind the back
    assert np.allclose(below.direction_lps, (0, 1, 0)) and below.tube == "below"
    assert above.source_lps_mm[1] == pytest.approx(SID) and above.tube == "above"
    for g in (below, above):
        (r_left, r_head), (c_left, c_head) = g.project(np.array([[20.0, 0, 0], [0, 0, 20.0]]))
        assert c_left < (g.shape[1] - 1) / 2 - 10   # patient's left: image left
        assert r_head < (g.shape[0] - 1) / 2 - 10   # head: image top
        assert np.allclose(g.view_direction_lps, view)
    assert below.to_dict()["tube"] == "below"
    with pytest.raises(Exception):
        DRROptions(tube="sideways")


def test_a_prepared_attenuation_volume_gives_the_same_picture():
    from spinect_core.reslice.drr import attenuation_volume

    ct = _bead_ct()
    opts = DRROptions(detector_size_mm=(60.0, 60.0), detector_pixels=(32, 32), step_mm=0.5,
                      device="cpu")
    mu = attenuation_volume(ct, options=opts)
    a = compute_drr(ct, VIEWS["oblique 35 deg"], (0, 0, 0), options=opts)
    b = compute_drr(ct, VIEWS["oblique 35 deg"], (0, 0, 0), options=opts, attenuation=mu)
    assert np.array_equal(a.line_integrals, b.line_integrals) and a.line_integrals.max() > 0
    with pytest.raises(Exception):
        compute_drr(_air((8, 8, 8)), (0, 1, 0), (0, 0, 0), options=opts, attenuation=mu)
