"""Triangle surfaces of labelled structures (bone, nerve, disc, dura) in LPS millimetres.

Pipeline per structure (each step documented where it changes results):

1. **Crop** the field to the structure's bounding box plus a margin wide enough for the filters
   below, so a small root in a large CT costs little; the crop offset is added back exactly.
2. **Components** (optional): drop connected pieces smaller than ``min_component_mm3`` or keep only
   the largest (26-connectivity, a superset of what marching cubes joins, so nothing the surface
   would connect is split).
3. **Volume smoothing**: ``smoothing="median"`` applies a median filter of ``median_kernel_mm``
   (the source study's 1.5 mm) to the field; a binary mask is then blurred with a Gaussian of
   ``gaussian_sigma_vox`` (~0.6 voxel, docs/ARCHITECTURE.md 4.2: soft boundaries cut the error of
   oblique windows compared with the voxel staircase).
   The blur thins structures only one or two voxels across: the phantom's nerve roots at 2 mm
   spacing lose ~30 % of their volume (bone 2 %, disc 3 %, dura 6 %).
4. **Pad by one voxel** of background so a structure touching the volume edge gets a closed
   (watertight) cap half a voxel outside the last voxel centre, on the outer voxel face.
5. **Iso-surface** with VTK flying edges (``vtkFlyingEdges3D``; ~6x faster than
   ``skimage.measure.marching_cubes`` on 192^3, docs/ARCHITECTURE.md 6) in continuous (x, y, z) index
   space, then mapped to LPS with the full affine ``origin + direction @ (spacing * index)``.
   Faces are wound so normals point outward in LPS: a closed surface has positive signed volume
   (this also handles direction matrices with a negative determinant).
6. **Mesh smoothing**: ``smoothing="windowed_sinc"`` runs ``vtkWindowedSincPolyDataFilter``
   (Taubin's low-pass filter; keeps volume, unlike Laplacian smoothing) in LPS millimetres, so
   anisotropic voxels are smoothed in physical space.
7. **Decimation** to ``target_triangles`` with ``vtkQuadricDecimation`` (volume preservation on);
   if that glues two sheets of a closed surface together (non-manifold edge), the target is
   raised by up to ~9 % and, failing that, topology-preserving ``vtkDecimatePro`` is used.
8. **Vertex normals**: area-weighted face normals (unit, LPS).

Only VTK *filter* modules are imported (``vtkCommonCore``, ``vtkCommonDataModel``,
``vtkFiltersCore``), never rendering modules: the core stays headless. This makes ``vtk``
(>= 9.3) a core dependency.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Literal, Sequence

import numpy as np
from scipy import ndimage
from vtkmodules.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkImageData, vtkPolyData
from vtkmodules.vtkFiltersCore import (
    vtkFlyingEdges3D,
    vtkDecimatePro,
    vtkQuadricDecimation,
    vtkWindowedSincPolyDataFilter,
)

from spinect_core.errors import InputError
from spinect_core.labels import LabelTable
from spinect_core.preprocess.resample import Grid
from spinect_core.progress import ProgressCallback, report, sub_progress
from spinect_core.volume import Volume

if TYPE_CHECKING:  # trimesh is imported lazily: only to_trimesh() needs it
    import trimesh

__all__ = [
    "Mesh", "MeshOptions", "Smoothing", "mesh_from_mask", "mesh_from_probability",
    "meshes_from_labels", "median_kernel_voxels",
]

Smoothing = Literal["windowed_sinc", "median", "none"]


# ------------------------------------------------------------------------------------------------
# Options and result
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class MeshOptions:
    """How a surface is extracted, smoothed and decimated.

    Attributes
    ----------
    smoothing : {"windowed_sinc", "median", "none"}
        ``"windowed_sinc"``: low-pass filter of the mesh (VTK, volume-preserving).
        ``"median"``: median filter of the *volume* before the iso-surface (the source study's
        1.5 mm kernel). ``"none"``: raw iso-surface.
    smoothing_iterations : int
        Iterations of the windowed-sinc filter (VTK's default is 20).
    smoothing_passband : float
        Pass band of the windowed-sinc filter in (0, 2); smaller is smoother. 0.1 removes the
        voxel staircase while keeping features of a few voxels (3D Slicer's "joint smoothing"
        factor f maps to ``10 ** (-4 f)``; 0.1 corresponds to f = 0.25).
    median_kernel_mm : float
        Edge of the median kernel, mm. Per axis the kernel is the smallest odd number of voxels
        that covers this length (1.5 mm -> 3 voxels at 0.5-1.4 mm spacing, 1 voxel = no filter at
        >= 1.5 mm spacing); see :func:`median_kernel_voxels`.
    target_triangles : int or None
        Decimate to about this many triangles (quadric decimation); ``None`` keeps all. A mesh
        that already has fewer triangles is left as it is.
    gaussian_sigma_vox : float
        Gaussian blur (standard deviation in voxels, per axis) of *binary* masks before the
        iso-surface at 0.5; 0 disables it. Not applied to probabilities, which are soft already.
    keep_largest : bool
        Keep only the largest connected component (26-connectivity).
    min_component_mm3 : float
        Drop connected components smaller than this volume (mm^3); 0 keeps everything.
    """

    smoothing: Smoothing = "windowed_sinc"
    smoothing_iterations: int = 20
    smoothing_passband: float = 0.1
    median_kernel_mm: float = 1.5
    target_triangles: int | None = None
    gaussian_sigma_vox: float = 0.6
    keep_largest: bool = False
    min_component_mm3: float = 0.0

    def __post_init__(self) -> None:
        if self.smoothing not in ("windowed_sinc", "median", "none"):
            raise ValueError(f"smoothing must be 'windowed_sinc', 'median' or 'none', "
                             f"got {self.smoothing!r}")
        if self.smoothing_iterations < 1:
            raise ValueError(f"smoothing_iterations must be >= 1, got {self.smoothing_iterations}")
        if not 0.0 < self.smoothing_passband < 2.0:
            raise ValueError(f"smoothing_passband must be in (0, 2), got {self.smoothing_passband}")
        if self.median_kernel_mm < 0:
            raise ValueError(f"median_kernel_mm must be >= 0, got {self.median_kernel_mm}")
        if self.target_triangles is not None and self.target_triangles < 4:
            raise ValueError(f"target_triangles must be >= 4 or None, got {self.target_triangles}")
        if self.gaussian_sigma_vox < 0:
            raise ValueError(f"gaussian_sigma_vox must be >= 0, got {self.gaussian_sigma_vox}")
        if self.min_component_mm3 < 0:
            raise ValueError(f"min_component_mm3 must be >= 0, got {self.min_component_mm3}")


@dataclass(kw_only=True)
class Mesh:
    """A triangle surface in patient coordinates (millimetres).

    Attributes
    ----------
    vertices_lps_mm : np.ndarray, shape (N, 3), float64
        Vertex positions, mm, in the frame named by ``coordinate_system`` (LPS unless the mesh
        came from :meth:`to_ras`; the field keeps its name so code reads one attribute).
    faces : np.ndarray, shape (M, 3), int64
        Vertex indices of each triangle, wound counter-clockwise seen from outside (right-hand
        rule normals point out of the structure).
    normals : np.ndarray, shape (N, 3), float32, or None
        Unit outward vertex normals in the same frame.
    name : str
        Display / file name (e.g. ``"bone"`` or ``"L5"``).
    label_name : str
        Class name of the label table the surface came from ("" if none).
    coordinate_system : {"LPS", "RAS"}
        Frame of ``vertices_lps_mm`` and ``normals``.
    """

    vertices_lps_mm: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None = None
    name: str = ""
    label_name: str = ""
    coordinate_system: str = "LPS"

    def __post_init__(self) -> None:
        self.vertices_lps_mm = np.asarray(self.vertices_lps_mm, dtype=np.float64).reshape(-1, 3)
        self.faces = np.asarray(self.faces, dtype=np.int64).reshape(-1, 3)
        if self.normals is not None:
            self.normals = np.asarray(self.normals, dtype=np.float32).reshape(-1, 3)
            if len(self.normals) != len(self.vertices_lps_mm):
                raise ValueError(f"{len(self.normals)} normals for "
                                 f"{len(self.vertices_lps_mm)} vertices")
        if self.coordinate_system not in ("LPS", "RAS"):
            raise ValueError(f"coordinate_system must be 'LPS' or 'RAS', "
                             f"got {self.coordinate_system!r}")
        if self.faces.size and (self.faces.min() < 0
                                or self.faces.max() >= len(self.vertices_lps_mm)):
            raise ValueError("face indices out of range of the vertices")

    # --- basic properties ------------------------------------------------------------------------
    @property
    def n_vertices(self) -> int:
        return int(len(self.vertices_lps_mm))

    @property
    def n_triangles(self) -> int:
        return int(len(self.faces))

    @property
    def is_empty(self) -> bool:
        """True when the mesh has no triangles (e.g. the class is absent from the label map)."""
        return self.n_triangles == 0

    @property
    def area_mm2(self) -> float:
        """Total surface area, mm^2."""
        return float(_face_areas(self.vertices_lps_mm, self.faces).sum())

    @property
    def volume_mm3(self) -> float:
        """Signed enclosed volume, mm^3 (divergence theorem; positive when normals point out).

        Meaningful for closed surfaces (see :attr:`is_watertight`).
        """
        if self.is_empty:
            return 0.0
        return _signed_volume(self.vertices_lps_mm, self.faces)

    @property
    def is_watertight(self) -> bool:
        """True when every edge is shared by exactly two triangles with opposite orientation.

        That is a closed, consistently wound surface without non-manifold edges (vertices may
        still be pinched); an empty mesh is not watertight.
        """
        return _watertight(self.faces, self.n_vertices)

    @property
    def bounds_mm(self) -> np.ndarray:
        """(2, 3): minimum and maximum vertex coordinates, mm."""
        if self.n_vertices == 0:
            return np.full((2, 3), np.nan)
        return np.stack([self.vertices_lps_mm.min(axis=0), self.vertices_lps_mm.max(axis=0)])

    # --- conversions -----------------------------------------------------------------------------
    def to_trimesh(self) -> "trimesh.Trimesh":
        """A ``trimesh.Trimesh`` with the same vertices and faces (not merged or reordered).

        The name, label and coordinate system travel in ``metadata``.
        """
        import trimesh

        kwargs: dict[str, Any] = {}
        if self.normals is not None:
            kwargs["vertex_normals"] = self.normals.astype(np.float64)
        return trimesh.Trimesh(
            vertices=self.vertices_lps_mm.copy(), faces=self.faces.copy(), process=False,
            metadata={"name": self.name, "label_name": self.label_name,
                      "coordinate_system": self.coordinate_system, "units": "mm"},
            **kwargs,
        )

    def _flip_xy(self, target: str) -> "Mesh":
        # Negating x and y is a rotation by 180 deg about z (det +1): the winding stays outward.
        flip = np.array([-1.0, -1.0, 1.0])
        return dataclasses.replace(
            self,
            vertices_lps_mm=self.vertices_lps_mm * flip,
            faces=self.faces.copy(),
            normals=None if self.normals is None else (self.normals * flip.astype(np.float32)),
            coordinate_system=target,
        )

    def to_ras(self) -> "Mesh":
        """A copy in RAS (x and y negated, as 3D Slicer's world frame); a RAS mesh is copied."""
        if self.coordinate_system == "RAS":
            return dataclasses.replace(self, vertices_lps_mm=self.vertices_lps_mm.copy(),
                                       faces=self.faces.copy(),
                                       normals=None if self.normals is None else self.normals.copy())
        return self._flip_xy("RAS")

    def to_lps(self) -> "Mesh":
        """A copy in LPS (x and y negated from RAS); an LPS mesh is copied."""
        if self.coordinate_system == "LPS":
            return dataclasses.replace(self, vertices_lps_mm=self.vertices_lps_mm.copy(),
                                       faces=self.faces.copy(),
                                       normals=None if self.normals is None else self.normals.copy())
        return self._flip_xy("LPS")

    def to_coordinate_system(self, coordinate_system: str) -> "Mesh":
        """A copy in ``"LPS"`` or ``"RAS"``."""
        cs = str(coordinate_system).upper()
        if cs == "LPS":
            return self.to_lps()
        if cs == "RAS":
            return self.to_ras()
        raise ValueError(f"coordinate_system must be 'LPS' or 'RAS', got {coordinate_system!r}")

    @classmethod
    def empty(cls, *, name: str = "", label_name: str = "",
              coordinate_system: str = "LPS") -> "Mesh":
        """A mesh with no vertices and no triangles."""
        return cls(vertices_lps_mm=np.zeros((0, 3)), faces=np.zeros((0, 3), dtype=np.int64),
                   normals=np.zeros((0, 3), dtype=np.float32), name=name, label_name=label_name,
                   coordinate_system=coordinate_system)


# ------------------------------------------------------------------------------------------------
# Public functions
# ------------------------------------------------------------------------------------------------
def mesh_from_mask(mask: np.ndarray, geometry: Volume | Grid, *,
                   options: MeshOptions | None = None, name: str = "", label_name: str = "",
                   progress: ProgressCallback | None = None) -> Mesh:
    """Closed surface of a binary mask, in LPS mm.

    Parameters
    ----------
    mask : np.ndarray, shape (nz, ny, nx), bool or integer
        Non-zero voxels are inside; indexed (z, y, x) like :attr:`Volume.array`.
    geometry : Volume or Grid
        The grid of ``mask`` (spacing, origin, direction in ITK (x, y, z) order).
    options : MeshOptions, optional
        Smoothing, decimation, component filtering; the binary mask is blurred with
        ``options.gaussian_sigma_vox`` and the surface taken at 0.5.
    name, label_name : str
        Stored on the returned mesh.
    progress : callable, optional
        ``(fraction, message)``; returning False raises :class:`~spinect_core.errors.Cancelled`.

    Returns
    -------
    Mesh
        Outward-wound, watertight triangle surface in LPS mm (empty when the mask is empty).
    """
    options = options or MeshOptions()
    grid = _grid_of(geometry, np.shape(mask))
    binary = np.asarray(mask) != 0
    return _surface(binary, np.zeros(3, dtype=np.int64), grid, level=0.5, binary=True,
                    options=options, name=name, label_name=label_name, progress=progress)


def mesh_from_probability(prob: np.ndarray, geometry: Volume | Grid, *, level: float = 0.5,
                          options: MeshOptions | None = None, name: str = "",
                          label_name: str = "",
                          progress: ProgressCallback | None = None) -> Mesh:
    """Iso-surface ``prob == level`` of a class probability (soft boundary), in LPS mm.

    Parameters
    ----------
    prob : np.ndarray, shape (nz, ny, nx), float
        Class probability in [0, 1], indexed (z, y, x).
    geometry : Volume or Grid
        The grid of ``prob``.
    level : float
        Iso-value in (0, 1); 0.5 by default (0.35 / 0.65 give the uncertainty band).
    options : MeshOptions, optional
        ``gaussian_sigma_vox`` is ignored (probabilities are soft already); components are those
        of ``prob >= level``.
    name, label_name : str
        Stored on the returned mesh.
    progress : callable, optional
        ``(fraction, message)``; returning False raises :class:`~spinect_core.errors.Cancelled`.

    Returns
    -------
    Mesh
        Outward-wound, watertight triangle surface in LPS mm (empty when nothing reaches
        ``level``).
    """
    options = options or MeshOptions()
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    grid = _grid_of(geometry, np.shape(prob))
    field_ = np.asarray(prob, dtype=np.float32)
    return _surface(field_, np.zeros(3, dtype=np.int64), grid, level=float(level), binary=False,
                    options=options, name=name, label_name=label_name, progress=progress)


def meshes_from_labels(labels: Volume, table: LabelTable, *, names: Iterable[str] | None = None,
                       options: MeshOptions | None = None,
                       progress: ProgressCallback | None = None) -> dict[str, Mesh]:
    """One surface per class of a label map (e.g. bone, nerve, disc, dura), in LPS mm.

    Parameters
    ----------
    labels : Volume
        Integer label map, array (nz, ny, nx), with its LPS geometry.
    table : LabelTable
        Names of the ids in ``labels`` (e.g. :data:`~spinect_core.labels.DEFAULT_LABELS` or a
        phantom's ``instance_table``).
    names : iterable of str, optional
        Classes to mesh. ``None``: every foreground class of ``table`` that has voxels (absent
        classes are left out). Given names that have no voxels map to an empty mesh
        (:attr:`Mesh.is_empty`) so the caller sees they are missing.
    options : MeshOptions, optional
        Applied to every class (binary masks: Gaussian blur, then the 0.5 iso-surface).
    progress : callable, optional
        ``(fraction, message)``; returning False raises :class:`~spinect_core.errors.Cancelled`.

    Returns
    -------
    dict of str to Mesh
        In the order of ``names`` (or of the table).

    Raises
    ------
    InputError
        A requested name is not in ``table``.
    """
    options = options or MeshOptions()
    arr = np.asarray(labels.array)
    if arr.dtype.kind not in "iub":
        raise InputError(f"label map must hold integer ids, got dtype {arr.dtype}")
    grid = Grid.from_volume(labels)
    if names is None:
        present = set(np.unique(arr).tolist())
        wanted = [(i, n) for i, n in table.foreground().items() if i in present]
    else:
        wanted = []
        for n in names:
            if not table.has(n):
                raise InputError(f"no class named {n!r} in the label table "
                                 f"{list(table.names.values())}")
            wanted.append((table.id_of(n), n))
    # One pass gives every class's bounding box; each class is then meshed on its own crop.
    max_id = max((i for i, _ in wanted), default=0)
    # find_objects takes any integer dtype: no full-volume int64 copy (1 GB for a 512^3 CT).
    ids = arr.view(np.uint8) if arr.dtype == np.bool_ else arr
    boxes = ndimage.find_objects(ids, max_label=max_id) if max_id else []
    margin = _filter_margin(options, grid.spacing_mm, binary=True)
    result: dict[str, Mesh] = {}
    for k, (label_id, label_name) in enumerate(wanted):
        report(progress, k / max(len(wanted), 1), f"surface of {label_name}")
        box = boxes[label_id - 1] if 0 < label_id <= len(boxes) else None
        if box is None:
            result[label_name] = Mesh.empty(name=label_name, label_name=label_name)
            continue
        sl, offset = _expand_box(box, arr.shape, margin)
        mask = arr[sl] == label_id
        sub = sub_progress(progress, k / len(wanted), (k + 1) / len(wanted), f"{label_name}: ")
        result[label_name] = _surface(mask, offset, grid, level=0.5, binary=True, options=options,
                                      name=label_name, label_name=label_name, progress=sub,
                                      cropped=True)
    report(progress, 1.0, "surfaces done")
    return result


def median_kernel_voxels(kernel_mm: float, spacing_mm: Sequence[float]) -> tuple[int, int, int]:
    """Median kernel size in voxels per array axis (z, y, x) for an edge of ``kernel_mm``.

    Per axis: the smallest odd voxel count whose extent ``n * spacing`` is at least ``kernel_mm``
    minus a voxel, i.e. ``2 * ceil((kernel_mm / spacing - 1) / 2) + 1`` (at least 1).

    Parameters
    ----------
    kernel_mm : float
        Kernel edge, mm.
    spacing_mm : sequence of 3 floats
        Voxel size along x, y, z (ITK order), mm.

    Returns
    -------
    tuple of 3 int
        Odd kernel sizes in (z, y, x) order, for ``scipy.ndimage.median_filter``.
    """
    sx, sy, sz = (float(s) for s in spacing_mm)
    sizes = []
    for s in (sz, sy, sx):
        n = 2 * math.ceil((float(kernel_mm) / s - 1.0) / 2.0 - 1e-9) + 1
        sizes.append(max(1, int(n)))
    return tuple(sizes)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------
# Pipeline
# ------------------------------------------------------------------------------------------------
def _grid_of(geometry: Volume | Grid, shape: tuple[int, ...]) -> Grid:
    grid = Grid.from_volume(geometry)
    if tuple(shape) != tuple(grid.shape_zyx):
        raise ValueError(f"array shape {tuple(shape)} differs from the grid {grid.shape_zyx} "
                         f"(both are (z, y, x))")
    return grid


def _filter_margin(options: MeshOptions, spacing_mm: np.ndarray, *, binary: bool) -> np.ndarray:
    """Crop margin (z, y, x voxels) that makes cropping exact for the volume filters.

    Values above the level can only appear within ``r_median + r_gauss`` of the structure, and the
    cubes crossing the level need one more voxel; their values depend on a further
    ``r_median + r_gauss`` voxels. Twice the radius plus two is therefore enough.
    """
    r = np.zeros(3, dtype=np.int64)
    if options.smoothing == "median":
        r += (np.asarray(median_kernel_voxels(options.median_kernel_mm, spacing_mm)) - 1) // 2
    if binary and options.gaussian_sigma_vox > 0:
        r += _gauss_radius(options.gaussian_sigma_vox)
    return 2 * r + 2


def _gauss_radius(sigma: float) -> int:
    return int(4.0 * float(sigma) + 0.5)  # scipy's default truncate=4.0


def _expand_box(box: tuple[slice, ...], shape: tuple[int, ...],
                margin: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray]:
    starts = np.array([max(s.start - int(m), 0) for s, m in zip(box, margin)], dtype=np.int64)
    stops = [min(s.stop + int(m), n) for s, m, n in zip(box, margin, shape)]
    return tuple(slice(int(a), int(b)) for a, b in zip(starts, stops)), starts


def _surface(field_: np.ndarray, offset_zyx: np.ndarray, grid: Grid, *, level: float,
             binary: bool, options: MeshOptions, name: str, label_name: str,
             progress: ProgressCallback | None, cropped: bool = False) -> Mesh:
    """Run the pipeline on ``field_`` whose voxel (0, 0, 0) is ``offset_zyx`` of ``grid``."""
    report(progress, 0.0, "cropping")
    inside = field_ if binary else (field_ >= level)
    if not cropped:
        box = ndimage.find_objects(inside.astype(np.uint8))
        if not box or box[0] is None:
            return Mesh.empty(name=name, label_name=label_name)
        sl, start = _expand_box(box[0], field_.shape,
                                _filter_margin(options, grid.spacing_mm, binary=binary))
        field_, inside = field_[sl], inside[sl]
        offset_zyx = offset_zyx + start
    if not inside.any():
        return Mesh.empty(name=name, label_name=label_name)

    field_ = _filter_components(field_, inside, grid, options, binary=binary)
    report(progress, 0.15, "smoothing the volume")
    work = field_.astype(np.float32)
    if options.smoothing == "median":
        size = median_kernel_voxels(options.median_kernel_mm, grid.spacing_mm)
        if max(size) > 1:
            work = ndimage.median_filter(work, size=size, mode="nearest")
    if binary and options.gaussian_sigma_vox > 0:
        # mode="nearest": a structure cut by the volume edge continues straight to the pad.
        work = ndimage.gaussian_filter(work, sigma=float(options.gaussian_sigma_vox),
                                       mode="nearest")
    # One voxel of "outside" on every side closes surfaces cut by the volume (or crop) edge.
    pad_value = 0.0 if level > 0.0 else level - 1.0
    work = np.pad(work, 1, mode="constant", constant_values=pad_value)
    report(progress, 0.35, "iso-surface")
    verts_idx, faces = _flying_edges(work, level)
    if len(faces) == 0:
        return Mesh.empty(name=name, label_name=label_name)
    # padded (x, y, z) index -> grid index -> LPS
    shift_xyz = offset_zyx[::-1].astype(np.float64) - 1.0
    m = grid.direction * grid.spacing_mm[None, :]
    verts = (verts_idx + shift_xyz) @ m.T + grid.origin_lps_mm
    # The padded iso-surface is closed, so the sign of its volume tells the winding; this covers
    # VTK's convention and a direction matrix with a negative determinant alike.
    if _signed_volume(verts, faces) < 0:
        faces = faces[:, ::-1].copy()

    if options.smoothing == "windowed_sinc":
        report(progress, 0.55, "smoothing the surface")
        verts, faces = _windowed_sinc(verts, faces, options.smoothing_iterations,
                                      options.smoothing_passband)
    if options.target_triangles is not None and len(faces) > options.target_triangles:
        report(progress, 0.75, "decimating")
        verts, faces = _decimate(verts, faces, options.target_triangles)
    verts, faces = _compact(verts, faces)
    report(progress, 0.95, "normals")
    normals = _vertex_normals(verts, faces)
    report(progress, 1.0, "surface done")
    return Mesh(vertices_lps_mm=verts, faces=faces, normals=normals, name=name,
                label_name=label_name, coordinate_system="LPS")


def _filter_components(field_: np.ndarray, inside: np.ndarray, grid: Grid, options: MeshOptions,
                       *, binary: bool) -> np.ndarray:
    """Zero the voxels of dropped components (26-connectivity) of ``inside``."""
    if not options.keep_largest and options.min_component_mm3 <= 0:
        return field_
    lab, n = ndimage.label(inside, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        return field_
    counts = np.bincount(lab.ravel())[1:]
    voxel_mm3 = float(np.prod(grid.spacing_mm))
    keep = counts * voxel_mm3 >= options.min_component_mm3
    if options.keep_largest:
        only = np.zeros_like(keep)
        only[int(np.argmax(counts))] = True
        keep &= only
    drop = ~np.concatenate([[True], keep])[lab]  # background (0) is never "dropped"
    if not drop.any():
        return field_
    out = field_.copy()
    out[drop] = False if binary else 0.0
    return out


# ------------------------------------------------------------------------------------------------
# VTK and numpy helpers
# ------------------------------------------------------------------------------------------------
def _flying_edges(volume_zyx: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Iso-surface in continuous (x, y, z) index coordinates: vertices (N, 3), faces (M, 3)."""
    nz, ny, nx = volume_zyx.shape
    image = vtkImageData()
    image.SetDimensions(nx, ny, nz)  # VTK is x-fastest, as the C-ordered (z, y, x) array
    image.SetSpacing(1.0, 1.0, 1.0)
    image.SetOrigin(0.0, 0.0, 0.0)
    scalars = numpy_to_vtk(np.ascontiguousarray(volume_zyx, dtype=np.float32).ravel(), deep=True)
    image.GetPointData().SetScalars(scalars)
    fe = vtkFlyingEdges3D()
    fe.SetInputData(image)
    fe.SetValue(0, float(level))
    fe.ComputeNormalsOff()  # index-space gradients would be wrong after an anisotropic affine
    fe.ComputeGradientsOff()
    fe.ComputeScalarsOff()
    fe.InterpolateAttributesOff()
    fe.Update()
    return _from_polydata(fe.GetOutput())


def _to_polydata(verts: np.ndarray, faces: np.ndarray) -> vtkPolyData:
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(verts, dtype=np.float64), deep=True))
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    cells = vtkCellArray()
    cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=True),
                  numpy_to_vtkIdTypeArray(np.ascontiguousarray(faces.ravel(), dtype=np.int64),
                                          deep=True))
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetPolys(cells)
    return poly


def _from_polydata(poly: vtkPolyData) -> tuple[np.ndarray, np.ndarray]:
    if poly.GetNumberOfPoints() == 0 or poly.GetNumberOfPolys() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    verts = vtk_to_numpy(poly.GetPoints().GetData()).astype(np.float64)
    polys = poly.GetPolys()
    offsets = vtk_to_numpy(polys.GetOffsetsArray())
    conn = vtk_to_numpy(polys.GetConnectivityArray()).astype(np.int64)
    if not np.all(np.diff(offsets) == 3):
        raise RuntimeError("VTK returned non-triangle cells")  # flying edges emits triangles
    return verts, conn.reshape(-1, 3)


def _windowed_sinc(verts: np.ndarray, faces: np.ndarray, iterations: int,
                   passband: float) -> tuple[np.ndarray, np.ndarray]:
    f = vtkWindowedSincPolyDataFilter()
    f.SetInputData(_to_polydata(verts, faces))
    f.SetNumberOfIterations(int(iterations))
    f.SetPassBand(float(passband))
    f.NormalizeCoordinatesOn()  # numerically stable for coordinates of hundreds of mm
    f.BoundarySmoothingOff()
    f.FeatureEdgeSmoothingOff()
    f.NonManifoldSmoothingOn()
    f.Update()
    out_verts, out_faces = _from_polydata(f.GetOutput())
    return out_verts, out_faces


def _decimate(verts: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadric decimation to about ``target`` triangles that keeps a closed surface closed.

    ``vtkQuadricDecimation`` reaches the target exactly but does not preserve topology: on thin
    or pinched parts (e.g. a bone cut by the crop) a strong reduction can glue two sheets along
    an edge (a non-manifold edge shared by four triangles). When the input was watertight and the
    output is not, the target is raised by 3 % and retried (up to three times, so the count stays
    within ~10 % of the request); if that still fails, ``vtkDecimatePro`` with topology
    preservation is used, which never breaks the surface but may stop above the target.
    """
    closed = _watertight(faces, len(verts))
    for k in range(4):
        goal = int(round(target * (1.0 + 0.03 * k)))
        if goal >= len(faces):
            return verts, faces
        d = vtkQuadricDecimation()
        d.SetInputData(_to_polydata(verts, faces))
        d.SetTargetReduction(float(1.0 - goal / len(faces)))
        d.VolumePreservationOn()
        d.Update()
        out_verts, out_faces = _compact(*_from_polydata(d.GetOutput()))
        if not closed or _watertight(out_faces, len(out_verts)):
            return out_verts, out_faces
    pro = vtkDecimatePro()
    pro.SetInputData(_to_polydata(verts, faces))
    pro.SetTargetReduction(float(1.0 - target / len(faces)))
    pro.PreserveTopologyOn()
    pro.SplittingOff()
    pro.BoundaryVertexDeletionOff()
    pro.Update()
    return _compact(*_from_polydata(pro.GetOutput()))


def _watertight(faces: np.ndarray, n_vertices: int) -> bool:
    """Every edge shared by exactly two triangles with opposite orientation."""
    if len(faces) == 0:
        return False
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    n = np.int64(max(n_vertices, 1))
    key = directed[:, 0] * n + directed[:, 1]
    if len(np.unique(key)) != len(key):  # a directed edge twice: non-manifold or inconsistent
        return False
    return bool(np.isin(directed[:, 1] * n + directed[:, 0], key).all())


def _compact(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop degenerate triangles (repeated vertex) and unreferenced vertices."""
    if len(faces):
        ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
        faces = faces[ok]
    used = np.zeros(len(verts), dtype=bool)
    used[faces.ravel()] = True
    if used.all():
        return verts, faces
    remap = np.cumsum(used) - 1
    return verts[used], remap[faces]


def _face_cross(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    v = verts[faces]
    return np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])


def _face_areas(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    if len(faces) == 0:
        return np.zeros(0)
    return 0.5 * np.linalg.norm(_face_cross(verts, faces), axis=1)


def _signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    # Sum of tetrahedra (centroid, triangle); using the centroid keeps round-off small far from 0.
    c = verts.mean(axis=0)
    v = verts[faces] - c
    return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)


def _vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals (N, 3) float32: sums of the adjacent face normals weighted by area."""
    cross = _face_cross(verts, faces)  # |cross| = 2 * area, so the sum is area-weighted
    acc = np.zeros_like(verts)
    for k in range(3):
        np.add.at(acc, faces[:, k], cross)
    norm = np.linalg.norm(acc, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return (acc / norm).astype(np.float32)
