"""Per-patch data augmentation (numpy / scipy, no torch): spatial, flips, intensity, noise.

Everything takes an explicit ``numpy.random.Generator`` so a training run is reproducible and
resumable (the generator's state goes into the checkpoint).

Order per patch, as in nnU-Net: spatial transform while the patch is cut out of the case
(:func:`extract_patch`: random isotropic scale and optional elastic deformation, so no empty
border appears), then mirroring (:func:`flip_patch`), the SynthSeg-style contrast randomisation
(:func:`randomise_contrast`: random monotone piecewise-linear intensity transfer, random gamma,
smooth multiplicative bias field), intensity scale/shift, Gaussian noise
(:func:`augment_intensity`). Intensities are the *normalised* ones (zero mean, unit variance on the
training foreground), so noise and shift are in units of the foreground's standard deviation.

The contrast randomisation (Billot et al., SynthSeg, Medical Image Analysis 2023, draws every
tissue's intensity at random; here the synthetic CT already has tissue-like HU, so the
intensities are remapped instead) changes each patch's HU-to-intensity curve *per tissue-like
range*: the knots of the transfer sit at the patch's intensity quantiles, or, with
:func:`tissue_knots`, at fixed HU (air, fat, water, soft tissue, enhanced blood, cancellous and
cortical bone) mapped through the model's normalisation. Each range between knots gets its own
random slope, so e.g. cancellous bone can move towards enhanced blood and back: the network must
learn bone from shape and context, not from one HU threshold. Labels are never touched.

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
           "augment_intensity", "augment_patch", "randomise_contrast", "tissue_knots",
           "TISSUE_KNOTS_HU"]

#: HU knots of the tissue-like ranges (air, lung, fat, fluid, soft tissue, enhanced soft tissue,
#: enhanced blood / cancellous bone, dense cancellous, cortical bone).
TISSUE_KNOTS_HU = (-1000.0, -600.0, -150.0, -50.0, 20.0, 80.0, 150.0, 300.0, 600.0, 1200.0)
#: Quantile levels of the patch used as knots when no fixed knots are given.
_QUANTILE_KNOTS = (0.0, 0.02, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95, 0.99, 1.0)

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
    remap_p : float
        Probability of a random monotone piecewise-linear intensity transfer
        (:func:`randomise_contrast`).
    remap_knots : tuple of float or None
        Its knots in normalised units (:func:`tissue_knots` makes them from HU); ``None``: the
        patch's own intensity quantiles.
    remap_strength : float
        Each segment's slope is multiplied by ``exp(U(-remap_strength, remap_strength))``.
    gamma_p : float
        Probability of a random gamma on the patch's min-max range.
    gamma_range : (float, float)
        Gamma drawn log-uniformly from this range.
    bias_p : float
        Probability of a smooth multiplicative bias field.
    bias_std : float
        Standard deviation of the log bias at its control points (a 4 x 4 x 4 grid).
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
    remap_p: float = 0.0
    remap_knots: tuple[float, ...] | None = None
    remap_strength: float = 0.7
    gamma_p: float = 0.0
    gamma_range: tuple[float, float] = (0.7, 1.5)
    bias_p: float = 0.0
    bias_std: float = 0.15

    def __post_init__(self) -> None:
        for name in ("noise_p", "flip_p", "intensity_p", "scale_p", "elastic_p", "remap_p",
                     "gamma_p", "bias_p"):
            v = float(getattr(self, name))
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {v}")
        for name in ("noise_std", "intensity_scale", "intensity_shift", "scale_range",
                     "gamma_range"):
            lo, hi = (float(v) for v in getattr(self, name))
            if lo > hi:
                raise ValueError(f"{name} must be (low, high), got {(lo, hi)}")
            object.__setattr__(self, name, (lo, hi))
        if self.flip_axes not in ("lr", "all"):
            raise ValueError(f"flip_axes must be 'lr' or 'all', got {self.flip_axes!r}")
        if self.scale_range[0] <= 0:
            raise ValueError("scale_range must be positive")
        if self.gamma_range[0] <= 0:
            raise ValueError("gamma_range must be positive")
        if self.remap_knots is not None:
            knots = tuple(float(k) for k in self.remap_knots)
            if len(knots) < 2 or any(b <= a for a, b in zip(knots, knots[1:])):
                raise ValueError("remap_knots must be at least 2 increasing values")
            object.__setattr__(self, "remap_knots", knots)
        if self.remap_strength < 0 or self.bias_std < 0:
            raise ValueError("remap_strength and bias_std must be non-negative")

    @classmethod
    def none(cls) -> "AugmentOptions":
        """No augmentation at all."""
        return cls(noise_p=0.0, flip_p=0.0)

    @classmethod
    def strong(cls) -> "AugmentOptions":
        """The better recipe: noise, flips, intensity scale/shift and random zoom."""
        return cls(intensity_p=0.5, scale_p=0.3)

    @classmethod
    def synthseg(cls, remap_knots: Sequence[float] | None = None) -> "AugmentOptions":
        """The strong recipe plus SynthSeg-style contrast randomisation, for training on
        synthetic (phantom) CT that must hold on real scans."""
        return cls(intensity_p=0.5, scale_p=0.3, remap_p=0.8, gamma_p=0.5, bias_p=0.5,
                   remap_knots=None if remap_knots is None else tuple(remap_knots))

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


def tissue_knots(mean_hu: float, std_hu: float,
                 knots_hu: Sequence[float] = TISSUE_KNOTS_HU) -> tuple[float, ...]:
    """Knots of :func:`randomise_contrast` at fixed HU, in the model's normalised units.

    Parameters
    ----------
    mean_hu, std_hu : float
        The normalisation's statistics (``CTNormalisation.mean_hu`` / ``std_hu``).
    knots_hu : sequence of float
        Increasing HU values (default :data:`TISSUE_KNOTS_HU`).
    """
    std = max(float(std_hu), 1e-6)
    return tuple((float(k) - float(mean_hu)) / std for k in knots_hu)


def _bias_field(shape: Sequence[int], std: float, rng: np.random.Generator) -> np.ndarray:
    """exp of a smooth random field: N(0, std) on 4 control points per axis, linear between."""
    ctrl = rng.normal(0.0, std, size=(4, 4, 4))
    out = ctrl
    for axis, n in enumerate(shape):
        pos = np.linspace(0.0, 3.0, int(n))
        i0 = np.minimum(np.floor(pos).astype(int), 2)
        w = (pos - i0).reshape([-1 if a == axis else 1 for a in range(3)])
        out = np.take(out, i0, axis=axis) * (1.0 - w) + np.take(out, i0 + 1, axis=axis) * w
    return np.exp(out).astype(np.float32)


def randomise_contrast(image: np.ndarray, *, options: AugmentOptions,
                       rng: np.random.Generator) -> np.ndarray:
    """SynthSeg-style contrast randomisation of a normalised patch (labels are not touched).

    With probability ``remap_p``: a random monotone piecewise-linear transfer whose knots are
    ``remap_knots`` (or the patch's quantiles); each segment's slope is scaled by
    ``exp(U(-remap_strength, remap_strength))`` and the whole curve rescaled so the knot range
    keeps its length; values beyond the end knots continue with the end slopes. With
    probability ``gamma_p``: ``lo + (hi - lo) ((x - lo) / (hi - lo)) ** gamma`` on the patch's
    range. With probability ``bias_p``: ``lo + (x - lo) * b`` with a smooth random ``b > 0``.
    Every step is monotone in the intensity at each voxel, so the ordering of tissues within a
    small region survives; the absolute levels do not.

    Parameters
    ----------
    image : np.ndarray, float32, shape (z, y, x)
    options : AugmentOptions
    rng : numpy.random.Generator

    Returns
    -------
    np.ndarray, float32, same shape
    """
    out = np.asarray(image, dtype=np.float32)
    if out.size == 0:
        return out
    if options.remap_p > 0 and rng.random() < options.remap_p:
        if options.remap_knots is not None:
            knots = np.asarray(options.remap_knots, dtype=np.float64)
        else:
            knots = np.quantile(out, _QUANTILE_KNOTS).astype(np.float64)
            knots = np.maximum.accumulate(knots + 1e-6 * np.arange(len(knots)))
        seg = np.diff(knots)
        slopes = np.exp(rng.uniform(-options.remap_strength, options.remap_strength, len(seg)))
        new = seg * slopes
        new *= seg.sum() / max(float(new.sum()), 1e-12)
        ys = knots[0] + np.concatenate([[0.0], np.cumsum(new)])
        mapped = np.interp(out, knots, ys)
        lo_slope, hi_slope = new[0] / seg[0], new[-1] / seg[-1]
        mapped = np.where(out < knots[0], ys[0] + (out - knots[0]) * lo_slope, mapped)
        mapped = np.where(out > knots[-1], ys[-1] + (out - knots[-1]) * hi_slope, mapped)
        out = mapped.astype(np.float32)
    if options.gamma_p > 0 and rng.random() < options.gamma_p:
        g = float(np.exp(rng.uniform(np.log(options.gamma_range[0]),
                                     np.log(options.gamma_range[1]))))
        lo, hi = float(out.min()), float(out.max())
        if hi > lo:
            out = (lo + (hi - lo) * ((out - lo) / (hi - lo)) ** g).astype(np.float32)
    if options.bias_p > 0 and rng.random() < options.bias_p:
        lo = float(out.min())
        out = (lo + (out - lo) * _bias_field(out.shape, options.bias_std, rng)).astype(np.float32)
    return out


def augment_intensity(image: np.ndarray, *, options: AugmentOptions,
                      rng: np.random.Generator) -> np.ndarray:
    """Contrast randomisation (:func:`randomise_contrast`, when enabled), random intensity
    scale/shift, then additive Gaussian noise (on a float32 copy)."""
    out = np.asarray(image, dtype=np.float32)
    if options.remap_p > 0 or options.gamma_p > 0 or options.bias_p > 0:
        out = randomise_contrast(out, options=options, rng=rng)
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
