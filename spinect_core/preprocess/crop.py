"""Body crop: the region of the CT the segmentation model looks at, and how to undo it.

The model uses the **body crop**: voxels above ``threshold_hu`` (-500 HU separates tissue from air
and lung), the largest connected component(s) (drops the table, blankets and noise that are not
connected to the patient), their bounding box grown by a margin in millimetres, optionally limited
to a maximum extent per axis (centred on the body) so a whole-body scan does not blow up memory.
A tighter region of interest around L5/S1 needs the anatomy module (levels from labels) and comes
with it later; nothing here depends on vertebral levels.

Crops are index ranges on the array they were computed on, so they are exact and reversible:
:func:`uncrop` puts a result (labels or per-class probabilities) back into the full array.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from spinect_core.preprocess.resample import Grid, GridLike, as_grid
from spinect_core.volume import Volume

__all__ = ["BodyCropOptions", "CropBox", "body_mask", "body_bounding_box", "body_box_and_mask",
           "crop_to_body", "crop_array", "crop_volume", "uncrop"]


@dataclass(frozen=True, kw_only=True)
class BodyCropOptions:
    """How to find the body.

    Attributes
    ----------
    threshold_hu : float
        Voxels strictly above this are tissue (default -500 HU: air and lung are below).
    margin_mm : float
        Grown on every side of the body's bounding box, millimetres (clipped at the array edge).
    max_components : int
        Keep at most this many of the largest connected components (6-connectivity).
    min_component_fraction : float
        ... and only those with at least this fraction of the largest one's voxels.
    max_extent_mm : tuple of 3 floats or None
        Largest box size along the x, y, z index axes, millimetres; a longer box is shrunk
        symmetrically about its centre. ``None``: no limit.
    """

    threshold_hu: float = -500.0
    margin_mm: float = 10.0
    max_components: int = 1
    min_component_fraction: float = 0.25
    max_extent_mm: tuple[float, float, float] | None = None


@dataclass(frozen=True, kw_only=True)
class CropBox:
    """Index ranges of a crop on the array it was computed on.

    Attributes
    ----------
    start_zyx, stop_zyx : tuple of int
        Half-open index ranges ``[start, stop)`` along z, y, x.
    full_shape_zyx : tuple of int
        Shape of the uncropped array.
    """

    start_zyx: tuple[int, int, int]
    stop_zyx: tuple[int, int, int]
    full_shape_zyx: tuple[int, int, int]

    def __post_init__(self) -> None:
        for name in ("start_zyx", "stop_zyx", "full_shape_zyx"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        for a, b, n in zip(self.start_zyx, self.stop_zyx, self.full_shape_zyx):
            if not (0 <= a < b <= n):
                raise ValueError(f"invalid crop box {self.start_zyx}-{self.stop_zyx} "
                                 f"in {self.full_shape_zyx}")

    @classmethod
    def full(cls, shape_zyx: Sequence[int]) -> "CropBox":
        """A box covering the whole array (no crop)."""
        return cls(start_zyx=(0, 0, 0), stop_zyx=tuple(shape_zyx), full_shape_zyx=tuple(shape_zyx))

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """``(z, y, x)`` slices: ``array[box.slices]`` is the crop."""
        return tuple(slice(a, b) for a, b in zip(self.start_zyx, self.stop_zyx))  # type: ignore[return-value]

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return tuple(b - a for a, b in zip(self.start_zyx, self.stop_zyx))  # type: ignore[return-value]

    @property
    def is_full(self) -> bool:
        return self.start_zyx == (0, 0, 0) and self.stop_zyx == self.full_shape_zyx

    def crop_grid(self, grid: GridLike) -> Grid:
        """Geometry of the cropped array: same spacing and direction, origin at the box start."""
        g = as_grid(grid)
        if g.shape_zyx != self.full_shape_zyx:
            raise ValueError(f"grid {g.shape_zyx} is not the one the box was made on "
                             f"{self.full_shape_zyx}")
        start_xyz = np.array(self.start_zyx[::-1], dtype=np.float64)
        return Grid(shape_zyx=self.shape_zyx, spacing_mm=g.spacing_mm,
                    origin_lps_mm=g.index_to_lps(start_xyz), direction=g.direction)

    def to_dict(self) -> dict[str, Any]:
        return {"start_zyx": list(self.start_zyx), "stop_zyx": list(self.stop_zyx),
                "full_shape_zyx": list(self.full_shape_zyx)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CropBox":
        return cls(start_zyx=data["start_zyx"], stop_zyx=data["stop_zyx"],
                   full_shape_zyx=data["full_shape_zyx"])


def body_mask(array: np.ndarray, options: BodyCropOptions | None = None) -> np.ndarray:
    """Boolean mask (z, y, x) of the body: thresholded, largest connected component(s)."""
    from scipy import ndimage

    opts = options or BodyCropOptions()
    mask = array > opts.threshold_hu
    if not mask.any():
        return mask
    labelled, n = ndimage.label(mask)  # default structure: 6-connectivity
    if n <= 1:
        return mask
    sizes = np.bincount(labelled.ravel())[1:]
    order = np.argsort(sizes)[::-1][: max(1, opts.max_components)]
    keep = [i + 1 for i in order if sizes[i] >= opts.min_component_fraction * sizes[order[0]]]
    return np.isin(labelled, keep)


def body_bounding_box(volume: Volume, options: BodyCropOptions | None = None) -> CropBox:
    """The body crop box of ``volume`` (whole array when no voxel is above the threshold)."""
    return body_box_and_mask(volume, options)[0]


def body_box_and_mask(volume: Volume, options: BodyCropOptions | None = None
                      ) -> tuple[CropBox, np.ndarray]:
    """The body crop box of ``volume`` and the body mask it was found from.

    Returns
    -------
    box : CropBox
        Whole array when no voxel is above the threshold.
    mask : np.ndarray of bool, shape volume.array.shape (z, y, x)
        :func:`body_mask` of the whole array (crop it with ``box`` to match a cropped image).
    """
    opts = options or BodyCropOptions()
    shape = volume.array.shape
    mask = body_mask(volume.array, opts)
    if not mask.any():
        return CropBox.full(shape), mask
    spacing_zyx = volume.spacing_mm[::-1]
    margin = np.ceil(opts.margin_mm / spacing_zyx).astype(int)
    start, stop = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        start.append(max(0, int(idx[0]) - margin[axis]))
        stop.append(min(shape[axis], int(idx[-1]) + 1 + margin[axis]))
    if opts.max_extent_mm is not None:
        max_vox = np.maximum(1, np.floor(np.asarray(opts.max_extent_mm[::-1], dtype=float)
                                          / spacing_zyx)).astype(int)
        for axis in range(3):
            if stop[axis] - start[axis] > max_vox[axis]:
                centre = (start[axis] + stop[axis]) // 2
                start[axis] = max(0, centre - max_vox[axis] // 2)
                stop[axis] = min(shape[axis], start[axis] + max_vox[axis])
    return CropBox(start_zyx=start, stop_zyx=stop, full_shape_zyx=shape), mask


def crop_array(array: np.ndarray, box: CropBox) -> np.ndarray:
    """Crop the last three axes of ``array`` ((z, y, x) or (C, z, y, x)); returns a copy."""
    if tuple(array.shape[-3:]) != box.full_shape_zyx:
        raise ValueError(f"array shape {array.shape} does not match the box's {box.full_shape_zyx}")
    return np.ascontiguousarray(array[(Ellipsis, *box.slices)])


def crop_volume(volume: Volume, box: CropBox) -> Volume:
    """Crop a volume; the origin moves to the box start so every voxel keeps its LPS position."""
    grid = box.crop_grid(volume)
    return grid.volume(crop_array(volume.array, box), metadata=volume.metadata,
                       warnings=list(volume.warnings))


def crop_to_body(volume: Volume, *, options: BodyCropOptions | None = None
                 ) -> tuple[Volume, CropBox]:
    """Crop a CT to the body (see module docstring).

    Parameters
    ----------
    volume : Volume
        CT in HU, array (z, y, x).
    options : BodyCropOptions, optional

    Returns
    -------
    cropped : Volume
        The crop with its geometry (origin at the box start).
    box : CropBox
        Index ranges on ``volume.array``; :func:`uncrop` undoes the crop.
    """
    box = body_bounding_box(volume, options)
    return crop_volume(volume, box), box


def uncrop(array_or_probs: np.ndarray, box: CropBox,
           full_shape: Sequence[int] | None = None,
           fill: float | Sequence[float] = 0) -> np.ndarray:
    """Put a cropped result back into an array of the full shape.

    Parameters
    ----------
    array_or_probs : np.ndarray, shape box.shape_zyx or (C, *box.shape_zyx)
        Labels (z, y, x) or per-class probabilities (C, z, y, x).
    box : CropBox
    full_shape : sequence of 3 int, optional
        Spatial shape (z, y, x) of the result; default ``box.full_shape_zyx`` (checked if given).
    fill : float or sequence of C floats
        Value outside the box: a label id (0 = background) or, for probabilities, one value per
        class (e.g. ``[1, 0, 0]`` = certain background).

    Returns
    -------
    np.ndarray, shape full_shape or (C, *full_shape), same dtype as the input.
    """
    shape = tuple(box.full_shape_zyx if full_shape is None else full_shape)
    if shape != box.full_shape_zyx:
        raise ValueError(f"full_shape {shape} differs from the box's {box.full_shape_zyx}")
    if tuple(array_or_probs.shape[-3:]) != box.shape_zyx:
        raise ValueError(f"array shape {array_or_probs.shape} does not match the box {box.shape_zyx}")
    lead = array_or_probs.shape[:-3]
    out = np.empty((*lead, *shape), dtype=array_or_probs.dtype)
    fill_arr = np.asarray(fill, dtype=array_or_probs.dtype)
    if fill_arr.ndim == 0:
        out[...] = fill_arr
    else:
        if array_or_probs.ndim != 4 or fill_arr.shape != (lead[0],):
            raise ValueError(f"fill {fill!r} does not match {lead[0] if lead else 0} channels")
        out[...] = fill_arr.reshape(-1, 1, 1, 1)
    out[(Ellipsis, *box.slices)] = array_or_probs
    return out
