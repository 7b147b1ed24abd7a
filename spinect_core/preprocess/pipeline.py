"""The model's input preparation and its exact inverse.

:func:`prepare_for_model` does, in this order:

1. resample the CT to the model's spacing (linear; origin and direction kept, so the model grid is
   parallel to the input grid, oblique or not; voxels beyond the input's extent get ``outside_hu``);
2. crop to the body (:mod:`spinect_core.preprocess.crop`) on the resampled grid;
3. normalise intensities with the model card's :class:`CTNormalisation`.

:func:`restore_to_input` maps the model's output (labels or per-class probabilities on the model
grid) back onto the input CT's grid exactly (same size, origin, spacing, direction): it is
uncrop-then-resample, computed without allocating the full resampled grid (see there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from spinect_core.preprocess.crop import (
    BodyCropOptions, CropBox, body_box_and_mask, crop_array, uncrop,
)
from spinect_core.preprocess.normalise import CTNormalisation
from spinect_core.preprocess.resample import (
    Grid, GridLike, Interpolation, as_grid, block_grid, resample_array_to_grid,
    resample_probabilities_to_grid, resample_to_spacing, slabs_with_source,
)
from spinect_core.progress import ProgressCallback, report
from spinect_core.volume import Volume

__all__ = ["Prepared", "prepare_for_model", "prepare_labels", "restore_probabilities_in_slabs",
           "restore_to_input"]


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A CT ready for the network plus what is needed to map results back.

    Attributes
    ----------
    image : np.ndarray, float32, shape model_grid.shape_zyx
        Normalised intensities, (z, y, x), on the model grid.
    model_grid : Grid
        Geometry of ``image`` (the cropped, resampled grid), LPS mm.
    resampled_grid : Grid
        The whole input resampled to the model spacing, before the crop.
    crop_box : CropBox or None
        Index ranges of ``model_grid`` inside ``resampled_grid``; ``None`` when not cropped.
    input_grid : Grid
        Geometry of the input CT (where :func:`restore_to_input` maps results).
    spacing_mm : np.ndarray, shape (3,)
        Model spacing along x, y, z, millimetres.
    normalisation : CTNormalisation
    body_mask : np.ndarray of bool or None
        The body (:func:`~spinect_core.preprocess.crop.body_mask`) on ``model_grid``, (z, y, x),
        when the CT was cropped to it: the predictor does not run windows wholly outside it.
    """

    image: np.ndarray
    model_grid: Grid
    resampled_grid: Grid
    crop_box: CropBox | None
    input_grid: Grid
    spacing_mm: np.ndarray
    normalisation: CTNormalisation
    body_mask: np.ndarray | None = None

    @property
    def volume(self) -> Volume:
        """``image`` as a :class:`Volume` on the model grid (shares memory)."""
        return self.model_grid.volume(self.image)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of the geometry chain (no voxels)."""
        return {
            "input_grid": self.input_grid.geometry_dict(),
            "resampled_grid": self.resampled_grid.geometry_dict(),
            "model_grid": self.model_grid.geometry_dict(),
            "crop_box": None if self.crop_box is None else self.crop_box.to_dict(),
            "spacing_mm": [float(s) for s in self.spacing_mm],
            "normalisation": self.normalisation.to_dict(),
        }


def prepare_for_model(volume: Volume, *, spacing_mm: float | Sequence[float],
                      normalisation: CTNormalisation, crop: bool = True,
                      crop_options: BodyCropOptions | None = None,
                      interpolation: Interpolation = "linear",
                      outside_hu: float = -1024.0,
                      progress: ProgressCallback | None = None) -> Prepared:
    """Resample, crop and normalise a CT for the segmentation model.

    Parameters
    ----------
    volume : Volume
        CT in HU, array (z, y, x), any spacing and direction.
    spacing_mm : float or sequence of 3 floats
        Model spacing (model card), (x, y, z) order; the study uses 1 mm isotropic.
    normalisation : CTNormalisation
        From the model card.
    crop : bool
        Crop to the body (recommended: less memory and time, same result inside the body).
    crop_options : BodyCropOptions, optional
    interpolation : {"linear", "bspline"}
        CT interpolation (``bspline`` can overshoot at bone/air edges).
    outside_hu : float
        Value of resampled voxels that fall beyond the input's extent (air).
    progress : callable, optional
        ``progress(fraction, message)``; returning False cancels.

    Returns
    -------
    Prepared
    """
    if interpolation == "nearest":
        raise ValueError("use linear or bspline interpolation for CT intensities")
    report(progress, 0.0, "resampling")
    input_grid = as_grid(volume)
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    spacing = np.full(3, float(spacing)) if spacing.ndim == 0 else spacing.reshape(3)
    if np.allclose(volume.spacing_mm, spacing, rtol=0, atol=1e-6):
        # Already on the model spacing: resampling would only add float noise.
        resampled = volume.with_array(volume.array.astype(np.float32, copy=False))
    else:
        resampled = resample_to_spacing(volume, spacing, interpolation=interpolation,
                                        default_value=outside_hu)
    resampled_grid = as_grid(resampled)
    report(progress, 0.6, "cropping to the body")
    box: CropBox | None = None
    body: np.ndarray | None = None
    array = resampled.array
    model_grid = resampled_grid
    if crop:
        box, body = body_box_and_mask(resampled, crop_options)
        array = crop_array(array, box)
        body = crop_array(body, box)
        model_grid = box.crop_grid(resampled_grid)
    report(progress, 0.8, "normalising intensities")
    image = normalisation.apply(array)
    report(progress, 1.0, "prepared")
    return Prepared(image=image, model_grid=model_grid, resampled_grid=resampled_grid,
                    crop_box=box, input_grid=input_grid, spacing_mm=spacing,
                    normalisation=normalisation, body_mask=body)


def prepare_labels(labels: Volume, prepared: Prepared) -> np.ndarray:
    """A label map on the input grid brought onto the model grid (nearest neighbour).

    Equivalent to resample-to-spacing then crop, as done for the CT (used for training targets
    and tests).

    Returns
    -------
    np.ndarray, shape prepared.model_grid.shape_zyx, dtype of ``labels.array``
    """
    return resample_array_to_grid(labels.array, labels, prepared.model_grid,
                                  interpolation="nearest", default_value=0)


def _padded_source(array: np.ndarray, prepared: Prepared, fill: Sequence[float] | float
                   ) -> tuple[np.ndarray, Grid]:
    """The model-grid result padded by one voxel of ``fill`` inside the resampled grid.

    Linear and nearest interpolation read at most the neighbours within one voxel, so resampling
    this padded crop onto the input grid gives exactly what uncropping into the whole resampled
    grid and resampling that would, without allocating the whole resampled grid (C x full volume
    of float32 probabilities can be hundreds of MB). Where the box touches the grid's edge there
    is no padding, so ITK's half-voxel edge handling is also the same.
    """
    box = prepared.crop_box
    if box is None:
        return array, prepared.model_grid
    start = tuple(max(0, a - 1) for a in box.start_zyx)
    stop = tuple(min(n, b + 1) for b, n in zip(box.stop_zyx, box.full_shape_zyx))
    padded_box = CropBox(start_zyx=start, stop_zyx=stop, full_shape_zyx=box.full_shape_zyx)
    inner = CropBox(start_zyx=[a - p for a, p in zip(box.start_zyx, start)],
                    stop_zyx=[b - p for b, p in zip(box.stop_zyx, start)],
                    full_shape_zyx=padded_box.shape_zyx)
    return uncrop(array, inner, fill=fill), padded_box.crop_grid(prepared.resampled_grid)


def restore_to_input(labels_or_probs: np.ndarray, prepared: Prepared,
                     input_volume: GridLike | None = None, *,
                     interpolation: Interpolation | None = None) -> np.ndarray:
    """Map a model-grid result back onto the input CT's grid (inverse of :func:`prepare_for_model`).

    Mathematically: uncrop (background outside the box), then resample onto the input grid.

    Parameters
    ----------
    labels_or_probs : np.ndarray
        Either labels (z, y, x) of integer/bool dtype (nearest neighbour), a float map (z, y, x)
        (linear, 0 outside), or per-class probabilities (C, z, y, x), channel 0 background
        (linear per class, certain background outside the crop, renormalised). Spatial shape
        ``prepared.model_grid.shape_zyx``.
    prepared : Prepared
    input_volume : Volume or Grid, optional
        The input CT (checked against ``prepared.input_grid``); default ``prepared.input_grid``.
    interpolation : {"nearest", "linear"}, optional
        Override for 3D arrays.

    Returns
    -------
    np.ndarray
        Shape ``input.shape_zyx`` (labels, dtype kept; float maps float32) or
        ``(C, *input.shape_zyx)`` float32 probabilities (argmax over axis 0 gives labels).
    """
    target = prepared.input_grid if input_volume is None else as_grid(input_volume)
    if not target.same_as(prepared.input_grid):
        raise ValueError("input_volume is not on the grid this result was prepared from")
    a = np.asarray(labels_or_probs)
    if tuple(a.shape[-3:]) != prepared.model_grid.shape_zyx or a.ndim not in (3, 4):
        raise ValueError(f"result shape {a.shape} does not match the model grid "
                         f"{prepared.model_grid.shape_zyx}")
    if a.ndim == 4:
        fill = [1.0] + [0.0] * (a.shape[0] - 1)
        src, grid = _padded_source(a.astype(np.float32, copy=False), prepared, fill)
        return resample_probabilities_to_grid(src, grid, target, fill=fill)
    if interpolation is None:
        interpolation = "linear" if np.issubdtype(a.dtype, np.floating) else "nearest"
    src, grid = _padded_source(a, prepared, 0)
    return resample_array_to_grid(src, grid, target, interpolation=interpolation, default_value=0)


def restore_probabilities_in_slabs(probabilities: np.ndarray, prepared: Prepared,
                                   input_volume: GridLike | None = None, *,
                                   slab_voxels: int = 4_000_000
                                   ) -> Iterator[tuple[slice, np.ndarray]]:
    """Model-grid class probabilities mapped onto the input grid, a z-slab of it at a time.

    The same values as :func:`restore_to_input` gives for ``(C, z, y, x)`` probabilities, before
    renormalisation, without ever holding a whole input-size float map: a thin-slice CT of
    900 x 512 x 512 voxels would need 0.9 GB per class in float32. For each slab of the input
    grid only the block of model-grid voxels that its linear interpolation reads
    (:func:`~spinect_core.preprocess.resample.source_block`) is converted to float32, with the
    one-voxel border of certain background that :func:`_padded_source` adds around the crop.

    Parameters
    ----------
    probabilities : np.ndarray, shape (C, z, y, x), any float dtype
        On ``prepared.model_grid``; channel 0 is background.
    prepared : Prepared
    input_volume : Volume or Grid, optional
        The input CT (checked against ``prepared.input_grid``).
    slab_voxels : int
        About how many input voxels each slab holds.

    Yields
    ------
    z : slice
        The slab's slices along the input grid's axis 0.
    probabilities : np.ndarray, float32, shape (C, slab depth, y, x)
        Linearly interpolated, not renormalised (certain background outside the model grid).
    """
    target = prepared.input_grid if input_volume is None else as_grid(input_volume)
    if not target.same_as(prepared.input_grid):
        raise ValueError("input_volume is not on the grid this result was prepared from")
    a = np.asarray(probabilities)
    if a.ndim != 4 or tuple(a.shape[1:]) != prepared.model_grid.shape_zyx:
        raise ValueError(f"probabilities of shape {a.shape} do not match the model grid "
                         f"{prepared.model_grid.shape_zyx}")
    n_classes = a.shape[0]
    fill = np.array([1.0] + [0.0] * (n_classes - 1), np.float32)
    # The padded source of _padded_source, described without allocating it: its grid, and where
    # the model-grid array sits inside it (``offset``).
    box = prepared.crop_box
    if box is None:
        source, offset = prepared.model_grid, np.zeros(3, int)
    else:
        start = np.array([max(0, s - 1) for s in box.start_zyx])
        stop = np.array([min(n, s + 1) for s, n in zip(box.stop_zyx, box.full_shape_zyx)])
        source = CropBox(start_zyx=start, stop_zyx=stop,
                         full_shape_zyx=box.full_shape_zyx).crop_grid(prepared.resampled_grid)
        offset = np.asarray(box.start_zyx) - start
    for z, slab, box in slabs_with_source(target, source, slab_voxels):
        if box is None:                            # the slab lies outside the model grid
            out = np.broadcast_to(fill[:, None, None, None], (n_classes, *slab.shape_zyx))
            yield z, np.array(out, np.float32)
            continue
        lo = np.array([b.start for b in box])
        hi = np.array([b.stop for b in box])
        block = np.empty((n_classes, *(hi - lo)), np.float32)
        block[:] = fill[:, None, None, None]
        # The block's part that holds model-grid voxels (the rest is the padded border).
        m_lo = np.maximum(lo - offset, 0)
        m_hi = np.minimum(hi - offset, a.shape[1:])
        if np.all(m_hi > m_lo):
            dst = tuple(slice(int(l_ + offset[k] - lo[k]), int(h_ + offset[k] - lo[k]))
                        for k, (l_, h_) in enumerate(zip(m_lo, m_hi)))
            block[(slice(None), *dst)] = a[(slice(None), *(slice(int(l_), int(h_))
                                                           for l_, h_ in zip(m_lo, m_hi)))]
        grid = block_grid(source, box)
        out = np.empty((n_classes, *slab.shape_zyx), np.float32)
        for k in range(n_classes):
            out[k] = resample_array_to_grid(block[k], grid, slab, interpolation="linear",
                                            default_value=float(fill[k]))
        yield z, out
