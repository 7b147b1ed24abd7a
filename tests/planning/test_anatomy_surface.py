"""The window primitive's default surface on real bone: the Visible Human L5 (a real surface
mesh, ``../shared/data/anatomy_meshes``) voxelised at 1 mm, its silhouette seen by the ray caster
against the exact projection of the mesh. Slow (about a minute)."""

from __future__ import annotations

import numpy as np
import pytest

from spinect_core.labels import LabelTable
from spinect_core.planning.raycast import view_axes
from spinect_core.planning.scene import SceneFields, SceneOptions
from spinect_core.planning.windows import WindowOptions, compute_window
from spinect_core.volume import Volume

PITCH = 1.0
TABLE = LabelTable({0: "background", 1: "bone", 2: "target"})


def _voxelise(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, n: int) -> np.ndarray:
    """(z, y, x) bool: voxel centres inside a closed mesh (crossing parity along z)."""
    count = np.zeros((n, n, n + 1), np.int32)  # (ix, iy, iz of the first centre above)
    for a, b, c in vertices[faces]:
        lo, hi = np.minimum(np.minimum(a, b), c), np.maximum(np.maximum(a, b), c)
        i0, j0 = np.ceil((lo[:2] - origin[:2]) / PITCH).astype(int)
        i1, j1 = np.floor((hi[:2] - origin[:2]) / PITCH).astype(int)
        det = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
        if i1 < i0 or j1 < j0 or abs(det) < 1e-12:
            continue
        gi, gj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
        px, py = origin[0] + gi * PITCH, origin[1] + gj * PITCH
        l1 = ((b[1] - c[1]) * (px - c[0]) + (c[0] - b[0]) * (py - c[1])) / det
        l2 = ((c[1] - a[1]) * (px - c[0]) + (a[0] - c[0]) * (py - c[1])) / det
        l3 = 1.0 - l1 - l2
        ok = (l1 >= 0) & (l2 >= 0) & (l3 >= 0)
        z = l1 * a[2] + l2 * b[2] + l3 * c[2]
        k = np.clip(np.ceil((z - origin[2]) / PITCH).astype(int), 0, n)
        np.add.at(count, (gi[ok], gj[ok], k[ok]), 1)
    inside = np.cumsum(count, axis=2)[:, :, :n] % 2 == 1
    return np.transpose(inside, (2, 1, 0))


def _silhouette(vertices: np.ndarray, faces: np.ndarray, d: np.ndarray, centre: np.ndarray,
                roi: float, fine: float = 0.05) -> tuple[float, float]:
    """Exact projected area of the mesh inside the ROI square (mm^2) and its outline length (mm)
    on a fine raster, in the ray grid's axes."""
    from skimage.draw import polygon

    col, row, _ = view_axes(d)
    v = vertices - centre
    m = int(round(roi / fine))
    pix = np.stack([v @ row, v @ col], 1) / fine + (m - 1) / 2
    img = np.zeros((m, m), bool)
    for f in faces:
        rr, cc = polygon(pix[f, 0], pix[f, 1], shape=img.shape)
        img[rr, cc] = True
    edges = (np.diff(img.astype(np.int8), axis=0) != 0).sum() + (
        np.diff(img.astype(np.int8), axis=1) != 0).sum()
    return float(img.sum()) * fine * fine, float(edges) * fine * np.pi / 4


@pytest.mark.slow
def test_default_surface_reads_real_bone_silhouettes_within_a_tenth_of_a_voxel(shared_data) -> None:
    trimesh = pytest.importorskip("trimesh")
    path = shared_data / "anatomy_meshes" / "visible_human_lumbosacral" / "L5.ply"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    mesh = trimesh.load(path)
    vertices, faces = np.asarray(mesh.vertices, float), np.asarray(mesh.faces)
    centre = mesh.bounds.mean(0)
    radius = float(np.linalg.norm(mesh.bounds[1] - mesh.bounds[0]) / 2)
    n = int(np.ceil((3 * radius + 14) / PITCH))
    origin = centre - (n - 1) / 2 * PITCH
    inside = _voxelise(vertices, faces, origin, n)
    assert inside.sum() * PITCH ** 3 == pytest.approx(mesh.volume, rel=0.01)
    axis = origin[None] + PITCH * np.arange(n)[:, None]
    zz, yy, xx = np.meshgrid(axis[:, 2], axis[:, 1], axis[:, 0], indexing="ij")
    points = np.stack([xx, yy, zz], -1) - centre
    roi = 1.5 * radius
    o, t = np.radians(55.0), np.radians(20.0)
    # Straight PA and a 55-degree oblique, 20-degree tilted view (the left side's C-arm terms).
    for d in (np.array([0.0, -1.0, 0.0]),
              np.array([-np.cos(t) * np.sin(o), -np.cos(t) * np.cos(o), -np.sin(t)])):
        depth = points @ d
        labels = np.where(inside, 1, 0).astype(np.uint8)
        labels[(depth > radius + 1) & (depth < radius + 4)] = 2  # a target slab behind the bone
        vol = Volume(array=labels, spacing_mm=[PITCH] * 3, origin_lps_mm=origin)
        shadow, outline = _silhouette(vertices, faces, d, centre, roi)
        offsets = {}
        for name, options in (("default", SceneOptions()),
                              ("voxel", SceneOptions(surface="voxel"))):
            scene = SceneFields.from_label_map(vol, TABLE, target=["target"], blockers=["bone"],
                                               options=options)
            w = compute_window(scene, d, roi_center_lps=centre,
                               options=WindowOptions(roi_size_mm=roi, pixel_mm=0.25,
                                                     polygons=False))
            offsets[name] = (w.area_mm2 - (roi * roi - shadow)) / outline  # mm per edge
        # Measured (mm, + = the free side larger): default +0.04 / -0.07, voxel cubes +0.03 /
        # -0.37 (their staircase corners widen oblique silhouettes).
        assert abs(offsets["default"]) < 0.1 * PITCH, offsets
        assert abs(offsets["default"]) <= abs(offsets["voxel"]) + 0.01, offsets
