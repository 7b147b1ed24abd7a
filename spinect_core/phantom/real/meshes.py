"""The bundled real bone surfaces (Visible Human L4, L5, sacrum, hip bones) and their distance grids.

The meshes live in ``assets/anatomy_meshes/`` (binary PLY, LPS millimetres, one common frame in
which the bones sit as in the body; see the README there for source, licence and citation). This
module reads them (trimesh), splits the pelvis into the two hip bones, and turns each bone into a
signed-distance grid (:class:`SDFGrid`: negative inside, mm) so that a phantom can sample a
rigidly moved and smoothly deformed bone at millions of points in a fraction of a second
(trilinear interpolation) instead of querying the triangles.

Distance grids are computed once per process (``functools.lru_cache``) and kept on disk in the
user's cache folder (``$SPINECT_CACHE_DIR``, else ``$XDG_CACHE_HOME/spinect`` or
``~/.cache/spinect``), keyed by the mesh file's hash and the grid pitch: voxelising a mesh is
fast (VTK stencil, exact inside test of a watertight surface), the two Euclidean distance
transforms are what costs (about 1-3 s per bone on one core). A cache folder that cannot be
written is skipped silently (the grid is then recomputed in every process).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from spinect_core.resources import asset_path

#: Folder (under the assets) of the shipped meshes.
MESH_FOLDER = "anatomy_meshes"
#: Bones the real phantom is built from (``hip_left``/``hip_right`` are halves of ``pelvis.ply``).
BONES = ("L4", "L5", "sacrum", "hip_left", "hip_right")
#: Grid pitch (mm) of each bone's distance grid: fine where pedicles and facets bound the
#: foramen, coarser for the large hip bones (the iliac wing is still >= 4 voxels thick).
PITCH_MM = {"L4": 0.6, "L5": 0.6, "sacrum": 0.7, "hip_left": 1.0, "hip_right": 1.0}
#: Empty margin (mm) around each mesh in its grid; the distance is valid out to the margin
#: (the phantom reads a vertebra's distance at most a few mm out: partial volume, the 1-2 mm
#: clearances of carving, bumps of <= 3 mm). The hip bones need more: the iliacus/gluteal
#: muscle layer is painted 14 mm out from them.
MARGIN_MM = {"L4": 6.0, "L5": 6.0, "sacrum": 7.0, "hip_left": 16.0, "hip_right": 16.0}
#: Value returned outside a grid (mm): far outside every bone.
OUTSIDE_MM = 40.0
#: Hip bones are cropped below this native z (mm, LPS): far below any phantom field of view
#: (the S1 endplate is at native z ~ 10 mm, the view ends <= 60 mm below it).
HIP_CROP_Z_MM = -110.0
_GRID_VERSION = 2


def mesh_path(name: str) -> Path:
    """Path of a shipped mesh file ``<name>.ply`` (``L4``, ``L5``, ``sacrum``, ``pelvis``,
    ``L4_body``, ``L5_body``, ``S1_body``)."""
    return asset_path(MESH_FOLDER, f"{name}.ply")


@functools.lru_cache(maxsize=None)
def load_mesh(name: str) -> Any:
    """A shipped bone surface as a ``trimesh.Trimesh`` (vertices LPS mm, native frame).

    ``hip_left`` and ``hip_right`` are the faces of ``pelvis.ply`` on the patient's left (+x)
    and right (-x) of the midline; the two hip bones meet only at the pubic symphysis, far
    below any phantom's field of view, so each half is open there (use it for landmarks; the
    distance grids voxelise the closed pelvis and split the mask at x = 0).
    """
    import trimesh

    if name in ("hip_left", "hip_right"):
        pelvis = load_mesh("pelvis")
        want = 1.0 if name == "hip_left" else -1.0
        keep = want * np.asarray(pelvis.triangles_center)[:, 0] > 0
        return pelvis.submesh([np.nonzero(keep)[0]], append=True)
    path = mesh_path(name)
    if not path.is_file():
        from spinect_core.errors import InputError
        raise InputError(f"bundled bone surface {path.name} is missing from {path.parent}; "
                         "reinstall SPINECT or use the procedural phantom (--anatomy procedural)")
    return trimesh.load(path, force="mesh", process=False)


def bone_vertices(name: str) -> np.ndarray:
    """Native-frame vertices (n, 3), float64 LPS mm, of one bone of :data:`BONES`: a hip bone is
    the vertices of ``pelvis.ply`` on its side of the midline (left: +x)."""
    hip = name.startswith("hip_")
    v = np.asarray(load_mesh("pelvis" if hip else name).vertices, np.float64)
    if hip:
        v = v[(1.0 if name == "hip_left" else -1.0) * v[:, 0] > 0]
    return v


@dataclass(frozen=True)
class SDFGrid:
    """Signed distance to a bone surface sampled on a regular grid (native LPS frame).

    Attributes
    ----------
    values : ndarray, shape (nx, ny, nz), float32
        Signed distance, mm: negative inside the bone; index order x, y, z.
    origin_mm : ndarray (3,)
        Native LPS position of ``values[0, 0, 0]``.
    pitch_mm : float
        Grid spacing, mm (isotropic).
    """

    values: np.ndarray
    origin_mm: np.ndarray
    pitch_mm: float

    def sample(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Trilinear signed distance (mm, float64) at native points given as three arrays of
        one shape; :data:`OUTSIDE_MM` outside the grid."""
        shape = np.shape(x)
        c = np.empty((3, int(np.prod(shape))), np.float64)
        c[0] = ((np.asarray(x) - self.origin_mm[0]) / self.pitch_mm).ravel()
        c[1] = ((np.asarray(y) - self.origin_mm[1]) / self.pitch_mm).ravel()
        c[2] = ((np.asarray(z) - self.origin_mm[2]) / self.pitch_mm).ravel()
        d = ndimage.map_coordinates(self.values, c, order=1, mode="constant", cval=OUTSIDE_MM,
                                    prefilter=False)
        return d.reshape(shape).astype(np.float64)

    def inside_mask(self) -> np.ndarray:
        return self.values < 0


def voxelise(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, pitch: float,
             shape_xyz: tuple[int, int, int]) -> np.ndarray:
    """Inside mask (bool, index order x, y, z) of a watertight surface on a regular grid.

    Uses VTK's polygon-to-stencil scan conversion, exact for closed surfaces (the voxel centre's
    inside test), about 0.3 s for a vertebra at 0.5 mm.
    """
    import vtk
    from vtk.util import numpy_support as ns

    pts = vtk.vtkPoints()
    pts.SetData(ns.numpy_to_vtk(np.ascontiguousarray(vertices, np.float64), deep=True))
    cells = np.hstack([np.full((len(faces), 1), 3), faces]).astype(np.int64).ravel()
    polys = vtk.vtkCellArray()
    polys.ImportLegacyFormat(ns.numpy_to_vtkIdTypeArray(cells, deep=True))
    pd = vtk.vtkPolyData()
    pd.SetPoints(pts)
    pd.SetPolys(polys)
    nx, ny, nz = shape_xyz
    img = vtk.vtkImageData()
    img.SetSpacing(pitch, pitch, pitch)
    img.SetOrigin(*[float(v) for v in origin])
    img.SetExtent(0, nx - 1, 0, ny - 1, 0, nz - 1)
    img.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    ns.vtk_to_numpy(img.GetPointData().GetScalars())[:] = 1
    sten = vtk.vtkPolyDataToImageStencil()
    sten.SetInputData(pd)
    sten.SetOutputOrigin(*[float(v) for v in origin])
    sten.SetOutputSpacing(pitch, pitch, pitch)
    sten.SetOutputWholeExtent(img.GetExtent())
    sten.Update()
    cut = vtk.vtkImageStencil()
    cut.SetInputData(img)
    cut.SetStencilConnection(sten.GetOutputPort())
    cut.ReverseStencilOff()
    cut.SetBackgroundValue(0)
    cut.Update()
    a = ns.vtk_to_numpy(cut.GetOutput().GetPointData().GetScalars())
    # VTK's point order is x fastest: reshape to (z, y, x) and transpose to (x, y, z).
    return a.reshape(nz, ny, nx).transpose(2, 1, 0).astype(bool)


def signed_distance(inside: np.ndarray, pitch: float) -> np.ndarray:
    """Signed distance (mm, float32, negative inside) of a mask from two Euclidean distance
    transforms. The surface lies half a voxel between inside and outside centres, so each side's
    distance is shifted by ``pitch / 2`` (zero crossing midway between the two classes)."""
    out = ndimage.distance_transform_edt(~inside, sampling=pitch)
    ins = ndimage.distance_transform_edt(inside, sampling=pitch)
    d = np.where(inside, -(ins - 0.5 * pitch), out - 0.5 * pitch)
    return np.clip(d, -OUTSIDE_MM, OUTSIDE_MM).astype(np.float32)


def cache_dir() -> Path:
    """Folder for the distance-grid cache (not created here)."""
    env = os.environ.get("SPINECT_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spinect"


def _grid_key(name: str) -> str:
    src = "pelvis" if name.startswith("hip_") else name
    h = hashlib.sha256(mesh_path(src).read_bytes()).hexdigest()[:16]
    return f"bone_sdf_v{_GRID_VERSION}_{name}_{PITCH_MM[name]:.2f}_{h}"


def _compute_grid(name: str) -> SDFGrid:
    hip = name.startswith("hip_")
    mesh = load_mesh("pelvis" if hip else name)
    v = np.asarray(mesh.vertices, np.float64)
    f = np.asarray(mesh.faces, np.int64)
    pitch, margin = PITCH_MM[name], MARGIN_MM[name]
    sel = bone_vertices(name)
    lo = sel.min(axis=0) - margin
    hi = sel.max(axis=0) + margin
    if hip:
        lo[2] = max(lo[2], HIP_CROP_Z_MM)
    n = np.ceil((hi - lo) / pitch).astype(int) + 1
    inside = voxelise(v, f, lo, pitch, (int(n[0]), int(n[1]), int(n[2])))
    if hip:
        # Keep this side's half of the closed pelvis (they join only at the symphysis).
        xs = lo[0] + pitch * np.arange(n[0])
        inside &= ((1.0 if name == "hip_left" else -1.0) * xs > 0)[:, None, None]
    return SDFGrid(values=signed_distance(inside, pitch), origin_mm=lo, pitch_mm=pitch)


@functools.lru_cache(maxsize=None)
def bone_sdf(name: str) -> SDFGrid:
    """Signed-distance grid of one bone of :data:`BONES` (native frame), cached in memory and
    on disk (see the module docstring)."""
    if name not in BONES:
        raise KeyError(f"unknown bone {name!r}; one of {BONES}")
    key = _grid_key(name)
    path = cache_dir() / f"{key}.npz"
    try:
        with np.load(path) as z:
            return SDFGrid(values=z["values"].astype(np.float32), origin_mm=z["origin"],
                           pitch_mm=float(z["pitch"]))
    except (OSError, KeyError, ValueError):
        pass
    grid = _compute_grid(name)
    # As the cache keeps it (float16): a phantom must not depend on whether this process
    # computed the grid or read it back (real-bone phantoms of one seed differed by 1-4 bone
    # voxels of the CT bone model between a machine's first run and the later ones).
    grid = SDFGrid(values=grid.values.astype(np.float16).astype(np.float32),
                   origin_mm=grid.origin_mm, pitch_mm=grid.pitch_mm)
    try:
        from spinect_core.io.atomic import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, overwrite=True) as tmp:
            with open(tmp, "wb") as fh:
                # float16 keeps 0.02 mm at 40 mm: far below the grid pitch.
                np.savez(fh, values=grid.values.astype(np.float16), origin=grid.origin_mm,
                         pitch=grid.pitch_mm)
    except Exception:  # noqa: BLE001 - a cache that cannot be written only costs time
        pass
    return grid


@functools.lru_cache(maxsize=None)
def load_landmarks() -> dict:
    """Landmarks measured on the shipped meshes (``landmarks.json`` beside them, written by
    :mod:`spinect_core.phantom.real.measure`); see that module for every key's definition."""
    path = asset_path(MESH_FOLDER, "landmarks.json")
    if not path.is_file():
        from spinect_core.errors import InputError
        raise InputError(f"{path} is missing; run python -m spinect_core.phantom.real.measure")
    return json.loads(path.read_text(encoding="utf-8"))
