"""Pure tiling helpers for sliding-window inference (numpy only, no torch).

The window layout is the one of the SPINECT study's Algorithm 1 and of MONAI's
``dense_patch_slices``: along each axis windows start at ``0, stride, 2*stride, ...`` and the last
window is moved back so that it ends exactly at the end of the volume. Every voxel is therefore
covered by at least one window, and no window reaches past the volume. Volumes smaller than the
patch along an axis are padded first (:func:`padding_for`), so a single window covers them.

All shapes and positions are given in array order ``(z, y, x)``.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

__all__ = [
    "window_starts",
    "tile_starts",
    "num_windows",
    "padding_for",
    "gaussian_importance_map",
]


def _as_triplet(values: Sequence[int], name: str) -> tuple[int, int, int]:
    out = tuple(int(v) for v in values)
    if len(out) != 3:
        raise ValueError(f"{name} must have 3 values (z, y, x), got {tuple(values)}")
    return out


def window_starts(size: int, patch: int, stride: int) -> list[int]:
    """Start indices of the windows along one axis.

    Parameters
    ----------
    size : int
        Length of the (already padded) axis; must be ``>= patch``.
    patch : int
        Window length, ``>= 1``.
    stride : int
        Step between consecutive window starts, ``1 <= stride <= patch`` (a larger stride would
        leave gaps between windows).

    Returns
    -------
    list of int
        Strictly increasing starts ``0, stride, 2*stride, ...``; the last one is ``size - patch``,
        so the last window ends exactly at ``size``. Identical to MONAI's ``dense_patch_slices``
        for the same interval.

    Raises
    ------
    ValueError
        If ``stride > patch``, ``stride < 1``, ``patch < 1`` or ``size < patch``.
    """
    size, patch, stride = int(size), int(patch), int(stride)
    if patch < 1 or stride < 1:
        raise ValueError(f"patch and stride must be >= 1, got patch={patch}, stride={stride}")
    if stride > patch:
        raise ValueError(
            f"stride {stride} is larger than the patch {patch}: voxels between windows would "
            "never be predicted; use a stride <= the patch size"
        )
    if size < patch:
        raise ValueError(f"axis of length {size} is shorter than the patch {patch}: pad it first")
    starts = list(range(0, size - patch, stride))  # windows that end strictly before the end
    starts.append(size - patch)  # the last window ends exactly at the end
    return starts


def tile_starts(
    shape: Sequence[int], patch_size: Sequence[int], stride: Sequence[int]
) -> list[tuple[int, int, int]]:
    """Start corners of all windows over a 3D volume, in C order (x fastest).

    Parameters
    ----------
    shape : sequence of 3 int
        Volume shape ``(z, y, x)``, each ``>= patch_size`` (pad smaller volumes first).
    patch_size, stride : sequence of 3 int
        Window size and step ``(z, y, x)``.

    Returns
    -------
    list of (int, int, int)
        ``(z0, y0, x0)`` of every window; window ``k`` covers
        ``[z0:z0+pz, y0:y0+py, x0:x0+px]``.
    """
    shape = _as_triplet(shape, "shape")
    patch_size = _as_triplet(patch_size, "patch_size")
    stride = _as_triplet(stride, "stride")
    per_axis = [window_starts(n, p, s) for n, p, s in zip(shape, patch_size, stride)]
    return [tuple(c) for c in itertools.product(*per_axis)]  # type: ignore[misc]


def num_windows(shape: Sequence[int], patch_size: Sequence[int], stride: Sequence[int]) -> int:
    """Number of windows :func:`tile_starts` returns for a volume of ``shape`` after padding."""
    padded = [max(int(n), int(p)) for n, p in zip(shape, patch_size)]
    n = 1
    for size, p, s in zip(padded, patch_size, stride):
        n *= len(window_starts(size, p, s))
    return n


def padding_for(shape: Sequence[int], patch_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Padding that makes every axis at least one patch long, split evenly before/after.

    Parameters
    ----------
    shape, patch_size : sequence of 3 int
        ``(z, y, x)``.

    Returns
    -------
    tuple of 3 (before, after) pairs
        In the format of ``numpy.pad``. The padding is centred (``before = diff // 2``), as in
        MONAI and nnU-Net, so that a small object stays in the well-predicted middle of the window.
    """
    shape = _as_triplet(shape, "shape")
    patch_size = _as_triplet(patch_size, "patch_size")
    pads = []
    for n, p in zip(shape, patch_size):
        diff = max(p - n, 0)
        pads.append((diff // 2, diff - diff // 2))
    return tuple(pads)


def gaussian_importance_map(
    patch_size: Sequence[int], sigma_scale: float = 0.125, *, floor: float = 1e-3
) -> np.ndarray:
    """Gaussian weight of each voxel of a window (nnU-Net / MONAI "gaussian" blending).

    Predictions near a window's border see less context and are less reliable; weighting them down
    removes seams between windows.

    Parameters
    ----------
    patch_size : sequence of 3 int
        Window size ``(z, y, x)``.
    sigma_scale : float
        Standard deviation as a fraction of the window length along each axis (0.125 = patch / 8,
        nnU-Net's and MONAI's default).
    floor : float
        Weights below ``max(min(weights), floor)`` are raised to it, exactly as MONAI's
        ``compute_importance_map``: window corners (products of three ~4-sigma tails, ~1e-11)
        would otherwise contribute nothing, and at volume corners covered by a single window the
        blended result would be a ratio of tiny numbers.

    Returns
    -------
    np.ndarray, shape (pz, py, px), float32
        Separable Gaussian centred on the window centre ``(p - 1) / 2``; not normalised (only
        ratios of weights matter, as the blended probabilities are divided by the summed weights).
    """
    patch_size = _as_triplet(patch_size, "patch_size")
    if sigma_scale <= 0:
        raise ValueError(f"sigma_scale must be positive, got {sigma_scale}")
    weights: np.ndarray | None = None
    for p in patch_size:
        # float32 arithmetic in the same order as MONAI so the maps agree to the last bit or two
        x = np.arange(p, dtype=np.float32) - np.float32((p - 1) / 2.0)
        sigma = np.float32(p * sigma_scale)
        g = np.exp(x**2 / np.float32(-2.0 * sigma**2)).astype(np.float32)
        weights = g if weights is None else weights[..., None] * g
    assert weights is not None
    lowest = max(float(weights.min()), float(floor))
    return np.maximum(weights, np.float32(lowest)).astype(np.float32, copy=False)
