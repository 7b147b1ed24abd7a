"""The planner's ray caster on torch: its samplers against direct computations, batch and
thread independence, device selection, and (``gpu``-marked, skipped without CUDA) the same
windows on CUDA as on the CPU for the analytic plates and the invariance cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.spatial.transform import Rotation

from spinect_core.errors import InputError
from spinect_core.planning.raycast import make_ray_grid, trace_rays, trace_rays_many
from spinect_core.planning.scene import SceneFields, SceneOptions, resolve_device
from spinect_core.planning.windows import WindowOptions, compute_window, compute_windows
from spinect_core.volume import Volume
from tests.planning.plates import (TABLE, plate_scene, rectangle_area, rectangle_hole,
                                   tilted_view, triangle_area, triangle_hole)

OPT = WindowOptions(roi_size_mm=12.0, polygons=False)


def _scene(vol: Volume, **options) -> SceneFields:
    return SceneFields.from_label_map(vol, TABLE, target=["target"], blockers=["plate"],
                                      options=SceneOptions(**options))


@pytest.fixture(scope="module")
def box_volume() -> Volume:
    """A small anisotropic, rotated scene: a box (blocker, sharp rims) over a ball (target)."""
    arr = np.zeros((20, 22, 24), np.uint8)
    arr[4:9, 5:17, 6:18] = 1
    z, y, x = np.indices(arr.shape)
    arr[(z - 14) ** 2 + (y - 11) ** 2 + (x - 12) ** 2 < 16] = 2
    rotation = Rotation.from_euler("zyx", [20, -15, 35], degrees=True).as_matrix()
    return Volume(array=arr, spacing_mm=[0.7, 0.9, 1.1], origin_lps_mm=[5.0, -3.0, 2.0],
                  direction=rotation)


@pytest.fixture(scope="module")
def triangle():
    vol, centre = plate_scene(triangle_hole, thickness=2.0)
    return vol, centre


def test_trilinear_sampler_matches_scipy(box_volume) -> None:
    # The 2D-image layout (slices tiled, slice z + 1 as more channels) is plain trilinear
    # interpolation of the voxel-centre distances, border values outside the crop (up to the
    # float32 image coordinates; measured 1e-5 mm).
    fields = _scene(box_volume, sharp_rims=False)
    rng = np.random.default_rng(0)
    shape_xyz = np.array(fields.shape_zyx[::-1], float)
    q = rng.uniform(-2.0, 1.0, size=(4000, 3)) * (shape_xyz + 3.0)  # partly outside the crop
    got = fields.sample_index(q)
    clipped = np.clip(q, 0, shape_xyz - 1)[:, ::-1].T  # (z, y, x) rows
    for c in range(2):
        ref = ndimage.map_coordinates(fields.sdf[c].astype(np.float64), clipped, order=1)
        np.testing.assert_allclose(got[:, c], ref, atol=5e-5)


def _cube_distance_brute(mask: np.ndarray, spacing_xyz: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Signed distance (mm) of crop indices q (m, 3) to the union of ``mask``'s voxel cubes,
    by brute force over every voxel of the other class."""
    out = np.empty(len(q))
    own = np.clip(np.floor(q + 0.5).astype(int), 0, np.array(mask.shape[::-1]) - 1)
    for k, p in enumerate(q):
        inside = mask[own[k, 2], own[k, 1], own[k, 0]]
        other = np.argwhere(~mask if inside else mask)[:, ::-1]  # (x, y, z)
        e = np.maximum(np.abs(p - other) - 0.5, 0.0) * spacing_xyz
        d = np.sqrt((e * e).sum(1)).min()
        out[k] = -d if inside else d
    return out


def test_voxel_cube_distance_is_exact_near_the_surface(box_volume) -> None:
    # The exact distance to the voxel cubes (the "voxel" surface, and the smooth surface's
    # rims) against brute force, within a voxel of the boxes' faces, edges and corners.
    fields = _scene(box_volume, surface="voxel")
    tf = fields.torch_fields()
    mask = fields.sdf[1] < 0
    edge = np.argwhere(mask ^ ndimage.binary_erosion(mask))[:, ::-1].astype(float)
    rng = np.random.default_rng(1)
    q = edge[rng.integers(0, len(edge), 300)] + rng.uniform(-1.2, 1.2, size=(300, 3))
    got = tf.cube_distance(torch.from_numpy(q.T.astype(np.float32)))[1].numpy()
    ref = _cube_distance_brute(mask, fields.spacing_mm, q)
    # Within a voxel of the surface the 8 voxels' candidates always hold the nearest cube;
    # deeper, the feature transform's nearest voxel centre may not be the nearest cube (up to
    # 1 % off at 1.5 voxels here: a bound that only shortens a step).
    close = np.abs(ref) <= float(np.min(fields.spacing_mm))
    assert close.sum() > 150
    np.testing.assert_allclose(got[close], ref[close], atol=1e-4)
    assert np.all(np.sign(got) == np.sign(ref))


def test_rim_samples_blend_the_exact_distance(box_volume) -> None:
    # Default scene: the box's rims read the exact cube distance, the ball has none.
    fields = _scene(box_volume)
    assert fields.rim_weight is not None and fields.rim_weight[1].any()
    tf = fields.torch_fields()
    zyx = np.argwhere(fields.rim_weight[1] == 1.0)
    q = zyx[:, ::-1].astype(np.float32) + 0.25  # inside cells whose 8 voxels are all rim
    q = q[np.all(q < np.array(fields.shape_zyx[::-1]) - 1, axis=1)]
    full = [np.all([fields.rim_weight[1][tuple((np.floor(p[::-1]) + o).astype(int))] == 1
                    for o in np.ndindex(2, 2, 2)]) for p in q]
    q = q[np.array(full)]
    assert len(q) > 10
    sampled = fields.sample_index(q)[:, 1]
    exact = tf.cube_distance(torch.from_numpy(q.T.copy()))[1].numpy()
    np.testing.assert_allclose(sampled, exact, atol=1e-6)


def test_batch_and_crops_give_the_numbers_of_a_single_cast(triangle) -> None:
    vol, centre = triangle
    fields = _scene(vol)
    grids = [make_ray_grid(fields.scene_corners_lps, tilted_view(t), roi_center_lps=centre,
                           roi_size_mm=10.0, pixel_mm=0.5) for t in (0, 25, 40)]
    together = trace_rays_many(fields, grids)
    cropped = trace_rays_many(fields, grids[1:2], crops=[(3, 15, 2, 17)])[0]
    for grid, hits in zip(grids, together):
        alone = trace_rays(fields, grid)
        np.testing.assert_allclose(hits.margin_mm, alone.margin_mm, atol=1e-6)
        np.testing.assert_array_equal(hits.kind, alone.kind)
    np.testing.assert_allclose(cropped.margin_mm, together[1].margin_mm[3:15, 2:17], atol=1e-6)


def test_cast_restores_the_thread_count(triangle) -> None:
    vol, centre = triangle
    before = torch.get_num_threads()
    compute_window(_scene(vol), tilted_view(10), roi_center_lps=centre, options=OPT)
    assert torch.get_num_threads() == before


def test_overlapping_casts_restore_the_thread_count_once() -> None:
    # Casts in two app workers overlap: the first saves the count, the last restores it.
    from spinect_core.planning.raycast import _cpu_threads

    cpu = torch.device("cpu")
    before = torch.get_num_threads()
    a, b = _cpu_threads(cpu, 1000), _cpu_threads(cpu, 1000)
    a.__enter__()
    b.__enter__()
    assert torch.get_num_threads() == 1  # small casts run on one thread
    a.__exit__(None, None, None)
    assert torch.get_num_threads() == 1  # b still casting
    b.__exit__(None, None, None)
    assert torch.get_num_threads() == before


def test_device_names() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="planning device"):
        resolve_device("abacus")
    with pytest.raises(InputError, match="only cpu and cuda"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")


def test_scene_options_choose_the_device(triangle) -> None:
    vol, centre = triangle
    fields = _scene(vol, device="cpu")
    assert fields.torch_fields().device.type == "cpu"
    assert compute_window(fields, tilted_view(0), roi_center_lps=centre,
                          options=OPT).area_mm2 == pytest.approx(triangle_area(0), rel=0.02)
    with pytest.raises(InputError, match="planning device"):
        _scene(vol, device="abacus")  # refused when the scene is built


# --- CUDA against the CPU (skipped without CUDA; CI has none) ----------------------------------
def _areas(vol: Volume, centre, views, device: str, options=OPT, **scene) -> list[float]:
    fields = _scene(vol, device=device, **scene)
    return [w.area_mm2 for w in compute_windows(fields, views, roi_center_lps=centre,
                                                options=options)]


@pytest.mark.gpu
@pytest.mark.parametrize("surface", ["smooth", "voxel"])
def test_cuda_plates_match_the_cpu_and_the_analytic_areas(triangle, surface) -> None:
    vol, centre = triangle
    views = [tilted_view(t) for t in (0, 15, 30, 45)]
    cpu = _areas(vol, centre, views, "cpu", surface=surface)
    gpu = _areas(vol, centre, views, "cuda", surface=surface)
    np.testing.assert_allclose(gpu, cpu, rtol=5e-3)
    np.testing.assert_allclose(gpu, [triangle_area(t) for t in (0, 15, 30, 45)], rtol=0.02)
    rect, rcentre = plate_scene(rectangle_hole, thickness=3.0)
    options = replace(OPT, roi_size_mm=8.0)
    gpu = _areas(rect, rcentre, [tilted_view(60)], "cuda", options, surface=surface)
    assert gpu[0] == pytest.approx(rectangle_area(60), rel=0.02)


@pytest.mark.gpu
def test_cuda_invariances(triangle) -> None:
    vol, centre = triangle
    ref = _areas(vol, centre, [tilted_view(30)], "cpu")[0]
    rotation = Rotation.from_euler("zyx", [27, -41, 63], degrees=True).as_matrix()
    rvol, rc = plate_scene(triangle_hole, thickness=2.0, rotation=rotation, origin=(12, -30, 7))
    assert _areas(rvol, rc, [rotation @ tilted_view(30)], "cuda")[0] == pytest.approx(
        ref, rel=0.01)
    mirror = np.diag([-1.0, 1.0, 1.0])
    mvol, mc = plate_scene(triangle_hole, thickness=2.0, rotation=mirror)
    assert _areas(mvol, mc, [mirror @ tilted_view(30)], "cuda")[0] == pytest.approx(ref,
                                                                                     rel=0.01)
    fine = replace(OPT, pixel_mm=0.125)
    assert _areas(vol, centre, [tilted_view(30)], "cuda", fine)[0] == pytest.approx(ref,
                                                                                    rel=0.01)


@pytest.mark.gpu
def test_cuda_samples_match_the_cpu(box_volume) -> None:
    cpu, gpu = _scene(box_volume, device="cpu"), _scene(box_volume, device="cuda")
    q = np.random.default_rng(2).uniform(-1, 1, size=(5000, 3)) * 30
    np.testing.assert_allclose(gpu.sample_index(q), cpu.sample_index(q), atol=1e-4)


def test_the_gpu_schedule_gives_the_cpu_numbers(triangle, monkeypatch) -> None:
    # A GPU blends the rims into every sample and asks for the running rays every 8 marching
    # iterations (fewer host syncs); run that schedule on the CPU: the same windows.
    import spinect_core.planning.raycast as raycast

    vol, centre = triangle
    views = [tilted_view(t) for t in (0, 20, 45)]
    fields = _scene(vol)
    ref = compute_windows(fields, views, roi_center_lps=centre, options=OPT)
    monkeypatch.setitem(raycast.SYNC_EVERY, "cpu", 8)
    fields.torch_fields().dense_rims = True
    got = compute_windows(fields, views, roi_center_lps=centre, options=OPT)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b.margin, a.margin, atol=1e-6)
        np.testing.assert_allclose(b.hit_depth_mm, a.hit_depth_mm, atol=1e-5)
        assert b.area_mm2 == pytest.approx(a.area_mm2, rel=1e-6)


# --- the empty-space skip -------------------------------------------------------------------
@pytest.fixture(scope="module")
def open_scene():
    """A 1 mm scene with much open space: a ball (target) behind a plate with a round hole
    (blocker), 56 mm across, so rays cross ~20 mm where both fields read the 10 mm clamp."""
    arr = np.zeros((56, 56, 56), np.uint8)
    z, y, x = np.indices(arr.shape)
    arr[(z - 34) ** 2 + (y - 28) ** 2 + (x - 28) ** 2 < 25] = 2
    plate = (z >= 26) & (z < 28) & ((y - 28) ** 2 + (x - 28) ** 2 >= 9)
    plate &= (np.abs(y - 28) < 12) & (np.abs(x - 28) < 12)
    arr[plate] = 1
    vol = Volume(array=arr, spacing_mm=[1.0, 1.0, 1.0], origin_lps_mm=[0.0, 0.0, 0.0])
    return vol, np.array([28.0, 28.0, 27.0])


def test_the_empty_space_skip_gives_the_loops_numbers(open_scene, monkeypatch) -> None:
    import spinect_core.planning.raycast as raycast

    vol, centre = open_scene
    fields = _scene(vol, pad_voxels=20)
    skip = fields.torch_fields().skip_field()
    assert skip is not None and float(skip[0].max()) > 2 * skip[3]  # skips of several steps
    views = [tilted_view(t) for t in (0, 20, 40)]
    options = replace(OPT, roi_size_mm=14.0, pixel_mm=0.5)
    grids = [make_ray_grid(fields.scene_corners_lps, v, roi_center_lps=centre,
                           roi_size_mm=20.0, pixel_mm=0.5) for v in views]
    with_skip = trace_rays_many(fields, grids)
    got = compute_windows(fields, views, roi_center_lps=centre, options=options)
    monkeypatch.setattr(raycast, "SKIP_ROUNDS", 0)
    without = trace_rays_many(fields, grids)
    ref = compute_windows(fields, views, roi_center_lps=centre, options=options)
    for a, b in zip(with_skip, without):
        np.testing.assert_array_equal(a.kind, b.kind)
        np.testing.assert_allclose(a.depth_mm, b.depth_mm, atol=1e-3)
        np.testing.assert_allclose(a.margin_mm, b.margin_mm, atol=1e-3)
    for a, b in zip(got, ref):
        assert a.area_mm2 == pytest.approx(b.area_mm2, rel=1e-4) and a.area_mm2 > 5.0


def test_the_skip_follows_edits_of_the_device_fields(open_scene) -> None:
    # A root edit patches the device copy in place (root_edit._sync_torch); a block drawn in
    # what was open space must stop the rays that cross it, not be skipped.
    from spinect_core.planning.root_edit import _sync_torch
    from spinect_core.planning.scene import signed_distance_mm

    vol, centre = open_scene
    fields = _scene(vol, pad_voxels=40)
    tf = fields.torch_fields()
    view = tilted_view(0)
    grid = make_ray_grid(fields.scene_corners_lps, view, roi_center_lps=centre,
                         roi_size_mm=4.0, pixel_mm=0.5)
    before = trace_rays(fields, grid)
    assert tf.skip_field() is not None and (before.kind == 1).all()  # through the hole
    # A blocker block 30 mm in front of the plate, in the open space a stale skip jumps.
    hit = grid.points_lps(np.array([4.0]), np.array([4.0]), np.array([0.0]))[0]
    first = float(np.nanmin(before.depth_mm))
    block_centre = fields.lps_to_index(hit + (first - 30.0) * grid.view_direction_lps)
    cx, cy, cz = np.round(block_centre).astype(int)
    blocker = fields.sdf[1] < 0
    blocker[cz - 2:cz + 3, cy - 6:cy + 7, cx - 6:cx + 7] = True
    sdf = signed_distance_mm(blocker, fields.spacing_mm[::-1], 10.0, features=True)
    fields.sdf[1] = sdf[0]
    if fields.features is not None:
        fields.features[1] = sdf[1]
    _sync_torch(fields, (0, 0, 0), fields.shape_zyx)
    after = trace_rays(fields, grid)
    assert (after.kind == 2).all()
    assert np.nanmax(after.depth_mm) < first - 10.0
