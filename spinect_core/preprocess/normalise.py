"""CT intensity normalisation; the statistics travel with the weights in the model card.

Two schemes:

* ``"ct_percentile_zscore"`` (default, nnU-Net's CT scheme): clip HU to ``clip_hu`` (the 0.5 and
  99.5 percentiles of foreground voxels over the training set), then ``(x - mean_hu) / std_hu``.
  The statistics are fixed per model, so every CT is mapped the same way whatever its field of
  view. Unlike nnU-Net (which takes mean and std of the *unclipped* foreground), ``mean_hu`` and
  ``std_hu`` here are of the *clipped* foreground, so the normalised foreground has exactly zero
  mean and unit variance on the training data.
* ``"zscore"`` (the study's plain standardisation): per-volume mean and standard deviation of all
  voxels, no clipping. Depends on the field of view (air around the patient lowers the mean).

Model card form::

    {"scheme": "ct_percentile_zscore", "clip_hu": [lo, hi], "mean_hu": m, "std_hu": s}
    {"scheme": "zscore"}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np

from spinect_core.errors import WeightsError

__all__ = ["CTNormalisation", "NormalisationError", "SCHEMES"]


class NormalisationError(WeightsError, ValueError):
    """A model card's normalisation entry is unknown or incomplete.

    A :class:`~spinect_core.errors.WeightsError` (the CLI prints one line) and a ``ValueError``.
    """

SCHEMES = ("ct_percentile_zscore", "zscore")
#: Standard deviations below this are treated as this (a constant image must not divide by 0).
_MIN_STD = 1e-6


@dataclass(frozen=True, kw_only=True)
class CTNormalisation:
    """Intensity normalisation of a CT for the model.

    Attributes
    ----------
    scheme : {"ct_percentile_zscore", "zscore"}
    clip_hu : tuple of 2 floats or None
        ``(lo, hi)`` HU clip range (``ct_percentile_zscore`` only).
    mean_hu, std_hu : float or None
        Statistics of the clipped training foreground in HU (``ct_percentile_zscore`` only).
    """

    scheme: Literal["ct_percentile_zscore", "zscore"] = "ct_percentile_zscore"
    clip_hu: tuple[float, float] | None = None
    mean_hu: float | None = None
    std_hu: float | None = None

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise NormalisationError(f"unknown normalisation scheme {self.scheme!r}; "
                                     f"known: {list(SCHEMES)}")
        if self.scheme == "ct_percentile_zscore":
            if self.clip_hu is None or self.mean_hu is None or self.std_hu is None:
                raise NormalisationError("ct_percentile_zscore needs clip_hu, mean_hu and std_hu")
            lo, hi = (float(v) for v in self.clip_hu)
            if not lo < hi:
                raise NormalisationError(f"clip_hu must be (lo, hi) with lo < hi, got {self.clip_hu}")
            if not float(self.std_hu) > 0:
                raise NormalisationError(f"std_hu must be positive, got {self.std_hu}")
            object.__setattr__(self, "clip_hu", (lo, hi))
            object.__setattr__(self, "mean_hu", float(self.mean_hu))
            object.__setattr__(self, "std_hu", float(self.std_hu))

    # --- model card ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The model card entry (JSON-ready)."""
        if self.scheme == "zscore":
            return {"scheme": "zscore"}
        assert self.clip_hu is not None
        return {"scheme": self.scheme, "clip_hu": [float(self.clip_hu[0]), float(self.clip_hu[1])],
                "mean_hu": float(self.mean_hu), "std_hu": float(self.std_hu)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CTNormalisation":
        """Read the model card entry (raises :class:`NormalisationError` when it is not valid)."""
        scheme = data.get("scheme")
        if scheme == "zscore":
            return cls(scheme="zscore")
        if scheme != "ct_percentile_zscore":
            raise NormalisationError(f"unknown normalisation scheme {scheme!r}; "
                                     f"known: {list(SCHEMES)}")
        try:
            lo, hi = data["clip_hu"]
            return cls(scheme=scheme, clip_hu=(float(lo), float(hi)),
                       mean_hu=float(data["mean_hu"]), std_hu=float(data["std_hu"]))
        except NormalisationError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise NormalisationError(f"normalisation entry is incomplete or malformed: {exc}") from exc

    # --- apply --------------------------------------------------------------------------------
    def apply(self, array: np.ndarray) -> np.ndarray:
        """Normalise HU values.

        Parameters
        ----------
        array : np.ndarray, any shape
            CT intensities in HU.

        Returns
        -------
        np.ndarray, float32, same shape
        """
        x = np.asarray(array, dtype=np.float32)
        if self.scheme == "zscore":
            # float64 accumulation: float32 sums over 10^8 voxels lose digits.
            mean = float(x.mean(dtype=np.float64))
            std = max(float(x.std(dtype=np.float64)), _MIN_STD)
            return ((x - np.float32(mean)) / np.float32(std)).astype(np.float32, copy=False)
        assert self.clip_hu is not None
        out = np.clip(x, self.clip_hu[0], self.clip_hu[1])  # new array: the input is not modified
        out -= np.float32(self.mean_hu)
        out /= np.float32(self.std_hu)
        return out

    def invert(self, normalised: np.ndarray) -> np.ndarray:
        """HU from normalised values (clipped values stay clipped); ``ct_percentile_zscore`` only."""
        if self.scheme != "ct_percentile_zscore":
            raise ValueError("the per-volume zscore cannot be inverted without the volume's statistics")
        x = np.asarray(normalised, dtype=np.float32)
        return x * np.float32(self.std_hu) + np.float32(self.mean_hu)

    # --- fit ----------------------------------------------------------------------------------
    @classmethod
    def fit(cls, arrays: Iterable[np.ndarray], masks: Iterable[np.ndarray] | None = None, *,
            body_threshold_hu: float = -500.0, percentiles: Sequence[float] = (0.5, 99.5),
            max_samples_per_case: int = 200_000, seed: int = 0) -> "CTNormalisation":
        """Fit ``ct_percentile_zscore`` statistics on training CTs (nnU-Net style).

        Foreground voxels of each case (``label > 0`` when ``masks`` are given, else the body,
        HU > ``body_threshold_hu``) are randomly subsampled to at most ``max_samples_per_case``
        (memory and equal weight of large and small scans) and pooled. ``clip_hu`` = the pooled
        0.5 and 99.5 percentiles; ``mean_hu``/``std_hu`` = mean and standard deviation of the
        pooled foreground after clipping.

        Parameters
        ----------
        arrays : iterable of np.ndarray, each (z, y, x)
            CTs in HU (any grid; consumed once, so a generator that loads lazily is fine).
        masks : iterable of np.ndarray, optional
            Label maps of the same shapes as ``arrays``.
        body_threshold_hu : float
        percentiles : (low, high)
        max_samples_per_case : int
        seed : int
            Seed of the subsampling, for reproducible statistics.

        Returns
        -------
        CTNormalisation
        """
        rng = np.random.default_rng(seed)
        samples: list[np.ndarray] = []
        mask_iter = iter(masks) if masks is not None else None
        for array in arrays:
            a = np.asarray(array)
            if mask_iter is not None:
                try:
                    m = np.asarray(next(mask_iter))
                except StopIteration:
                    raise ValueError("fewer masks than arrays") from None
                if m.shape != a.shape:
                    raise ValueError(f"mask shape {m.shape} differs from image shape {a.shape}")
                values = a[m > 0]
            else:
                values = a[a > body_threshold_hu]
            if values.size > max_samples_per_case:
                values = rng.choice(values, size=max_samples_per_case, replace=False)
            samples.append(values.astype(np.float64))
        if not samples or sum(s.size for s in samples) == 0:
            raise ValueError("no foreground voxels to fit the normalisation on")
        pooled = np.concatenate(samples)
        lo, hi = np.percentile(pooled, [percentiles[0], percentiles[1]])
        if not hi > lo:  # a constant foreground: keep a valid (non-empty) clip range
            hi = lo + 1.0
        clipped = np.clip(pooled, lo, hi)
        std = max(float(clipped.std()), _MIN_STD)
        return cls(scheme="ct_percentile_zscore", clip_hu=(float(lo), float(hi)),
                   mean_hu=float(clipped.mean()), std_hu=std)
