"""Sliding-window inference: load a network once, segment many volumes.

>>> from spinect_core.inference import Predictor, PredictorOptions
>>> predictor = Predictor(network, options=PredictorOptions(blend="gaussian"))  # doctest: +SKIP
>>> prediction = predictor.predict(normalised_ct, progress=callback)           # doctest: +SKIP

See :mod:`spinect_core.inference.predictor` for the memory budget and the out-of-memory policy,
:mod:`spinect_core.inference.tiling` for the window layout and
:mod:`spinect_core.inference.device` for how device and precision are chosen.
"""

from spinect_core.inference.device import (
    cpu_has_fast_bf16,
    resolve_channels_last,
    resolve_device,
    resolve_precision,
)
from spinect_core.inference.predictor import Prediction, Predictor, PredictorOptions
from spinect_core.inference.tiling import (
    gaussian_importance_map,
    num_windows,
    padding_for,
    tile_starts,
    window_starts,
)

__all__ = [
    "Prediction",
    "Predictor",
    "PredictorOptions",
    "cpu_has_fast_bf16",
    "gaussian_importance_map",
    "num_windows",
    "padding_for",
    "resolve_channels_last",
    "resolve_device",
    "resolve_precision",
    "tile_starts",
    "window_starts",
]
