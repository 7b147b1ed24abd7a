"""Plausibility check that CT intensities are Hounsfield units.

Documented heuristic (applied to the rescaled values of the whole volume, on a strided sample of
at most ~2 million voxels so it costs milliseconds):

1. Padding is ignored: voxels equal to the DICOM PixelPaddingValue (rescaled), and the volume
   minimum when it is <= -1024 HU and covers more than 0.5 % of the voxels (the constant outside a
   circular reconstruction field, e.g. -2048 or -3024).
2. **Too low**: more than 1 % of the remaining voxels below -1500 HU. Air is -1000 HU and noise
   does not reach -1500 in bulk; this catches a wrong or doubled intercept.
3. **Too high**: more than 0.1 % above 32000 HU (beyond any extended-range CT scale).
4. **No fat and no air**: the 0.5th percentile is above -30 HU. Every body CT in HU contains air
   (-1000) or at least fat (-100), also with a tight field of view; unrescaled data stored with
   air at 0 (water at +1024), normalised [0, 1] images and MR intensities fail here.

Additionally a DICOM series without RescaleIntercept whose unsigned stored values are all >= 0 is
refused when rule 4 fails, with a message naming the missing intercept.
"""

from __future__ import annotations

import numpy as np

from spinect_core.errors import NotHounsfieldError

_MAX_SAMPLES = 2_000_000


def check_hounsfield(array: np.ndarray, *, padding_value: float | None = None,
                     missing_intercept: bool = False, source: str = "the image") -> None:
    """Raise :class:`NotHounsfieldError` when ``array`` does not look like HU.

    Parameters
    ----------
    array : np.ndarray, any shape
        Rescaled intensities.
    padding_value : float, optional
        Rescaled pixel padding value to ignore.
    missing_intercept : bool
        The source had unsigned stored values and no RescaleIntercept (names it in the message).
    source : str
        What the values came from, for the message (never a patient identifier).
    """
    flat = array.reshape(-1)
    step = max(1, flat.size // _MAX_SAMPLES)
    sample = np.asarray(flat[::step], dtype=np.float32)
    sample = sample[np.isfinite(sample)]
    if padding_value is not None:
        sample = sample[sample != np.float32(padding_value)]
    if sample.size:
        vmin = sample.min()
        if vmin <= -1024 and np.count_nonzero(sample == vmin) > 0.005 * sample.size:
            sample = sample[sample != vmin]
    if sample.size == 0:
        raise NotHounsfieldError(f"{source} contains only padding values; it holds no image data")
    too_low = np.count_nonzero(sample < -1500) / sample.size
    if too_low > 0.01:
        raise NotHounsfieldError(
            f"{source} is not in Hounsfield units: {too_low:.0%} of voxels are below -1500 HU "
            "(air is -1000); check RescaleSlope/RescaleIntercept or convert the image to HU")
    too_high = np.count_nonzero(sample > 32000) / sample.size
    if too_high > 0.001:
        raise NotHounsfieldError(
            f"{source} is not in Hounsfield units: {too_high:.1%} of voxels are above 32000; "
            "convert the image to HU")
    low = float(np.percentile(sample, 0.5))
    if low > -30:
        if missing_intercept:
            raise NotHounsfieldError(
                f"{source} has no RescaleIntercept and unsigned values with air at "
                f"{low:.0f} instead of -1000 HU; export the series with rescale tags (HU)")
        raise NotHounsfieldError(
            f"{source} does not look like Hounsfield units: its lowest values ({low:.0f}) show "
            "neither air (-1000 HU) nor fat (-100 HU); it may be unrescaled, normalised or "
            "not a CT - convert it to HU")
