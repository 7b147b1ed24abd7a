"""Resampling of CT volumes, label maps and class probabilities (SimpleITK).

All functions keep the LPS geometry exact: a resampled volume carries the origin, spacing and
direction of the grid it was resampled onto, and the voxel at index ``(i, j, k)`` (x, y, z order)
of any grid lies at ``origin + direction @ (spacing * [i, j, k])`` (see :mod:`spinect_core.volume`).

Interpolation choices (documented because they change results):

* ``"linear"`` (default for CT): trilinear, never overshoots, so HU stay within the input range.
* ``"bspline"``: cubic B-spline (ITK ``sitkBSpline``), smoother but can overshoot near sharp edges
  (e.g. cortical bone next to air); only on request.
* ``"nearest"``: for label maps (ids must never be averaged).
* class probabilities (C, z, y, x) are resampled linearly per class and renormalised so they still
  sum to 1; taking the argmax *after* resampling the probabilities onto the input grid follows the
  boundaries more closely than resampling the argmax labels with nearest neighbour.

ITK treats a point as inside the image when its continuous index lies within half a voxel of the
first/last voxel centre (the outer voxel faces), so nothing is lost at the edges; points further out
get ``default_value``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Literal, Sequence, Union

import numpy as np

from spinect_core.volume import LPSGeometry, Volume

Interpolation = Literal["linear", "nearest", "bspline"]

__all__ = [
    "Grid", "GridLike", "Interpolation", "as_grid", "new_size_for_spacing",
    "resample_to_spacing", "resample_to_grid", "resample_array_to_grid",
    "resample_probabilities_to_grid",
]


@dataclass(frozen=True, kw_only=True)
class Grid(LPSGeometry):
    """The geometry of a volume without its voxels.

    Attributes
    ----------
    shape_zyx : tuple of int
        Array shape ``(nz, ny, nx)``.
    spacing_mm : np.ndarray, shape (3,)
        Voxel size along the x, y, z index axes, millimetres (ITK order).
    origin_lps_mm : np.ndarray, shape (3,)
        LPS position of the centre of voxel (0, 0, 0), millimetres.
    direction : np.ndarray, shape (3, 3)
        Columns are the LPS unit vectors of the x, y, z index axes.
    """

    shape_zyx: tuple[int, int, int]
    spacing_mm: np.ndarray
    origin_lps_mm: np.ndarray
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape_zyx", tuple(int(n) for n in self.shape_zyx))
        object.__setattr__(self, "spacing_mm",
                           np.asarray(self.spacing_mm, dtype=np.float64).reshape(3))
        object.__setattr__(self, "origin_lps_mm",
                           np.asarray(self.origin_lps_mm, dtype=np.float64).reshape(3))
        object.__setattr__(self, "direction",
                           np.asarray(self.direction, dtype=np.float64).reshape(3, 3))
        if len(self.shape_zyx) != 3 or min(self.shape_zyx) < 1:
            raise ValueError(f"grid shape must be 3 positive sizes (z, y, x), got {self.shape_zyx}")

    @classmethod
    def from_volume(cls, volume: "Volume | Grid") -> "Grid":
        """The grid of a :class:`Volume` (or a copy of a grid)."""
        if isinstance(volume, Grid):
            return volume
        return cls(shape_zyx=volume.array.shape, spacing_mm=volume.spacing_mm.copy(),
                   origin_lps_mm=volume.origin_lps_mm.copy(), direction=volume.direction.copy())

    @property
    def shape(self) -> tuple[int, int, int]:
        """Alias of :attr:`shape_zyx` (numpy order)."""
        return self.shape_zyx

    def same_as(self, other: "Volume | Grid", *, atol: float = 1e-4) -> bool:
        """True when ``other`` has the same shape, spacing, origin and direction."""
        o = as_grid(other)
        return (self.shape_zyx == o.shape_zyx
                and np.allclose(self.spacing_mm, o.spacing_mm, atol=atol)
                and np.allclose(self.origin_lps_mm, o.origin_lps_mm, atol=atol)
                and np.allclose(self.direction, o.direction, atol=atol))

    def volume(self, array: np.ndarray, **kwargs: object) -> Volume:
        """A :class:`Volume` with ``array`` (shape :attr:`shape_zyx`) on this grid."""
        if tuple(array.shape) != self.shape_zyx:
            raise ValueError(f"shape {array.shape} differs from the grid {self.shape_zyx}")
        return Volume(array=array, spacing_mm=self.spacing_mm.copy(),
                      origin_lps_mm=self.origin_lps_mm.copy(), direction=self.direction.copy(),
                      **kwargs)  # type: ignore[arg-type]


GridLike = Union[Volume, Grid]


def as_grid(obj: GridLike) -> Grid:
    """The :class:`Grid` of a volume or grid."""
    return Grid.from_volume(obj)


def _sitk_interpolator(interpolation: str) -> int:
    import SimpleITK as sitk

    table = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor,
             "bspline": sitk.sitkBSpline}
    try:
        return table[interpolation]
    except KeyError:
        raise ValueError(f"interpolation must be one of {sorted(table)}, "
                         f"got {interpolation!r}") from None


def _as_spacing_xyz(spacing_mm: float | Sequence[float] | np.ndarray) -> np.ndarray:
    s = np.asarray(spacing_mm, dtype=np.float64)
    s = np.full(3, float(s)) if s.ndim == 0 else s.reshape(3)
    if np.any(s <= 0):
        raise ValueError(f"spacing must be positive, got {s}")
    return s


def new_size_for_spacing(size_xyz: Sequence[int], spacing_mm: Sequence[float],
                         new_spacing_mm: Sequence[float]) -> tuple[int, int, int]:
    """Voxel counts (x, y, z) that cover the same physical extent at ``new_spacing_mm``.

    The extent of a grid is ``size * spacing`` (outer voxel faces). The new size is that extent
    divided by the new spacing, rounded to the nearest integer (at least 1), so the new grid's
    extent differs from the old one by at most half a new voxel at the far end. Rounding (not
    ``ceil``) keeps a 1 mm grid resampled to 1 mm unchanged even with float noise in the spacing.
    """
    size = np.asarray(size_xyz, dtype=np.float64)
    extent = size * np.asarray(spacing_mm, dtype=np.float64)
    n = np.maximum(1, np.floor(extent / np.asarray(new_spacing_mm, dtype=np.float64) + 0.5))
    return tuple(int(v) for v in n)  # type: ignore[return-value]


def _reference_image(grid: Grid) -> "object":
    import SimpleITK as sitk

    ref = sitk.Image([int(n) for n in grid.size_xyz], sitk.sitkUInt8)
    ref.SetSpacing([float(s) for s in grid.spacing_mm])
    ref.SetOrigin([float(o) for o in grid.origin_lps_mm])
    ref.SetDirection([float(d) for d in grid.direction.reshape(-1)])
    return ref


def _to_sitk(array: np.ndarray, grid: Grid) -> "object":
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(array))
    img.SetSpacing([float(s) for s in grid.spacing_mm])
    img.SetOrigin([float(o) for o in grid.origin_lps_mm])
    img.SetDirection([float(d) for d in grid.direction.reshape(-1)])
    return img


def resample_array_to_grid(array: np.ndarray, source: GridLike, reference: GridLike, *,
                           interpolation: Interpolation = "linear",
                           default_value: float = 0.0) -> np.ndarray:
    """Resample a bare array that lies on ``source`` onto ``reference``'s grid.

    Parameters
    ----------
    array : np.ndarray, shape (z, y, x)
        Voxel values on ``source``. ``bool`` arrays are treated as uint8 and returned as bool.
    source, reference : Volume or Grid
        Geometry of ``array`` and of the result.
    interpolation : {"linear", "nearest", "bspline"}
        ``nearest`` keeps the dtype; ``linear`` and ``bspline`` return float32 (float64 input
        stays float64): an int16 CT resampled linearly would otherwise be truncated to int16.
    default_value : float
        Value of output voxels that fall outside ``source`` (e.g. -1024 HU for CT, 0 for labels).

    Returns
    -------
    np.ndarray, shape ``reference.shape_zyx``
    """
    src = as_grid(source)
    ref = as_grid(reference)
    if tuple(array.shape) != src.shape_zyx:
        raise ValueError(f"array shape {array.shape} differs from the source grid {src.shape_zyx}")
    if interpolation == "bspline" or max(array.size, int(np.prod(ref.shape_zyx))) <= SLAB_VOXELS:
        return _resample_whole(array, src, ref, interpolation, default_value)
    # Large volumes a z-slab of the result at a time, each from the block of the source that
    # it reads: no whole-volume float32 copy of a thin-slice CT (0.9 GB for 900 x 512 x 512),
    # nor the copy SimpleITK makes of it. Linear and nearest read at most the neighbours within
    # one voxel, so this is exact (B-splines prefilter the whole image: never slabbed).
    out_dtype = (bool if array.dtype == bool else array.dtype if interpolation == "nearest"
                 and array.dtype != np.float16 else np.float64 if array.dtype == np.float64
                 else np.float32)
    out = np.empty(ref.shape_zyx, out_dtype)
    for z, slab, block in slabs_with_source(ref, src, SLAB_VOXELS):
        if block is None:                      # the slab lies wholly outside the source
            out[z] = np.asarray(default_value).astype(out_dtype)
            continue
        out[z] = _resample_whole(array[block], block_grid(src, block), slab, interpolation,
                                 default_value)
    return out


#: Resampling works on z-slabs of about this many voxels when a volume is larger.
SLAB_VOXELS = 16_000_000


def slabs_with_source(target: Grid, source: Grid, slab_voxels: int
                      ) -> Iterator[tuple[slice, Grid, tuple[slice, slice, slice] | None]]:
    """``target``'s z-slabs of about ``slab_voxels`` voxels, each with the index box of
    ``source`` its linear resampling reads (:func:`source_block`; ``None`` outside it).

    Yields
    ------
    z : slice
        The slab's slices along ``target``'s array axis 0.
    slab : Grid
    block : tuple of 3 slices (z, y, x) or None
    """
    nz, ny, nx = target.shape_zyx
    step = max(1, slab_voxels // max(1, ny * nx))
    for z0 in range(0, nz, step):
        z1 = min(nz, z0 + step)
        slab = slab_grid(target, z0, z1)
        yield slice(z0, z1), slab, source_block(source, slab)


def slab_grid(grid: Grid, z0: int, z1: int) -> Grid:
    """The grid of index slices ``z0:z1`` (array axis 0) of ``grid``."""
    return Grid(shape_zyx=(z1 - z0, *grid.shape_zyx[1:]), spacing_mm=grid.spacing_mm,
                origin_lps_mm=grid.index_to_lps(np.array([0.0, 0.0, float(z0)])),
                direction=grid.direction)


def block_grid(grid: Grid, block: tuple[slice, slice, slice]) -> Grid:
    """The grid of the index box ``block`` (z, y, x slices) of ``grid``."""
    start_xyz = np.array([block[2].start, block[1].start, block[0].start], float)
    return Grid(shape_zyx=tuple(b.stop - b.start for b in block), spacing_mm=grid.spacing_mm,
                origin_lps_mm=grid.index_to_lps(start_xyz), direction=grid.direction)


def source_block(source: Grid, target: Grid, *, margin: int = 2
                 ) -> tuple[slice, slice, slice] | None:
    """The index box (z, y, x slices) of ``source`` that linear resampling onto ``target`` reads.

    The box of ``target``'s corners mapped onto ``source`` (the mapping is affine, so every
    voxel lies inside it), plus ``margin`` voxels: ITK treats the last half voxel of an image
    specially, so no sampled point may come near an edge the box adds. ``None`` when ``target``
    lies wholly outside ``source``.
    """
    nz, ny, nx = target.shape_zyx
    corners = np.array([[x, y, z] for x in (0, nx - 1) for y in (0, ny - 1) for z in (0, nz - 1)],
                       float)
    idx = source.lps_to_index(target.index_to_lps(corners))[:, ::-1]      # (z, y, x)
    shape = np.array(source.shape_zyx)
    lo = np.clip(np.floor(idx.min(axis=0)).astype(int) - margin, 0, shape)
    hi = np.clip(np.ceil(idx.max(axis=0)).astype(int) + margin + 1, 0, shape)
    if np.any(hi <= lo):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _resample_whole(array: np.ndarray, src: Grid, ref: Grid, interpolation: Interpolation,
                    default_value: float) -> np.ndarray:
    import SimpleITK as sitk

    interp = _sitk_interpolator(interpolation)
    out_bool = array.dtype == bool
    if out_bool:
        array = array.astype(np.uint8)
    elif interpolation != "nearest" and array.dtype != np.float64:
        array = array.astype(np.float32, copy=False)
    elif interpolation == "nearest" and array.dtype == np.float16:
        array = array.astype(np.float32)
    image = _to_sitk(array, src)
    f = sitk.ResampleImageFilter()
    f.SetReferenceImage(_reference_image(ref))
    f.SetOutputPixelType(image.GetPixelID())
    f.SetInterpolator(interp)
    f.SetDefaultPixelValue(float(default_value))
    f.SetTransform(sitk.Transform())  # identity: both grids live in the same LPS world
    out = sitk.GetArrayFromImage(f.Execute(image))
    if out_bool:
        out = out > (0 if interpolation == "nearest" else 0.5)
    return out


def resample_to_grid(volume: Volume, reference: GridLike, *,
                     interpolation: Interpolation = "linear",
                     default_value: float = 0.0) -> Volume:
    """Resample ``volume`` onto another volume's (or grid's) exact grid.

    Used to map predictions back onto the input CT: the result has ``reference``'s size, spacing,
    origin and direction exactly.

    Parameters
    ----------
    volume : Volume
        Image (``linear``/``bspline``) or label map (``nearest``), array (z, y, x).
    reference : Volume or Grid
        Target geometry.
    interpolation : {"linear", "nearest", "bspline"}
    default_value : float
        Value outside ``volume``'s extent.

    Returns
    -------
    Volume
        On ``reference``'s grid; metadata and warnings of ``volume`` are kept.
    """
    ref = as_grid(reference)
    out = resample_array_to_grid(volume.array, volume, ref, interpolation=interpolation,
                                 default_value=default_value)
    return ref.volume(out, metadata=volume.metadata, warnings=list(volume.warnings))


def resample_to_spacing(volume: Volume, spacing_mm: float | Sequence[float], *,
                        interpolation: Interpolation = "linear",
                        default_value: float = 0.0) -> Volume:
    """Resample ``volume`` to a new voxel size over the same physical extent.

    Origin (centre of voxel 0) and direction are kept; the size along each axis is
    ``round(size * spacing / new_spacing)`` (see :func:`new_size_for_spacing`).

    Parameters
    ----------
    volume : Volume
        Array (z, y, x).
    spacing_mm : float or sequence of 3 floats
        New voxel size, millimetres, in (x, y, z) order like :attr:`Volume.spacing_mm`; a single
        number means isotropic (the study: 1.0).
    interpolation : {"linear", "nearest", "bspline"}
        ``linear`` for CT (float32 result), ``nearest`` for label maps (dtype kept).
    default_value : float
        Value of voxels beyond the input's extent (only the last half voxel per axis can be).

    Returns
    -------
    Volume
    """
    new_spacing = _as_spacing_xyz(spacing_mm)
    size = new_size_for_spacing(volume.size_xyz, volume.spacing_mm, new_spacing)
    ref = Grid(shape_zyx=(size[2], size[1], size[0]), spacing_mm=new_spacing,
               origin_lps_mm=volume.origin_lps_mm, direction=volume.direction)
    return resample_to_grid(volume, ref, interpolation=interpolation, default_value=default_value)


def resample_probabilities_to_grid(probs: np.ndarray, source_geometry: GridLike,
                                   reference: GridLike, *,
                                   fill: Sequence[float] | None = None,
                                   renormalise: bool = True) -> np.ndarray:
    """Resample per-class probabilities linearly onto ``reference`` and renormalise.

    Parameters
    ----------
    probs : np.ndarray, shape (C, z, y, x)
        Class probabilities (softmax output) on ``source_geometry``; channel 0 is background.
    source_geometry, reference : Volume or Grid
        Geometry of ``probs`` (spatial part) and of the result.
    fill : sequence of C floats, optional
        Probabilities assigned outside the source extent; default ``[1, 0, ..., 0]``
        (certain background).
    renormalise : bool
        Divide by the per-voxel sum so the classes sum to 1 again (linear interpolation of a
        distribution is a distribution up to float error; this also repairs clipped inputs).

    Returns
    -------
    np.ndarray, float32, shape (C, *reference.shape_zyx)
        The argmax over axis 0 gives labels on the reference grid.
    """
    if probs.ndim != 4:
        raise ValueError(f"probabilities must be (C, z, y, x), got shape {probs.shape}")
    n_classes = probs.shape[0]
    fill_values = [1.0] + [0.0] * (n_classes - 1) if fill is None else [float(v) for v in fill]
    if len(fill_values) != n_classes:
        raise ValueError(f"fill has {len(fill_values)} values for {n_classes} classes")
    ref = as_grid(reference)
    out = np.empty((n_classes, *ref.shape_zyx), dtype=np.float32)
    for c in range(n_classes):
        out[c] = resample_array_to_grid(probs[c].astype(np.float32, copy=False), source_geometry,
                                        ref, interpolation="linear",
                                        default_value=fill_values[c])
    if renormalise:
        np.clip(out, 0.0, None, out=out)
        total = out.sum(axis=0)
        np.divide(out, total, out=out, where=total > 0)
    return out
