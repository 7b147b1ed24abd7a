"""Per-patch data augmentation (numpy / scipy, no torch): spatial, flips, intensity, noise.

Everything takes an explicit ``numpy.random.Generator`` so a training run is reproducible and
resumable (the generator's state goes into the checkpoint).

Order per patch, as in nnU-Net: spatial transform while the patch is cut out of the case
(:func:`extract_patch`: random isotropic scale and optional elastic deformation, so no empty
border appears), then mirroring (:func:`flip_patch`), intensity scale/shift, Gaussian noise
(:func:`augment_intensity`). Intensities are the *normalised* ones (zero mean, unit variance on the
training foreground), so noise and shift are in units of the foreground's standard deviation.

Left/right mirroring of a patient swaps sides: a class named ``nerve_left`` becomes
``nerve_right``. :func:`side_swap_lookup` builds the id look-up that does it from a label table.

Label values that are not classes, such as ``UNLABELLED`` (255, :mod:`.loss`), pass through
unchanged: spatial transforms resample labels by nearest neighbour and the side swap maps every
id the table does not name to itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from spinect_core.labels import LabelTable

__all__ = ["AugmentOptions", "side_swap_lookup", "lr_axis_of", "extract_patch", "flip_patch",
           "augment_intensity", "augment_patch"]

_SIDE = re.compile(r"(?<![a-z0-9])(left|right)(?![a-z0-9])", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class AugmentOptions:
    """Which augmentations to apply and how strongly (probabilities are per patch).

    Defaults are the study's: Gaussian noise and left/right flips only.

    Attributes
    ----------
    noise_p : float
        Probability of adding Gaussian noise.
    noise_std : (float, float)
        Its standard deviation is drawn uniformly from this range (normalised units).
    flip_p : float
        Probability of mirroring along each axis in ``flip_axes``.
    flip_axes : {"lr", "all"}
        ``"lr"``: only the patient's left/right axis (anatomically plausible); ``"all"``: each of
        the three axes independently (nnU-Net).
    intensity_p : float
        Probability of a random intensity scale and shift ``x * s + t``.
    intensity_scale : (float, float)
        Range of ``s``.
    intensity_shift : (float, float)
        Range of ``t`` (normalised units).
    scale_p : float
        Probability of a random isotropic zoom.
    scale_range : (float, float)
        Zoom factor range (> 1 enlarges the anatomy).
    elastic_p : float
        Probability of an elastic deformation.
    elastic_alpha_vox : float
        Peak displacement of the elastic field, voxels.
    elastic_sigma_vox : float
        Smoothness (Gaussian sigma) of the elastic field, voxels.
    """

    noise_p: float = 0.5
    noise_std: tuple[float, float] = (0.0, 0.1)
    flip_p: float = 0.5
    flip_axes: Literal["lr", "all"] = "lr"
    intensity_p: float = 0.0
    intensity_scale: tuple[float, float] = (0.9, 1.1)
    intensity_shift: tuple[float, float] = (-0.1, 0.1)
    scale_p: float = 0.0
    scale_range: tuple[float, float] = (0.85, 1.25)
    elastic_p: float = 0.0
    elastic_alpha_vox: float = 3.0
    elastic_sigma_vox: float = 6.0

    def __post_init__(self) -> None:
        for name in ("noise_p", "flip_p", "intensity_p", "scale_p", "elastic_p"):
            v = float(getattr(self, name))
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {v}")
        for name in ("noise_std", "intensity_scale", "intensity_shift", "scale_range"):
            lo, hi = (float(v) for v in getattr(self, name))
            if lo > hi:
                raise ValueError(f"{name} must be (low, high), got {(lo, hi)}")
            object.__setattr__(self, name, (lo, hi))
        if self.flip_axes not in ("lr", "all"):
            raise ValueError(f"flip_axes must be 'lr' or 'all', got {self.flip_axes!r}")
        if self.scale_range[0] <= 0:
            raise ValueError("scale_range must be positive")

    @classmethod
    def none(cls) -> "AugmentOptions":
        """No augmentation at all."""
        return cls(noise_p=0.0, flip_p=0.0)

    @classmethod
    def strong(cls) -> "AugmentOptions":
        """The better recipe: noise, flips, intensity scale/shift and random zoom."""
        return cls(intensity_p=0.5, scale_p=0.3)

    @property
    def spatial(self) -> bool:
        return self.scale_p > 0 or self.elastic_p > 0


def side_swap_lookup(table: LabelTable) -> np.ndarray:
    """Id look-up that swaps left and right classes, for mirroring along the L/R axis.

    A class name containing the word ``left`` (or ``right``), delimited by ``_``, ``-``, a space
    or the ends (``nerve_left``, ``left-psoas``, ``L5 root left``), maps to the class with the
    other side's name, when the table has it. Other ids map to themselves.

    Returns
    -------
    np.ndarray, uint8, shape (max id + 1,)
    """
    lut = np.arange(max(table.ids) + 1, dtype=np.uint8)
    by_name = {n.lower(): i for i, n in table.names.items()}
    for i, name in table.names.items():
        swapped = _SIDE.sub(lambda m: "right" if m.group(1).lower() == "left" else "left",
                            name.lower())
        if swapped != name.lower() and swapped in by_name:
            lut[i] = by_name[swapped]
    return lut


def lr_axis_of(direction: np.ndarray) -> int:
    """Array axis (0 = z, 1 = y, 2 = x) closest to the patient's left/right (LPS L) direction.

    Parameters
    ----------
    direction : np.ndarray, shape (3, 3)
        Columns are the LPS unit vectors of the x, y, z index axes (``Volume.direction``).
    """
    index_axis_xyz = int(np.argmax(np.abs(np.asarray(direction)[0, :])))
    return 2 - index_axis_xyz


def extract_patch(image: np.ndarray, labels: np.ndarray, centre_zyx: Sequence[float],
                  patch_size: Sequence[int], *, options: AugmentOptions,
                  rng: np.random.Generator, pad_value: float) -> tuple[np.ndarray, np.ndarray]:
    """Cut a patch centred at ``centre_zyx``, with a random zoom / elastic field when asked.

    Parameters
    ----------
    image : np.ndarray, float32, shape (z, y, x)
        Normalised case.
    labels : np.ndarray, uint8, shape (z, y, x)
    centre_zyx : 3 floats
        Patch centre, voxel indices; the caller keeps the patch inside the case when no spatial
        transform is drawn.
    patch_size : 3 int
        (pz, py, px).
    options : AugmentOptions
    rng : numpy.random.Generator
    pad_value : float
        Image value outside the case (air after normalisation); labels outside are 0
        (background: air outside the scan, deliberately not ``UNLABELLED``).

    Returns
    -------
    image_patch : np.ndarray, float32, shape patch_size
    label_patch : np.ndarray, uint8, shape patch_size
    """
    p = np.asarray(patch_size, dtype=int)
    c = np.asarray(centre_zyx, dtype=np.float64)
    do_scale = options.scale_p > 0 and rng.random() < options.scale_p
    do_elastic = options.elastic_p > 0 and rng.random() < options.elastic_p
    if not (do_scale or do_elastic):
        start = np.round(c - (p - 1) / 2.0).astype(int)
        return _slice_padded(image, labels, start, p, pad_value)
    from scipy import ndimage

    zoom = rng.uniform(*options.scale_range) if do_scale else 1.0
    offsets = [(np.arange(n, dtype=np.float64) - (n - 1) / 2.0) / zoom for n in p]
    coords = np.stack(np.meshgrid(*offsets, indexing="ij"))  # (3, pz, py, px)
    if do_elastic:
        for axis in range(3):
            field = ndimage.gaussian_filter(rng.standard_normal(tuple(p)),
                                            options.elastic_sigma_vox, mode="constant")
            peak = np.abs(field).max()
            if peak > 0:
                coords[axis] += field * (options.elastic_alpha_vox / peak)
    coords += c.reshape(3, 1, 1, 1)
    img = ndimage.map_coordinates(image, coords, order=1, mode="constant", cval=pad_value,
                                  prefilter=False).astype(np.float32)
    lab = ndimage.map_coordinates(labels, coords, order=0, mode="constant", cval=0,
                                  prefilter=False).astype(np.uint8)
    return img, lab


def _slice_padded(image: np.ndarray, labels: np.ndarray, start: np.ndarray, size: np.ndarray,
                  pad_value: float) -> tuple[np.ndarray, np.ndarray]:
    """``image[start:start+size]`` with ``pad_value`` (labels: 0) where it leaves the array."""
    shape = np.asarray(image.shape)
    lo = np.maximum(start, 0)
    hi = np.minimum(start + size, shape)
    src = tuple(slice(a, b) for a, b in zip(lo, hi))
    if np.all(lo == start) and np.all(hi == start + size):
        return image[src].astype(np.float32, copy=True), labels[src].copy()
    img = np.full(tuple(size), pad_value, dtype=np.float32)
    lab = np.zeros(tuple(size), dtype=np.uint8)
    dst = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, start))
    img[dst] = image[src]
    lab[dst] = labels[src]
    return img, lab


def flip_patch(image: np.ndarray, labels: np.ndarray, *, axes: Sequence[int], lr_axis: int,
               swap_lookup: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Mirror a patch along ``axes``; a flip along ``lr_axis`` swaps left/right class ids.

    Parameters
    ----------
    image, labels : np.ndarray, shape (z, y, x)
    axes : sequence of int
        Array axes to mirror (0 = z, 1 = y, 2 = x).
    lr_axis : int
        The patient's left/right array axis (:func:`lr_axis_of`).
    swap_lookup : np.ndarray or None
        From :func:`side_swap_lookup`; ``None``: no side-specific classes.

    Returns
    -------
    image, labels : contiguous copies, same shapes and dtypes
    """
    axes = tuple(int(a) for a in axes)
    if not axes:
        return image, labels
    image = np.ascontiguousarray(np.flip(image, axis=axes))
    labels = np.ascontiguousarray(np.flip(labels, axis=axes))
    if lr_axis in axes and swap_lookup is not None:
        lut = np.asarray(swap_lookup)
        if lut.size < 256:
            # Ids beyond the table (UNLABELLED = 255) map to themselves, not to an IndexError.
            lut = np.concatenate([lut, np.arange(lut.size, 256, dtype=lut.dtype)])
        labels = lut[labels]
    return image, labels


def augment_intensity(image: np.ndarray, *, options: AugmentOptions,
                      rng: np.random.Generator) -> np.ndarray:
    """Random intensity scale/shift, then additive Gaussian noise (in place on a float32 copy)."""
    out = np.asarray(image, dtype=np.float32)
    if options.intensity_p > 0 and rng.random() < options.intensity_p:
        out = out * np.float32(rng.uniform(*options.intensity_scale)) + np.float32(
            rng.uniform(*options.intensity_shift))
    if options.noise_p > 0 and rng.random() < options.noise_p:
        std = rng.uniform(*options.noise_std)
        out = out + rng.normal(0.0, std, size=out.shape).astype(np.float32)
    return out.astype(np.float32, copy=False)


def augment_patch(image: np.ndarray, labels: np.ndarray, *, options: AugmentOptions,
                  rng: np.random.Generator, lr_axis: int = 2,
                  swap_lookup: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flips and intensity augmentation of an extracted patch (spatial: :func:`extract_patch`).

    Parameters
    ----------
    image : np.ndarray, float32, shape (z, y, x)
    labels : np.ndarray, uint8, shape (z, y, x)
    options : AugmentOptions
    rng : numpy.random.Generator
    lr_axis : int
        Left/right array axis of the case.
    swap_lookup : np.ndarray, optional
        Left/right id swap (:func:`side_swap_lookup`).

    Returns
    -------
    image : float32, labels : uint8, same shapes
    """
    candidates = (lr_axis,) if options.flip_axes == "lr" else (0, 1, 2)
    axes = [a for a in candidates if options.flip_p > 0 and rng.random() < options.flip_p]
    image, labels = flip_patch(image, labels, axes=axes, lr_axis=lr_axis, swap_lookup=swap_lookup)
    return augment_intensity(image, options=options, rng=rng), labels
